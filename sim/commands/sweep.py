"""``aicloud sweep``, ``aicloud experiment`` and ``aicloud plot``: many runs from an experiment spec."""

from __future__ import annotations

import argparse
import json
import math
import shlex
import sys
from pathlib import Path

from sim.cli import UserError
from sim.experiment import designs
from sim.experiment.analysis import AnalysisError
from sim.experiment.executors import DEFAULT_CLUSTER_TIMEOUT, EngineError, default_workers, open_engine
from sim.experiment.progress import Progress
from sim.experiment.report import report
from sim.experiment.batching import DEFAULT_MEMORY_BUDGET, MAX_BATCH, BatchRule, parse_size
from sim.experiment.runner import ClusterLost, Plan, SweepError, batching_info, estimate_seconds, run_sweep
from sim.experiment.spec import Spec, load_spec
from sim.experiment.store import Store
from sim.output import output_dir

RESULTS_DIR = Path("results")


def add_parser(sub: argparse._SubParsersAction) -> None:
    p = sub.add_parser("sweep", help="run an experiment spec: many runs, streamed to disk, then figures",
                       description="Run every run of an experiment spec (TOML) and draw its figures.")
    p.add_argument("spec", help="spec file, or an experiment name in experiments/")
    _run_options(p, default_out="results/<spec name>")
    p.add_argument("--resume", action="store_true", help="finish a sweep in --out: run only missing or failed runs")
    p.set_defaults(func=sweep_main)

    e = sub.add_parser("experiment", help="run a preset experiment (experiments/NAME.toml) and draw its figures",
                       description="Run a preset experiment; re-running it finishes an interrupted one and re-draws.")
    e.add_argument("name", help="experiment name (a file in experiments/) or a spec path")
    _run_options(e, default_out="results/NAME")
    e.add_argument("--fresh", action="store_true",
                   help="discard the results already in the output directory and run the experiment again")
    e.set_defaults(func=experiment_main)

    q = sub.add_parser("plot", help="re-draw the figures of stored sweep results without re-running",
                       description="Re-compute the summaries and re-draw the figures from stored results.")
    q.add_argument("results", type=Path, help="a sweep's output directory")
    q.add_argument("--spec", help="use this spec's outcomes and figures instead of the stored ones")
    q.add_argument("--formats", default="png,svg", help="comma-separated figure formats (default: png,svg)")
    q.set_defaults(func=plot_main)


def _run_options(p: argparse.ArgumentParser, *, default_out: str) -> None:
    p.add_argument("--workers", type=int, help="worker processes (default: the number of CPUs; 0 = in this process)")
    p.add_argument("--scheduler", metavar="ADDRESS",
                   help="run on Dask: 'local' starts a LocalCluster, tcp://host:8786 uses an existing cluster")
    p.add_argument("--out", type=Path, help=f"output directory (default: {default_out})")
    p.add_argument("--dry-run", action="store_true", help="print the number of runs and an estimated time, run nothing")
    p.add_argument("--yes", action="store_true", help="run even if the sweep is larger than the spec's max_runs")
    p.add_argument("--max-runs", type=int, help="refuse sweeps larger than this unless --yes (default: the spec's max_runs)")
    p.add_argument("--no-plots", action="store_true", help="skip the summaries and figures after the sweep")
    p.add_argument("--log-every", type=float, default=10.0, metavar="SECONDS",
                   help="seconds between progress lines when output is not a terminal, and between "
                        "'waiting' lines while a cluster has no workers (default: 10)")
    p.add_argument("--cluster-timeout", type=float, default=DEFAULT_CLUSTER_TIMEOUT, metavar="SECONDS",
                   help="with --scheduler: stop (keeping finished runs) after this long without workers, "
                        f"and give up connecting after min(this, 30) s (default: {DEFAULT_CLUSTER_TIMEOUT:g})")
    p.add_argument("--batch-size", type=int, metavar="N",
                   help="runs a worker steps together (1 = every run alone; default: the spec's batch_size, else "
                        f"chosen from the memory budget, at most {MAX_BATCH}); results do not depend on it")
    p.add_argument("--memory-budget", metavar="SIZE",
                   help="memory the batches running at once may take together, e.g. 4GB, 512MB "
                        f"(default: the spec's memory_budget, else {DEFAULT_MEMORY_BUDGET})")


