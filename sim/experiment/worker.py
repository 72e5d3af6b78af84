"""What a worker process does for one run: build its config, simulate, write its parts.

Kept apart from the runner so that a worker imports only the model and
pyarrow, once per process (the pool is reused across runs).  A task carries the
base config as a plain dict plus the run's few overrides; the validated base is
cached per worker by its hash, so each run costs one small validation.
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

from sim.config import Config, ConfigError, validate, with_overrides
from sim.experiment.store import Store
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
    out: str | None = None  # write parts here; None = return them to the parent


def ignore_sigint() -> None:
    """Pool initializer: Ctrl-C is the parent's to handle; workers finish or are told to stop."""
    signal.signal(signal.SIGINT, signal.SIG_IGN)


def execute(task: Task) -> dict[str, Any]:
    started = time.perf_counter()
    record: dict[str, Any] = {"run_id": task.run_id, "design_index": task.design_index, "replicate": task.replicate,
                              "seed": task.seed, "worker": f"{socket.gethostname()}:{os.getpid()}", "frames": None}
    try:
        config = with_overrides(_base(task), {**task.overrides, "run.seed": task.seed}, source=f"run {task.run_id}")
        frames = {name: _tag(table, task) for name, table in run_tables(config).items()}
        if task.out is not None:
            Store(task.out).write_parts(task.run_id, frames)
        else:
            record["frames"] = frames
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
    """One run, as ``sim.simulate.simulate`` does it, but with the recorder's rows turned straight
    into Arrow tables: skipping the DataFrames saves about 10 ms a run (a sixth of a 10k x 40 run).
    tests/test_experiment_store.py checks that the stored tables equal ``simulate``'s."""
    market = Market(config=config)
    for _ in range(config.run.quarters):
        market.step()
    recorder = market.recorder
    return {"providers": pa.Table.from_pylist(recorder.provider_rows),
            "market": pa.Table.from_pylist(recorder.market_rows)}


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
