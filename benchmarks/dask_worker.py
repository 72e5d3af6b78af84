"""A run on a Dask worker against a run on a local pool worker (issue 16).

Starts a real cluster on this machine (``dask scheduler`` and one ``dask worker
--nthreads 1`` as subprocesses on 127.0.0.1, the worker under Dask's nanny, as
users start it) and runs the same sweep, in alternating rounds so that the
machine's load falls on both alike:

- ``local``: ``aicloud sweep`` on the local process pool with 1 worker;
- ``dask``: the same sweep on the cluster (``--scheduler tcp://...``);
- ``dask, allocator not tuned``: the same, with ``worker.tune_allocator`` made a
  no-op on the worker first, i.e. a run under the nanny's
  ``MALLOC_TRIM_THRESHOLD_=65536`` as before the fix.

Reports runs per second per round, the median ratio dask / local (aim: >= 0.8),
the worker's minor page faults per run, and the load average before and after.
Writes benchmarks/results/dask_worker.md.

    .venv/bin/python -m benchmarks.dask_worker              # 3 rounds of 24 runs
    .venv/bin/python -m benchmarks.dask_worker --runs 12 --rounds 2
"""

from __future__ import annotations

import argparse
import io
import os
import platform
import shutil
import signal
import socket
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path

from sim.experiment.progress import Progress
from sim.experiment.runner import Plan, run_sweep
from sim.experiment.spec import validate_spec
from sim.experiment.store import load_runs
from sim.output import write_text

RESULTS = Path(__file__).resolve().parent / "results" / "dask_worker.md"
DASK = str(Path(sys.executable).with_name("dask"))


def spec(runs: int, customers: int, quarters: int, base: str):
    raw = {"name": "dask_worker", "base": base, "replicates": runs, "seed": 1, "max_runs": runs,
           "fixed": {"run.customers": customers, "run.quarters": quarters}}
    return validate_spec(raw, "benchmarks/dask_worker.py")


def _version(name: str) -> str:
    from importlib import metadata

    try:
        return metadata.version(name)
    except metadata.PackageNotFoundError:
        return "?"


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def start(args: list[str], log: Path) -> subprocess.Popen:
    return subprocess.Popen([DASK, *args], stdout=log.open("ab"), stderr=subprocess.STDOUT, start_new_session=True)


def wait_for_worker(address: str, timeout: float = 120) -> None:
    from distributed import Client

    with Client(address, timeout="60s") as client:
        client.wait_for_workers(1, timeout=timeout)


def _faults() -> int:
    import resource

    return resource.getrusage(resource.RUSAGE_SELF).ru_minflt


def _untune() -> bool:
    from sim.experiment import worker

    worker._tuned = True  # pretend it ran: the nanny's MALLOC_TRIM_THRESHOLD_ stays in force
    return True


def sweep(plan: Plan, **engine) -> tuple[float, float]:
    """Runs per second of wall time (start-up included), and per second of run time on the worker
    (from each run's wall_time, measured inside the worker: start-up and transfers excluded)."""
    out = Path(tempfile.mkdtemp(prefix="dask_worker_"))
    try:
        progress = Progress(plan.runs, stream=io.StringIO(), tty=False, label="bench")
        started = time.perf_counter()
        tally = run_sweep(plan, out, progress=progress, log=lambda *_: None, **engine)
        wall = time.perf_counter() - started
        assert tally.ok == plan.runs, tally
        return plan.runs / wall, plan.runs / float(load_runs(out)["wall_time"].sum())
    finally:
        shutil.rmtree(out, ignore_errors=True)


