"""Streaming storage: parts per run, a journal, resume after a crash, failed runs recorded."""

import io
import json
import os
import signal
import subprocess
import sys
import time
from pathlib import Path

import pandas as pd
import pytest
from experiment_support import GRID, write_spec

from sim.cli import main
from sim.experiment.progress import Progress
from sim.experiment.runner import Plan, SweepError, run_sweep
from sim.experiment import designs
from sim.experiment.keys import Overrides
from sim.experiment.spec import base_config, load_spec
from sim.experiment.store import Store, load_design, load_manifest, load_market, load_providers, load_runs

ROOT = Path(__file__).resolve().parent.parent

SLOW_ENOUGH = """
replicates = 4
seed = 3

[params.flywheel]
key = "capability.flywheel"
low = 0.0
high = 2.0
num = 10
"""
SLOW_FIXED = "[fixed]\nrun.customers = 1500\nrun.quarters = 16\n"


def sweep(spec_path, out, workers=0, resume=False):
    plan = Plan.make(load_spec(spec_path))
    progress = Progress(plan.runs, stream=io.StringIO(), tty=False)
    return run_sweep(plan, out, workers=workers, resume=resume, progress=progress, log=lambda *_: None)


def test_results_stream_as_parts_and_journal_and_load_as_dataframes(tmp_path):
    out = tmp_path / "out"
    tally = sweep(write_spec(tmp_path, GRID), out)
    assert tally.ok == 12 and tally.failed == 0
    assert len((out / "runs.jsonl").read_text().splitlines()) == 12
    assert len(list((out / "parts" / "providers").glob("run-*.parquet"))) == 12
    runs = load_runs(out)
    assert list(runs.columns[:4]) == ["run_id", "design_index", "replicate", "label"]
    assert {"lock", "flywheel", "seed", "status", "error", "wall_time", "worker"} <= set(runs.columns)
    assert list(runs["run_id"]) == list(range(12)) and (runs["wall_time"] > 0).all()
    assert pd.read_parquet(out / "runs.parquet").equals(runs)
    prov, market = load_providers(out), load_market(out)
    assert len(prov) == 12 * 6 * 2 and len(market) == 12 * 6
    assert prov["run_id"].is_monotonic_increasing
    assert len(load_design(out)) == 6
    info = load_manifest(out)
    assert info["runs"] == 12 and info["config"]["run"]["customers"] == 150 and len(info["config_hash"]) == 16
    assert info["spec"]["params"]["lock"]["mode"] == "scale"


def test_a_torn_journal_line_is_skipped(tmp_path):
    out = tmp_path / "out"
    sweep(write_spec(tmp_path, GRID), out)
    with open(out / "runs.jsonl", "a") as fh:
        fh.write('{"run_id": 3, "status": "fail')  # a kill in the middle of a write
    assert len(Store(out).journal()) == 12
    assert (Store(out).runs()["status"] == "ok").all()


def test_a_failed_run_is_recorded_and_the_sweep_goes_on(tmp_path):
    body = """
    replicates = 2
    seed = 1
    [params.floor]
    key = "pricing.min_markup"
    values = [-0.3, 3.0, 0.0]   # 3.0 is above max_markup (1.5): those runs fail validation
    """
    out = tmp_path / "out"
    # Plan.make refuses such a spec before the first run (tests/test_experiment_checks.py); built
    # without its checks, the runs fail in the workers, which is what this test is about.
    spec = load_spec(write_spec(tmp_path, body))
    base = base_config(spec)
    plan = Plan(spec, base, designs.build(spec), Overrides(spec, base))
    tally = run_sweep(plan, out, workers=0, progress=Progress(plan.runs, stream=io.StringIO(), tty=False),
                      log=lambda *_: None)
    assert tally.ok == 4 and tally.failed == 2
    runs = load_runs(out)
    failed = runs[runs["status"] == "failed"]
    assert list(failed["design_index"]) == [1, 1]
    assert failed["error"].str.contains("min_markup").all()
    assert runs.loc[runs["status"] == "ok", "error"].isna().all()
    assert set(load_market(out)["run_id"]) == {0, 1, 4, 5}


