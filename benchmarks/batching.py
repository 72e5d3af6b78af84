"""Issue 15's aims for many runs, measured side by side as ratios of CPU time.

    python -m benchmarks.batching [--quick] [--rounds 2]

Each measurement runs in a fresh process (``python -m benchmarks.batching one NAME``), one
thread, and prints its CPU seconds; the measurements alternate over ``--rounds`` rounds so that
other load on the shared machine hits both sides of a ratio alike, and the best of the rounds is
kept.  Measured:

- ``sweep_1k``: ``run_sweep`` of 200 runs x 1,000 customers x 40 quarters of china_2025 in one
  process (Parquet parts, journal, manifest: everything a sweep writes), batched as a sweep batches
  by default (``sim.experiment.batching``);
- ``mesa_1k``: ``mesa.batch_run`` of the per-agent Mesa reference (``benchmarks/mesa_reference.py``,
  the choice rule only), 200 runs x 1,000 customers x 40 steps;
- ``runs_10k``: 100 separate runs of 10,000 customers (``simulate``), i.e. batches of one;
- ``one_1m``: one run of 1,000,000 customers;
- ``sweep_10k``: ``run_sweep`` of the same 100 runs of 10,000 customers, batched by default (what a
  sweep adds per run, or saves once batches step together);
- ``batched_10k`` and ``alone_10k``: ``run_sweep`` of 1,000 runs x 10,000 customers x 40 quarters on
  one worker (in the measuring process), with the default batching (batches of 100) and with
  ``batch_size = 1`` (every run alone), same commit, same runs;
- ``memory_10k``: peak memory above the start of ``sim.batch.run_batch`` of 100 runs x 10,000
  customers x 40 quarters (process peak RSS, ``ru_maxrss``, less the RSS before the batch), per
  customer per run: the measure for ``sim.batch.BYTES_PER_CUSTOMER``, and a check that the whole
  ``sim.batch.run_bytes``, which sizes a sweep's batches, is at least what a run held;
- ``axis_10k``: the runs-axis prototype (``benchmarks/runs_axis.py``, the choice rule only): 100
  runs x 10,000 customers stepped together against the same runs one by one.

Aims it judges (``aims``): a sweep of 1,000 runs x 10k on one worker at least 5x fewer CPU seconds
with batching than with batches of one (``alone_10k`` / ``batched_10k``); 200 runs x 1k at least 20x
faster than ``mesa.batch_run``; per customer-quarter, a batch of 100 runs x 10k (``memory_10k``: one
``run_batch`` call) within 1.5x of one run of 1M (``runs_10k``, the same runs one by one, for information);
at most 300 bytes per customer per run in a batch (``memory_10k``).
The sweep batches its runs (``sim.experiment.batching``) whatever the engine does with a batch: the
batching ratio measures how much ``sim.batch.run_batch`` gains by stepping a batch's runs together
(near 1 while it steps them one after another).  Results: benchmarks/results/batching.json and .md;
``benchmarks.run`` puts the aims into the README table.
"""

from __future__ import annotations

import argparse
import json
import os
import subprocess
import sys
import tempfile
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
RESULTS = ROOT / "benchmarks" / "results"
SINGLE_THREAD = {k: "1" for k in ("OPENBLAS_NUM_THREADS", "OMP_NUM_THREADS", "MKL_NUM_THREADS")}
QUARTERS = 40


def sizes(quick: bool) -> dict[str, tuple[int, int]]:
    """name -> (runs, customers)."""
    if quick:
        return {"sweep_1k": (20, 1000), "mesa_1k": (20, 1000), "runs_10k": (10, 10_000), "one_1m": (1, 100_000),
                "sweep_10k": (10, 10_000), "axis_10k": (10, 10_000), "batched_10k": (50, 2000),
                "alone_10k": (50, 2000), "memory_10k": (10, 10_000)}
    return {"sweep_1k": (200, 1000), "mesa_1k": (200, 1000), "runs_10k": (100, 10_000), "one_1m": (1, 1_000_000),
            "sweep_10k": (100, 10_000), "axis_10k": (100, 10_000), "batched_10k": (1000, 10_000),
            "alone_10k": (1000, 10_000), "memory_10k": (100, 10_000)}


