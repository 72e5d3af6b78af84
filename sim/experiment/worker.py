"""What a worker process does for one run: build its config, simulate, return its tables.

Kept apart from the runner so that a worker imports only the model and
pyarrow, once per process (the pool is reused across runs).  A task carries the
base config as a plain dict plus the run's few overrides; the validated base is
cached per worker by its hash, so each run costs one small validation.

Workers never write to the output directory: they return each run's tables and
the parent writes them and then its journal line, so nothing reaches the disk
that the journal does not know about (a worker still busy when the parent stops
cannot leave a stray part file).  A local pool worker exits as soon as the
sweep's process is gone (``sim.lifetime``: ``kill -9`` of the sweep leaves no idle
workers behind, and then no forkserver either: it exits when its last client does).
"""

from __future__ import annotations

import os
import signal
import socket
import time
import traceback
from dataclasses import dataclass, field
from typing import Any

import numpy as np
import pyarrow as pa

from sim import allocator
from sim.config import Config, ConfigError, validate, with_overrides
from sim.lifetime import exit_with
from sim.model import Market

_BASES: dict[str, Config] = {}


@dataclass(frozen=True)
class Task:
    run_id: int
    design_index: int
    replicate: int
    seed: int
    overrides: dict[str, Any]
    base_hash: str
    base: dict[str, Any] = field(repr=False)


def ignore_sigint() -> None:
    """Ctrl-C is the parent's to handle; workers finish or are told to stop."""
    signal.signal(signal.SIGINT, signal.SIG_IGN)


def pool_worker_init(parent_pid: int) -> None:
    """Pool initializer: ignore Ctrl-C and exit when the sweep's process dies (``sim.lifetime``)."""
    ignore_sigint()
    exit_with(parent_pid)


def execute(task: Task) -> dict[str, Any]:
    """Run one task; the record carries its tables (``frames``) or its error, never raises."""
    tune_allocator()
    started = time.perf_counter()
    record: dict[str, Any] = {"run_id": task.run_id, "design_index": task.design_index, "replicate": task.replicate,
                              "seed": task.seed, "worker": f"{socket.gethostname()}:{os.getpid()}", "frames": None}
    try:
        config = with_overrides(_base(task), {**task.overrides, "run.seed": task.seed}, source=f"run {task.run_id}")
        record["frames"] = {name: _tag(table, task) for name, table in run_tables(config).items()}
        record.update(status="ok", error=None)
    except Exception as exc:  # noqa: BLE001 - a failed run is recorded, and the sweep goes on
        record.update(status="failed", error=error_text(exc))
    record["wall_time"] = round(time.perf_counter() - started, 6)
    return record


def _base(task: Task) -> Config:
    config = _BASES.get(task.base_hash)
    if config is None:
        config = _BASES[task.base_hash] = validate(task.base, "base config")
    return config


def run_tables(config: Config) -> dict[str, pa.Table]:
    """One run, as ``sim.simulate.simulate`` does it, but with the recorder's columns turned straight
    into Arrow tables (``Recorder.tables``), skipping the DataFrames.
    tests/test_experiment_store.py checks that the stored tables equal ``simulate``'s."""
    market = Market(config=config)
    for _ in range(config.run.quarters):
        market.step()
    return market.recorder.tables()


def _tag(table: pa.Table, task: Task) -> pa.Table:
    n = table.num_rows
    for name, value in (("replicate", task.replicate), ("design_index", task.design_index), ("run_id", task.run_id)):
        table = table.add_column(0, name, pa.array(np.full(n, value, dtype=np.int64)))
    return table


def error_text(exc: BaseException) -> str:
    """The error and where it happened, short enough for a table cell."""
    if isinstance(exc, ConfigError):
        return "ConfigError: " + "; ".join(exc.problems)
    where = traceback.extract_tb(exc.__traceback__)[-1:] if exc.__traceback__ else []
    at = f" (at {os.path.basename(where[0].filename)}:{where[0].lineno})" if where else ""
    return f"{type(exc).__name__}: {exc}{at}"


# ----------------------------------------------------------------- allocator
TRIM_THRESHOLD = 128 * 2**20
MMAP_THRESHOLD = 32 * 2**20
_tuned = False


def tune_allocator() -> bool:
    """Undo a small ``MALLOC_TRIM_THRESHOLD_`` in this process (glibc only; once per process).

    Dask's nanny starts every worker with ``MALLOC_TRIM_THRESHOLD_=65536``
    (``distributed.nanny.pre-spawn-environ``) so that idle workers hand memory
    back to the OS.  Setting it also switches off glibc's dynamic mmap threshold,
    so each of the model's numpy arrays above 128 KiB is a fresh ``mmap`` whose
    pages fault in on first touch and are unmapped on free: a run cost 2-3x what
    it costs in a local pool worker (benchmarks/dask_worker.py measures it).
    ``mallopt`` at run time restores large thresholds: freed arrays are reused,
    and memory is still returned when the top of the heap has more than
    ``TRIM_THRESHOLD`` free.  Returns whether it changed anything.
    """
    global _tuned
    if _tuned:
        return False
    _tuned = True
    if "MALLOC_TRIM_THRESHOLD_" not in os.environ and "MALLOC_MMAP_THRESHOLD_" not in os.environ:
        return False
    return allocator.mallopt(TRIM_THRESHOLD, MMAP_THRESHOLD)  # False without glibc: nothing to undo
