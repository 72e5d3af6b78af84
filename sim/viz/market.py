"""The model class the dashboard drives.

The dashboard re-creates the model on Reset as ``DashboardMarket(**controls)``
with the controls' values as keywords, so the dashboard needs a model whose
constructor takes those keywords.  ``DashboardMarket`` is a ``Market`` built
from a base config plus the controls (``sim.viz.params``); the market itself
is unchanged.
"""

from __future__ import annotations

from typing import Any

from sim.config import Config
from sim.model import Market, default_config
from sim.viz.params import ALL, config_for


class DashboardMarket(Market):
    def __init__(self, *, base: Config | None = None, lock_in: float = 1.0, lock_in_target: str = ALL,
                 flywheel: float | None = None, open_release: int | None = None,
                 open_capability: float | None = None, capex: float = 1.0, entry_compute: float | None = None,
                 import_cap_on: bool | None = None, import_cap: float | None = None,
                 customers: int | None = None, seed: int | None = None):
        base = base if base is not None else default_config()
        controls: dict[str, Any] = dict(
            lock_in=lock_in, lock_in_target=lock_in_target, flywheel=flywheel, open_release=open_release,
            open_capability=open_capability, capex=capex, entry_compute=entry_compute,
            import_cap_on=import_cap_on, import_cap=import_cap, customers=customers, seed=seed)
        super().__init__(config=config_for(base, **controls))
        self.base = base
        self.controls = controls

    def step(self) -> None:
        super().step()
        # Play stops at the configured horizon, as ``aicloud run`` does.
        self.running = self.t < self.config.run.quarters
