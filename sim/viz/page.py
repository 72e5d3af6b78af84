"""The dashboard page for one base config: our run controls and settings in the sidebar, the
share and HHI plots and the provider table in the main area (no tabs, no Mesa defaults)."""

from __future__ import annotations

import solara

from sim.config import Config
from sim.viz.components import HhiPlot, ProviderTable, SharePlot
from sim.viz.controls import RunControls, Settings
from sim.viz.market import DashboardMarket
from sim.viz.params import controls, defaults


def make_page(base: Config, *, play_interval: int = 150):
    """A Solara page component; every browser session gets its own model."""
    specs = controls(base)

    @solara.component
    def Page():
        first = solara.use_memo(lambda: DashboardMarket(base=base, **defaults(base)), [])
        model = solara.use_reactive(first)
        values = solara.use_reactive(defaults(base))  # the settings, applied on Reset

        with solara.AppBar():
            solara.AppBarTitle(f"aicloud-sim: {base.name}")
        with solara.Sidebar(), solara.Column():
            with solara.Card("Run"):
                RunControls(model, lambda: DashboardMarket(base=base, **values.value), play_interval)
            with solara.Card("Settings (applied on Reset)"):
                Settings(specs, values)
        with solara.Column():
            with solara.Columns([1, 1]):
                SharePlot(model.value)
                HhiPlot(model.value)
            ProviderTable(model.value)

    return Page