def dask_sweep(plan: Plan, address: str, *, tuned: bool) -> tuple[float, float, float]:
    """Runs per second (wall, run time) and the worker's minor page faults per run, on a fresh
    worker process (the allocator starts as the nanny set it up)."""
    from distributed import Client

    with Client(address, timeout="60s") as client:
        client.restart(wait_for_workers=True)
        if not tuned:
            client.run(_untune)
        before = sum(client.run(_faults).values())
        wall, compute = sweep(plan, workers=0, scheduler=address)
        after = sum(client.run(_faults).values())
    return wall, compute, (after - before) / plan.runs


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--runs", type=int, default=24)
    ap.add_argument("--rounds", type=int, default=3)
    ap.add_argument("--customers", type=int, default=100_000)
    ap.add_argument("--quarters", type=int, default=24)
    ap.add_argument("--base", default="china_2025")
    args = ap.parse_args()
    plan = Plan.make(spec(args.runs, args.customers, args.quarters, args.base))
    tmp = Path(tempfile.mkdtemp(prefix="dask_worker_cluster_"))
    port = free_port()
    address = f"tcp://127.0.0.1:{port}"
    scheduler = start(["scheduler", "--host", "127.0.0.1", "--port", str(port), "--no-dashboard"], tmp / "scheduler.log")
    worker = start(["worker", address, "--nthreads", "1", "--no-dashboard"], tmp / "worker.log")
    rows = []
    load_before = os.getloadavg()
    try:
        wait_for_worker(address)
        for r in range(args.rounds):
            local, local_run = sweep(plan, workers=1)
            dask, dask_run, faults = dask_sweep(plan, address, tuned=True)
            untuned, untuned_run, untuned_faults = dask_sweep(plan, address, tuned=False)
            rows.append((r + 1, local, dask, untuned, local_run, dask_run, untuned_run, faults, untuned_faults,
                         os.getloadavg()[0]))
            print(f"round {r + 1}: runs/s local {local:.2f}, dask {dask:.2f} ({dask / local:.2f}x), dask untuned "
                  f"{untuned:.2f} ({untuned / local:.2f}x); per second of run time {local_run:.2f} / {dask_run:.2f} / "
                  f"{untuned_run:.2f}; page faults/run {faults:,.0f} vs {untuned_faults:,.0f}; "
                  f"load {rows[-1][-1]:.2f}", flush=True)
    finally:
        for proc in (worker, scheduler):
            os.killpg(proc.pid, signal.SIGKILL)
            proc.wait()
        shutil.rmtree(tmp, ignore_errors=True)
    load_after = os.getloadavg()
    ratio = statistics.median(row[2] / row[1] for row in rows)
    ratio_untuned = statistics.median(row[3] / row[1] for row in rows)
    ratio_run = statistics.median(row[5] / row[4] for row in rows)
    ratio_run_untuned = statistics.median(row[6] / row[4] for row in rows)
    lines = [
        "# A run on a Dask worker against a run on a local pool worker",
        "",
        f"Generated by `python -m benchmarks.dask_worker --runs {args.runs} --rounds {args.rounds}` "
        f"({args.base}, {args.customers:,} customers x {args.quarters} quarters, {args.runs} runs per sweep; "
        f"one `dask worker --nthreads 1` under its nanny against a local pool of 1 worker, rounds alternating).",
        f"Machine: {platform.machine()}, {os.cpu_count()} CPUs, Python {platform.python_version()}; "
        f"distributed {_version('distributed')}. Load average (1 min) {load_before[0]:.2f} before, "
        f"{load_after[0]:.2f} after.",
        "",
        "Runs per second of wall time (start-up of the pool / the worker's first import included), and in brackets per "
        "second of run time measured inside the worker:",
        "",
        "| round | local | Dask | ratio | Dask, allocator not tuned | ratio | worker page faults/run (tuned / not) | load |",
        "|---|---|---|---|---|---|---|---|",
        *[f"| {r} | {loc:.2f} ({lr:.2f}) | {d:.2f} ({dr:.2f}) | {d / loc:.2f} ({dr / lr:.2f}) | {u:.2f} ({ur:.2f}) | "
          f"{u / loc:.2f} ({ur / lr:.2f}) | {fa:,.0f} / {fu:,.0f} | {ld:.2f} |"
          for r, loc, d, u, lr, dr, ur, fa, fu, ld in rows],
        "",
        f"Median ratio Dask / local: **{ratio:.2f}** of wall time, **{ratio_run:.2f}** of run time "
        f"(allocator not tuned: {ratio_untuned:.2f} and {ratio_run_untuned:.2f}).",
        "",
    ]
    write_text(RESULTS, "\n".join(lines))
    print("\n".join(lines[-2:]))
    print(f"written: {RESULTS}")


if __name__ == "__main__":
    main()
