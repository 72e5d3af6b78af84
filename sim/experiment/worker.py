"""What a worker process does for a batch of runs: build their configs, run them together
(``sim.batch.run_batch``), return each run's tables.

Kept apart from the runner so that a worker imports only the model and
pyarrow, once per process (the pool is reused across batches).  A task carries the
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

from sim import allocator, batch
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
    """Run one task alone (a batch of one); its record, see :func:`execute_batch`."""
    return execute_batch([task])[0]


def execute_batch(tasks: list[Task]) -> list[dict[str, Any]]:
    """Run ``tasks`` as batches (``sim.batch.run_batch``) of the runs whose configs share a
    ``batch_key``; one record per task, in order, each carrying its run's tables (``frames``) or its
    error.  Never raises for a run's failure: a config that does not validate fails its run alone;
    a batch that raises (e.g. NonFiniteState in one of its runs) is run again: the run the error
    names (``details["run"]``) alone and the others as a batch, or, if the error names none, one
    run at a time; so only the failing run is recorded failed and the others keep their results
    (identical, since a run's outputs do not depend on its batch).  ``wall_time`` is the run's share of its batch's time
    (plus, after a failed batch, its share of that attempt and its own time alone)."""
    tune_allocator()
    worker = f"{socket.gethostname()}:{os.getpid()}"
    records = [{"run_id": t.run_id, "design_index": t.design_index, "replicate": t.replicate, "seed": t.seed,
                "worker": worker, "frames": None, "status": "failed", "error": None, "wall_time": 0.0}
               for t in tasks]
    groups: dict[tuple, list[tuple[int, Config]]] = {}
    for i, task in enumerate(tasks):
        started = time.perf_counter()
        try:
            config = with_overrides(_base(task), {**task.overrides, "run.seed": task.seed}, source=f"run {task.run_id}")
            groups.setdefault(batch.batch_key(config), []).append((i, config))
        except Exception as exc:  # noqa: BLE001 - a failed run is recorded, and the sweep goes on
            records[i]["error"] = error_text(exc)
        records[i]["wall_time"] += time.perf_counter() - started
    for members in groups.values():
        _run_group(members, tasks, records)
    for record in records:
        record["wall_time"] = round(record["wall_time"], 6)
    return records


def _run_group(members: list[tuple[int, Config]], tasks: list[Task], records: list[dict[str, Any]]) -> None:
    started = time.perf_counter()
    try:
        markets = batch.run_batch([config for _, config in members])
        tables = [_tables(market) for market in markets]
    except Exception as exc:  # noqa: BLE001 - one of the runs failed: find out which, run by run
        if len(members) == 1:
            i, _ = members[0]
            records[i].update(error=error_text(exc))
            records[i]["wall_time"] += time.perf_counter() - started
            return
        share = (time.perf_counter() - started) / len(members)
        for i, _ in members:
            records[i]["wall_time"] += share
        culprit = _failing_run(exc, members)
        if culprit is None:  # no word on which run: each alone
            for member in members:
                _run_group([member], tasks, records)
        else:  # that run alone (so its error reads as a run alone's), the others again as a batch
            _run_group([members[culprit]], tasks, records)
            _run_group(members[:culprit] + members[culprit + 1:], tasks, records)
        return
    share = (time.perf_counter() - started) / len(members)
    for (i, _), run in zip(members, tables):
        records[i].update(frames={name: _tag(table, tasks[i]) for name, table in run.items()}, status="ok", error=None)
        records[i]["wall_time"] += share


def _failing_run(exc: Exception, members: list[tuple[int, Config]]) -> int | None:
    """The batch position of the run that raised, if the error says (``NonFiniteState.details``:
    ``run``, checked against that run's ``seed``); else None."""
    details = getattr(exc, "details", None) or {}
    run = details.get("run")
    if not isinstance(run, int) or not 0 <= run < len(members):
        return None
    if "seed" in details and details["seed"] != members[run][1].run.seed:
        return None
    return run


def _base(task: Task) -> Config:
    config = _BASES.get(task.base_hash)
    if config is None:
        config = _BASES[task.base_hash] = validate(task.base, "base config")
    return config


def run_tables(config: Config) -> dict[str, pa.Table]:
    """One run (a batch of one), with the recorder's columns turned straight into Arrow tables
    (``Recorder.tables``), skipping the DataFrames.
    tests/test_experiment_store.py checks that the stored tables equal ``simulate``'s."""
    return _tables(batch.run_batch([config])[0])


def _tables(market: Market) -> dict[str, pa.Table]:
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
