"""Replications with common random numbers: every candidate parameter set is run with
the same list of seeds, so differences between candidates are not sampling noise
of different seeds (they still diverge once a parameter changes which random
draws are made)."""

from __future__ import annotations

import multiprocessing
import os
from concurrent.futures import ProcessPoolExecutor
from contextlib import contextmanager
from typing import Iterator

from sim.config import Config, with_overrides
from sim.lifetime import exit_with
from sim.simulate import RunResult, simulate


def seeds_for(config: Config, replications: int) -> list[int]:
    return [config.run.seed + i for i in range(replications)]


def with_seed(config: Config, seed: int, quarters: int | None = None) -> Config:
    changes: dict = {"run.seed": seed}
    if quarters is not None:
        changes["run.quarters"] = quarters
    return with_overrides(config, changes, source="replication")


def run_one(config: Config) -> RunResult:
    return simulate(config)


def run_replications(config: Config, seeds: list[int], *, quarters: int | None = None,
                     pool: ProcessPoolExecutor | None = None) -> list[RunResult]:
    """One run per seed, in seed order (in worker processes if a pool is given)."""
    configs = [with_seed(config, s, quarters) for s in seeds]
    if pool is None:
        return [run_one(c) for c in configs]
    return list(pool.map(run_one, configs))


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
