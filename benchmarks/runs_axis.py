"""A prototype of runs as a leading axis, on the choice rule alone (not the engine).

The rule of ``benchmarks/kernel.py`` (renewal from geometric gaps, multinomial logit by
inverting cumulative probabilities, switching cost, deepening model use) for a batch of runs
that step together, each with its own random generator, so that a run's final state is
bit-identical whether it runs alone or in a batch of any size:

- customer state is one flat array per variable, run ``r`` holding ``[r * n, (r + 1) * n)``
  (the C-order ravel of ``(runs, customers)``);
- every random draw is made per run from that run's generator, in the order a run alone
  makes it (a loop over runs at each of the four draw sites), and offset into the batch;
- everything else is elementwise along customers or a reduction along providers, whose
  result for a customer does not depend on which other customers are in the array.  No BLAS:
  a matrix product's rounding can depend on the block a column falls in (numpy's ``@`` on this
  machine gives 5 differing elements out of 12 column ranges tested), so utilities are built
  from outer products, as the engine builds them.

``python -m benchmarks.runs_axis [--runs 100] [--customers 10000]`` measures what stepping
runs together buys on the customer side: CPU time of a batch against the same runs one by
one (batches of one) through the same code.  The engine's provider side (prices, service,
money, capability, entry and exit, the recorder) is not batched here; docs/performance.md.
"""

from __future__ import annotations

import argparse
import sys
import time
from dataclasses import dataclass

import numpy as np

from benchmarks.choice_rule import Population, Rule, start
from sim.customers import bernoulli_indices


@dataclass
class Batch:
    runs: int
    n: int
    segment: np.ndarray     # int8 (runs * n,)
    weights: np.ndarray     # float32 (runs * n, 4)
    provider: np.ndarray    # int16 (runs * n,), -1 = none
    tenure: np.ndarray      # int16
    uses_model: np.ndarray  # bool

    @classmethod
    def of(cls, populations: list[Population]) -> "Batch":
        n = populations[0].n
        if any(p.n != n for p in populations):
            raise ValueError("every run of a batch needs the same number of customers")
        cat = lambda name: np.concatenate([getattr(p, name) for p in populations])  # noqa: E731
        return cls(len(populations), n, cat("segment"), cat("weights"), cat("provider"), cat("tenure"),
                   cat("uses_model"))

    def run_state(self, r: int) -> dict[str, np.ndarray]:
        part = slice(r * self.n, (r + 1) * self.n)
        return {"provider": self.provider[part].copy(), "tenure": self.tenure[part].copy(),
                "uses_model": self.uses_model[part].copy()}


def per_run(rngs: list[np.random.Generator], n: int, draw) -> np.ndarray:
    """``draw(rng, r)`` -> indices within run r, for every run, offset into the batch and joined."""
    parts = [draw(rng, r) + r * n for r, rng in enumerate(rngs)]
    return np.concatenate(parts) if parts else np.empty(0, dtype=np.intp)


def thin_per_run(rngs, n: int, candidates: np.ndarray, hazard: np.ndarray, top: float) -> np.ndarray:
    """Keep each candidate with probability hazard / top, one uniform per candidate from its own
    run's generator, in the run's order (``sim.customers.thinned`` for a batch)."""
    bounds = np.searchsorted(candidates, np.arange(len(rngs) + 1) * n)
    u = np.concatenate([rng.random(bounds[r + 1] - bounds[r]) for r, rng in enumerate(rngs)]) if len(rngs) else np.empty(0)
    return candidates[u * top < hazard]


def quarter(batch: Batch, rule: Rule, rngs: list[np.random.Generator]) -> None:
    """One quarter of every run, in place."""
    n = batch.n
    top = float(rule.renewal.max())
    renewing = per_run(rngs, n, lambda rng, r: bernoulli_indices(rng, n, top))
    renewing = thin_per_run(rngs, n, renewing, rule.renewal[batch.segment[renewing]], top)
    renewing = renewing[batch.provider[renewing] >= 0]
    none = np.flatnonzero(batch.provider < 0)
    # A run alone decides its customers without a provider first, then its renewals: keep that order per run.
    edges = np.arange(batch.runs + 1) * n
    b_none, b_renew = np.searchsorted(none, edges), np.searchsorted(renewing, edges)
    decide = np.concatenate([np.concatenate([none[b_none[r]:b_none[r + 1]], renewing[b_renew[r]:b_renew[r + 1]]])
                             for r in range(batch.runs)])
    counts = (b_none[1:] - b_none[:-1]) + (b_renew[1:] - b_renew[:-1])
    current = batch.provider[decide]
    chosen = logit_draw(utilities(batch, rule, decide, current), rngs, counts).astype(np.int16)
    changed = chosen != current
    moved = decide[changed]
    batch.provider[moved] = chosen[changed]
    batch.tenure += batch.provider >= 0
    batch.tenure[moved] = 0
    batch.uses_model[moved] = False
    deepen(batch, rule, rngs)


