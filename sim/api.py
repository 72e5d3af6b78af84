"""The public Python API: one run, replications, sweeps; pandas tables out.

    from sim.api import simulate, replicate, run_sweep, open_results

    result = simulate("china_2025", seed=7, customers=20_000)       # RunResult
    reps = replicate("minimal", seeds=range(10), flywheel=2.0)        # Replicates
    sweep = run_sweep({"base": "minimal", "replicates": 3, "params": {...}}, out="results/mine")
    sweep.market()          # one row per run x quarter, with the run's parameters and seed

A config can be given as a preset name or TOML path, a validated ``Config`` or a raw dict
(as a TOML file would give it); keyword parameters are those of ``Market`` (flat names such
as ``customers`` and ``flywheel``, or key paths such as ``providers.*.lock_in``; see
``sim.parameters``).  Every bad value raises ``ConfigError`` with one line per problem.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Iterable

import pandas as pd

from sim.config import Config, ConfigError, load_config, validate
from sim.experiment.results import SweepResults
from sim.parameters import apply_keywords
from sim.simulate import RunResult, simulate_many
from sim.simulate import simulate as _simulate

__all__ = ["simulate", "replicate", "run_sweep", "open_results", "as_config", "Replicates", "SweepResults",
           "RunResult"]


def as_config(config: Config | str | Path | dict[str, Any], **params: Any) -> Config:
    """A validated config from a preset name, a TOML path, a ``Config`` or a raw dict, with
    ``Market``-style keyword parameters applied.  Raises ``ConfigError``."""
    if isinstance(config, Config):
        base = config
    elif isinstance(config, dict):
        base = validate(config, "<dict config>")
    elif isinstance(config, (str, Path)):
        base = load_config(config)
    else:
        raise ConfigError([f"config: expected a preset name, a path, a Config or a dict; got {type(config).__name__}"])
    return apply_keywords(base, params, source="simulate")


def simulate(config: Config | str | Path | dict[str, Any] = "china_2025", *, seed: int | None = None,
             **params: Any) -> RunResult:
    """One run.  ``seed`` sets ``run.seed`` (default: the config's).

    Returns a ``RunResult``: ``providers`` (one row per quarter x provider: shares of revenue,
    compute, tokens and customers, price in US$ per GPU-quarter, cash in US$ million, capability
    index, ...), ``market`` (one row per quarter: HHI 0-10,000, CR3, CR5, churn, ...) and ``flows``.
    """
    if seed is not None:
        params = {**params, "run.seed": seed}
    return _simulate(as_config(config, **params))


@dataclass
class Replicates:
    """Runs of one config that differ only in the seed.

    ``providers`` and ``market`` stack the runs' tables with ``replicate`` (0, 1, ...) and
    ``seed`` as the first columns; ``results`` holds each ``RunResult``.
    """

    config: Config
    seeds: list[int]
    results: list[RunResult] = field(repr=False)

    @property
    def providers(self) -> pd.DataFrame:
        return self._stack("providers")

    @property
    def market(self) -> pd.DataFrame:
        return self._stack("market")

    def final(self, metric: str = "revenue") -> pd.DataFrame:
        """Final-quarter share of each provider per replicate (rows: replicate, columns: providers)."""
        prov = self.providers
        last = prov[prov["step"] == prov["step"].max()]
        return last.pivot(index="replicate", columns="provider", values=f"share_{metric}")

    def _stack(self, table: str) -> pd.DataFrame:
        frames = [getattr(r, table).assign(replicate=i, seed=s) for i, (s, r) in enumerate(zip(self.seeds, self.results))]
        out = pd.concat(frames, ignore_index=True)
        return out[["replicate", "seed", *[c for c in out.columns if c not in ("replicate", "seed")]]]


def replicate(config: Config | str | Path | dict[str, Any], seeds: Iterable[int], **params: Any) -> Replicates:
    """The same config run once per seed, in this process (for many runs or workers, use ``run_sweep``).

    The seeds step together in batches (``sim.simulate.simulate_many``: as many runs at once as the
    sweep's default memory budget allows, 4 GB, at most 100); each run's tables are bit for bit
    those of ``simulate`` with its seed."""
    base = as_config(config, **params)
    seeds = [int(s) for s in seeds]
    if not seeds:
        raise ConfigError(["replicate: seeds is empty; give at least one seed"])
    configs = [apply_keywords(base, {"run.seed": s}, source="replicate") for s in seeds]
    return Replicates(base, seeds, simulate_many(configs))


def run_sweep(spec: str | Path | dict[str, Any], out: str | Path | None = None, *, workers: int | None = None,
              scheduler: str | None = None, resume: bool = True, quiet: bool = True, batch_size: int | None = None,
              memory_budget: str | None = None) -> SweepResults:
    """Run an experiment spec and return its results.

    Args:
        spec: a spec file, an experiment name in ``experiments/``, or a dict with the same keys as
            a spec file (``base``, ``fixed``, ``params``, ``design``, ``replicates``, ``seed``, ...).
        out: the output directory (default ``results/<spec name>``).
        workers: worker processes (default: one per CPU; 0 = in this process).
        scheduler: ``"local"`` or a Dask scheduler address (the ``distributed`` extra).
        resume: if ``out`` already holds this sweep, run only what is missing (a different sweep
            there is refused); with ``resume=False`` existing results are refused.
        quiet: no log lines or progress bar.
        batch_size: runs a worker steps together; default: the spec's, else chosen from the
            memory budget (``sim.experiment.batching``).  Changes speed and memory, never results.
        memory_budget: the memory the batches running at once may take (e.g. ``"4GB"``); default:
            the spec's, else 4 GB.  Changes speed and memory, never results.

    Returns:
        ``SweepResults``, whose tables carry each run's parameters and seed in every row.

    Raises:
        ConfigError: a bad spec or config (one line per problem).
        SweepError: ``out`` holds other results, or the sweep cannot start.
    """
    from sim.experiment.batching import BatchRule, parse_size
    from sim.experiment.executors import default_workers
    from sim.experiment.progress import Progress
    from sim.experiment.runner import Plan
    from sim.experiment.runner import run_sweep as _run_sweep
    from sim.experiment.spec import load_spec, validate_spec
    from sim.experiment.store import Store

    loaded = validate_spec(spec, "<dict spec>") if isinstance(spec, dict) else load_spec(spec)
    target = Path(out) if out is not None else Path("results") / loaded.name
    plan = Plan.make(loaded)
    workers = default_workers() if workers is None else workers
    progress = Progress(plan.runs, 0, label=loaded.name, stream=_Null()) if quiet else None
    rule = plan.batch_rule()
    try:
        rule = BatchRule(parse_size(memory_budget) if memory_budget is not None else rule.memory_budget,
                         batch_size if batch_size is not None else rule.batch_size)
    except ValueError as exc:
        raise ConfigError([f"memory_budget: {exc}"]) from None
    if rule.batch_size is not None and rule.batch_size < 1:
        raise ConfigError([f"batch_size: {rule.batch_size} must be 1 (every run alone) or more"])
    _run_sweep(plan, target, workers=workers, scheduler=scheduler, resume=resume and Store(target).exists(),
               progress=progress, log=(lambda *a, **k: None) if quiet else print, batching=rule)
    return SweepResults(target)


def open_results(root: str | Path) -> SweepResults:
    """Stored sweep results (e.g. ``results/closed_loop``) as ``SweepResults``."""
    return SweepResults(root)


class _Null:
    """A stream that drops what is written (a quiet progress display)."""

    def write(self, text: str) -> int:
        return len(text)

    def flush(self) -> None:
        pass

    def isatty(self) -> bool:
        return False
