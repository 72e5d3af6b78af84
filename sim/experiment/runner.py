"""Running a sweep: plan the runs, hand them to an executor, stream results to disk.

Runs go to workers in batches (``sim.experiment.batching``: runs of the same shape, as
many as the memory budget allows, at most 100, about four batches per worker or more);
a worker steps a batch's runs together (``sim.batch.run_batch``) and returns each run's
tables.  A run's results do not depend on its batch.  At most two batches per worker are
in flight, so the parent holds no results and its memory stays flat however many runs
there are.  The parent writes each run (part files, then a journal line) as its batch
arrives, so the journal knows every file written.  A run that raises is recorded as
failed and the sweep goes on (the other runs of its batch keep their results); a local
worker process that dies fails only its batches in flight, and the pool is restarted.
Ctrl-C stops handing out batches; what finished is kept (a batch that arrived is written
whole first), and ``--resume`` runs the rest: a batch in flight counts as its runs in
flight.

Nothing is written to the output directory until the plan is valid and the
engine is up (a cluster reachable).  While it waits for results the runner
watches the cluster (:class:`Watch`): with no workers it says so every
``log_every`` seconds and stops after ``cluster_timeout`` seconds; a lost
scheduler stops it at once.  Either way the runs in flight stay pending (they
did not fail) and ``--resume`` finishes them.
"""

from __future__ import annotations

import asyncio
import concurrent.futures
import shutil
import time
from concurrent.futures import FIRST_COMPLETED, Future, wait
from concurrent.futures.process import BrokenProcessPool
from dataclasses import dataclass, field
from datetime import datetime
from pathlib import Path
from typing import Any, Callable, Iterator

from sim import batch
from sim.config import Config, ConfigError, with_overrides
from sim.experiment import batching, checks, designs, replication
from sim.experiment.batching import BatchRule
from sim.experiment.executors import DEFAULT_CLUSTER_TIMEOUT, Engine, EngineError, open_engine
from sim.experiment.keys import Overrides
from sim.experiment.progress import Progress, Tally
from sim.experiment.seeds import run_seed
from sim.experiment.spec import Spec, _hash, base_config
from sim.experiment.store import Store, interrupt_deferred
from sim.experiment.worker import Task, error_text, execute_batch
from sim.output import manifest

IN_FLIGHT_PER_SLOT = 2  # batches handed to each slot at once: one running, one waiting
MAX_RESTARTS = 3
MAX_LOST = 3  # a run whose result the cluster lost this often (cluster still up) is recorded as failed
TICK = 1.0  # seconds between looks at the cluster while no result arrives


class SweepError(Exception):
    """A sweep that cannot start or go on as asked (worded for the user)."""


class ClusterLost(SweepError):
    """The cluster went away (no scheduler, or no workers for too long); the sweep stopped.
    ``finished`` runs are on disk (this session and before); the runs in flight stay pending."""

    def __init__(self, reason: str, *, finished: int = 0, total: int = 0):
        super().__init__(reason)
        self.reason, self.finished, self.total = reason, finished, total


