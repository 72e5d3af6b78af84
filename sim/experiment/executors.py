"""Where runs execute: anything with the ``concurrent.futures.Executor`` interface.

- default: a local ``ProcessPoolExecutor`` (forkserver start, model preloaded once,
  workers reused across runs);
- ``--scheduler local``: a Dask ``LocalCluster`` on loopback, through
  ``Client.get_executor()``;
- ``--scheduler tcp://host:8786``: an existing Dask cluster; its workers may not
  share our disk, so they return each run's tables and the parent writes them;
- ``--workers 0``: in this process, one run after another (debugging).
No cluster code of our own: Dask does the distribution.
"""

from __future__ import annotations

import logging
import multiprocessing
import os
from concurrent.futures import Executor, Future, ProcessPoolExecutor
from dataclasses import dataclass
from typing import Any, Callable

from sim.experiment.worker import ignore_sigint

DISTRIBUTED_HINT = "Dask distributed is not installed; install the extra: pip install '.[distributed]'"


class SerialExecutor(Executor):
    """Runs each task at submit time in this process (``--workers 0``)."""

    def submit(self, fn: Callable, /, *args: Any, **kwargs: Any) -> Future:
        future: Future = Future()
        try:
            future.set_result(fn(*args, **kwargs))
        except BaseException as exc:  # noqa: BLE001 - handed to the caller through the future
            future.set_exception(exc)
        return future


@dataclass
class Engine:
    executor: Executor
    slots: int  # runs that can execute at once
    shared_disk: bool  # workers can write part files into the output directory
    description: str
    _close: Callable[[], None] | None = None
    restartable: bool = False

    def close(self, *, cancel: bool = False) -> None:
        if self._close is not None:
            self._close()
        else:
            self.executor.shutdown(wait=not cancel, cancel_futures=cancel)


def open_engine(workers: int, scheduler: str | None = None) -> Engine:
    if scheduler is None:
        return local_pool(workers)
    if scheduler == "local":
        return dask_local(max(workers, 1))
    if scheduler.startswith(("tcp://", "tls://", "ucx://", "inproc://")):
        return dask_remote(scheduler)
    from sim.cli import UserError

    raise UserError(f"--scheduler {scheduler}: expected 'local' or a Dask scheduler address like tcp://host:8786")


def local_pool(workers: int) -> Engine:
    if workers == 0:
        return Engine(SerialExecutor(), 1, True, "in-process (serial)")
    # forkserver: workers start from a clean process that imported the model once,
    # not from a fork of this (threaded) parent.
    ctx = multiprocessing.get_context("forkserver")
    ctx.set_forkserver_preload(["sim.experiment.worker"])
    pool = ProcessPoolExecutor(max_workers=workers, mp_context=ctx, initializer=ignore_sigint)
    return Engine(pool, workers, True, f"local process pool, {workers} worker{'s' if workers != 1 else ''}",
                  restartable=True)


def dask_local(workers: int) -> Engine:
    Client, LocalCluster = _distributed()
    cluster = LocalCluster(n_workers=workers, threads_per_worker=1, processes=True, host="127.0.0.1",
                           dashboard_address=None, silence_logs=logging.ERROR)
    client = Client(cluster)

    def close() -> None:
        client.close()
        cluster.close()

    return Engine(client.get_executor(pure=False), workers, True,
                  f"Dask LocalCluster at {cluster.scheduler_address}, {workers} workers", close)


def dask_remote(address: str) -> Engine:
    Client, _ = _distributed()
    try:
        client = Client(address, timeout="10s")
    except OSError as exc:
        from sim.cli import UserError

        raise UserError(f"--scheduler {address}: cannot reach the Dask scheduler ({exc})") from None
    slots = max(1, sum(client.nthreads().values()))
    return Engine(client.get_executor(pure=False), slots, False,
                  f"Dask cluster at {address}, {slots} worker threads", client.close)


def _distributed():
    try:
        from distributed import Client, LocalCluster
    except ImportError:
        from sim.cli import UserError

        raise UserError(DISTRIBUTED_HINT) from None
    return Client, LocalCluster


def default_workers() -> int:
    return len(os.sched_getaffinity(0)) if hasattr(os, "sched_getaffinity") else (os.cpu_count() or 1)
