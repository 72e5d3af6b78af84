"""Streaming storage: parts per run, a journal, resume after a crash, failed runs recorded."""

import io
import json
import os
import re
import signal
import subprocess
import sys
import time
from pathlib import Path

import pandas as pd
import pytest
from experiment_support import GRID, SLOW_ENOUGH, SLOW_FIXED, process_group, write_spec

from sim.cli import main
from sim.experiment.progress import Progress
from sim.experiment.runner import Plan, SweepError, run_sweep
from sim.experiment import designs
from sim.experiment.keys import Overrides
from sim.experiment.spec import base_config, load_spec
from sim.experiment.store import Store, load_design, load_manifest, load_market, load_providers, load_runs

ROOT = Path(__file__).resolve().parent.parent



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
                            stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True, preexec_fn=_ctrl_c_reaches_it)


def _ctrl_c_reaches_it() -> None:
    """A job started in the background of a non-interactive shell (CI scripts, `pytest &`) inherits
    SIGINT ignored, and Python then keeps ignoring it: the Ctrl-C tests would see the sweep run to
    its end.  A terminal's Ctrl-C reaches the sweep, so the tests start it as a terminal would."""
    signal.signal(signal.SIGINT, signal.SIG_DFL)


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
            pd.testing.assert_frame_equal(stored, expected, check_exact=True)  # bit for bit: a run alone = a run in a sweep


def test_resume_reruns_a_run_whose_part_file_is_missing(tmp_path):
    """The journal says ok, but a part file is gone (a lost disk, a hand clean-up): the run is
    reported missing, resume runs it again (and only it), and the loaders work afterwards."""
    out = tmp_path / "out"
    spec = write_spec(tmp_path, GRID)
    sweep(spec, out)
    expected = load_providers(out), load_market(out)
    Store(out).part_path("providers", 3).unlink()
    Store(out).part_path("market", 8).unlink()
    assert Store(out).done_ids() == set(range(12)) - {3, 8}
    runs = load_runs(out).set_index("run_id")
    assert list(runs.index[runs["status"] == "missing"]) == [3, 8]
    assert (runs.loc[[3, 8], "error"] == "part files missing").all()
    assert sorted(load_providers(out)["run_id"].unique()) == sorted(set(range(12)) - {3, 8})  # no FileNotFoundError
    lines = len(_journal(out))
    tally = sweep(spec, out, resume=True)
    assert tally.ok == 2 and sorted(_new_runs(out, lines)) == [3, 8]
    assert (load_runs(out)["status"] == "ok").all()
    pd.testing.assert_frame_equal(load_providers(out), expected[0])
    pd.testing.assert_frame_equal(load_market(out), expected[1])


def test_tables_load_chosen_columns_and_runs_with_their_keys(tmp_path):
    out = tmp_path / "out"
    sweep(write_spec(tmp_path, GRID), out)
    full = load_providers(out)
    few = load_providers(out, columns=["revenue", "step"])
    assert list(few.columns) == ["run_id", "design_index", "replicate", "step", "revenue"]
    pd.testing.assert_frame_equal(few, full[few.columns.tolist()])
    market = load_market(out, columns=["hhi_revenue"])
    assert list(market.columns) == ["run_id", "design_index", "replicate", "step", "hhi_revenue"]
    assert market["run_id"].is_monotonic_increasing and len(market) == 12 * 6
    for run_id, rows in market.groupby("run_id"):
        assert list(rows["step"]) == list(range(6)), "each run's quarters in order"
    some = Store(out).table("market", run_ids=[7, 2])
    assert sorted(set(some["run_id"])) == [2, 7] and list(some["run_id"].iloc[[0, -1]]) == [2, 7]
    assert Store(out).table("market", run_ids=[]).empty
    assert list(Store(out).table("market", columns=["churn"], run_ids=[]).columns) == ["churn"]
    with pytest.raises(ValueError, match="providers"):
        Store(out).table("flows")