def sweep_cpu(runs: int, customers: int, batch_size: int | None = None) -> tuple[float, int]:
    """CPU seconds of ``run_sweep`` (one worker: in this process) and the batch size it used
    (``batch_size`` None: the default rule, 4 GB budget)."""
    from sim.experiment.runner import Plan, run_sweep
    from sim.experiment.spec import validate_spec
    from sim.experiment.store import load_manifest

    raw = {"name": "batching", "base": "china_2025", "replicates": runs, "seed": 1, "max_runs": max(runs, 1),
           "fixed": {"run.customers": customers, "run.quarters": QUARTERS}, "params": {}}
    if batch_size is not None:
        raw["batch_size"] = batch_size
    plan = Plan.make(validate_spec(raw, "benchmarks/batching.py"))
    with tempfile.TemporaryDirectory(prefix="batching_") as out:
        began = time.process_time()
        tally = run_sweep(plan, Path(out) / "sweep", workers=0, log=lambda *a, **k: None,
                          progress=_quiet_progress(plan.runs))
        cpu = time.process_time() - began
        size = load_manifest(Path(out) / "sweep")["batching"]["batch_size"]
    if tally.failed:
        raise SystemExit(f"{tally.failed} runs of the sweep failed")
    return cpu, size


def batch_memory(runs: int, customers: int) -> tuple[float, float]:
    """CPU seconds and peak memory above the start (bytes) of ``run_batch`` of ``runs`` runs of
    ``customers`` customers: the process's peak RSS after the batch less its RSS before it."""
    import resource

    from benchmarks.choice_rule import full_config
    from sim.batch import run_batch

    configs = [full_config(customers, seed=1 + i) for i in range(runs)]
    with open("/proc/self/statm") as fh:
        before = int(fh.read().split()[1]) * os.sysconf("SC_PAGE_SIZE")
    began = time.process_time()
    markets = run_batch(configs)
    cpu = time.process_time() - began
    peak = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss * 1024  # KiB on Linux
    del markets
    return cpu, max(0, peak - before)


def _quiet_progress(runs: int):
    import io

    from sim.experiment.progress import Progress

    return Progress(runs, stream=io.StringIO(), tty=False)


def mesa_cpu(runs: int, customers: int) -> float:
    import mesa

    from benchmarks.choice_rule import population_of, start
    from benchmarks.mesa_reference import ChoiceReference

    class Reference(ChoiceReference):
        """The per-agent reference with what ``mesa.batch_run`` needs: a DataCollector."""

        def __init__(self, rng=None):
            market, rule, _ = start(customers, 1 if rng is None else rng)
            super().__init__(population=population_of(market), rule=rule, rng=rng)
            self.datacollector = mesa.DataCollector(model_reporters={"customers": lambda m: len(m.agents)})

        def step(self):
            super().step()
            self.datacollector.collect(self)

    began = time.process_time()
    mesa.batch_run(Reference, parameters={}, rng=list(range(1, runs + 1)), max_steps=QUARTERS, number_processes=1,
                   display_progress=False)
    return time.process_time() - began


def runs_cpu(runs: int, customers: int) -> float:
    from benchmarks.choice_rule import full_config
    from sim.simulate import simulate

    configs = [full_config(customers, seed=1 + i) for i in range(runs)]
    began = time.process_time()
    for config in configs:
        simulate(config)
    return time.process_time() - began


def axis_cpu(runs: int, customers: int) -> tuple[float, float]:
    """The runs-axis prototype (choice rule only): CPU seconds of one batch of ``runs`` and of the
    same runs one by one, through the same code, best of two alternated rounds."""
    from benchmarks import runs_axis
    from benchmarks.choice_rule import start

    _, rule, pop = start(customers, 1)
    seeds = list(range(1, runs + 1))
    batch, alone = [], []
    for _ in range(2):
        began = time.process_time()
        runs_axis.run([pop] * runs, rule, QUARTERS, seeds)
        batch.append(time.process_time() - began)
        began = time.process_time()
        for seed in seeds:
            runs_axis.run([pop], rule, QUARTERS, [seed])
        alone.append(time.process_time() - began)
    return min(batch), min(alone)


