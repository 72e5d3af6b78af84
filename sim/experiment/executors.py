"""Where runs execute: anything with the ``concurrent.futures.Executor`` interface.

- default: a local ``ProcessPoolExecutor`` (forkserver start, model preloaded once,
  workers reused across runs, each worker exits when the sweep's process dies);
- ``--scheduler local``: a Dask ``LocalCluster`` on loopback, through
  ``Client.get_executor()``;
- ``--scheduler tcp://host:8786``: an existing Dask cluster;
- ``--workers 0``: in this process, one run after another (debugging).
Every engine returns each run's tables to the parent, which writes them.
No cluster code of our own: Dask does the distribution; an engine only says how
many runs it can take at once and whether its cluster is still there
(:meth:`Engine.health`), so the runner can wait, tell the user, or stop.
"""

from __future__ import annotations

import logging
import multiprocessing
import os
from concurrent.futures import Executor, Future, ProcessPoolExecutor
from dataclasses import dataclass
from typing import Any, Callable

from sim.experiment.worker import pool_worker_init

DISTRIBUTED_HINT = "Dask distributed is not installed; install the extra: pip install '.[distributed]'"
DEFAULT_CLUSTER_TIMEOUT = 300.0  # seconds without a scheduler or workers before a sweep stops
HEALTH_TIMEOUT = 10.0  # seconds to wait for the scheduler to say how many workers it has


class EngineError(Exception):
    """The engine cannot start (worded for the user)."""


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
class Health:
    """What an engine knows about its cluster right now."""
    connected: bool  # the scheduler is reachable (always true for local engines)
    workers: int  # worker processes
    threads: int  # runs they can execute at once


@dataclass
class Engine:
    executor: Executor
    slots: int  # runs that can execute at once (updated by health() on a cluster)
    description: str
    _close: Callable[[bool], None] | None = None
    restartable: bool = False  # a broken local pool can be replaced
    _health: Callable[[], Health] | None = None
    address: str | None = None  # a Dask scheduler's address

    def close(self, *, cancel: bool = False) -> None:
        if self._close is not None:
            self._close(cancel)
        else:
            self.executor.shutdown(wait=not cancel, cancel_futures=cancel)

    def health(self) -> Health:
        if self._health is None:
            return Health(True, self.slots, self.slots)
        state = self._health()
        if state.connected and state.threads:
            self.slots = state.threads
        return state


def open_engine(workers: int, scheduler: str | None = None, *, timeout: float = DEFAULT_CLUSTER_TIMEOUT) -> Engine:
    """An engine for ``--workers`` / ``--scheduler``; EngineError if a cluster cannot be reached."""
    if scheduler is None:
        return local_pool(workers)
    if scheduler == "local":
        return dask_local(max(workers, 1))
    if scheduler.startswith(("tcp://", "tls://", "ucx://", "inproc://")):
        return dask_remote(scheduler, timeout=timeout)
    raise EngineError(f"--scheduler {scheduler}: expected 'local' or a Dask scheduler address like tcp://host:8786")


def local_pool(workers: int) -> Engine:
    if workers == 0:
        return Engine(SerialExecutor(), 1, "in-process (serial)")
    # forkserver: workers start from a clean process that imported the model once,
    # not from a fork of this (threaded) parent.
    ctx = multiprocessing.get_context("forkserver")
    ctx.set_forkserver_preload(["sim.experiment.worker"])
    pool = ProcessPoolExecutor(max_workers=workers, mp_context=ctx, initializer=pool_worker_init,
                               initargs=(os.getpid(),))

    def close(cancel: bool) -> None:
        if not cancel:
            pool.shutdown(wait=True)
            return
        # Stop the runs in flight now (their results would not be recorded anyway), and never wait
        # unbounded: shut down first (nothing new starts), then end the workers, then reap them.
        processes = list((getattr(pool, "_processes", None) or {}).values())
        results = getattr(pool, "_result_queue", None)  # shutdown() forgets it
        pool.shutdown(wait=False, cancel_futures=True)
        for process in processes:
            process.terminate()
        for process in processes:
            process.join(timeout=5)
            if process.is_alive():
                process.kill()
                process.join(timeout=5)
        # A worker ended while sending its result leaves half a message in the pipe; the pool's
        # manager thread then waits for the rest for ever, and Python joins that thread at exit:
        # the sweep hung after Ctrl-C.  With every worker gone, closing our own copy of the
        # pipe's writing end ends that wait (EOF), so the thread stops and the process exits.
        if results is not None and not any(p.is_alive() for p in processes):
            results._writer.close()

    return Engine(pool, workers, f"local process pool, {workers} worker{'s' if workers != 1 else ''}", close,
                  restartable=True)


