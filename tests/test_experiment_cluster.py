"""Sweeps on a real Dask cluster (``dask scheduler`` and ``dask worker`` processes on 127.0.0.1)
that loses its workers, loses its scheduler, never had workers, or is not there (issue 16).

Each test starts its own processes on free ports and bounds every wait; the sweep itself runs as
``python -m sim sweep`` in a subprocess, as a user would run it."""

from __future__ import annotations

import json
import os
import signal
import socket
import subprocess
import sys
import time
from pathlib import Path

import pandas as pd
import pytest
from experiment_support import write_spec

from sim.cli import main
from sim.experiment.store import Store, load_market, load_providers, load_runs

pytest.importorskip("distributed")
pytestmark = [pytest.mark.distributed, pytest.mark.slow]

ROOT = Path(__file__).resolve().parent.parent
DASK = str(Path(sys.executable).with_name("dask"))
RUNS = 40
SPEC = """
replicates = 4
seed = 9
[params.flywheel]
key = "capability.flywheel"
low = 0.0
high = 2.0
num = 10
"""
FIXED = "[fixed]\nrun.customers = 1500\nrun.quarters = 16\n"
PATIENCE = 3  # --cluster-timeout in these tests (seconds)


def _free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def _until(condition, timeout: float, what: str, proc: subprocess.Popen | None = None):
    deadline = time.monotonic() + timeout
    while not condition():
        if proc is not None and proc.poll() is not None:
            out, err = proc.communicate()
            pytest.fail(f"{what}: the sweep ended first (rc {proc.returncode}): {err[-2000:]}")
        assert time.monotonic() < deadline, f"timed out waiting for {what}"
        time.sleep(0.05)


class Cluster:
    """A scheduler and workers as separate process groups (so each can be killed whole)."""

    def __init__(self, tmp: Path):
        self.tmp, self.port = tmp, _free_port()
        self.address = f"tcp://127.0.0.1:{self.port}"
        self.scheduler: subprocess.Popen | None = None
        self.workers: list[subprocess.Popen] = []

    def _spawn(self, name: str, args: list[str]) -> subprocess.Popen:
        log = open(self.tmp / f"{name}.log", "ab")
        return subprocess.Popen([DASK, *args], stdout=log, stderr=log, start_new_session=True, cwd=self.tmp)

    def start_scheduler(self) -> None:
        self.scheduler = self._spawn("scheduler", ["scheduler", "--host", "127.0.0.1", "--port", str(self.port),
                                                   "--no-dashboard"])
        _until(self._listening, 60, "the scheduler to listen")

    def _listening(self) -> bool:
        with socket.socket() as s:
            return s.connect_ex(("127.0.0.1", self.port)) == 0

    def add_worker(self) -> None:
        self.workers.append(self._spawn("worker", ["worker", self.address, "--nthreads", "1", "--no-dashboard"]))

    def kill_workers(self) -> None:
        for w in self.workers:
            _kill(w)
        self.workers.clear()

    def kill_scheduler(self) -> None:
        _kill(self.scheduler)

    def close(self) -> None:
        self.kill_workers()
        if self.scheduler is not None:
            _kill(self.scheduler)


def _kill(proc: subprocess.Popen) -> None:
    try:
        os.killpg(proc.pid, signal.SIGKILL)
    except ProcessLookupError:
        pass
    proc.wait(timeout=30)


@pytest.fixture
def cluster(tmp_path):
    c = Cluster(tmp_path)
    yield c
    c.close()


@pytest.fixture(scope="module")
def local_result(tmp_path_factory):
    """The same spec on the local pool, in this process: what every cluster sweep must equal."""
    tmp = tmp_path_factory.mktemp("local")
    spec = write_spec(tmp, SPEC, fixed=FIXED)
    assert main(["sweep", str(spec), "--out", str(tmp / "out"), "--workers", "0", "--no-plots"]) == 0
    return tmp / "out"


def _sweep(spec: Path, out: Path, address: str, *extra: str) -> subprocess.Popen:
    return subprocess.Popen([sys.executable, "-m", "sim", "sweep", str(spec), "--out", str(out), "--scheduler",
                             address, "--no-plots", "--cluster-timeout", str(PATIENCE), "--log-every", "0.5", *extra],
                            cwd=ROOT, env={**os.environ, "PYTHONUNBUFFERED": "1"}, stdout=subprocess.PIPE,
                            stderr=subprocess.PIPE, text=True, start_new_session=True)


def _journal(out: Path) -> list[dict]:
    path = out / "runs.jsonl"
    return [json.loads(line) for line in path.read_bytes().splitlines()] if path.exists() else []


def _finish(proc: subprocess.Popen, timeout: float = 60) -> str:
    """Wait for the sweep to end; its stdout and stderr together."""
    try:
        out, err = proc.communicate(timeout=timeout)
    except subprocess.TimeoutExpired:
        os.killpg(proc.pid, signal.SIGKILL)
        pytest.fail("the sweep did not stop on its own")
    return out + err


