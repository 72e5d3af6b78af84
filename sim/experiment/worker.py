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

import pandas as pd

from sim.config import Config, ConfigError, validate, with_overrides
from sim.experiment.store import Store
from sim.simulate import simulate

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
        result = simulate(config)
        frames = {"providers": _tag(result.providers, task), "market": _tag(result.market, task)}
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


def _tag(frame: pd.DataFrame, task: Task) -> pd.DataFrame:
    tagged = frame.copy()
    tagged.insert(0, "replicate", task.replicate)
    tagged.insert(0, "design_index", task.design_index)
    tagged.insert(0, "run_id", task.run_id)
    return tagged


def error_text(exc: BaseException) -> str:
    """The error and where it happened, short enough for a table cell."""
    if isinstance(exc, ConfigError):
        return "ConfigError: " + "; ".join(exc.problems)
    where = traceback.extract_tb(exc.__traceback__)[-1:] if exc.__traceback__ else []
    at = f" (at {os.path.basename(where[0].filename)}:{where[0].lineno})" if where else ""
    return f"{type(exc).__name__}: {exc}{at}"