@dataclass
class Plan:
    spec: Spec
    base: Config
    design: designs.Design
    overrides: Overrides
    _shapes: dict = field(default_factory=dict, init=False, repr=False, compare=False)
    _structural: list[str] | None = field(default=None, init=False, repr=False, compare=False)

    @classmethod
    def make(cls, spec: Spec) -> "Plan":
        base = base_config(spec)
        design = designs.build(spec)
        overrides = Overrides(spec, base)
        checks.check_plan(spec, base, design, overrides)
        return cls(spec, base, design, overrides)

    @property
    def runs(self) -> int:
        return len(self.design) * self.spec.replicates

    def hash(self) -> str:
        """What decides the results: base config, parameters, design, replicates and seeds.
        (Outcomes and figures can change without invalidating stored runs.)"""
        s = self.spec
        what = {"config": self.base.hash(), "params": {k: v.model_dump(mode="json") for k, v in s.params.items()},
                "order": list(s.params),  # the design's order depends on it; JSON keys get sorted
                "design": s.design.model_dump(mode="json"), "replicates": s.replicates, "seed": s.seed,
                "common": s.common_random_numbers}
        if s.seeds:  # only when used, so that stored sweeps without them keep their hash
            what["seeds"] = list(s.seeds)
        if s.replication is not None:
            what["replication"] = s.replication.model_dump(mode="json")
        return _hash(what)

    def batch_rule(self) -> BatchRule:
        """The spec's batch size rule (``batch_size``, ``memory_budget``)."""
        return BatchRule(batching.parse_size(self.spec.memory_budget), self.spec.batch_size)

    def shape(self, design_index: int) -> tuple[tuple, int] | None:
        """``(batch_key, run_bytes)`` of design point ``design_index``'s runs (``sim.batch``): runs of
        equal shape can share a batch.  None if the point's config does not validate (its runs then
        fail alone, in the worker, with the error).  Only the parameters that can change the shape
        (:meth:`structural`) are applied, once per distinct value set."""
        names = self.structural()
        point = self.design.points[design_index]
        values = tuple(_hashable(point[n]) for n in names)
        if values not in self._shapes:
            try:
                config = with_overrides(self.base, self.overrides({n: point[n] for n in names}))
                self._shapes[values] = (batch.batch_key(config), batch.run_bytes(config))
            except ConfigError:
                self._shapes[values] = None
        return self._shapes[values]

    def structural(self) -> list[str]:
        """The parameters that can change a run's shape (``batch_key`` or ``run_bytes``): those for
        which one of their values (listed values, else low, high and the middle) gives another
        shape than the base config's, or an invalid config on its own.  One missed here would cost
        only batch size, never results: the worker splits a batch by ``batch_key`` again."""
        if self._structural is None:
            base = (batch.batch_key(self.base), batch.run_bytes(self.base))
            names = []
            for name, param in self.spec.params.items():
                probes = param.values if param.values is not None else [param.low, param.high, (param.low + param.high) / 2]
                if param.type == "int" and param.values is None:
                    probes = [int(round(v)) for v in probes]
                for value in probes:
                    try:
                        config = with_overrides(self.base, self.overrides({name: value}))
                    except ConfigError:
                        names.append(name)
                        break
                    if (batch.batch_key(config), batch.run_bytes(config)) != base:
                        names.append(name)
                        break
            self._structural = names
        return self._structural

    def first_todo(self, done: set[int] | frozenset[int] = frozenset()) -> int:
        """Runs the sweep hands out first: all runs not ``done``, or with a replicate rule, those
        of its first block (what the batch size is first chosen for)."""
        rule = self.spec.replication
        if rule is None:
            return self.runs - len(done)
        return sum(1 for _ in self.tasks(done, {d: rule.first for d in range(len(self.design))}))

    def manifest(self, batching_info: dict[str, Any] | None = None) -> dict[str, Any]:
        s = self.spec
        return manifest(self.base, source=s.base_path, extra={
            "kind": "sweep", "seed": s.seed, "spec": s.resolved(), "spec_source": s.source, "spec_hash": s.hash(),
            "plan_hash": self.hash(), "design_kind": s.design.kind, "points": len(self.design),
            "replicates": s.replicates, "runs": self.runs, "master_seeds": s.masters,
            "replicate_rule": replication.describe(s),
            "seeding": ("numpy SeedSequence(seed, spawn_key=(0, design_index, replicate))"
                        if not s.common_random_numbers else "numpy SeedSequence(seed, spawn_key=(1, replicate))")
                       + ("; with several master seeds, seed = the point's master seed and design_index its index "
                          "in that seed's sample" if s.seeds else ""),
            **({"batching": batching_info} if batching_info is not None else {}),
        })

    def tasks(self, skip: set[int] | frozenset[int] = frozenset(), planned: dict[int, int] | None = None) -> Iterator[Task]:
        """The runs to do: every replicate of every point (or ``planned[d]`` replicates of point d), less ``skip``."""
        s = self.spec
        base_raw, base_hash = self.base.resolved(), self.base.hash()
        for d, point in enumerate(self.design.points):
            overrides = self.overrides(point)
            master, local = self.design.seed_of(d, s.seed)
            for r in range(s.replicates if planned is None else planned.get(d, 0)):
                run_id = d * s.replicates + r
                if run_id in skip:
                    continue
                seed = run_seed(master, local, r, common=s.common_random_numbers)
                yield Task(run_id, d, r, seed, overrides, base_hash, base_raw)


