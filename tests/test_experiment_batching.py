"""Sweeps in batches (issue 15): runs of one shape step together (``sim.batch.run_batch``), the
batch size follows a memory budget (or is set), and a run's stored tables are bit for bit the same
whatever its batch, the number of workers, an interruption and resume, or a failing run beside it."""

from __future__ import annotations

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
from experiment_support import SLOW_ENOUGH, SLOW_FIXED, process_group, write_spec

from sim import batch
from sim.cli import main
from sim.errors import NonFiniteState
from sim.experiment.batching import BatchRule, batches, parse_size
from sim.experiment.progress import Progress
from sim.experiment.runner import Plan, run_sweep
from sim.experiment.spec import load_spec
from sim.experiment.store import Store, load_manifest, load_market, load_providers, load_runs

# 4 points x 4 replicates = 16 runs: batches of 3 and of 7 leave a partial last batch (16 = 5x3+1 = 2x7+2)
SPEC = """
replicates = 4
seed = 5

[params.flywheel]
key = "capability.flywheel"
values = [0.0, 0.7, 1.5, 3.0]
"""
RUNS = 16
ROOT = Path(__file__).resolve().parent.parent


def sweep(spec_path, out, *, workers=0, batch_size=None, resume=False, scheduler=None):
    plan = Plan.make(load_spec(spec_path))
    rule = BatchRule(parse_size("4GB"), batch_size)
    return run_sweep(plan, out, workers=workers, scheduler=scheduler, resume=resume, batching=rule,
                     progress=Progress(plan.runs, stream=io.StringIO(), tty=False), log=lambda *_: None)


def assert_same_tables(a, b, run_ids=None):
    for load in (load_providers, load_market):
        left, right = load(a), load(b)
        if run_ids is not None:
            left, right = (t[t["run_id"].isin(run_ids)].reset_index(drop=True) for t in (left, right))
        assert len(left) > 0
        pd.testing.assert_frame_equal(left, right, check_exact=True)  # bit for bit


@pytest.fixture(scope="module")
def alone(tmp_path_factory):
    """The reference: every run alone (batches of one), in this process."""
    tmp = tmp_path_factory.mktemp("alone")
    spec = write_spec(tmp, SPEC)
    assert sweep(spec, tmp / "out", batch_size=1).ok == RUNS
    return tmp / "out"


@pytest.fixture
def calls(monkeypatch):
    """The sizes of the batches ``run_batch`` is given (in this process: workers=0)."""
    sizes: list[int] = []
    real = batch.run_batch

    def spy(configs):
        sizes.append(len(configs))
        return real(configs)

    monkeypatch.setattr(batch, "run_batch", spy)
    return sizes


# ------------------------------------------------------------------ the size rule
def test_the_batch_size_follows_the_memory_budget_the_cap_and_the_spread():
    mb = 10**6
    rule = BatchRule(4000 * mb)
    assert rule.size(3 * mb, slots=1, todo=1000) == 100  # memory allows 1,333, spread 250: the cap
    assert rule.size(300 * mb, slots=2, todo=1000) == 6  # 2 GB per worker / 300 MB a run
    assert rule.size(3 * mb, slots=2, todo=40) == 5  # 40 runs over 2 workers: about 4 batches each
    assert rule.size(5000 * mb, slots=1, todo=1000) == 1  # one run above the budget still runs, alone
    assert BatchRule(4000 * mb, 7).size(3 * mb, slots=1, todo=10) == 7  # set: no cap, no spread rule
    assert BatchRule(4000 * mb, 500).size(300 * mb, slots=2, todo=10_000) == 6  # but within the budget
    assert BatchRule(4000 * mb, 1).size(1, slots=1, todo=10**6) == 1  # batches of one stay possible