def utilities(batch: Batch, rule: Rule, idx: np.ndarray, current: np.ndarray) -> np.ndarray:
    """(customers, slots) view of provider-major utilities, switching cost included (outer
    products and elementwise sums only: the same numbers whatever the batch)."""
    w = np.asarray(batch.weights.take(idx, axis=0).T, dtype=np.float64, order="C")
    u = np.multiply.outer(rule.attraction[0], w[0])
    u += np.multiply.outer(rule.attraction[1], w[1])
    u += np.multiply.outer(rule.attraction[3], w[3])
    u += rule.affinity.T[:, batch.segment[idx]] * w[2]
    stay = np.flatnonzero(current >= 0)
    cur = current[stay]
    tenure_term = 1.0 - np.exp(-batch.tenure[idx[stay]] / rule.tenure_scale)
    cost = rule.lock_in[cur] * (rule.switching_base + rule.switching_tenure * tenure_term)
    cost = cost * (1.0 + rule.model_lock * batch.uses_model[idx[stay]] * rule.edge[cur])
    u.reshape(-1)[cur.astype(np.intp) * idx.size + stay] += cost
    u[~rule.active] = -np.inf
    return u.T


def logit_draw(utility: np.ndarray, rngs: list[np.random.Generator], counts: np.ndarray) -> np.ndarray:
    """``sim.submodels.choice.logit_draw`` for a batch: the uniforms come from each run's generator
    (``counts[r]`` rows of run r, in order); the rest is per row."""
    v = utility.T
    v -= v.max(axis=0)
    np.exp(v, out=v)
    for j in range(1, len(v)):
        v[j] += v[j - 1]
    cumulative = v
    u = np.concatenate([rng.random(int(c)) for rng, c in zip(rngs, counts)]) * cumulative[-1]
    chosen = (cumulative <= u).sum(axis=0)
    over = np.flatnonzero(chosen == cumulative.shape[0])
    if over.size:
        positive = np.diff(cumulative[:, over], axis=0, prepend=0.0) > 0
        chosen[over] = cumulative.shape[0] - 1 - positive[::-1].argmax(axis=0)
    return chosen


def deepen(batch: Batch, rule: Rule, rngs: list[np.random.Generator]) -> None:
    n = batch.n
    top = float(rule.model_use_rate.max() * rule.appeal.max())
    picked = per_run(rngs, n, lambda rng, r: bernoulli_indices(rng, n, top))
    provider = batch.provider[picked]
    ok = (provider >= 0) & ~batch.uses_model[picked]
    picked, provider = picked[ok], provider[ok]
    hazard = rule.model_use_rate[batch.segment[picked]] * rule.appeal[provider]
    batch.uses_model[thin_per_run(rngs, n, picked, hazard, top)] = True


def run(populations: list[Population], rule: Rule, quarters: int, seeds: list[int]) -> Batch:
    batch = Batch.of(populations)
    rngs = [np.random.default_rng(s) for s in seeds]
    for _ in range(quarters):
        quarter(batch, rule, rngs)
    return batch


def main(argv: list[str] | None = None) -> int:
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    p.add_argument("--runs", type=int, default=100)
    p.add_argument("--customers", type=int, default=10_000)
    p.add_argument("--quarters", type=int, default=40)
    p.add_argument("--rounds", type=int, default=3)
    args = p.parse_args(argv)
    _, rule, pop = start(args.customers, 1)
    pops, seeds = [pop] * args.runs, list(range(1, args.runs + 1))
    run(pops[:2], rule, 2, seeds[:2])  # warm
    batched, alone = [], []
    for _ in range(args.rounds):
        began = time.process_time()
        run(pops, rule, args.quarters, seeds)
        batched.append(time.process_time() - began)
        began = time.process_time()
        for r in range(args.runs):
            run([pops[r]], rule, args.quarters, [seeds[r]])
        alone.append(time.process_time() - began)
    print(f"choice rule, {args.runs} runs x {args.customers:,} customers x {args.quarters} quarters (CPU, best of "
          f"{args.rounds}): batch {min(batched):.2f} s, one by one {min(alone):.2f} s: "
          f"{min(alone) / min(batched):.2f}x")
    return 0


if __name__ == "__main__":
    sys.exit(main())