def _resume_and_compare(spec: Path, out: Path, cluster: Cluster, err: str, local: Path) -> None:
    """The error line names the exact command that finishes the sweep; it does, and equals the local pool."""
    command = err.split("finish with: ")[-1].strip().splitlines()[0].split()
    assert command[:2] == ["aicloud", "sweep"] and "--resume" in command and cluster.address in command
    before = {r["run_id"] for r in _journal(out)}
    assert main([*command[1:], "--no-plots"]) == 0
    runs = load_runs(out)
    assert (runs["status"] == "ok").all() and len(runs) == RUNS
    assert not before & {r["run_id"] for r in _journal(out)[len(before):]}  # nothing ran twice
    for load in (load_providers, load_market):
        pd.testing.assert_frame_equal(load(out), load(local))


def test_all_workers_killed_mid_sweep_stops_within_the_patience_and_resumes(tmp_path, cluster, local_result):
    spec = write_spec(tmp_path, SPEC, fixed=FIXED)
    out = tmp_path / "out"
    cluster.start_scheduler()
    cluster.add_worker()
    proc = _sweep(spec, out, cluster.address)
    _until(lambda: len(_journal(out)) >= 3, 90, "three finished runs", proc)
    cluster.kill_workers()
    killed = time.monotonic()
    err = _finish(proc)
    assert time.monotonic() - killed < PATIENCE + 30
    assert proc.returncode == 2, err
    assert "waiting: no workers since" in err and f"no workers for {PATIENCE} s" in err
    journal = _journal(out)
    assert all(r["status"] == "ok" for r in journal)  # runs in flight were not recorded as failures
    assert f"stopped with {len(journal)} of {RUNS} runs finished" in err
    assert "Traceback" not in err, err
    assert 3 <= len(journal) < RUNS
    cluster.add_worker()
    _resume_and_compare(spec, out, cluster, err, local_result)


def test_scheduler_killed_mid_sweep_leaves_runs_in_flight_pending(tmp_path, cluster, local_result):
    spec = write_spec(tmp_path, SPEC, fixed=FIXED)
    out = tmp_path / "out"
    cluster.start_scheduler()
    cluster.add_worker()
    proc = _sweep(spec, out, cluster.address)
    _until(lambda: len(_journal(out)) >= 3, 90, "three finished runs", proc)
    cluster.kill_scheduler()
    err = _finish(proc)
    assert proc.returncode == 2, err
    assert f"lost the connection to the Dask scheduler at {cluster.address}" in err
    assert "Traceback" not in err, err
    journal = _journal(out)
    assert journal and all(r["status"] == "ok" for r in journal)  # no CancelledError "failures"
    assert (load_runs(out)["status"].isin(["ok", "pending"])).all()
    assert f"stopped with {len(journal)} of {RUNS} runs finished" in err
    cluster.kill_workers()
    cluster.start_scheduler()  # the same address again
    cluster.add_worker()
    _resume_and_compare(spec, out, cluster, err, local_result)


def test_a_cluster_without_workers_says_so_and_stops(tmp_path, cluster):
    spec = write_spec(tmp_path, SPEC, fixed=FIXED)
    out = tmp_path / "out"
    cluster.start_scheduler()
    proc = _sweep(spec, out, cluster.address)
    err = _finish(proc)
    assert proc.returncode == 2, err
    assert f"running {RUNS} runs on Dask cluster at {cluster.address}, no workers yet" in err
    waiting = [line for line in err.splitlines() if line.startswith("waiting: no workers since")]
    assert len(waiting) >= 2 and "Ctrl-C and --resume later" in waiting[0]
    assert f"no workers for {PATIENCE} s" in err and f"stopped with 0 of {RUNS} runs finished" in err
    assert Store(out).done_ids() == set()


def test_an_unreachable_scheduler_writes_nothing_and_a_rerun_is_not_refused(tmp_path, capsys):
    spec = write_spec(tmp_path, SPEC, fixed=FIXED)
    out = tmp_path / "out"
    address = f"tcp://127.0.0.1:{_free_port()}"  # nothing listens there
    proc = _sweep(spec, out, address)
    err = _finish(proc)
    assert proc.returncode == 2
    assert f"--scheduler {address}: cannot reach the Dask scheduler within {PATIENCE} s" in err
    assert "Traceback" not in err and not out.exists()
    # the same command again (in this process): the same error, not "already holds sweep results"
    assert main(["sweep", str(spec), "--out", str(out), "--scheduler", address, "--no-plots",
                 "--cluster-timeout", "1"]) == 2
    err = capsys.readouterr().err
    assert "cannot reach the Dask scheduler" in err and "already holds" not in err
    assert not out.exists()
