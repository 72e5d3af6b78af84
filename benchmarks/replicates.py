"""Replicates in batches against one by one: CPU seconds of ``sim.api.replicate``'s work.

``sim.api.replicate`` and the calibration's replicates (``sim.calibration.replicate``) run the
seeds of one config through ``sim.simulate.simulate_many``: batches of ``sim.batch.run_batch``.
This measures, in one process, alternated rounds of the same seeds run one by one
(``simulate`` per seed, as before) and batched (``simulate_many``), and checks that both give the
same tables.

    python -m benchmarks.replicates [--seeds 20] [--customers 1000 10000] [--rounds 3] [--preset china_2025]
"""

from __future__ import annotations

import argparse
import json
import time

import pandas as pd


def cpu(fn) -> tuple[float, object]:
    began = time.process_time()
    out = fn()
    return time.process_time() - began, out


def measure(preset: str, customers: int, seeds: int, rounds: int) -> dict:
    from sim.config import load_config, with_overrides
    from sim.simulate import simulate, simulate_many

    base = with_overrides(load_config(preset), {"run.customers": customers}, source="benchmarks.replicates")
    configs = [with_overrides(base, {"run.seed": base.run.seed + i}, source="benchmarks.replicates") for i in range(seeds)]
    fns = {"alone": lambda: [simulate(c) for c in configs], "batched": lambda: simulate_many(configs)}
    times: dict[str, list[float]] = {"alone": [], "batched": []}
    kept = {}
    for r in range(rounds):
        for name in (("alone", "batched") if r % 2 == 0 else ("batched", "alone")):
            t, results = cpu(fns[name])
            times[name].append(t)
            if r == 0:
                kept[name] = results
            del results
    for a, b in zip(kept["alone"], kept["batched"]):  # the same tables, bit for bit
        for table in ("providers", "market", "flows"):
            pd.testing.assert_frame_equal(getattr(a, table), getattr(b, table), check_exact=True)
    alone, batched = times["alone"], times["batched"]
    return {"preset": preset, "customers": customers, "seeds": seeds, "quarters": base.run.quarters,
            "alone_cpu": [round(x, 3) for x in alone], "batched_cpu": [round(x, 3) for x in batched],
            "ratio_best": round(min(alone) / min(batched), 2),
            "ratios": [round(a / b, 2) for a, b in zip(alone, batched)]}


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--seeds", type=int, default=20)
    parser.add_argument("--customers", type=int, nargs="+", default=[1000, 10_000])
    parser.add_argument("--rounds", type=int, default=3)
    parser.add_argument("--preset", default="china_2025")
    args = parser.parse_args(argv)
    for n in args.customers:
        print(json.dumps(measure(args.preset, n, args.seeds, args.rounds)), flush=True)
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
