"""Run one configured simulation and return its results as DataFrames (no I/O)."""

from __future__ import annotations

from dataclasses import dataclass
from typing import Callable, Sequence

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


def simulate_many(configs: Sequence[Config], *, memory_budget: int | None = None) -> list[RunResult]:
    """Run ``configs`` in this process and return their results in order, each equal to
    ``simulate(config)`` bit for bit.  Configs of one shape (``sim.batch.batch_key``, e.g. the
    seeds of one config) step together in batches (``sim.batch.run_batch``), which saves most of
    the per-run Python work of each quarter.  A batch takes as many runs as ``memory_budget``
    bytes allow, ``floor(memory_budget / sim.batch.run_bytes)``, at least 1 and at most 100 (the
    sweep's rule, ``sim.experiment.batching``; default the sweep's budget, 4 GB).

    Raises what ``simulate`` of a failing config raises: a batch that fails is run again config
    by config, so the error is the one that run gives alone.
    """
    from sim import batch
    from sim.experiment.batching import DEFAULT_MEMORY_BUDGET, MAX_BATCH, BatchRule, batches, parse_size

    rule = BatchRule(parse_size(DEFAULT_MEMORY_BUDGET) if memory_budget is None else memory_budget, MAX_BATCH)
    items = [(i, batch.batch_key(c), c) for i, c in enumerate(configs)]
    run_bytes = {key: batch.run_bytes(c) for _, key, c in items}
    # One batch at a time in this process: the budget is the batch's; no spreading over workers.
    size = lambda key: rule.size(run_bytes[key], slots=1, todo=len(items))  # noqa: E731
    results: list = [None] * len(items)
    for group in batches(items, key=lambda item: item[1], size=size):
        if len(group) == 1:
            i, _, config = group[0]
            results[i] = simulate(config)
            continue
        try:
            markets = batch.run_batch([config for _, _, config in group])
        except Exception:  # noqa: BLE001 - one of the runs failed: its own error, as simulate gives it
            for i, _, config in group:
                results[i] = simulate(config)
            continue
        for (i, _, config), market in zip(group, markets):
            results[i] = RunResult(config, *market.recorder.frames())
        del markets
    return results


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