def test_sizes_parse_with_decimal_and_binary_units_and_bad_ones_name_what_is_allowed():
    assert parse_size("4GB") == 4 * 10**9 and parse_size("2GiB") == 2 * 2**30 and parse_size("512 mb") == 512 * 10**6
    assert parse_size("1.5GB") == 1_500_000_000 and parse_size("1000") == 1000
    for bad in ("4XB", "GB", "-1GB", "0", "four"):
        with pytest.raises(ValueError, match="allowed: a size with a unit, e.g. 4GB"):
            parse_size(bad)


def test_runs_are_grouped_by_shape_in_order_with_partial_batches_at_the_end():
    items = [("a", 1), ("b", 2), ("a", 3), ("a", 4), (None, 5), ("b", 6), ("a", 7)]
    got = list(batches(items, key=lambda it: it[0], size=lambda k: 2))
    assert [[i for _, i in g] for g in got] == [[1, 3], [5], [2, 6], [4, 7]]


# Memory of a batch: what a sweep worker holds (run_batch and the runs' tagged Arrow tables,
# ``sim.experiment.worker.execute_batch``), traced: every numpy buffer and Python object
# (tracemalloc) plus Arrow's own pool.  FIXED allows for what a batch holds once whatever its
# runs (the batch's parameter cache, one run's tables being built, the records).
FIXED = 1_000_000


def _peak_of_a_worker_batch(config, runs: int) -> int:
    import tracemalloc

    import pyarrow as pa

    from sim.experiment.worker import Task, execute_batch

    base, key = config.resolved(), config.hash()
    tasks = [Task(i, 0, i, config.run.seed + i, {}, key, base) for i in range(runs)]
    warm = Task(0, 0, 0, 1, {"run.customers": 20, "run.quarters": 2}, key, base)
    assert execute_batch([warm])[0]["status"] == "ok"  # imports, the worker's base cache
    pool = pa.default_memory_pool()
    arrow_before = pool.bytes_allocated()
    tracemalloc.start()
    try:
        records = execute_batch(tasks)
        traced = tracemalloc.get_traced_memory()[1]
    finally:
        tracemalloc.stop()
    assert [r["status"] for r in records] == ["ok"] * runs
    return traced + max(0, pool.max_memory() - arrow_before)


@pytest.mark.parametrize("shape", ["quarters", "customers", "preset"])
def test_a_batch_holds_at_most_run_bytes_a_run(shape):
    """``run_bytes`` is an upper bound of what a run holds in a batch, at three shapes: few customers
    over many quarters with 12 providers (the recorder and tables dominate), many customers over few
    quarters with 30 providers, and the china_2025 preset at 2,000 customers x 40 quarters."""
    from conftest import make_config, provider

    from sim.config import load_config, with_overrides

    if shape == "quarters":
        config, runs = make_config([provider(f"P{i}", initial_share=1 / 12) for i in range(12)],
                                   customers=40, quarters=120), 3
    elif shape == "customers":  # with 30 providers: the choice step's temporaries grow with the slots
        config, runs = make_config([provider(f"P{i}", initial_share=1 / 30) for i in range(30)],
                                   customers=20_000, quarters=3), 2
    else:
        config, runs = with_overrides(load_config("china_2025"), {"run.customers": 2000}, source="test"), 4
    peak = _peak_of_a_worker_batch(config, runs)
    estimate = batch.run_bytes(config) * runs
    assert peak <= estimate + FIXED, (peak, estimate)
    assert peak >= estimate / 4, (peak, estimate)  # and not so loose that batches are needlessly small
    if shape == "quarters":
        # What grows with quarters counts: customers alone (the old 300 bytes a customer) fall far short.
        assert peak > runs * batch.BYTES_PER_CUSTOMER * config.run.customers + FIXED