def test_reading_a_store_without_results_names_what_is_missing(tmp_path):
    with pytest.raises(FileNotFoundError, match="sweep.json"):
        load_runs(tmp_path)
    assert Store(tmp_path).journal().empty and Store(tmp_path).done_ids() == set()


def test_a_resumed_sweep_does_not_append_to_a_torn_journal_line(tmp_path):
    """A kill mid-write leaves a line without its newline; the next record must start a line of
    its own, or it is lost in the torn one and its run is counted as not done."""
    out = tmp_path / "out"
    spec = write_spec(tmp_path, GRID)
    sweep(spec, out)
    lines = (out / "runs.jsonl").read_bytes().splitlines(keepends=True)
    (out / "runs.jsonl").write_bytes(b"".join(lines[:5]) + lines[5][:17])  # lines 5.. lost, line 5 torn mid-write
    kept = {json.loads(line)["run_id"] for line in lines[:5]}
    assert Store(out).done_ids() == kept
    sweep(spec, out, resume=True)
    assert Store(out).done_ids() == set(range(12))
    assert len(Store(out).journal()) == 12


def test_a_torn_line_in_the_middle_does_not_hide_the_lines_after_it(tmp_path):
    store = Store(tmp_path)
    store.journal_path.write_bytes(b'{"run_id":0,"status":"ok"}\n{"run_id":1,"sta\n{"run_id":2,"status":"ok"}\n')
    assert sorted(store.journal()["run_id"]) == [0, 2]


def test_the_journal_is_compact_json_lines_and_survives_close(tmp_path):
    old = os.umask(0o022)
    try:
        store = Store(tmp_path)
        store.append({"run_id": 4, "status": "ok", "seed": 9, "extra": "dropped"})
        store.close()
        store.append({"run_id": 5, "status": "failed", "error": "boom"})  # reopens after close
        store.close()
    finally:
        os.umask(old)
    lines = store.journal_path.read_text().splitlines()
    assert lines[0] == ('{"run_id":4,"design_index":null,"replicate":null,"seed":9,"status":"ok",'
                        '"error":null,"wall_time":null,"worker":null}')
    assert json.loads(lines[1])["error"] == "boom" and len(lines) == 2
    assert store.journal_path.stat().st_mode & 0o777 == 0o644
    assert list(store.journal().columns) == ["run_id", "design_index", "replicate", "seed", "status", "error",
                                             "wall_time", "worker"]


def test_parts_from_dataframes_are_stored_without_their_index(tmp_path):
    store = Store(tmp_path)
    store.create({"kind": "sweep"}, pd.DataFrame({"design_index": [0]}))
    assert (tmp_path / "sweep.json").is_file() and (tmp_path / "design.parquet").is_file()
    assert (tmp_path / "parts" / "providers").is_dir() and (tmp_path / "parts" / "market").is_dir()
    frame = pd.DataFrame({"run_id": [3, 3], "design_index": [1, 1], "replicate": [0, 0], "step": [1, 0],
                          "x": [2.0, 1.0]}, index=[10, 11])
    store.write_parts(3, {"providers": frame, "market": frame})
    stored = pd.read_parquet(store.part_path("providers", 3))
    assert list(stored.columns) == ["run_id", "design_index", "replicate", "step", "x"]
    assert list(stored.index) == [0, 1]
    assert list(store.table("market", run_ids=[3])["step"]) == [0, 1], "each run's quarters in order"
    assert store.manifest() == {"kind": "sweep"} and list(store.design()["design_index"]) == [0]


def test_runs_not_yet_journalled_are_pending(tmp_path):
    out = tmp_path / "out"
    spec = write_spec(tmp_path, GRID)
    sweep(spec, out)
    lines = (out / "runs.jsonl").read_bytes().splitlines(keepends=True)
    (out / "runs.jsonl").write_bytes(b"".join(lines[:5]))
    kept = sorted(json.loads(line)["run_id"] for line in lines[:5])
    runs = load_runs(out).set_index("run_id")
    assert list(runs.index) == list(range(12))
    pending = runs.index.difference(kept)
    assert (runs.loc[kept, "status"] == "ok").all() and (runs.loc[pending, "status"] == "pending").all()
    assert runs.loc[pending, "wall_time"].isna().all() and runs.loc[kept, "wall_time"].notna().all()


