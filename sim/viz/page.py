"""The dashboard page for one base config: Mesa's SolaraViz with our controls and components."""

from __future__ import annotations

import solara
from mesa.visualization import SolaraViz

from sim.config import Config
from sim.viz.components import HhiPlot, ProviderTable, SharePlot
from sim.viz.market import DashboardMarket
from sim.viz.params import controls, defaults


def make_page(base: Config, *, play_interval: int = 150):
    """A Solara page component; every browser session gets its own model."""
    model_params = {"base": base, **controls(base)}

    @solara.component
    def Page():
        model = solara.use_memo(lambda: DashboardMarket(base=base, **defaults(base)), [])
        SolaraViz(model, components=[SharePlot, HhiPlot, ProviderTable], model_params=model_params,
                  name=f"aicloud-sim: {base.name}", play_interval=play_interval)

    return Page