def check_options(args: argparse.Namespace) -> None:
    """Numeric options: one line naming the option, the value and what is allowed."""
    if args.workers is not None and args.workers < 0:
        raise UserError(f"--workers {args.workers}: must be 0 (in this process) or more")
    if args.max_runs is not None and args.max_runs < 1:
        raise UserError(f"--max-runs {args.max_runs}: must be 1 or more")
    if not math.isfinite(args.log_every) or args.log_every < 0:
        raise UserError(f"--log-every {args.log_every:g}: must be a number of seconds, 0 or more")
    if not math.isfinite(args.cluster_timeout) or args.cluster_timeout <= 0:
        raise UserError(f"--cluster-timeout {args.cluster_timeout:g}: must be a number of seconds above 0")
    if args.batch_size is not None and args.batch_size < 1:
        raise UserError(f"--batch-size {args.batch_size}: must be 1 (every run alone) or more")
    if args.memory_budget is not None:
        try:
            parse_size(args.memory_budget)
        except ValueError as exc:
            raise UserError(f"--memory-budget: {exc}") from None


def batch_rule(args: argparse.Namespace, spec: Spec) -> BatchRule:
    """--batch-size and --memory-budget, else the spec's batch_size and memory_budget."""
    budget = args.memory_budget if args.memory_budget is not None else spec.memory_budget
    return BatchRule(parse_size(budget), args.batch_size if args.batch_size is not None else spec.batch_size)


def sweep_main(args: argparse.Namespace) -> int:
    check_options(args)
    spec = load_spec(args.spec)
    return _run(spec, args, args.out or RESULTS_DIR / spec.name, resume=args.resume)


def experiment_main(args: argparse.Namespace) -> int:
    check_options(args)
    spec = load_spec(args.name)
    out = args.out or RESULTS_DIR / spec.name
    # Re-running an experiment finishes it (the plan hash check refuses a changed spec). --fresh
    # discards the old results only once the plan is valid and the engine is up (run_sweep).
    return _run(spec, args, out, resume=Store(out).exists() and not args.fresh, fresh=args.fresh)


def plot_main(args: argparse.Namespace) -> int:
    store = Store(args.results)
    if not store.exists():
        raise UserError(f"{args.results}: no sweep results here (sweep.json is missing)")
    output_dir(args.results, "results directory")  # summaries and figures are written into it
    spec = load_spec(args.spec) if args.spec else None
    formats = tuple(f.strip() for f in args.formats.split(",") if f.strip())
    bad = [f for f in formats if f not in ("png", "svg", "pdf")]
    if not formats:
        raise UserError(f"--formats {args.formats!r}: names no format; allowed: png, svg, pdf")
    if bad:
        raise UserError(f"--formats: {', '.join(bad)} not supported; allowed: png, svg, pdf")
    _report(args.results, spec, formats)
    return 0


def _run(spec: Spec, args: argparse.Namespace, out: Path, *, resume: bool, fresh: bool = False) -> int:
    workers = default_workers() if args.workers is None else args.workers
    points = designs.size(spec)
    runs = points * spec.replicates
    limit = args.max_runs if args.max_runs is not None else spec.max_runs
    plan = Plan.make(spec)
    rule = batch_rule(args, spec)
    if args.dry_run:
        print(describe(plan, out, workers, args.scheduler, limit, cluster_timeout=args.cluster_timeout, batching=rule))
        return 0
    if runs > limit and not args.yes:
        raise UserError(f"{spec.source}: {runs:,} runs exceed the limit of {limit:,} (max_runs); "
                        f"add --yes to run them, or set max_runs / --max-runs higher")
    output_dir(out)  # a file in the way or no permission: one line now, not a traceback after the runs
    skipped = len(Store(out).done_ids()) if resume and not fresh and Store(out).exists() else 0
    progress = Progress(runs, skipped, every=args.log_every, label=spec.name)
    try:
        tally = run_sweep(plan, out, workers=workers, scheduler=args.scheduler, resume=resume, progress=progress,
                          cluster_timeout=args.cluster_timeout, fresh=fresh, batching=rule)
    except ClusterLost as exc:
        raise UserError(f"{exc.reason}; stopped with {exc.finished} of {exc.total} runs finished "
                        f"({exc.total - exc.finished} pending, kept in {out}); finish with: "
                        f"{resume_command(args, spec, out)}") from None
    except SweepError as exc:
        raise UserError(str(exc)) from None
    except KeyboardInterrupt:
        print(f"interrupted; results so far are in {out}; finish with: {resume_command(args, spec, out)}",
              file=sys.stderr)
        return 130
    print(f"results: {out}/ (runs.parquet, parts/, sweep.json)")
    if not args.no_plots:
        _report(out, spec, ("png", "svg"))
    return 1 if tally.failed and not tally.ok else 0