def check_out(plan: Plan, store: Store, *, resume: bool, fresh: bool = False) -> set[int]:
    """Check that ``store`` can take this plan (writes nothing); the run ids already done there.
    With ``fresh``, results there will be discarded: nothing counts as done."""
    out = store.root
    if store.exists() and not fresh:
        old = store.manifest()
        same = old.get("plan_hash") == plan.hash()
        if not resume and not (same and store.journal().empty):  # a sweep that never ran a run is no loss
            raise SweepError(f"{out} already holds sweep results; add --resume to finish them, "
                             f"or choose another --out")
        if not same:
            raise SweepError(f"{out} holds results of a different sweep (the base config, parameters, design, "
                             f"replicates or seed changed); use another --out, or remove {out} "
                             f"(aicloud experiment NAME --fresh does that for a preset)")
        return store.done_ids()
    if out.exists() and not out.is_dir():
        raise SweepError(f"--out {out}: is a file; choose a directory")
    return set()


def run_sweep(plan: Plan, out: Path, *, workers: int, scheduler: str | None = None, resume: bool = False,
              progress: Progress | None = None, engine: Engine | None = None, log=print,
              cluster_timeout: float = DEFAULT_CLUSTER_TIMEOUT, fresh: bool = False,
              batching: BatchRule | None = None) -> Tally:
    """Run the plan's runs that are not done yet into ``out``; the tally of this session.

    ``batching`` (default: the spec's ``batch_size`` and ``memory_budget``) sets how many runs a
    worker steps together; it changes speed and memory, never results.  The batch size used is
    recorded in the manifest (``sweep.json``: ``batching``).

    Raises SweepError before anything is written if ``out`` holds other results (or results without
    ``resume``) or the cluster cannot be reached; ClusterLost if the cluster goes away mid-sweep
    (no workers for ``cluster_timeout`` seconds, or the scheduler lost), with what finished kept;
    KeyboardInterrupt after Ctrl-C, with what finished kept.  ``fresh`` discards the results in
    ``out`` (a directory holding sweep.json, nothing else), but only once the engine is up."""
    store = Store(out)
    done = check_out(plan, store, resume=resume, fresh=fresh)
    own_engine = engine is None
    if engine is None:
        try:
            engine = open_engine(workers, scheduler, timeout=cluster_timeout)
        except EngineError as exc:
            raise SweepError(str(exc)) from None
    rule = batching or plan.batch_rule()
    info = batching_info(plan, rule, slots=engine.slots, todo=plan.first_todo(done))
    try:
        if fresh and store.exists():
            shutil.rmtree(store.root)
        store.create(plan.manifest(info), plan.design.frame())
    except BaseException:
        if own_engine:
            engine.close(cancel=True)
        raise
    if resume and done:
        log(f"resuming: {len(done)} of {plan.runs} runs already done")
    progress = progress or Progress(plan.runs, len(done), label=plan.spec.name)
    log(f"running {plan.runs - len(done)} runs on {engine.description}; {info['rule']}")
    progress.start()
    stopped: BaseException | None = None
    watch = Watch(engine, timeout=cluster_timeout, every=progress.every, say=progress.note)
    try:
        engine = _blocks(plan, store, engine, done, progress, watch, rule)
    except (KeyboardInterrupt, ClusterLost) as exc:
        stopped = exc
    finally:
        if own_engine:
            engine.close(cancel=stopped is not None)
        store.finalize()
    tally = progress.close(interrupted=stopped is not None)
    if isinstance(stopped, ClusterLost):
        stopped.finished, stopped.total = tally.skipped + tally.done, tally.total
        raise stopped
    if stopped is not None:
        raise KeyboardInterrupt
    return tally


