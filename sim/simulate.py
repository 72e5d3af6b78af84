"""Run one configured simulation and return its results as DataFrames (no I/O)."""

from __future__ import annotations

from dataclasses import dataclass
from typing import Callable

import pandas as pd

from sim.config import Config
from sim.metrics import METRICS, OVERLOAD_LIMIT, OVERLOAD_SPELL, longest_overload
from sim.model import Market


@dataclass
class RunResult:
    config: Config
    providers: pd.DataFrame  # one row per quarter x provider
    market: pd.DataFrame  # one row per quarter
    flows: pd.DataFrame  # one row per quarter x (from, to) with customers > 0

    def tidy(self) -> pd.DataFrame:
        """Provider rows with the quarter's market-level columns alongside (the quarters table)."""
        return self.providers.merge(self.market, on=["quarter", "step"], how="left")

    def summary(self, metric: str = "revenue") -> dict:
        return summarise(self, metric)


def simulate(config: Config, *, on_quarter: Callable[[Market], None] | None = None) -> RunResult:
    market = Market(config=config)
    for _ in range(config.run.quarters):
        market.step()
        if on_quarter is not None:
            on_quarter(market)
    providers, market_rows, flows = market.recorder.frames()
    return RunResult(config, providers, market_rows, flows)


def summarise(result: RunResult, metric: str = "revenue") -> dict:
    """Final shares, concentration and the biggest movers; changes are in the chosen metric."""
    prov, mkt = result.providers, result.market
    first, last = mkt["quarter"].iloc[0], mkt["quarter"].iloc[-1]
    start = prov[prov["quarter"] == first].set_index("provider")[f"share_{metric}"]
    end = prov[prov["quarter"] == last].set_index("provider")[f"share_{metric}"]
    change = (end - start).sort_values()
    final = mkt.iloc[-1]
    return {
        "name": result.config.name,
        "first_quarter": first,
        "last_quarter": last,
        "metric": metric,
        "final_shares": {m: prov[prov["quarter"] == last].set_index("provider")[f"share_{m}"].round(6).to_dict()
                         for m in METRICS},
        "first_shares": start.round(6).to_dict(),
        "hhi": {m: round(float(final[f"hhi_{m}"]), 3) for m in METRICS},
        "cr3": {m: round(float(final[f"cr3_{m}"]), 6) for m in METRICS},
        "cr5": {m: round(float(final[f"cr5_{m}"]), 6) for m in METRICS},
        "biggest_gainer": {"provider": change.index[-1], "change_pp": round(100 * float(change.iloc[-1]), 3)},
        "biggest_loser": {"provider": change.index[0], "change_pp": round(100 * float(change.iloc[0]), 3)},
        "mean_churn": round(float(mkt["churn"].mean()), 6),
        "entries": [e for e in "|".join(mkt["entered"]).split("|") if e],
        "exits": [e for e in "|".join(mkt["exited"]).split("|") if e],
        # Providers above utilisation 1.5 for more than 4 quarters in a row: zombies, or a config to check.
        "overloaded": {name: n for name, n in longest_overload(prov).items() if n > OVERLOAD_SPELL},
        "overload_rule": f"utilisation > {OVERLOAD_LIMIT} for more than {OVERLOAD_SPELL} consecutive quarters",
    }