def resume_command(args: argparse.Namespace, spec: Spec, out: Path) -> str:
    """The command that finishes this sweep (the same engine options)."""
    if getattr(args, "command", None) == "experiment":
        words = ["aicloud", "experiment", args.name, "--out", str(out)]
    else:
        words = ["aicloud", "sweep", spec.source, "--out", str(out), "--resume"]
    if args.scheduler:
        words += ["--scheduler", args.scheduler]
    elif args.workers is not None:
        words += ["--workers", str(args.workers)]
    if args.max_runs is not None:
        words += ["--max-runs", str(args.max_runs)]
    if args.batch_size is not None:
        words += ["--batch-size", str(args.batch_size)]
    if args.memory_budget is not None:
        words += ["--memory-budget", args.memory_budget]
    if args.yes:
        words.append("--yes")
    return shlex.join(words)


def _report(out: Path, spec: Spec | None, formats: tuple[str, ...]) -> None:
    from pyarrow import ArrowException

    try:
        result = report(out, spec=spec, formats=formats)
    except AnalysisError as exc:
        raise UserError(str(exc)) from None
    except (json.JSONDecodeError, UnicodeDecodeError, ArrowException) as exc:
        # A damaged results directory (a truncated manifest, a corrupt Parquet part): say which.
        raise UserError(f"{out}: stored sweep results cannot be read ({type(exc).__name__}: {exc}); "
                        f"re-run the sweep into a fresh --out") from None
    print(f"summaries: {out}/summary/")
    for path in result["figures"]:
        print(f"figure: {path}")


def describe(plan: Plan, out: Path, workers: int, scheduler: str | None, limit: int, *,
             cluster_timeout: float = DEFAULT_CLUSTER_TIMEOUT, batching: BatchRule | None = None) -> str:
    spec, base = plan.spec, plan.base
    store = Store(out)
    same = store.exists() and store.manifest().get("plan_hash") == plan.hash()
    done = len(store.done_ids()) if same else 0
    todo = plan.runs - done
    if scheduler:
        seconds, slots, timing = _cluster_estimate(plan, workers, scheduler, cluster_timeout)
    else:
        seconds, slots, timing = estimate_seconds(plan), max(workers, 1), "here"
    unit = "Dask worker thread" if scheduler else "worker"
    if slots:
        time_line = f"{todo:,} runs on {slots} {unit}{'s' if slots != 1 else ''}: about {_duration(todo * seconds / slots)}"
    else:
        time_line = f"{todo:,} runs: about {_duration(todo * seconds)} of worker time (the cluster has no workers yet)"
    rule = spec.replication
    if rule is None:
        size = f"{len(plan.design):,} points x {spec.replicates} replicates = {plan.runs:,} runs"
    else:  # the rule decides; the cap bounds the runs and the time
        size = (f"{len(plan.design):,} points x {rule.first}-{spec.replicates} replicates (blocks of {rule.block} "
                f"until the 95 % interval of {rule.outcome} is narrower than {rule.width:g}) = "
                f"{len(plan.design) * rule.first:,} to {plan.runs:,} runs; the time below is for the most")
    lines = [
        f"experiment {spec.name}: {spec.design.kind} design, {size}",
        f"base config: {spec.base_path} ({len(spec.fixed)} fixed overrides): "
        f"{base.run.customers:,} customers x {base.run.quarters} quarters",
        f"parameters: {', '.join(spec.params) or '(none)'}",
        f"output: {out}" + (f" ({done:,} runs already done)" if done else "")
        + (" (holds results of a different sweep: use another --out, or --fresh for a preset)"
           if store.exists() and not same else ""),
        f"one run takes about {seconds:.2f} s {timing} (alone; in a batch, no longer); {time_line}",
        "runs go in " + batching_info(plan, batching or plan.batch_rule(), slots=max(slots, 1),
                                      todo=plan.first_todo(store.done_ids() if same else set()))["rule"]
        + (" (for the first block; each block is sized for its runs)" if rule is not None else ""),
    ]
    if plan.runs > limit:
        lines.append(f"this exceeds max_runs = {limit:,}: the sweep needs --yes")
    return "\n".join(lines)


def _cluster_estimate(plan: Plan, workers: int, scheduler: str, timeout: float) -> tuple[float, int, str]:
    """Time one run on a worker of the cluster (its set-up can make runs slower than here)."""
    try:
        engine = open_engine(workers, scheduler, timeout=timeout)
    except EngineError as exc:
        raise UserError(str(exc)) from None
    try:
        state = engine.health()
        if not state.threads:
            return estimate_seconds(plan), 0, "here (no worker to time it on yet)"
        return estimate_seconds(plan, engine), state.threads, "on a Dask worker"
    finally:
        engine.close()


def _duration(seconds: float) -> str:
    if seconds < 90:
        return f"{seconds:.0f} s"
    if seconds < 5400:
        return f"{seconds / 60:.0f} min"
    return f"{seconds / 3600:.1f} h"