def one(name: str, runs: int, customers: int) -> dict:
    from benchmarks.choice_rule import full_config
    from sim.simulate import simulate

    simulate(full_config(1000))  # imports and caches outside the measurement
    if name == "axis_10k":
        batch, alone = axis_cpu(runs, customers)
        return {"name": name, "runs": runs, "customers": customers, "quarters": QUARTERS, "cpu_s": batch,
                "cpu_alone_s": alone, "cpu_ns_per_customer_quarter": 1e9 * batch / (runs * customers * QUARTERS)}
    extra = {}
    if name == "memory_10k":
        from sim.batch import run_bytes

        cpu, above = batch_memory(runs, customers)
        return {"name": name, "runs": runs, "customers": customers, "quarters": QUARTERS, "cpu_s": cpu,
                "cpu_ns_per_customer_quarter": 1e9 * cpu / (runs * customers * QUARTERS), "above_start_bytes": above,
                "bytes_per_customer_run": above / (runs * customers),
                "run_bytes": run_bytes(full_config(customers, quarters=QUARTERS))}
    if name in ("sweep_1k", "sweep_10k", "batched_10k", "alone_10k"):
        cpu, extra["batch_size"] = sweep_cpu(runs, customers, 1 if name == "alone_10k" else None)
    else:
        cpu = {"mesa_1k": mesa_cpu}.get(name, runs_cpu)(runs, customers)
    return {"name": name, "runs": runs, "customers": customers, "quarters": QUARTERS, "cpu_s": cpu,
            "cpu_ns_per_customer_quarter": 1e9 * cpu / (runs * customers * QUARTERS), **extra}


def measure(name: str, runs: int, customers: int) -> dict:
    cmd = [sys.executable, "-m", "benchmarks.batching", "one", name, str(runs), str(customers)]
    done = subprocess.run(cmd, cwd=ROOT, env={**os.environ, **SINGLE_THREAD}, capture_output=True, text=True)
    if done.returncode != 0:
        raise SystemExit(f"measurement failed: {' '.join(cmd)}\n{done.stderr[-2000:]}")
    return json.loads(done.stdout.strip().splitlines()[-1])


def aims(best: dict[str, dict]) -> list[tuple[str, str, bool | None]]:
    """(aim, measured, met) rows; met None = information, not an aim."""
    out: list[tuple[str, str, bool | None]] = []
    if "batched_10k" in best and "alone_10k" in best:
        b, a = best["batched_10k"], best["alone_10k"]
        x = a["cpu_s"] / b["cpu_s"]
        out.append((f"sweep of {b['runs']:,} runs x {b['customers']:,} customers on one worker: >= 5x fewer CPU seconds "
                    "with batching than with batches of one",
                    f"{x:.2f}x ({b['cpu_s']:.1f} s in batches of {b.get('batch_size', '?')} vs {a['cpu_s']:.1f} s alone)",
                    x >= 5))
    if "memory_10k" in best and "one_1m" in best:
        # memory_10k is one sim.batch.run_batch of 100 runs x 10,000: the batch the aim names.
        r, o = best["memory_10k"], best["one_1m"]
        x = r["cpu_ns_per_customer_quarter"] / o["cpu_ns_per_customer_quarter"]
        out.append((f"per customer-quarter, a batch of {r['runs']} runs x {r['customers']:,} within 1.5x of one run of "
                    f"{o['customers']:,}",
                    f"{x:.2f}x ({r['cpu_ns_per_customer_quarter']:.0f} vs {o['cpu_ns_per_customer_quarter']:.0f} ns CPU; "
                    "one run_batch call)", x <= 1.5))
    if "runs_10k" in best and "one_1m" in best:
        r, o = best["runs_10k"], best["one_1m"]
        x = r["cpu_ns_per_customer_quarter"] / o["cpu_ns_per_customer_quarter"]
        out.append((f"(information) the same per customer-quarter for {r['runs']} runs x {r['customers']:,} "
                    f"one by one (batches of one)",
                    f"{x:.2f}x ({r['cpu_ns_per_customer_quarter']:.0f} vs {o['cpu_ns_per_customer_quarter']:.0f} ns CPU)",
                    None))
    if "sweep_1k" in best and "mesa_1k" in best:
        s, m = best["sweep_1k"], best["mesa_1k"]
        x = m["cpu_s"] / s["cpu_s"]
        out.append((f"{s['runs']} runs x {s['customers']:,} customers: sweep >= 20x faster than mesa.batch_run of the "
                    "per-agent reference", f"{x:.2f}x CPU time ({s['cpu_s']:.2f} s vs {m['cpu_s']:.2f} s)", x >= 20))
    if "sweep_10k" in best and "runs_10k" in best:
        s, r = best["sweep_10k"], best["runs_10k"]
        out.append((f"(information) what a sweep adds per run, {s['runs']} runs x {s['customers']:,}",
                    f"{s['cpu_s'] / r['cpu_s']:.2f}x the bare runs' CPU time ({s['cpu_s']:.2f} s vs {r['cpu_s']:.2f} s)", None))
    if "memory_10k" in best:
        m = best["memory_10k"]
        out.append((f"memory: at most 300 bytes per customer per run in a batch ({m['runs']} runs x {m['customers']:,})",
                    f"{m['bytes_per_customer_run']:.0f} bytes ({m['above_start_bytes'] / 1e6:.0f} MB above the start, peak RSS)",
                    m["bytes_per_customer_run"] <= 300))
        if "run_bytes" in m:  # what sizes a sweep's batches must not be below what a batch holds
            per_run = m["above_start_bytes"] / m["runs"]
            out.append((f"(check) `sim.batch.run_bytes`, which sizes a sweep's batches, is at least what a run holds "
                        f"({m['runs']} runs x {m['customers']:,} x {m['quarters']} quarters)",
                        f"{per_run / 1e6:.2f} MB a run held against {m['run_bytes'] / 1e6:.2f} MB estimated "
                        f"({per_run / m['run_bytes']:.2f})", per_run <= m["run_bytes"]))
    if "axis_10k" in best:
        a = best["axis_10k"]
        out.append((f"(prototype, choice rule only: `benchmarks/runs_axis.py`) {a['runs']} runs x {a['customers']:,} "
                    "stepped together against one by one, each run bit-identical either way",
                    f"{a['cpu_alone_s'] / a['cpu_s']:.2f}x fewer CPU seconds ({a['cpu_s']:.2f} s vs {a['cpu_alone_s']:.2f} s; "
                    f"{a['cpu_ns_per_customer_quarter']:.0f} ns per customer-quarter)", None))
    return out


