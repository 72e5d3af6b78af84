"""Golden outputs: record every recorded column of a few runs, and compare another engine's
outputs with them bit for bit.

    python -m benchmarks.golden record DIR      # providers, market and flows tables per run
    python -m benchmarks.golden compare DIR     # exit 1 and the first differences if any

The runs: each preset of ``PRESETS`` at ``CUSTOMERS`` customers with seeds ``SEEDS`` (all
quarters of the preset).  An engine change that claims not to move results (issue 15: the
batched engine) must reproduce them exactly; ``compare`` says which table, column and row
differ and by how much where the values are numbers.
"""

from __future__ import annotations

import argparse
import sys
from pathlib import Path

import numpy as np
import pandas as pd

PRESETS = ("china_2025", "tipping", "minimal", "china_history_2020", "global_2025")
CUSTOMERS = 3000
SEEDS = (1, 2, 3)
TABLES = ("providers", "market", "flows")


def runs() -> list[tuple[str, int]]:
    return [(preset, seed) for preset in PRESETS for seed in SEEDS]


def simulate_one(preset: str, seed: int):
    from sim.api import simulate

    return simulate(preset, seed=seed, customers=CUSTOMERS)


def record(root: Path) -> None:
    root.mkdir(parents=True, exist_ok=True)
    for preset, seed in runs():
        result = simulate_one(preset, seed)
        for table in TABLES:
            getattr(result, table).to_pickle(root / f"{preset}_{seed}_{table}.pkl")
        print(f"recorded {preset} seed {seed}")


def differences(expected: pd.DataFrame, got: pd.DataFrame, limit: int = 5) -> list[str]:
    """Human-readable differences between two tables (empty if identical, NaN equal to NaN)."""
    if list(expected.columns) != list(got.columns):
        return [f"columns differ: {sorted(set(expected.columns) ^ set(got.columns))}"]
    if list(expected.dtypes) != list(got.dtypes):
        return [f"dtypes differ: {[(c, str(a), str(b)) for c, a, b in zip(expected.columns, expected.dtypes, got.dtypes) if a != b]}"]
    if len(expected) != len(got):
        return [f"rows: {len(expected)} expected, {len(got)} got"]
    out = []
    for col in expected.columns:
        a, b = expected[col].to_numpy(), got[col].to_numpy()
        if a.dtype.kind == "f" or b.dtype.kind == "f":
            a, b = a.astype(float), b.astype(float)
            same = (a == b) | (np.isnan(a) & np.isnan(b))
        else:
            same = a == b
        if not np.all(same):
            bad = np.flatnonzero(~same)
            detail = ""
            if a.dtype.kind == "f":
                rel = np.abs(a[bad] - b[bad]) / np.maximum(np.abs(a[bad]), 1e-300)
                detail = f", max relative difference {np.nanmax(rel):.3g}"
            out.append(f"{col}: {bad.size} rows differ (first row {bad[0]}: {a[bad[0]]!r} vs {b[bad[0]]!r}{detail})")
        if len(out) >= limit:
            break
    return out


def compare(root: Path) -> int:
    failed = 0
    for preset, seed in runs():
        result = simulate_one(preset, seed)
        for table in TABLES:
            expected = pd.read_pickle(root / f"{preset}_{seed}_{table}.pkl")
            diff = differences(expected, getattr(result, table))
            if diff:
                failed += 1
                print(f"DIFFERENT {preset} seed {seed} {table}:\n  " + "\n  ".join(diff))
        print(f"compared {preset} seed {seed}")
    print("all identical" if not failed else f"{failed} tables differ")
    return 1 if failed else 0


def main(argv: list[str] | None = None) -> int:
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    p.add_argument("action", choices=("record", "compare"))
    p.add_argument("root", type=Path)
    args = p.parse_args(argv)
    if args.action == "record":
        record(args.root)
        return 0
    return compare(args.root)


if __name__ == "__main__":
    sys.exit(main())