class Watch:
    """Looks at the cluster while the runner waits: no workers -> a line every ``every`` seconds,
    then ClusterLost after ``timeout`` seconds; no scheduler -> ClusterLost at once."""

    def __init__(self, engine: Engine, *, timeout: float, every: float, say: Callable[[str], None]):
        self.engine, self.timeout, self.every, self.say = engine, timeout, max(every, TICK), say
        self.idle_since: float | None = None
        self.idle_clock = ""
        self.last_line = 0.0
        self.last_look = float("-inf")

    def look(self, *, now: float | None = None, force: bool = False) -> None:
        now = time.monotonic() if now is None else now
        if not force and now - self.last_look < TICK:
            return
        self.last_look = now
        state = self.engine.health()
        where = f"the Dask scheduler at {self.engine.address}" if self.engine.address else "the cluster"
        if not state.connected:
            raise ClusterLost(f"lost the connection to {where}")
        if state.workers:
            if self.idle_since is not None:
                self.say(f"workers back: {state.workers} worker{'s' if state.workers != 1 else ''}, "
                         f"{state.threads} thread{'s' if state.threads != 1 else ''}")
            self.idle_since = None
            return
        if self.idle_since is None:
            self.idle_since, self.idle_clock, self.last_line = now, datetime.now().strftime("%H:%M:%S"), float("-inf")
        if now - self.idle_since >= self.timeout:
            raise ClusterLost(f"{where} has had no workers for {self.timeout:g} s (--cluster-timeout)")
        if now - self.last_line >= self.every:
            self.last_line = now
            self.say(f"waiting: no workers since {self.idle_clock}; start workers, or Ctrl-C and --resume later "
                     f"(stopping at {self.timeout - (now - self.idle_since):.0f} s more)")


def batching_info(plan: Plan, rule: BatchRule, *, slots: int, todo: int) -> dict[str, Any]:
    """What the manifest records about batching: the rule's settings and the batch size it gives
    the base config's runs with this engine (``slots``) and ``todo`` runs (with a replicate rule,
    the first block's; later blocks are sized for their own runs)."""
    run_bytes = batch.run_bytes(plan.base)
    size = rule.size(run_bytes, slots=slots, todo=todo)
    varies = plan.structural()
    return {"batch_size": size, "batch_size_setting": rule.batch_size, "memory_budget": batching.format_size(rule.memory_budget),
            "memory_budget_bytes": rule.memory_budget, "slots": slots, "run_bytes": run_bytes, "runs_to_do": todo,
            "rule": rule.describe(run_bytes, slots=slots, todo=todo)
                    + (f"; sizes vary with {', '.join(varies)}, this is for the base config" if varies else ""),
            "varies_with": varies}


