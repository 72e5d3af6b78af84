"""The batched choice rule on a GPU: throughput and agreement with the CPU engine.

    python -m benchmarks.gpu [--runs 1000] [--customers 100000] [--quarters 40] [--library cupy|torch|numpy]

Runs ``benchmarks/batch_kernel.py`` (runs as the leading axis, array-API operations only)
for a batch of ``--runs`` runs x ``--customers`` customers x ``--quarters`` quarters on the
first GPU array library that works here (CuPy, then PyTorch; ``--library`` picks one, and
``numpy`` runs the same code on the CPU), in chunks of runs that fit in half the device's free
memory.  Prints customer-quarters per second, then checks that the batch agrees in
distribution with the engine's CPU kernel (chi-square, ``benchmarks/agreement.py``) on
smaller populations.  Without CUDA or a GPU library it prints why and exits 0 (skipped);
results go to benchmarks/results/gpu.json.  docs/performance.md gives the expected gain and
what limits it.
"""

from __future__ import annotations

import argparse
import json
import sys
import time
from functools import partial
from pathlib import Path

import numpy as np

from benchmarks import agreement, batch_kernel
from benchmarks.choice_rule import start
from sim.arrays import Arrays, ArraysUnavailable, arrays, gpu
from sim.output import write_text

RESULTS = Path(__file__).resolve().parent / "results"
DISTINCT = 8  # distinct starting populations, repeated across the batch (each run draws its own numbers)


def device_bytes(lib: Arrays) -> int | None:
    """Free device memory in bytes (None on the CPU: no limit assumed beyond the chunk size)."""
    if lib.name == "cupy":
        import cupy

        return int(cupy.cuda.runtime.memGetInfo()[0])
    if lib.name == "torch" and str(lib.device).startswith("cuda"):
        import torch

        return int(torch.cuda.mem_get_info(lib.device)[0])
    return None


def bytes_per_run(customers: int, slots: int) -> int:
    """Device memory one run of the batch needs: its state plus one quarter's temporaries."""
    state = 8 + 16 + 8 + 2 + 1  # segment (int64), weights, provider (int64), tenure, uses_model
    temporaries = slots * 4 * 5 + 8 * 4 + 4 * 8  # utilities, noise, masks; indices; per-customer float32 terms
    return customers * (state + temporaries)


def chunk_size(lib: Arrays, runs: int, customers: int, slots: int, cpu_budget: int = 2 * 2**30) -> int:
    """Runs per chunk: as many as fit in half the free device memory (``cpu_budget`` on the CPU)."""
    free = device_bytes(lib)
    budget = free // 2 if free is not None else cpu_budget
    return max(1, min(runs, budget // max(bytes_per_run(customers, slots), 1)))


def throughput(lib: Arrays, runs: int, customers: int, quarters: int, seed: int = 1) -> dict:
    starts = [start(customers, seed + i) for i in range(min(DISTINCT, runs))]
    rule = starts[0][1]
    slots = rule.active.size
    chunk = chunk_size(lib, runs, customers, slots)
    device_rule = batch_kernel.to_device(lib, rule)
    gen = lib.generator(seed + 50_000)
    elapsed, done = 0.0, 0
    while done < runs:
        size = min(chunk, runs - done)
        batch = batch_kernel.batch_of(lib, [starts[(done + r) % len(starts)][2] for r in range(size)])
        lib.synchronize()
        began = time.perf_counter()
        for _ in range(quarters):
            batch_kernel.quarter(lib, batch, device_rule, gen)
        lib.synchronize()
        elapsed += time.perf_counter() - began
        done += size
        del batch
    cq = runs * customers * quarters
    return {"library": lib.name, "device": str(lib.device), "runs": runs, "customers": customers, "quarters": quarters,
            "chunk_runs": chunk, "seconds": round(elapsed, 4), "customer_quarters_per_s": cq / elapsed,
            "bytes_per_customer_quarter": batch_kernel.bytes_per_customer_quarter(slots)}


def run_on(lib: Arrays, customers: int, quarters: int, seed: int, copies: int = 4) -> dict:
    """An agreement runner: ``copies`` runs of one engine population on ``lib``, pooled."""
    _, rule, pop = start(customers, seed)
    states = batch_kernel.final_states(lib, batch_kernel.run(lib, [pop] * copies, rule, quarters, seed + 40_000))
    return {k: np.concatenate([s[k] for s in states]) for k in states[0]}


def main(argv: list[str] | None = None) -> int:
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    p.add_argument("--runs", type=int, default=1000)
    p.add_argument("--customers", type=int, default=100_000)
    p.add_argument("--quarters", type=int, default=40)
    p.add_argument("--library", choices=("cupy", "torch", "numpy"), default=None,
                   help="default: the first GPU library that works (cupy, then torch)")
    p.add_argument("--check-customers", type=int, default=4000, help="population size of the agreement check")
    p.add_argument("--out", type=Path, default=RESULTS / "gpu.json")
    args = p.parse_args(argv)
    try:
        lib = arrays(args.library) if args.library else gpu()
    except ArraysUnavailable as exc:
        print(f"benchmarks.gpu: skipped: {exc}")
        return 0
    print(f"benchmarks.gpu: {lib.name} on {lib.device}: {args.runs:,} runs x {args.customers:,} customers x {args.quarters} quarters")
    speed = throughput(lib, args.runs, args.customers, args.quarters)
    print(f"  {speed['seconds']:.2f} s in chunks of {speed['chunk_runs']:,} runs: "
          f"{speed['customer_quarters_per_s']:.3g} customer-quarters/s "
          f"(~{speed['bytes_per_customer_quarter']} bytes of memory traffic per customer-quarter)")
    check = agreement.check(customers=args.check_customers, quarters=args.quarters, versions={
        "CPU engine kernel": agreement.run_kernel, f"batched on {lib.name}": partial(run_on, lib)})
    print("  agreement with the CPU engine: " + ", ".join(f"{k} p = {v:.3g}" for k, v in check.p_values.items())
          + (" - agree" if check.ok else " - DISAGREE"))
    write_text(args.out, json.dumps({**speed, "agreement_p_values": check.p_values, "agree": check.ok}, indent=2) + "\n")
    return 0 if check.ok else 1


if __name__ == "__main__":
    sys.exit(main())
