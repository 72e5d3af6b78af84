"""Running a sweep: plan the runs, hand them to an executor, stream results to disk.

At most a few runs per worker are in flight, so the parent holds no results
and its memory stays flat however many runs there are.  Each finished run is
written (part files, then a journal line) before the next is handed out.  A run
that raises is recorded as failed and the sweep goes on; a worker process that
dies fails only its runs in flight, and the pool is restarted.  Ctrl-C stops
handing out runs; what finished is kept, and ``--resume`` runs the rest.
"""

from __future__ import annotations

import time
from concurrent.futures import FIRST_COMPLETED, Future, wait
from concurrent.futures.process import BrokenProcessPool
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Iterator

from sim.config import Config, ConfigError
from sim.experiment import designs
from sim.experiment.executors import Engine, open_engine
from sim.experiment.keys import Overrides, check_point
from sim.experiment.progress import Progress, Tally
from sim.experiment.seeds import run_seed
from sim.experiment.spec import Spec, _hash, base_config
from sim.experiment.store import Store
from sim.experiment.worker import Task, error_text, execute
from sim.output import manifest

IN_FLIGHT_PER_SLOT = 3
MAX_RESTARTS = 3


class SweepError(Exception):
    """A sweep that cannot start as asked (worded for the user)."""


@dataclass
class Plan:
    spec: Spec
    base: Config
    design: designs.Design
    overrides: Overrides

    @classmethod
    def make(cls, spec: Spec) -> "Plan":
        base = base_config(spec)
        design = designs.build(spec)
        overrides = Overrides(spec, base)
        if len(design):
            check_point(spec, base, overrides, design.points[0], "first design point")
            check_point(spec, base, overrides, design.points[-1], "last design point")
        return cls(spec, base, design, overrides)

    @property
    def runs(self) -> int:
        return len(self.design) * self.spec.replicates

    def hash(self) -> str:
        """What decides the results: base config, parameters, design, replicates and seeds.
        (Outcomes and figures can change without invalidating stored runs.)"""
        s = self.spec
        return _hash({"config": self.base.hash(), "params": {k: v.model_dump(mode="json") for k, v in s.params.items()},
                      "order": list(s.params),  # the design's order depends on it; JSON keys get sorted
                      "design": s.design.model_dump(mode="json"), "replicates": s.replicates, "seed": s.seed,
                      "common": s.common_random_numbers})

    def manifest(self) -> dict[str, Any]:
        s = self.spec
        return manifest(self.base, source=s.base_path, extra={
            "kind": "sweep", "seed": s.seed, "spec": s.resolved(), "spec_source": s.source, "spec_hash": s.hash(),
            "plan_hash": self.hash(), "design_kind": s.design.kind, "points": len(self.design),
            "replicates": s.replicates, "runs": self.runs,
            "seeding": "numpy SeedSequence(seed, spawn_key=(0, design_index, replicate))"
                       if not s.common_random_numbers else "numpy SeedSequence(seed, spawn_key=(1, replicate))",
        })

    def tasks(self, out: str | None, skip: set[int]) -> Iterator[Task]:
        s = self.spec
        base_raw, base_hash = self.base.resolved(), self.base.hash()
        for d, point in enumerate(self.design.points):
            overrides = self.overrides(point)
            for r in range(s.replicates):
                run_id = d * s.replicates + r
                if run_id in skip:
                    continue
                seed = run_seed(s.seed, d, r, common=s.common_random_numbers)
                yield Task(run_id, d, r, seed, overrides, base_hash, base_raw, out)


def prepare(plan: Plan, out: Path, *, resume: bool) -> tuple[Store, set[int]]:
    """Create the output directory, or check that a resumed one holds the same plan."""
    store = Store(out)
    if store.exists():
        old = store.manifest()
        if not resume:
            raise SweepError(f"{out} already holds sweep results; add --resume to finish them, "
                             f"or choose another --out")
        if old.get("plan_hash") != plan.hash():
            raise SweepError(f"{out} holds results of a different sweep (the base config, parameters, design, "
                             f"replicates or seed changed); use another --out, or remove {out} "
                             f"(aicloud experiment NAME --fresh does that for a preset)")
        store.create(plan.manifest(), plan.design.frame())  # same runs; refresh outcomes/figures in the spec
        return store, store.done_ids()
    store.create(plan.manifest(), plan.design.frame())
    return store, set()


