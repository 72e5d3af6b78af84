"""Reading a finished (or partly finished) sweep as pandas tables whose rows carry their parameters.

``SweepResults(root)`` wraps a sweep's output directory (``sim.experiment.store``
describes the files).  Every table it returns has, in every row, the run's
``run_id``, ``design_index``, ``replicate``, ``label``, the value of each swept
parameter and the run's ``seed``, so no join with ``runs.parquet`` is needed.
``flat()`` and ``to_csv()`` give the table BehaviorSpace users expect: one row
per run x quarter, market columns and chosen provider columns side by side.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any, Iterator, Sequence

import pandas as pd

from sim.experiment.store import Store

RUN_KEYS = ["run_id", "design_index", "replicate"]
DEFAULT_PROVIDER_COLUMNS = ("share_revenue", "share_compute", "share_tokens", "share_customers")
CHUNK_RUNS = 500  # runs read at a time when writing CSV: memory stays flat for large sweeps


class ResultsError(Exception):
    """Results that cannot be read as asked (worded for the user)."""


class SweepResults:
    """A sweep's stored results (``root`` = its output directory).

    Tables (pandas DataFrames):
        ``runs()``       one row per planned run: parameters, seed, status, error, wall time
        ``market()``     one row per finished run x quarter: HHI, CR3/CR5, churn, adopters, ...
        ``providers()``  one row per finished run x quarter x provider: shares, price, cash, ...
        ``outcomes()``   one row per finished run: the spec's outcomes (and built-in ones)
        ``flat()``       one row per finished run x quarter: market columns and provider columns wide
    Each row carries ``run_id``, ``design_index``, ``replicate``, ``label``, the parameters and ``seed``.
    A parameter named like a column of the table (e.g. ``capability`` in ``providers()``) comes as
    ``param:<name>`` there; names of the run table's columns (``seed``, ``status``, ...) are refused by the spec.

    Raises:
        ResultsError: ``root`` holds no sweep results (no ``sweep.json``).
    """

    def __init__(self, root: str | Path):
        self.root = Path(root)
        self.store = Store(self.root)
        if not self.store.exists():
            raise ResultsError(f"{self.root}: no sweep results here (sweep.json is missing)")

    def __repr__(self) -> str:
        runs = self.runs()
        ok = int((runs["status"] == "ok").sum())
        return f"SweepResults({str(self.root)!r}: {ok} of {len(runs)} runs finished, parameters {self.params})"

    # ------------------------------------------------------------------ metadata
    @property
    def manifest(self) -> dict[str, Any]:
        """sweep.json: the spec, the resolved base config, hashes, versions."""
        return self.store.manifest()

    @property
    def params(self) -> list[str]:
        """The swept parameters' names, in design order."""
        return [c for c in self.store.design().columns
                if c not in ("design_index", "label", "master_seed", "local_index") and not c.startswith("unit:")]

    def design(self) -> pd.DataFrame:
        return self.store.design()

    def runs(self) -> pd.DataFrame:
        return self.store.runs()

    def run_info(self) -> pd.DataFrame:
        """Per finished run: run_id, design_index, replicate, label, the parameters and seed."""
        runs = self.runs()
        runs = runs[runs["status"] == "ok"]
        return runs[[*RUN_KEYS, "label", *self.params, "seed"]].reset_index(drop=True)

    # -------------------------------------------------------------------- tables
    def market(self, columns: Sequence[str] | None = None, *, run_ids: Sequence[int] | None = None) -> pd.DataFrame:
        """Per-quarter market rows of finished runs, with their parameters and seed."""
        return self._with_params(self.store.table("market", columns=_list(columns), run_ids=run_ids))

    def providers(self, columns: Sequence[str] | None = None, *, run_ids: Sequence[int] | None = None) -> pd.DataFrame:
        """Per-quarter provider rows of finished runs, with their parameters and seed."""
        return self._with_params(self.store.table("providers", columns=_list(columns), run_ids=run_ids))

    def outcomes(self) -> pd.DataFrame:
        """Each finished run's outcomes (the spec's and the built-in final HHI and leader shares)."""
        from sim.experiment import analysis
        from sim.experiment.report import stored_spec

        market, providers = self.store.table("market"), self.store.table("providers")
        if market.empty:
            return pd.DataFrame(columns=[*RUN_KEYS, "label", *self.params, "seed"])
        table = analysis.outcomes(stored_spec(self.store), providers, market,
                                  analysis.provider_groups(self.manifest["config"]))
        return self._with_params(table)

    def flat(self, provider_columns: Sequence[str] = DEFAULT_PROVIDER_COLUMNS, *,
             run_ids: Sequence[int] | None = None) -> pd.DataFrame:
        """One row per finished run x quarter: the run's keys, parameters and seed, the quarter,
        every market column, then ``<column>[<provider>]`` for each provider column asked for."""
        market = self.store.table("market", run_ids=run_ids)
        provider_columns = list(provider_columns)
        if provider_columns and not market.empty:
            self._check_columns(provider_columns)
            providers = self.store.table("providers", columns=["provider", *provider_columns], run_ids=run_ids)
            names = list(dict.fromkeys(providers["provider"]))
            wide = providers.set_index([*RUN_KEYS, "step", "provider"])[provider_columns].unstack("provider")
            wide = wide.reindex(columns=pd.MultiIndex.from_product([provider_columns, names]))
            wide.columns = [f"{column}[{name}]" for column, name in wide.columns]
            market = market.merge(wide.reset_index(), on=[*RUN_KEYS, "step"], how="left")
        return self._with_params(market)

    def to_csv(self, target: str | Path, provider_columns: Sequence[str] = DEFAULT_PROVIDER_COLUMNS, *,
               long: bool = False) -> int:
        """Write ``flat()`` (or, with ``long``, ``providers()``) as CSV, atomically and a few hundred
        runs at a time; returns the number of rows written."""
        from sim.output import atomic_path

        rows = 0
        with atomic_path(Path(target)) as tmp, tmp.open("w", encoding="utf-8", newline="") as fh:
            for i, chunk in enumerate(self._chunks()):
                table = self.providers(run_ids=chunk) if long else self.flat(provider_columns, run_ids=chunk)
                table.to_csv(fh, index=False, header=i == 0, float_format="%.10g")
                rows += len(table)
            if rows == 0:
                fh.write(",".join([*RUN_KEYS, "label", *self.params, "seed"]) + "\n")
        return rows

    # ------------------------------------------------------------------- helpers
    def _chunks(self) -> Iterator[list[int]]:
        ids = sorted(self.store.done_ids())
        for start in range(0, len(ids), CHUNK_RUNS):
            yield ids[start:start + CHUNK_RUNS]

    def _with_params(self, table: pd.DataFrame) -> pd.DataFrame:
        """``table`` with each run's label, parameters and seed after its keys."""
        info = self.run_info()
        # A parameter named like one of the table's columns (e.g. capability) comes as param:capability.
        info = info.rename(columns={c: f"param:{c}" for c in self.params if c in table.columns})
        if table.empty:
            return pd.DataFrame(columns=[*info.columns, *[c for c in table.columns if c not in info.columns]])
        merged = table.merge(info, on=RUN_KEYS, how="left")
        first = list(info.columns)
        return merged[first + [c for c in merged.columns if c not in first]]

    def _check_columns(self, columns: Sequence[str]) -> None:
        first = min(self.store.done_ids(), default=None)
        if first is None:
            return
        sample = self.store.table("providers", run_ids=[first])
        allowed = [c for c in sample.columns if c not in (*RUN_KEYS, "step", "quarter", "provider")]
        bad = [c for c in columns if c not in allowed]
        if bad:
            raise ResultsError(f"provider column(s) {', '.join(bad)} not in the results; allowed: {', '.join(allowed)}")

def _list(columns: Sequence[str] | None) -> list[str] | None:
    return None if columns is None else list(columns)