def test_common_random_numbers_give_each_replicate_one_seed_across_design_points(tmp_path):
    out = tmp_path / "out"
    sweep(write_spec(tmp_path, "common_random_numbers = true\n" + GRID), out)
    runs = load_runs(out)
    assert runs.groupby("replicate")["seed"].nunique().eq(1).all()
    assert runs["seed"].nunique() == 2


def test_the_runs_table_shows_parameter_values_not_the_unit_sample(tmp_path):
    body = """
    seed = 2
    [design]
    kind = "latin"
    samples = 3
    [params.flywheel]
    key = "capability.flywheel"
    low = 0.0
    high = 2.0
    """
    out = tmp_path / "out"
    sweep(write_spec(tmp_path, body), out)
    assert any(c.startswith("unit:") for c in load_design(out).columns), "the design keeps the [0, 1] sample"
    runs = load_runs(out)
    assert not any(c.startswith("unit:") for c in runs.columns)
    assert runs["flywheel"].between(0.0, 2.0).all() and runs["flywheel"].nunique() == 3


def _processes_in_group(pgid: int) -> list[int]:
    """Live (not zombie) processes of a process group."""
    return [pid for pid, _ in process_group(pgid)]


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
    # the summary counts what is on disk: a run recorded while Ctrl-C was held back counts too
    assert re.search(rf"interrupted: {len(journal)} runs in", err), err
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


def test_experiment_fresh_discards_old_results_only_once_the_sweep_can_run(tmp_path, capsys):
    """A further instance of case 11's kind: --fresh used to delete the results before it knew the
    plan was valid and the cluster reachable; a failed start now leaves them as they were."""
    spec = write_spec(tmp_path, GRID, "tiny")
    out = tmp_path / "out"
    assert main(["experiment", str(spec), "--out", str(out), "--workers", "0", "--no-plots"]) == 0
    journal = (out / "runs.jsonl").read_bytes()
    assert main(["experiment", str(spec), "--out", str(out), "--fresh", "--scheduler", "nowhere:1",
                 "--no-plots"]) == 2
    assert "expected 'local' or a Dask scheduler address" in capsys.readouterr().err
    assert (out / "runs.jsonl").read_bytes() == journal and len(Store(out).done_ids()) == 12
    assert main(["experiment", str(spec), "--out", str(out), "--fresh", "--workers", "0", "--no-plots"]) == 0
    assert "finished: 12 runs" in capsys.readouterr().err  # it did start over


HALF_A_RESULT = '''
import os, struct
from sim.experiment.executors import local_pool

def ping():
    return 1

if __name__ == "__main__":
    engine = local_pool(1)
    assert engine.executor.submit(ping).result() == 1
    engine.executor.submit(ping)
    # what a worker ended by Ctrl-C while sending a large result leaves: a header and part of the body
    os.write(engine.executor._result_queue._writer.fileno(), struct.pack("!i", 1 << 20) + b"half a result")
    engine.close(cancel=True)
    print("closed", flush=True)
'''


def test_ctrl_c_while_a_worker_sends_its_result_does_not_hang_the_exit(tmp_path):
    """Found with a 1.5 GB result cut off by Ctrl-C: the pool's manager thread waited for the rest of the
    message for ever and Python joined it at exit, so the sweep never ended (a leftover sweep process
    sat in that wait for an hour).  Without the fix in executors.local_pool's close this times out."""
    script = tmp_path / "half_a_result.py"
    script.write_text(HALF_A_RESULT)
    done = subprocess.run([sys.executable, str(script)], cwd=ROOT, capture_output=True, text=True, timeout=60)
    assert done.returncode == 0 and "closed" in done.stdout, done.stderr
