"""The choice rule as a bare numpy kernel: no model, no bookkeeping, no flows or churn.

It is the lower bound the engine's choice step is measured against.  The
arithmetic is the same as ``sim/submodels/choice.py``; only the random streams
differ (so results agree in distribution, not draw for draw).
"""

from __future__ import annotations

import numpy as np

from benchmarks.choice_rule import Population, Rule


def quarter(pop: Population, rule: Rule, rng: np.random.Generator) -> None:
    """One quarter for every customer, in place."""
    has_before = pop.provider >= 0
    decide = np.flatnonzero(~has_before | (rng.random(pop.n) < rule.renewal[pop.segment]))
    if decide.size:
        current = pop.provider[decide]
        chosen = choose(pop, rule, decide, current, rng)
        moved = decide[chosen != current]
        pop.provider[moved] = chosen[chosen != current]
    else:
        moved = decide
    pop.tenure += pop.provider >= 0
    pop.tenure[moved] = 0
    pop.uses_model[moved] = False
    deepen(pop, rule, rng)


def choose(pop: Population, rule: Rule, idx: np.ndarray, current: np.ndarray, rng: np.random.Generator) -> np.ndarray:
    w = pop.weights[idx].astype(np.float64)
    u = w @ rule.attraction
    u += w[:, 2, None] * rule.affinity[pop.segment[idx]]
    stay = np.flatnonzero(current >= 0)
    cur = current[stay]
    tenure_term = 1.0 - np.exp(-pop.tenure[idx[stay]] / rule.tenure_scale)
    cost = rule.lock_in[cur] * (rule.switching_base + rule.switching_tenure * tenure_term)
    cost *= 1.0 + rule.model_lock * pop.uses_model[idx[stay]] * rule.edge[cur]
    u[stay, cur] += cost
    u[:, ~rule.active] = -np.inf
    u += rng.gumbel(size=u.shape)
    return u.argmax(axis=1).astype(np.int16)


def deepen(pop: Population, rule: Rule, rng: np.random.Generator) -> None:
    candidates = np.flatnonzero((pop.provider >= 0) & ~pop.uses_model)
    hazard = rule.model_use_rate[pop.segment[candidates]] * rule.appeal[pop.provider[candidates]]
    pop.uses_model[candidates[rng.random(candidates.size) < hazard]] = True


def run(pop: Population, rule: Rule, quarters: int, seed: int) -> Population:
    rng = np.random.default_rng(seed)
    for _ in range(quarters):
        quarter(pop, rule, rng)
    return pop
