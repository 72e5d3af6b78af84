"""Profile the full model (all mechanisms on) with pyinstrument.

    python -m benchmarks.profile_model [--customers 100000 1000000] [--label after]

Writes benchmarks/results/profile_<label>_<customers>.txt: the call tree and the
functions with the most time of their own.  Needs the ``bench`` extra.
"""

from __future__ import annotations

import argparse
import time
from pathlib import Path

from benchmarks.choice_rule import full_config
from sim.output import write_text
from sim.simulate import simulate

RESULTS = Path(__file__).resolve().parent / "results"


def profile(customers: int, interval: float = 0.0005) -> tuple[float, str, str]:
    from pyinstrument import Profiler
    from pyinstrument.renderers import ConsoleRenderer

    config = full_config(customers)
    simulate(full_config(1000))  # warm imports and caches outside the profile
    profiler = Profiler(interval=interval)
    started = time.perf_counter()
    profiler.start()
    simulate(config)
    profiler.stop()
    wall = time.perf_counter() - started
    session = profiler.last_session
    tree = ConsoleRenderer(unicode=False, color=False).render(session)
    return wall, tree, self_times(session.root_frame(), session.duration)


def self_times(root, duration: float, top: int = 25) -> str:
    """Time spent in each function itself (not in what it calls), largest first."""
    totals: dict[str, float] = {}
    stack = [root]
    while stack:
        frame = stack.pop()
        own = frame.time - sum(child.time for child in frame.children)
        if frame.identifier.startswith("[self]") or frame.function == "[self]":
            own, key = frame.time, f"{frame.parent.function}  {frame.parent.file_path_short}:{frame.parent.line_no}"
        else:
            key = f"{frame.function}  {frame.file_path_short}:{frame.line_no}"
        totals[key] = totals.get(key, 0.0) + max(own, 0.0)
        stack.extend(frame.children)
    rows = sorted(totals.items(), key=lambda kv: -kv[1])[:top]
    return "\n".join(f"{t:8.4f} s {100 * t / duration:5.1f} %  {key}" for key, t in rows)


def main(argv: list[str] | None = None) -> int:
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    p.add_argument("--customers", type=int, nargs="+", default=[100_000, 1_000_000])
    p.add_argument("--label", default="latest")
    args = p.parse_args(argv)
    for n in args.customers:
        wall, tree, flat = profile(n)
        flat_top = flat
        text = f"full model, china_2025, {n:,} customers x 40 quarters: {wall:.3f} s under the profiler\n\n{tree}\n\nself time, top functions:\n{flat_top}\n"
        path = RESULTS / f"profile_{args.label}_{n}.txt"
        write_text(path, text)
        print(f"{n:,} customers: {wall:.3f} s -> {path}")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