def markdown(rows: list[tuple[str, str, bool | None]]) -> str:
    verdict = {True: "yes", False: "**no**", None: "-"}
    return "\n".join(["| aim | measured | met |", "|---|---:|:---:|"]
                     + [f"| {a} | {m} | {verdict[ok] if not m.startswith('not built') else '**not built**'} |"
                        for a, m, ok in rows])


def run_all(quick: bool, rounds: int) -> tuple[dict[str, dict], list[dict]]:
    every: list[dict] = []
    plan = sizes(quick)
    for i in range(rounds):
        names = list(plan) if i % 2 == 0 else list(reversed(plan))  # alternate the order
        for name in names:
            every.append(measure(name, *plan[name]))
            r = every[-1]
            print(f"  {name:10s} {r['runs']:>4} x {r['customers']:>9,}: {r['cpu_s']:.2f} s CPU "
                  f"({r['cpu_ns_per_customer_quarter']:.0f} ns per customer-quarter)", flush=True)
    best = {name: min((r for r in every if r["name"] == name), key=lambda r: r["cpu_s"]) for name in plan}
    return best, every


def main(argv: list[str] | None = None) -> int:
    argv = sys.argv[1:] if argv is None else argv
    if argv[:1] == ["one"]:
        print(json.dumps(one(argv[1], int(argv[2]), int(argv[3]))))
        return 0
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    p.add_argument("--quick", action="store_true", help="a tenth of the runs, 100k instead of 1M (a smoke run)")
    p.add_argument("--rounds", type=int, default=2)
    args = p.parse_args(argv)
    best, every = run_all(args.quick, args.rounds)
    rows = aims(best)
    from sim.output import git_commit, write_json, write_text

    out = RESULTS / ("quick" if args.quick else "")
    write_json(out / "batching.json", {"git_commit": git_commit(), "load_1min": os.getloadavg()[0], "best": best,
                                       "every": every, "aims": rows})
    write_text(out / "batching.md", "# Many runs (issue 15), CPU time, best of "
               f"{args.rounds} alternated rounds\n\n" + markdown(rows) + "\n")
    print(markdown(rows))
    return 0


if __name__ == "__main__":
    sys.exit(main())