# ------------------------------------------------------------------ identical results
@pytest.mark.parametrize("size", [3, 7])
def test_a_runs_tables_are_bit_identical_whatever_its_batch(tmp_path, alone, calls, size):
    out = tmp_path / "out"
    tally = sweep(write_spec(tmp_path, SPEC), out, batch_size=size)
    assert tally.ok == RUNS
    full, rest = divmod(RUNS, size)
    assert sorted(calls, reverse=True) == [size] * full + [rest]  # the runs did step in batches, the last partial
    assert_same_tables(out, alone)
    runs = load_runs(out)
    assert (runs["status"] == "ok").all() and (runs["wall_time"] > 0).all()
    assert load_manifest(out)["batching"]["batch_size"] == size


def test_automatic_batches_on_one_and_two_local_workers_equal_runs_alone(tmp_path, alone):
    spec = write_spec(tmp_path, SPEC)
    for workers in (1, 2):
        out = tmp_path / f"w{workers}"
        assert sweep(spec, out, workers=workers).ok == RUNS
        info = load_manifest(out)["batching"]
        assert info["batch_size"] == -(-RUNS // (4 * workers)) and info["slots"] == workers  # 4 and 2 runs
        assert_same_tables(out, alone)
    assert load_runs(tmp_path / "w2")["worker"].nunique() == 2


def test_an_interrupted_batched_sweep_resumes_to_the_same_results(tmp_path, alone, monkeypatch):
    spec = write_spec(tmp_path, SPEC)
    out = tmp_path / "out"
    real, seen = batch.run_batch, []

    def interrupted(configs):
        seen.append(len(configs))
        if len(seen) >= 3:
            raise KeyboardInterrupt  # Ctrl-C while the third batch runs (and any handed out with it)
        return real(configs)

    monkeypatch.setattr(batch, "run_batch", interrupted)
    with pytest.raises(KeyboardInterrupt):
        sweep(spec, out, batch_size=3)
    done = Store(out).done_ids()
    assert done == set(range(6))  # the two batches that finished, and nothing of the one in flight
    monkeypatch.setattr(batch, "run_batch", real)
    lines = len((out / "runs.jsonl").read_bytes().splitlines())
    assert sweep(spec, out, batch_size=3, resume=True).done == RUNS - 6
    again = [json.loads(line)["run_id"] for line in (out / "runs.jsonl").read_bytes().splitlines()[lines:]]
    assert sorted(again) == list(range(6, RUNS))  # only the missing runs ran
    assert_same_tables(out, alone)


@pytest.mark.parametrize("says_which", [False, True])
def test_a_run_that_fails_in_a_batch_fails_alone_and_the_others_keep_their_results(tmp_path, alone, monkeypatch,
                                                                                   says_which):
    """``run_batch`` raises if any run of the batch turns non-finite (the engine's contract): the
    worker runs that batch again (run by run, or, when the error says which run it was, that run
    alone and the others as a batch), so only the poisoned run is recorded failed."""
    plan = Plan.make(load_spec(write_spec(tmp_path, SPEC)))
    poisoned = next(t.seed for t in plan.tasks() if t.run_id == 9)
    real, sizes = batch.run_batch, []

    def one_run_turns_non_finite(configs):
        sizes.append(len(configs))
        markets = real(configs)
        seeds = [c.run.seed for c in configs]
        if poisoned in seeds:
            where = seeds.index(poisoned)
            details = {"run": where, "seed": poisoned} if says_which and len(configs) > 1 else {}
            raise NonFiniteState("quarter 2025Q3 (quarter 3 of 6): FullStack's cash became NaN in the money "
                                 "mechanism", details)
        return markets

    monkeypatch.setattr(batch, "run_batch", one_run_turns_non_finite)
    out = tmp_path / "out"
    tally = sweep(tmp_path / "spec.toml", out, batch_size=7)
    # the second batch (runs 7-13) went again: run 9 alone and the other 6 together, or each alone
    assert sizes == [7, 7] + ([1, 6] if says_which else [1] * 7) + [2]
    assert tally.ok == RUNS - 1 and tally.failed == 1
    runs = load_runs(out)
    failed = runs[runs["status"] == "failed"]
    assert list(failed["run_id"]) == [9] and failed["error"].iloc[0].startswith("NonFiniteState: quarter 2025Q3")
    assert set(load_market(out)["run_id"]) == set(range(RUNS)) - {9}
    assert_same_tables(out, alone, run_ids=sorted(set(range(RUNS)) - {9}))


# ------------------------------------------------------------------ options and manifest
def test_batch_options_are_checked_recorded_and_kept_in_the_resume_command(tmp_path, capsys):
    spec = write_spec(tmp_path, SPEC)
    out = tmp_path / "out"
    for option, value, words in (("--batch-size", "0", "--batch-size 0: must be 1 (every run alone) or more"),
                                 ("--memory-budget", "4XB", "--memory-budget: '4XB' is not a size; allowed: a size")):
        assert main(["sweep", str(spec), "--out", str(out), "--workers", "0", "--no-plots", option, value]) == 2
        err = capsys.readouterr().err
        assert err.count("\n") == 1 and words in err and "Traceback" not in err
    assert not out.exists()
    bad = write_spec(tmp_path, 'memory_budget = "lots"\nbatch_size = 0\n' + SPEC, name="bad")
    assert main(["sweep", str(bad), "--out", str(out), "--workers", "0", "--no-plots"]) == 2
    err = capsys.readouterr().err
    assert f"{bad}: memory_budget: 'lots' is not a size" in err and f"{bad}: batch_size: " in err and "Traceback" not in err

    assert main(["sweep", str(spec), "--out", str(out), "--workers", "0", "--no-plots", "--memory-budget", "500kB"]) == 0
    info = load_manifest(out)["batching"]
    # 150 customers x 6 quarters x 2 slots: 210 kB a run (sim.batch.run_bytes): two runs fit in 500 kB
    # (the spread rule would allow 4)
    assert info["run_bytes"] == batch.run_bytes(Plan.make(load_spec(spec)).base) == 210_418
    assert info["batch_size"] == 2 and info["memory_budget_bytes"] == 500_000
    assert "batches of 2 runs" in capsys.readouterr().out + info["rule"]

    from sim.commands.sweep import resume_command
    from sim.cli import build_parser

    argv = ["sweep", str(spec), "--batch-size", "5", "--memory-budget", "1GB"]
    args = build_parser(argv).parse_args(argv)
    command = resume_command(args, load_spec(spec), out)
    assert "--batch-size 5 --memory-budget 1GB" in command


def test_the_dry_run_says_how_runs_are_batched(tmp_path, capsys):
    spec = write_spec(tmp_path, SPEC)
    assert main(["sweep", str(spec), "--dry-run", "--workers", "2", "--batch-size", "3"]) == 0
    out = capsys.readouterr().out
    assert "runs go in batches of 3 runs (batch size 3; memory budget 4.0 GB over 2 workers" in out


def test_the_python_api_takes_the_batch_options(tmp_path, alone):
    from sim.api import run_sweep as api_sweep
    from sim.config import ConfigError

    spec = write_spec(tmp_path, SPEC)
    results = api_sweep(spec, tmp_path / "out", workers=0, batch_size=5)
    assert results is not None and load_manifest(tmp_path / "out")["batching"]["batch_size"] == 5
    assert_same_tables(tmp_path / "out", alone)
    with pytest.raises(ConfigError, match="memory_budget: 'x' is not a size"):
        api_sweep(spec, tmp_path / "other", workers=0, memory_budget="x")
    assert not (tmp_path / "other").exists()


def test_runs_of_different_shapes_never_share_a_batch(tmp_path, monkeypatch):
    """A parameter that changes the number of customers changes a run's shape (``batch_key``): the
    runner groups runs by shape, so every batch ``run_batch`` gets is of one shape."""
    body = """
    replicates = 3
    seed = 4
    [params.flywheel]
    key = "capability.flywheel"
    values = [0.5, 1.5]
    [params.customers]
    key = "run.customers"
    type = "int"
    values = [100, 150]
    """  # in plan order the shapes alternate every 3 runs
    spec = write_spec(tmp_path, body, fixed="[fixed]\nrun.quarters = 4\n")
    plan = Plan.make(load_spec(spec))
    assert plan.structural() == ["customers"]  # the flywheel does not change the shape
    real, shapes = batch.run_batch, []

    def spy(configs):
        shapes.append([c.run.customers for c in configs])
        return real(configs)

    monkeypatch.setattr(batch, "run_batch", spy)
    assert sweep(spec, tmp_path / "out", batch_size=4).ok == 12
    assert sorted(shapes) == [[100, 100], [100] * 4, [150, 150], [150] * 4]  # 6 runs of each shape: 4 + 2


# ------------------------------------------------------------------ a worker that dies mid-batch
SLOW = SLOW_ENOUGH


@pytest.mark.slow
@pytest.mark.skipif(not Path("/proc/self/stat").exists(), reason="reads /proc")
def test_a_worker_killed_mid_batch_fails_its_runs_in_flight_and_resume_finishes_them(tmp_path):
    """SIGKILL of the pool's worker (what the OOM killer does) while it steps a batch: the runs of
    the batches in flight are recorded failed, the pool restarts with batches half as large, the
    sweep finishes the rest, and --resume re-runs the failed runs to the results of runs alone."""
    spec = write_spec(tmp_path, SLOW, fixed=SLOW_FIXED)
    out = tmp_path / "out"
    proc = subprocess.Popen([sys.executable, "-m", "sim", "sweep", str(spec), "--out", str(out), "--workers", "1",
                             "--no-plots", "--log-every", "0.2"], cwd=ROOT, start_new_session=True, text=True,
                            env={**os.environ, "PYTHONUNBUFFERED": "1"}, stdout=subprocess.PIPE, stderr=subprocess.PIPE)
    journal = out / "runs.jsonl"
    deadline = time.monotonic() + 90
    while not (journal.exists() and journal.read_bytes().count(b"\n") >= 1):
        assert proc.poll() is None and time.monotonic() < deadline, proc.communicate()
        time.sleep(0.02)
    workers = [pid for pid, ppid in _group(proc.pid) if ppid not in (proc.pid, 1) and pid != proc.pid]
    assert workers, "no pool worker found"
    for pid in workers:
        os.kill(pid, signal.SIGKILL)
    _, err = proc.communicate(timeout=120)
    assert proc.returncode == 0, err
    assert "a worker process died" in err and "half as large" in err and "Traceback" not in err
    runs = load_runs(out)
    failed = runs[runs["status"] == "failed"]
    assert 1 <= len(failed) <= 30 and failed["error"].str.contains("worker process died|worker pool broke").all()
    assert (runs["status"] == "ok").sum() == 40 - len(failed)
    assert main(["sweep", str(spec), "--out", str(out), "--resume", "--workers", "0", "--no-plots"]) == 0
    assert (load_runs(out)["status"] == "ok").all()
    assert sweep(spec, tmp_path / "alone", batch_size=1).ok == 40
    assert_same_tables(out, tmp_path / "alone")


def _group(pgid: int) -> list[tuple[int, int]]:
    return process_group(pgid)


@pytest.mark.parametrize("when", ["running", "handed_out"])
def test_after_a_worker_dies_the_batches_are_half_as_large(tmp_path, alone, monkeypatch, when):
    """A dead worker most likely ran out of memory: its batch's runs are recorded failed and the
    batches after it are half as large.  A pool whose second batch dies (in this process) while it
    runs, or whose pool is found broken when that batch is handed out (then it never ran, and goes
    to the fresh pool as it was)."""
    from concurrent.futures import Future
    from concurrent.futures.process import BrokenProcessPool

    from sim.experiment import runner
    from sim.experiment.executors import Engine, SerialExecutor

    sizes: list[int] = []

    class DiesAtTheSecondBatch(SerialExecutor):
        def submit(self, fn, /, *args, **kwargs):
            sizes.append(len(args[0]))
            if len(sizes) != 2:
                return super().submit(fn, *args, **kwargs)
            if when == "handed_out":
                raise BrokenProcessPool("A child process terminated abruptly, the process pool is not usable anymore")
            future = Future()
            future.set_exception(BrokenProcessPool("a process in the pool was terminated abruptly"))
            return future

    def pool(workers, scheduler=None, **_):
        return Engine(DiesAtTheSecondBatch(), 1, "a pool", restartable=True)

    monkeypatch.setattr(runner, "open_engine", pool)
    spec = write_spec(tmp_path, SPEC)
    tally = sweep(spec, tmp_path / "out", batch_size=4)
    if when == "handed_out":
        assert sizes == [4, 4, 4, 2, 2, 2, 2] and tally.ok == RUNS and tally.failed == 0
        assert_same_tables(tmp_path / "out", alone)
        return
    assert sizes == [4, 4, 2, 2, 2, 2]
    assert tally.failed == 4 and tally.ok == RUNS - 4
    runs = load_runs(tmp_path / "out")
    assert list(runs.loc[runs["status"] == "failed", "run_id"]) == [4, 5, 6, 7]
    assert runs.loc[runs["status"] == "failed", "error"].str.startswith("worker process died").all()
    assert_same_tables(tmp_path / "out", alone, run_ids=[r for r in range(RUNS) if r not in (4, 5, 6, 7)])


@pytest.mark.slow
def test_a_batch_of_100_gives_each_run_the_tables_it_has_alone(tmp_path, calls):
    body = """
    replicates = 50
    seed = 8
    [params.lock]
    key = "providers.*.lock_in"
    mode = "scale"
    values = [0.5, 2.0]
    """
    spec = write_spec(tmp_path, body, fixed="[fixed]\nrun.customers = 100\nrun.quarters = 5\n")
    assert sweep(spec, tmp_path / "batch", batch_size=100).ok == 100
    assert calls == [100]
    assert sweep(spec, tmp_path / "alone", batch_size=1).ok == 100
    assert calls == [100] + [1] * 100
    assert_same_tables(tmp_path / "batch", tmp_path / "alone")


def test_a_run_the_real_guard_stops_in_a_batch_fails_alone(tmp_path, alone, calls, monkeypatch):
    """End to end through the engine's own guard: one run's state turns NaN after its second quarter
    (a provider's cash, set by hand); the guard stops the batch naming that run, the worker runs it
    alone (where the guard stops it again, worded as a run alone) and the other six as a batch."""
    import math

    from sim.batch import Batch

    plan = Plan.make(load_spec(write_spec(tmp_path, SPEC)))
    poisoned = next(t.seed for t in plan.tasks() if t.run_id == 9)
    real_step = Batch.step

    def step_then_poison(self):
        real_step(self)
        for market in self.markets:
            if market.config.run.seed == poisoned and market.steps == 2:
                market.slots[1].cash = math.nan

    monkeypatch.setattr(Batch, "step", step_then_poison)
    tally = sweep(tmp_path / "spec.toml", tmp_path / "out", batch_size=7)
    assert calls == [7, 7, 1, 6, 2] and tally.failed == 1
    runs = load_runs(tmp_path / "out")
    error = runs.loc[runs["status"] == "failed", "error"]
    assert list(error.index) == [9]
    assert error.iloc[0].startswith("NonFiniteState: quarter 2025Q3 (quarter 3 of 6): Porter's cash became NaN")
    assert "the run was stopped" in error.iloc[0]  # the error of the run alone, not of its batch
    assert_same_tables(tmp_path / "out", alone, run_ids=sorted(set(range(RUNS)) - {9}))
