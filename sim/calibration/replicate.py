"""Replications with common random numbers: every candidate parameter set is run with
the same list of seeds, so differences between candidates are not sampling noise
of different seeds (they still diverge once a parameter changes which random
draws are made).

A candidate's seeds step together in batches (``sim.simulate.simulate_many``, i.e.
``sim.batch.run_batch``): each run's tables are bit for bit those of ``simulate`` alone, so the
loss does not depend on the batching (tests/test_calibration.py recomputes the committed fit's).
A calibration runs at most one process per CPU at once (its workers), each with one batch: each
batch gets the sweep's default memory budget (4 GB) over the CPUs (``process_budget``)."""

from __future__ import annotations

import multiprocessing
import os
from concurrent.futures import ProcessPoolExecutor
from contextlib import contextmanager
from typing import Iterator

from sim.config import Config, with_overrides
from sim.lifetime import exit_with
from sim.simulate import RunResult, simulate_many


def seeds_for(config: Config, replications: int) -> list[int]:
    return [config.run.seed + i for i in range(replications)]


def with_seed(config: Config, seed: int, quarters: int | None = None) -> Config:
    changes: dict = {"run.seed": seed}
    if quarters is not None:
        changes["run.quarters"] = quarters
    return with_overrides(config, changes, source="replication")


def run_replications(config: Config, seeds: list[int], *, quarters: int | None = None,
                     pool: ProcessPoolExecutor | None = None) -> list[RunResult]:
    """One run per seed, in seed order, in batches (``simulate_many``); with a pool, the seeds are
    split into one contiguous share per worker process, each share run as batches there."""
    configs = [with_seed(config, s, quarters) for s in seeds]
    if pool is None or len(configs) <= 1:
        return run_many(configs)
    workers = max(1, getattr(pool, "_max_workers", 1))
    share = -(-len(configs) // workers)  # ceil: one share per worker
    parts = [configs[i:i + share] for i in range(0, len(configs), share)]
    return [run for part in pool.map(run_many, parts) for run in part]


def run_many(configs: list[Config]) -> list[RunResult]:
    """``configs`` run in batches in this process, within ``process_budget()`` bytes at once."""
    return simulate_many(configs, memory_budget=process_budget())


def process_budget() -> int:
    """Bytes one calibration process may take for its batch: the sweep's default memory budget
    (4 GB) over the CPUs this process may use (a calibration has at most one worker per CPU)."""
    from sim.experiment.batching import DEFAULT_MEMORY_BUDGET, parse_size
    from sim.experiment.executors import default_workers

    return parse_size(DEFAULT_MEMORY_BUDGET) // max(1, default_workers())


@contextmanager
def process_pool(workers: int) -> Iterator[ProcessPoolExecutor | None]:
    """A pool of ``workers`` processes (spawned: no fork of a threaded parent), or None for 1.
    The workers exit when this process dies, even by ``kill -9``."""
    if workers <= 1:
        yield None
        return
    with ProcessPoolExecutor(max_workers=workers, mp_context=multiprocessing.get_context("spawn"),
                             initializer=exit_with, initargs=(os.getpid(),)) as pool:
        yield pool
