"""Measure one configuration (version x customers) in this process and print one JSON line.

Run by ``benchmarks.run`` in a fresh subprocess per configuration, so that the
peak RSS belongs to that configuration alone.  The work is single-threaded (the
aims are per core; ``run`` sets the BLAS thread counts to 1); ``--pin`` also pins
the process to one CPU.  Memory "above start" is the peak resident set during
the measured work minus the resident set just before it (after imports): the
kernel's peak-RSS counter is reset at that point.

    python -m benchmarks.measure VERSION CUSTOMERS [--quarters 40] [--repeat 1] [--seed 1]
"""

from __future__ import annotations

import argparse
import gc
import json
import os
import sys
import tempfile
import time
from pathlib import Path

VERSIONS = ("mesa", "mesa-shuffle", "naive", "kernel", "choice", "market", "full", "cli")


def memory_kb() -> dict[str, int]:
    found = {}
    with open("/proc/self/status") as fh:
        for line in fh:
            if line.startswith(("VmRSS:", "VmHWM:")):
                key, value = line.split(":")
                found[key] = int(value.split()[0])
    return found


def reset_peak() -> bool:
    try:
        with open("/proc/self/clear_refs", "w") as fh:
            fh.write("5")
        return True
    except OSError:
        return False


def pin_one_cpu() -> int | None:
    try:
        cpu = max(os.sched_getaffinity(0))
        os.sched_setaffinity(0, {cpu})
        return cpu
    except (AttributeError, OSError):
        return None


def now() -> tuple[float, float]:
    return time.perf_counter(), time.process_time()


def once(version: str, customers: int, quarters: int, seed: int) -> tuple[list[float], list[float]]:
    """Wall and CPU seconds of one run, each as [setup, quarters, collect]."""
    from benchmarks import choice_rule, engine, kernel
    from benchmarks.mesa_reference import ChoiceReference
    from sim.model import Market

    t0 = now()
    if version == "full":
        market = Market(config=choice_rule.full_config(customers, quarters=quarters))
        t1 = now()
        engine.run_market_step(market, quarters)
        t2 = now()
        market.recorder.frames()  # what sim.simulate.simulate returns
    elif version == "cli":
        from sim.cli import main

        with tempfile.TemporaryDirectory() as out:
            t1 = t0
            main(["run", choice_rule.PRESET, "--customers", str(customers), "--quarters", str(quarters),
                  "--out", str(Path(out) / "run")])
            t2 = now()
    elif version in ("choice", "market"):
        market = Market(config=choice_rule.choice_config(customers, seed, quarters))
        t1 = now()
        (engine.run_choice_step if version == "choice" else engine.run_market_step)(market, quarters)
        t2 = now()
    else:
        market, rule, pop = choice_rule.start(customers, seed)
        del market
        if version in ("kernel", "naive"):
            t1 = now()
            kernel.run(pop, rule, quarters, seed, naive=version == "naive")
        else:
            model = ChoiceReference(population=pop, rule=rule, rng=seed,
                                    activation="shuffle_do" if version == "mesa-shuffle" else "do")
            del pop
            t1 = now()
            for _ in range(quarters):
                model.step()
        t2 = now()
    t3 = now()
    return ([t1[0] - t0[0], t2[0] - t1[0], t3[0] - t2[0]],
            [t1[1] - t0[1], t2[1] - t1[1], t3[1] - t2[1]])


def measure(version: str, customers: int, quarters: int, repeat: int, seed: int, pin: bool = False) -> dict:
    import benchmarks.choice_rule  # noqa: F401  (imports numpy, mesa, sim: not part of the measurement)
    import benchmarks.mesa_reference  # noqa: F401
    import sim.cli  # noqa: F401

    cpu = pin_one_cpu() if pin else None
    gc.collect()
    before = memory_kb()["VmRSS"]
    exact_peak = reset_peak()
    walls, cpus = [], []
    for _ in range(repeat):
        wall, cpu_time = once(version, customers, quarters, seed)
        walls.append(wall)
        cpus.append(cpu_time)
        gc.collect()
    after = memory_kb()
    best = min(walls, key=sum)
    return {
        "version": version, "customers": customers, "quarters": quarters, "repeat": repeat, "cpu": cpu,
        "setup_s": best[0], "quarters_s": best[1], "collect_s": best[2], "total_s": sum(best),
        "cpu_s": min(sum(c) for c in cpus), "cpu_quarters_s": min(c[1] for c in cpus),
        "load_1min": os.getloadavg()[0],
        "rss_start_mb": before / 1024, "rss_peak_mb": after["VmHWM"] / 1024,
        "above_start_mb": (after["VmHWM"] - before) / 1024, "exact_peak": exact_peak,
    }


def main(argv: list[str] | None = None) -> int:
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    p.add_argument("version", choices=VERSIONS)
    p.add_argument("customers", type=int)
    p.add_argument("--quarters", type=int, default=40)
    p.add_argument("--repeat", type=int, default=1)
    p.add_argument("--seed", type=int, default=1)
    p.add_argument("--pin", action="store_true", help="pin the process to one CPU (on a busy machine this can hurt)")
    a = p.parse_args(argv)
    result = measure(a.version, a.customers, a.quarters, a.repeat, a.seed, a.pin)
    sys.stdout.write(json.dumps(result) + "\n")
    return 0


if __name__ == "__main__":
    sys.exit(main())