def run_sweep(plan: Plan, out: Path, *, workers: int, scheduler: str | None = None, resume: bool = False,
              progress: Progress | None = None, engine: Engine | None = None, log=print) -> Tally:
    store, done = prepare(plan, Path(out), resume=resume)
    if resume and done:
        log(f"resuming: {len(done)} of {plan.runs} runs already done")
    progress = progress or Progress(plan.runs, len(done), label=plan.spec.name)
    own_engine = engine is None
    engine = engine or open_engine(workers, scheduler)
    log(f"running {plan.runs - len(done)} runs on {engine.description}")
    progress.start()
    interrupted = False
    try:
        engine = _drive(plan, store, engine, done, progress)
    except KeyboardInterrupt:
        interrupted = True
    finally:
        if own_engine:
            engine.close(cancel=interrupted)
        store.finalize()
    tally = progress.close(interrupted=interrupted)
    if interrupted:
        raise KeyboardInterrupt
    return tally


def _drive(plan: Plan, store: Store, engine: Engine, done: set[int], progress: Progress) -> Engine:
    tasks = plan.tasks(str(store.root) if engine.shared_disk else None, done)
    window = max(2, engine.slots * IN_FLIGHT_PER_SLOT)
    pending: dict[Future, Task] = {}
    restarts = 0
    while True:
        for task in tasks:
            pending[engine.executor.submit(execute, task)] = task
            if len(pending) >= window:
                break
        if not pending:
            return engine
        finished, _ = wait(pending, return_when=FIRST_COMPLETED)
        broken = False
        for future in finished:
            task = pending.pop(future)
            record = _outcome(future, task)
            broken |= record.pop("broken", False)
            frames = record.pop("frames", None)
            if frames is not None:
                store.write_parts(task.run_id, frames)
            store.append(record)
            progress.update(record["status"])
        if broken and engine.restartable:
            restarts += 1
            if restarts > MAX_RESTARTS:
                raise SweepError("worker processes keep dying (out of memory?); stopped. Finish with --resume")
            engine = _restart(engine, pending, store, progress)


def _outcome(future: Future, task: Task) -> dict[str, Any]:
    """The run's record; an executor-level failure (dead worker, lost task) becomes a failed run."""
    try:
        return future.result()
    except BrokenProcessPool as exc:
        return _failed(task, f"worker process died: {exc}") | {"broken": True}
    except Exception as exc:  # noqa: BLE001 - e.g. Dask KilledWorker: record it, go on
        return _failed(task, error_text(exc))


def _failed(task: Task, error: str) -> dict[str, Any]:
    return {"run_id": task.run_id, "design_index": task.design_index, "replicate": task.replicate,
            "seed": task.seed, "status": "failed", "error": error, "wall_time": None, "worker": None}


def _restart(engine: Engine, pending: dict[Future, Task], store: Store, progress: Progress) -> Engine:
    """A broken process pool fails all its futures; record them and start a fresh pool."""
    for future, task in list(pending.items()):
        store.append(_failed(task, "worker pool broke while this run was in flight"))
        progress.update("failed")
    pending.clear()
    engine.close(cancel=True)
    fresh = open_engine(engine.slots, None)
    return fresh


def estimate_seconds(plan: Plan) -> float:
    """Time one run of the first design point here, in this process."""
    task = next(plan.tasks(None, set()), None)
    if task is None:
        return 0.0
    started = time.perf_counter()
    record = execute(task)
    if record["status"] != "ok":
        raise ConfigError([f"{plan.spec.source}: the first run fails: {record['error']}"])
    return time.perf_counter() - started