def dask_local(workers: int) -> Engine:
    Client, LocalCluster = _distributed()
    # The nanny starts workers with MALLOC_TRIM_THRESHOLD_=65536; worker.tune_allocator undoes it
    # in each worker at its first run (as on any cluster), so nothing special is needed here.
    cluster = LocalCluster(n_workers=workers, threads_per_worker=1, processes=True, host="127.0.0.1",
                           dashboard_address=None, silence_logs=logging.ERROR)
    client = Client(cluster)

    def close(cancel: bool) -> None:
        client.close()
        cluster.close()

    return Engine(client.get_executor(pure=False), workers,
                  f"Dask LocalCluster at {cluster.scheduler_address}, {workers} workers", close,
                  _health=lambda: _cluster_health(client), address=cluster.scheduler_address)


def dask_remote(address: str, *, timeout: float = DEFAULT_CLUSTER_TIMEOUT) -> Engine:
    """A client of an existing cluster.  Connecting waits at most ``min(timeout, 30)`` seconds."""
    Client, _ = _distributed()
    _quiet_dask()
    wait = max(1.0, min(timeout, 30.0))
    try:
        client = Client(address, timeout=f"{wait}s", set_as_default=False)
    except (OSError, TimeoutError) as exc:
        raise EngineError(f"--scheduler {address}: cannot reach the Dask scheduler within {wait:g} s "
                          f"({_reason(exc)}); is it running? (see README: Running on a Dask cluster)") from None
    state = _cluster_health(client)
    if state.workers:
        what = f"{state.workers} worker{'s' if state.workers != 1 else ''}, {state.threads} thread{'s' if state.threads != 1 else ''}"
    else:
        what = "no workers yet"

    def close(cancel: bool) -> None:
        try:
            client.close(timeout=5)
        except Exception:  # noqa: BLE001 - the scheduler may be gone already
            pass

    return Engine(client.get_executor(pure=False), max(1, state.threads), f"Dask cluster at {address}, {what}",
                  close, _health=lambda: _cluster_health(client), address=address)


def _cluster_health(client) -> Health:
    """Workers and threads, asked of the scheduler with a bounded wait (a lost or partitioned
    scheduler must not make this call hang)."""
    if client.status != "running":
        return Health(False, 0, 0)
    try:
        info = client.sync(client.scheduler.identity, n_workers=0, callback_timeout=HEALTH_TIMEOUT)
    except Exception:  # noqa: BLE001 - connection lost, or no answer in time
        return Health(False, 0, 0)
    return Health(client.status == "running", int(info.get("n_workers", 0)), int(info.get("total_threads", 0)))


def _reason(exc: BaseException) -> str:
    text = str(exc).strip().splitlines()[0] if str(exc).strip() else type(exc).__name__
    return text[:200]


def _quiet_dask() -> None:
    """Dask (and tornado, which runs its event loop) log a lost scheduler at ERROR with tracebacks,
    e.g. from a result being fetched when the connection drops; the runner says what happened in
    one line instead."""
    names = [n for n in logging.root.manager.loggerDict if n.split(".")[0] in ("distributed", "tornado")]
    for name in {"distributed", "tornado", "tornado.application", *names}:
        logging.getLogger(name).setLevel(logging.CRITICAL)


def _distributed():
    try:
        from distributed import Client, LocalCluster
    except ImportError:
        raise EngineError(DISTRIBUTED_HINT) from None
    return Client, LocalCluster


def default_workers() -> int:
    return len(os.sched_getaffinity(0)) if hasattr(os, "sched_getaffinity") else (os.cpu_count() or 1)