def test_existing_results_need_resume_and_the_same_plan(tmp_path):
    out = tmp_path / "out"
    spec = write_spec(tmp_path, GRID)
    sweep(spec, out)
    with pytest.raises(SweepError, match="--resume"):
        sweep(spec, out)
    assert sweep(spec, out, resume=True).done == 0  # nothing left to run
    changed = write_spec(tmp_path, GRID.replace("seed = 11", "seed = 12"))
    with pytest.raises(SweepError, match="different sweep"):
        sweep(changed, out, resume=True)


def _start(spec, out, *extra):
    env = {**os.environ, "PYTHONUNBUFFERED": "1"}
    return subprocess.Popen([sys.executable, "-m", "sim", "sweep", str(spec), "--out", str(out), "--workers", "1",
                             "--no-plots", "--log-every", "0.2", *extra], cwd=ROOT, env=env, start_new_session=True,
                            stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)


def _journal(out):
    path = out / "runs.jsonl"
    return path.read_bytes().splitlines() if path.exists() else []


def _kill_after(proc, out, n, sig, timeout=60):
    """Wait until the journal has n lines, then signal the whole job (parent, forkserver, workers)."""
    deadline = time.monotonic() + timeout
    while len(_journal(out)) < n:
        assert proc.poll() is None, proc.communicate()
        assert time.monotonic() < deadline, "sweep made no progress"
        time.sleep(0.03)
    os.killpg(proc.pid, sig)
    _, err = proc.communicate(timeout=30)
    return err


def _new_runs(out, lines_before):
    return [json.loads(line)["run_id"] for line in _journal(out)[lines_before:]]


def test_killed_and_interrupted_sweeps_resume_with_only_the_missing_runs(tmp_path):
    spec = write_spec(tmp_path, SLOW_ENOUGH, fixed=SLOW_FIXED)
    out = tmp_path / "killed"
    # 1. SIGKILL: no chance to clean up
    _kill_after(_start(spec, out), out, 4, signal.SIGKILL)
    first = Store(out).done_ids()
    assert 4 <= len(first) < 40
    # 2. resume, then Ctrl-C (SIGINT to the job): stops cleanly, says how to finish
    lines = len(_journal(out))
    proc = _start(spec, out, "--resume")
    err = _kill_after(proc, out, lines + 4, signal.SIGINT)
    assert proc.returncode == 130 and "--resume" in err and "Traceback" not in err
    assert (out / "runs.parquet").exists()  # the runs table is written on the way out
    second = _new_runs(out, lines)
    assert not set(second) & first  # nothing that was done ran again
    done = Store(out).done_ids()
    assert len(done) < 40
    # 3. resume to the end, in this process
    lines = len(_journal(out))
    assert main(["sweep", str(spec), "--out", str(out), "--resume", "--workers", "0", "--no-plots"]) == 0
    third = _new_runs(out, lines)
    assert sorted(third) == sorted(set(range(40)) - done)  # only the missing runs ran

    fresh = tmp_path / "fresh"
    sweep(spec, fresh)
    for load in (load_providers, load_market):
        pd.testing.assert_frame_equal(load(out), load(fresh))
    cols = ["run_id", "design_index", "replicate", "seed", "status"]
    pd.testing.assert_frame_equal(load_runs(out)[cols], load_runs(fresh)[cols])


def test_stored_tables_equal_what_simulate_returns(tmp_path):
    """The worker skips DataFrames for speed; what it stores must be exactly simulate()'s tables."""
    from sim.config import with_overrides
    from sim.simulate import simulate

    out = tmp_path / "out"
    sweep(write_spec(tmp_path, GRID), out)
    plan = Plan.make(load_spec(tmp_path / "spec.toml"))
    runs = load_runs(out)
    for run_id in (0, 7):
        row = runs.loc[runs["run_id"] == run_id].iloc[0]
        config = with_overrides(plan.base, {**plan.overrides(plan.design.points[row["design_index"]]),
                                            "run.seed": int(row["seed"])})
        result = simulate(config)
        for table, expected in (("providers", result.providers), ("market", result.market)):
            stored = Store(out).table(table, run_ids=[run_id]).drop(columns=["run_id", "design_index", "replicate"])
            pd.testing.assert_frame_equal(stored, expected)


