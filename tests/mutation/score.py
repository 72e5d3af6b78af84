"""Mutation score per module from mutmut's results (``make mutate`` runs this after ``mutmut run``).

Reads mutants/**/*.py.meta (mutmut 3's per-file results) and prints, per mutated module:
total mutants, killed (a test failed or timed out), survived, equivalent (listed with a reason
in tests/mutation/equivalent.toml and still matching the listed change), not tested and not
yet checked, and the score = killed / (killed + survived + not tested).  A listed equivalent mutant whose
change no longer matches (the code moved on) is reported as stale and counted as survived.

    python tests/mutation/score.py            # the table
    python tests/mutation/score.py --survivors  # plus the diff of every surviving mutant
"""

from __future__ import annotations

import argparse
import json
import sys
import time
import tomllib
from collections import Counter
from pathlib import Path

ROOT = Path(__file__).resolve().parents[2]
EQUIVALENT = Path(__file__).with_name("equivalent.toml")
KILLED = {1, 3, 24, -24, 152, 255, 36, 37}  # test failure, pytest error, timeout, type check
NO_TESTS = {5, 33}


def load_equivalents() -> dict[str, dict]:
    if not EQUIVALENT.is_file():
        return {}
    return {e["mutant"]: e for e in tomllib.loads(EQUIVALENT.read_text())["equivalent"]}


def mutant_change(name: str) -> str:
    """The mutated lines of one mutant (the '+' side of its diff), stripped and joined."""
    from mutmut.mutation.diff_apply import get_diff_for_mutant

    diff = get_diff_for_mutant(name)
    return "\n".join(line[1:].strip() for line in diff.splitlines()
                     if line.startswith("+") and not line.startswith("+++"))


def _read_json(path: Path) -> dict:
    """A mutmut results file; a running mutmut may be rewriting it, so retry a torn read."""
    for _ in range(20):
        try:
            return json.loads(path.read_text())
        except ValueError:
            time.sleep(0.1)
    return json.loads(path.read_text())


def results() -> dict[str, dict[str, int | None]]:
    by_module = {}
    for meta in sorted((ROOT / "mutants").rglob("*.py.meta")):
        codes = _read_json(meta)["exit_code_by_key"]
        if codes:
            by_module[str(meta.relative_to(ROOT / "mutants"))[: -len(".meta")]] = codes
    return by_module


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--survivors", action="store_true", help="print the diff of each surviving mutant")
    args = parser.parse_args(argv)
    by_module = results()
    if not by_module:
        print("no mutation results in mutants/: run `make mutate` first", file=sys.stderr)
        return 1
    equivalents = load_equivalents()
    rows, survivors, stale = [], [], []
    for module, codes in by_module.items():
        count = Counter()
        for name, code in codes.items():
            if code in KILLED:
                count["killed"] += 1
            elif code in NO_TESTS:
                count["no tests"] += 1
            elif code is None:
                count["not checked"] += 1
            elif code == 0 and name in equivalents:
                if mutant_change(name) == equivalents[name]["change"].strip():
                    count["equivalent"] += 1
                else:
                    stale.append(name)
                    count["survived"] += 1
                    survivors.append(name)
            else:  # survived, or suspicious (a crash that is not a test failure)
                count["survived"] += 1
                survivors.append(name)
        judged = count["killed"] + count["survived"] + count["no tests"]  # checked and not equivalent
        score = 100.0 * count["killed"] / judged if judged else float("nan")
        rows.append((module, len(codes), count, score))

    header = f"{'module':36s} {'total':>6s} {'killed':>7s} {'survived':>9s} {'equiv.':>7s} {'no test':>8s} {'unchecked':>10s} {'score':>7s}"
    print(header)
    print("-" * len(header))
    totals = Counter()
    for module, total, c, score in rows:
        print(f"{module:36s} {total:6d} {c['killed']:7d} {c['survived']:9d} {c['equivalent']:7d} "
              f"{c['no tests']:8d} {c['not checked']:10d} {score:6.1f}%")
        totals.update(c)
        totals["total"] += total
    judged = totals["killed"] + totals["survived"] + totals["no tests"]
    print("-" * len(header))
    print(f"{'all':36s} {totals['total']:6d} {totals['killed']:7d} {totals['survived']:9d} {totals['equivalent']:7d} "
          f"{totals['no tests']:8d} {totals['not checked']:10d} {100.0 * totals['killed'] / max(judged, 1):6.1f}%")
    print("score = killed / (killed + survived + no test): equivalent and not yet checked mutants left out;")
    print("the equivalent mutants and why they are: tests/mutation/equivalent.toml")
    if stale:
        print(f"\n{len(stale)} listed equivalent mutant(s) no longer match their recorded change (counted as survived): "
              + ", ".join(stale))
    if args.survivors:
        for name in survivors:
            print(f"\n# {name}")
            print(mutant_change(name))
    return 0


if __name__ == "__main__":
    sys.exit(main())