def _blocks(plan: Plan, store: Store, engine: Engine, done: set[int], progress: Progress, watch: Watch,
            sizes: BatchRule) -> Engine:
    """Every run at once, or, with a replicate rule, block after block: after each block the rule looks
    at each point's runs so far (``replication.assess``) and gives the points whose interval is still too
    wide another block.  The decisions depend only on stored runs, so a resumed sweep or another number
    of workers makes the same ones."""
    rule = plan.spec.replication
    if rule is None:
        return _drive(plan, plan.tasks(done), plan.runs - len(done), store, engine, progress, watch, sizes)
    planned = {d: rule.first for d in range(len(plan.design))}
    attempted = set(done)  # a run that failed this session is not tried again in a later block
    status = replication.assess(plan, store, planned)
    while True:
        store.write_replication(status.assign(planned=status["design_index"].map(planned)))
        tasks = list(plan.tasks(attempted, planned))
        attempted |= {t.run_id for t in tasks}
        progress.set_total(sum(planned.values()), skipped=sum(1 for r in done if r % plan.spec.replicates < planned[r // plan.spec.replicates]))
        engine = _drive(plan, iter(tasks), len(tasks), store, engine, progress, watch, sizes)
        status = replication.assess(plan, store, planned)
        grow = replication.next_block(status, planned, rule, plan.spec.replicates)
        if not grow:
            store.write_replication(status.assign(planned=status["design_index"].map(planned)))
            return engine
        planned.update(grow)


def _drive(plan: Plan, tasks: Iterator[Task], todo: int, store: Store, engine: Engine, progress: Progress,
           watch: Watch, sizes: BatchRule) -> Engine:
    """Hand ``tasks`` (``todo`` of them) out in batches of equal shape, write each run as its batch
    arrives; the engine in use at the end (a broken local pool is replaced, and since a worker that
    dies has most likely run out of memory, the batches after it are half as large)."""
    pending: dict[Future, list[Task]] = {}
    retry: list[list[Task]] = []
    lost_count: dict[int, int] = {}
    restarts = 0
    shrink = 1
    groups = batching.batches(tasks, key=lambda t: plan.shape(t.design_index),
                              size=lambda shape: sizes.size(shape[1], slots=engine.slots, todo=todo) // shrink)
    watch.look(force=True)
    while True:
        window = max(2, engine.slots * IN_FLIGHT_PER_SLOT)
        broken = False
        while len(pending) < window:
            group = retry.pop(0) if retry else next(groups, None)
            if group is None:
                break
            try:
                pending[engine.executor.submit(execute_batch, group)] = group
            except BrokenProcessPool:  # a worker died since the last look: this batch never started
                retry.insert(0, group)
                broken = True
                break
        if not pending and not broken:
            return engine
        finished = wait(pending, timeout=TICK, return_when=FIRST_COMPLETED)[0] if pending else set()
        lost: list[list[Task]] = []
        for future in finished:
            group = pending.pop(future)
            records = _outcome(future, group)
            if records is None:  # the cluster lost it: not a run of the model that failed
                lost.append(group)
                continue
            # A batch that arrived is written whole, with Ctrl-C held back until its last run is on
            # disk: its results are in hand, so they count as finished, not in flight.
            with interrupt_deferred():
                for record in records:
                    broken |= record.pop("broken", False)
                    store.record_run(record["run_id"], record.pop("frames", None), record)
                    progress.update(record["status"])
        if lost:
            lost += [pending.pop(f) for f in [f for f in pending if f.cancelled()]]
            watch.look(force=True)  # raises if the scheduler is gone: every lost run stays pending
            for group in lost:
                again = []
                for task in group:
                    lost_count[task.run_id] = lost_count.get(task.run_id, 0) + 1
                    if lost_count[task.run_id] >= MAX_LOST:
                        store.append(_failed(task, f"the cluster lost this run {MAX_LOST} times"))
                        progress.update("failed")
                    else:
                        again.append(task)
                if again:
                    retry.append(again)
        else:
            watch.look()
        if broken and engine.restartable:
            restarts += 1
            if restarts > MAX_RESTARTS:
                raise SweepError("worker processes keep dying (out of memory?); stopped. Finish with --resume "
                                 "(a smaller --memory-budget or --batch-size takes less memory)")
            shrink *= 2
            progress.note("a worker process died (out of memory?): the runs it had in flight are recorded failed "
                          "(--resume runs them again); the batches after it are half as large")
            engine = _restart(engine, pending, store, progress)
            watch.engine = engine


LOST = (concurrent.futures.CancelledError, asyncio.CancelledError)


def _outcome(future: Future, group: list[Task]) -> list[dict[str, Any]] | None:
    """The batch's records, one per run; None if the cluster lost it (cancelled: the scheduler went
    away); another executor-level failure (dead worker, Dask KilledWorker) fails each of its runs."""
    try:
        return future.result()
    except LOST:
        return None
    except BrokenProcessPool as exc:
        return [_failed(task, f"worker process died: {exc}") | {"broken": True} for task in group]
    except Exception as exc:  # noqa: BLE001 - e.g. Dask KilledWorker: record it, go on
        return [_failed(task, error_text(exc)) for task in group]


def _failed(task: Task, error: str) -> dict[str, Any]:
    return {"run_id": task.run_id, "design_index": task.design_index, "replicate": task.replicate,
            "seed": task.seed, "status": "failed", "error": error, "wall_time": None, "worker": None}


def _restart(engine: Engine, pending: dict[Future, list[Task]], store: Store, progress: Progress) -> Engine:
    """A broken process pool fails all its futures; record their runs and start a fresh pool."""
    for future, group in list(pending.items()):
        for task in group:
            store.append(_failed(task, "worker pool broke while this run was in flight"))
            progress.update("failed")
    pending.clear()
    engine.close(cancel=True)
    fresh = open_engine(engine.slots, None)
    return fresh


def estimate_seconds(plan: Plan, engine: Engine | None = None) -> float:
    """Seconds one run of the first design point takes: timed here, in this process, or, given a
    cluster's engine, on one of its workers (a worker's set-up can make runs slower there;
    the time excludes sending the task and its tables).  ConfigError if that run fails."""
    task = next(plan.tasks(), None)
    if task is None:
        return 0.0
    started = time.perf_counter()
    if engine is None:
        (record,) = execute_batch([task])
        seconds = time.perf_counter() - started
    else:
        (record,) = _outcome(engine.executor.submit(execute_batch, [task]), [task]) or \
            [_failed(task, "the cluster lost the timing run")]
        seconds = record["wall_time"] or 0.0
    if record["status"] != "ok":
        raise ConfigError([f"{plan.spec.source}: the first run fails: {record['error']}"])
    return seconds


def _hashable(value: Any) -> Any:
    return tuple(value) if isinstance(value, list) else value