def _processes_in_group(pgid: int) -> list[int]:
    """Live (not zombie) processes of a process group, from /proc."""
    pids = []
    for entry in os.listdir("/proc"):
        if not entry.isdigit():
            continue
        try:
            stat = Path(f"/proc/{entry}/stat").read_text()
        except OSError:
            continue
        state, _ppid, group = stat.rsplit(")", 1)[1].split()[:3]
        if int(group) == pgid and state != "Z":
            pids.append(int(entry))
    return pids


@pytest.mark.skipif(not Path("/proc/self/stat").exists(), reason="reads /proc")
def test_kill_9_of_the_sweep_leaves_no_workers_or_forkserver(tmp_path):
    """Issue 13 case 12: the pool workers (children of the forkserver, not of the sweep) exit when
    the sweep's process dies, and then the forkserver does too."""
    spec = write_spec(tmp_path, SLOW_ENOUGH, fixed=SLOW_FIXED)
    out = tmp_path / "out"
    proc = _start(spec, out, "--workers", "2")
    deadline = time.monotonic() + 60
    while len(_journal(out)) < 2:
        assert proc.poll() is None and time.monotonic() < deadline, "sweep made no progress"
        time.sleep(0.03)
    helpers = [p for p in _processes_in_group(proc.pid) if p != proc.pid]
    assert len(helpers) >= 3  # forkserver and two workers (resource tracker too): the check can fail
    os.kill(proc.pid, signal.SIGKILL)  # the parent alone
    proc.communicate(timeout=30)
    deadline = time.monotonic() + 20
    while _processes_in_group(proc.pid) and time.monotonic() < deadline:
        time.sleep(0.1)
    left = _processes_in_group(proc.pid)
    for pid in left:  # do not leave them running if the test fails
        os.kill(pid, signal.SIGKILL)
    assert not left, f"{len(left)} processes outlived the sweep"


def test_after_ctrl_c_every_part_file_is_in_the_journal(tmp_path):
    """Issue 13 case 12: workers still busy when Ctrl-C stops the sweep write nothing afterwards."""
    spec = write_spec(tmp_path, SLOW_ENOUGH, fixed=SLOW_FIXED)
    out = tmp_path / "out"
    proc = _start(spec, out, "--workers", "2")
    err = _kill_after(proc, out, 4, signal.SIGINT)
    assert proc.returncode == 130, err
    deadline = time.monotonic() + 20
    while _processes_in_group(proc.pid) and time.monotonic() < deadline:
        time.sleep(0.1)
    journal = {json.loads(line)["run_id"] for line in _journal(out)}
    for table in ("providers", "market"):
        parts = {int(p.stem.split("-")[1]) for p in (out / "parts" / table).glob("run-*.parquet")}
        assert parts == journal, f"{table}: parts of runs {sorted(parts - journal)} are in no journal line"
    assert not list((out / "parts").rglob("*.tmp*"))


def test_a_cluster_that_cannot_be_reached_writes_nothing(tmp_path):
    """Issue 13 case 11 without Dask processes: the engine fails, nothing is on disk, and an output
    directory that a crashed start left without any run is not refused."""
    spec = write_spec(tmp_path, GRID)
    plan = Plan.make(load_spec(spec))
    out = tmp_path / "out"
    with pytest.raises(SweepError, match="expected 'local' or a Dask scheduler address"):
        run_sweep(plan, out, workers=0, scheduler="nowhere:1", progress=Progress(plan.runs, stream=io.StringIO()),
                  log=lambda *_: None)
    assert not out.exists()
    Store(out).create(plan.manifest(), plan.design.frame())  # as an older version left it
    assert sweep(spec, out).ok == 12  # no "already holds sweep results": it held none
    with pytest.raises(SweepError, match="--resume"):
        sweep(spec, out)  # now it does
