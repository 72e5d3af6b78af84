"""``make bench``: check that the three versions of the choice rule agree, then measure
them and the full model at 1k-1M customers, then issue 15's many-runs aims (sweeps, batches
of one, ``mesa.batch_run``: ``benchmarks/batching.py``), and write the results.

    python -m benchmarks.run [--quick] [--no-readme]

Writes (atomically) into benchmarks/results/: scaling.md (tables), scaling.json
(every measurement, the machine, versions), scaling.png (log-log plot); and puts
the latest table into README.md between the benchmark markers.  Exits 1 without
measuring anything if the versions disagree in distribution.
"""

from __future__ import annotations

import argparse
import json
import os
import subprocess
import sys
import time
from pathlib import Path

from benchmarks import agreement, batching, report
from benchmarks.choice_rule import NEUTRAL, PRESET, choice_config, full_config
from sim.output import git_commit, versions, write_json, write_text

ROOT = Path(__file__).resolve().parent.parent
RESULTS = ROOT / "benchmarks" / "results"
README = ROOT / "README.md"
START, END = "<!-- bench:start -->", "<!-- bench:end -->"
SIZES = (1_000, 10_000, 100_000, 1_000_000)
MESA_MAX = 100_000
CLI_SIZES = (100_000, 1_000_000)
# One thread everywhere: the aims are per core.
SINGLE_THREAD = {k: "1" for k in ("OPENBLAS_NUM_THREADS", "OMP_NUM_THREADS", "MKL_NUM_THREADS")}


def plan(quick: bool) -> list[tuple[str, int, int]]:
    sizes = SIZES[:2] if quick else SIZES
    jobs = []
    for n in sizes:
        repeat = 5 if n <= 10_000 else 3 if n <= 100_000 else 1
        for version in ("naive", "kernel", "choice", "market", "full"):
            jobs.append((version, n, repeat))
        if n <= MESA_MAX:
            jobs.append(("mesa", n, 3 if n <= 10_000 else 1))
            jobs.append(("mesa-shuffle", n, 3 if n <= 10_000 else 1))
        if n in CLI_SIZES:
            jobs.append(("cli", n, 1))
    return jobs


def measure(version: str, customers: int, repeat: int) -> dict:
    cmd = [sys.executable, "-m", "benchmarks.measure", version, str(customers), "--repeat", str(repeat)]
    done = subprocess.run(cmd, cwd=ROOT, env={**os.environ, **SINGLE_THREAD}, capture_output=True, text=True)
    if done.returncode != 0:
        raise SystemExit(f"measurement failed: {' '.join(cmd)}\n{done.stderr}")
    return json.loads(done.stdout.strip().splitlines()[-1])


def manifest() -> dict:
    """What the numbers were measured on: code version, package versions, the configs (hashes) and seeds."""
    choice, full = choice_config(1_000, seed=1), full_config(1_000)
    return {"git_commit": git_commit(), "versions": versions(),
            "choice_rule_config_hash": choice.hash(), "choice_rule_overrides": NEUTRAL, "full_model_preset": PRESET,
            "full_model_config_hash": full.hash(), "seeds": {"choice rule": 1, "full model": full.run.seed},
            "note": "config hashes are for 1,000 customers; run.customers is the only field that varies"}


def render(results: list[dict], check: agreement.Agreement, info: dict, many: list | None = None) -> str:
    return "\n\n".join([
        "# Benchmark results", report.machine_line(info, results),
        "## Aims", "Ratios are judged on CPU time, absolute times and rates on wall time.",
        report.aims_table(report.aims(results)),
        *(["## Many runs (issue 15)", batching.markdown(many)] if many else []),
        "## Scaling (40 quarters)", report.table(results),
        "Setup = drawing the population (every version) plus building one Mesa agent per customer (reference). "
        "Customer-quarters/s and bytes/customer are over the total. The per-agent reference runs up to "
        f"{MESA_MAX:,} customers.",
        "## Agreement", check.markdown(),
    ]) + "\n"


def readme_block(results: list[dict], info: dict, many: list | None = None) -> str:
    many_runs = ["Many runs (issue 15; `benchmarks/batching.py`, CPU time, best of 2 alternated rounds):",
                 batching.markdown(many)] if many else []
    return "\n\n".join([START, report.machine_line(info, results),
                        "Ratios are judged on CPU time, absolute times and rates on wall time.",
                        report.aims_table(report.aims(results)), *many_runs,
                        "Total wall time for 40 quarters (setup included) and customer-quarters per second:",
                        report.pivot(results),
                        "Every measurement (setup, quarters, CPU time, peak memory), the agreement check and the "
                        "log-log plot: `benchmarks/results/scaling.md`, `scaling.png`. Run again with `make bench`.", END])


def update_readme(block: str) -> bool:
    text = README.read_text(encoding="utf-8")
    if START not in text or END not in text:
        return False
    head, rest = text.split(START, 1)
    _, tail = rest.split(END, 1)
    write_text(README, head + block + tail)
    return True


def main(argv: list[str] | None = None) -> int:
    p = argparse.ArgumentParser(description="Benchmarks: agreement check, then scaling of every version.")
    p.add_argument("--quick", action="store_true", help="1k and 10k customers only (a smoke run)")
    p.add_argument("--no-readme", action="store_true", help="do not update README.md")
    args = p.parse_args(argv)

    print("checking that the versions agree in distribution ...", flush=True)
    try:
        check = agreement.require(agreement.check())
    except agreement.AgreementError as exc:
        print(f"BENCHMARK STOPPED: {exc}", file=sys.stderr)
        return 1
    print(check.markdown(), flush=True)

    results = []
    for version, n, repeat in plan(args.quick):
        started = time.perf_counter()
        results.append(measure(version, n, repeat))
        r = results[-1]
        print(f"{version:7s} {n:>9,}: total {r['total_s']:.3f} s, {report.rate(r) / 1e6:.2f} M customer-quarters/s, "
              f"{r['above_start_mb']:.1f} MB above start ({time.perf_counter() - started:.1f} s)", flush=True)

    print("many runs (issue 15): sweeps, batches of one, mesa.batch_run ...", flush=True)
    best, every = batching.run_all(args.quick, rounds=1 if args.quick else 2)
    many = batching.aims(best)

    info = report.machine()
    out = RESULTS / ("quick" if args.quick else "")
    write_json(out / "scaling.json", {"machine": info, "manifest": manifest(), "results": results,
                                      "agreement": {"p_values": check.p_values, "customers": check.customers,
                                                    "seeds": check.seeds},
                                      "many_runs": {"best": best, "every": every, "aims": many}})
    write_text(out / "scaling.md", render(results, check, info, many))
    report.plot(results, out / "scaling.png")
    print("\n" + report.aims_table(report.aims(results)))
    print("\n" + batching.markdown(many))
    print(f"\nwrote {out}/scaling.md, scaling.json, scaling.png")
    if not args.quick and not args.no_readme:
        print("README.md updated" if update_readme(readme_block(results, info, many)) else
              f"README.md has no {START} ... {END} block: not updated")
    return 0


if __name__ == "__main__":
    sys.exit(main())
