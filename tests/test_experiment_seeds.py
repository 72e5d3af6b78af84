"""Seeds: replicates differ; results do not depend on the number of workers or the order of completion."""

import io
import random
import threading
from concurrent.futures import Executor, Future

import pandas as pd
from experiment_support import GRID, write_spec

from sim.experiment.executors import Engine
from sim.experiment.progress import Progress
from sim.experiment.runner import Plan, run_sweep
from sim.experiment.seeds import run_seed
from sim.experiment.spec import load_spec
from sim.experiment.store import Store, load_providers


def sweep(spec_path, out, workers=0, engine=None):
    plan = Plan.make(load_spec(spec_path))
    progress = Progress(plan.runs, stream=io.StringIO(), tty=False)
    return run_sweep(plan, out, workers=workers, engine=engine, progress=progress, log=lambda *_: None)


def part_bytes(out):
    return {p.relative_to(out).as_posix(): p.read_bytes() for p in sorted((out / "parts").rglob("*.parquet"))}


class ShuffledExecutor(Executor):
    """A real executor whose one thread always runs a random one of the queued tasks next,
    so runs complete in an order unrelated to their submission."""

    def __init__(self, seed):
        self.rng = random.Random(seed)
        self.queue = []
        self.cv = threading.Condition()
        self.closed = False
        self.thread = threading.Thread(target=self._loop, daemon=True)
        self.thread.start()

    def submit(self, fn, /, *args, **kwargs):
        future = Future()
        with self.cv:
            self.queue.append((future, fn, args, kwargs))
            self.cv.notify()
        return future

    def _loop(self):
        while True:
            with self.cv:
                while not self.queue and not self.closed:
                    self.cv.wait()
                if not self.queue:
                    return
                # wait briefly so that several tasks are queued to choose from
                self.cv.wait_for(lambda: len(self.queue) >= 4 or self.closed, timeout=0.05)
                future, fn, args, kwargs = self.queue.pop(self.rng.randrange(len(self.queue)))
            future.set_result(fn(*args, **kwargs))

    def shutdown(self, wait=True, *, cancel_futures=False):
        with self.cv:
            self.closed = True
            self.cv.notify()
        if wait:
            self.thread.join()


def test_run_seeds_are_distinct_stable_and_follow_the_scheme():
    seeds = {(d, r): run_seed(5, d, r) for d in range(30) for r in range(10)}
    assert len(set(seeds.values())) == 300
    assert all(0 <= s < 2**63 for s in seeds.values())
    assert run_seed(5, 3, 2) == seeds[(3, 2)]  # depends only on (master, point, replicate)
    assert run_seed(6, 3, 2) != seeds[(3, 2)]
    common = {run_seed(5, d, 4, common=True) for d in range(10)}
    assert len(common) == 1 and common != {seeds[(0, 4)]}


def test_replicates_differ_and_seeds_are_recorded(tmp_path):
    spec = write_spec(tmp_path, GRID)
    sweep(spec, tmp_path / "out")
    runs = Store(tmp_path / "out").runs()
    assert (runs["status"] == "ok").all() and runs["seed"].is_unique
    prov = load_providers(tmp_path / "out")
    a = prov[prov["run_id"] == 0].drop(columns=["run_id", "replicate"]).reset_index(drop=True)
    b = prov[prov["run_id"] == 1].drop(columns=["run_id", "replicate"]).reset_index(drop=True)
    assert (runs.loc[:1, "design_index"] == 0).all()  # runs 0 and 1: replicates of the same point
    assert not a.equals(b)


def test_same_results_with_one_or_two_workers_and_in_any_completion_order(tmp_path):
    spec = write_spec(tmp_path, GRID)
    sweep(spec, tmp_path / "serial", workers=0)
    sweep(spec, tmp_path / "one", workers=1)
    sweep(spec, tmp_path / "two", workers=2)
    shuffled = ShuffledExecutor(seed=4)
    sweep(spec, tmp_path / "shuffled", engine=Engine(shuffled, 8, "shuffled"))
    shuffled.shutdown()
    reference = part_bytes(tmp_path / "serial")
    assert len(reference) == 2 * 12
    for name in ("one", "two", "shuffled"):
        assert part_bytes(tmp_path / name) == reference, name
    order = list(Store(tmp_path / "shuffled").journal()["run_id"])
    assert sorted(order) == list(range(12)) and order != sorted(order)  # completion really was shuffled
    cols = ["run_id", "design_index", "replicate", "seed", "status"]
    pd.testing.assert_frame_equal(Store(tmp_path / "shuffled").runs()[cols], Store(tmp_path / "serial").runs()[cols])
