"""The choice rule as bare numpy kernels: no model, no bookkeeping, no flows or churn.

Two versions of the same arithmetic as ``sim/submodels/choice.py``:

- ``quarter``: the lower bound the engine's choice step is measured against.  It
  uses the engine's sampling primitives (renewals and new model users from
  geometric gaps, the logit drawn by inverting cumulative probabilities,
  provider-major utilities) but none of the model around them: no Market, no
  slot table rebuilt each quarter, no config lookups, no flows or churn.
- ``quarter_naive``: the textbook vectorisation (one uniform per customer for
  renewal and for model use, Gumbel-max for the logit), kept as an independent
  check of the rule in the agreement test and as a second speed reference.

Random streams differ between all versions, so they agree in distribution, not
draw for draw.
"""

from __future__ import annotations

import numpy as np

from benchmarks.choice_rule import Population, Rule
from sim.customers import bernoulli_indices
from sim.submodels.choice import logit_draw


def quarter(pop: Population, rule: Rule, rng: np.random.Generator) -> None:
    """One quarter for every customer, in place (the lower bound)."""
    top = float(rule.renewal.max())
    renewing = bernoulli_indices(rng, pop.n, top)
    renewing = renewing[rng.random(renewing.size) * top < rule.renewal[pop.segment[renewing]]]
    renewing = renewing[pop.provider[renewing] >= 0]
    decide = np.concatenate([np.flatnonzero(pop.provider < 0), renewing])
    current = pop.provider[decide]
    chosen = logit_draw(utilities(pop, rule, decide, current), rng).astype(np.int16)
    changed = chosen != current
    moved = decide[changed]
    pop.provider[moved] = chosen[changed]
    pop.tenure += pop.provider >= 0
    pop.tenure[moved] = 0
    pop.uses_model[moved] = False
    deepen(pop, rule, rng)


def utilities(pop: Population, rule: Rule, idx: np.ndarray, current: np.ndarray) -> np.ndarray:
    """(customers, slots) view of a provider-major utility array, switching cost included."""
    w = np.asarray(pop.weights.take(idx, axis=0).T, dtype=np.float64, order="C")
    u = rule.attraction.T @ w
    u += rule.affinity.T[:, pop.segment[idx]] * w[2]
    stay = np.flatnonzero(current >= 0)
    cur = current[stay]
    u.reshape(-1)[cur.astype(np.intp) * idx.size + stay] += switching_cost(pop, rule, idx[stay], cur)
    u[~rule.active] = -np.inf
    return u.T


def switching_cost(pop: Population, rule: Rule, idx: np.ndarray, cur: np.ndarray) -> np.ndarray:
    tenure_term = 1.0 - np.exp(-pop.tenure[idx] / rule.tenure_scale)
    cost = rule.lock_in[cur] * (rule.switching_base + rule.switching_tenure * tenure_term)
    return cost * (1.0 + rule.model_lock * pop.uses_model[idx] * rule.edge[cur])


def deepen(pop: Population, rule: Rule, rng: np.random.Generator) -> None:
    top = float(rule.model_use_rate.max() * rule.appeal.max())
    picked = bernoulli_indices(rng, pop.n, top)
    provider = pop.provider[picked]
    ok = (provider >= 0) & ~pop.uses_model[picked]
    picked, provider = picked[ok], provider[ok]
    hazard = rule.model_use_rate[pop.segment[picked]] * rule.appeal[provider]
    pop.uses_model[picked[rng.random(picked.size) * top < hazard]] = True


def quarter_naive(pop: Population, rule: Rule, rng: np.random.Generator) -> None:
    """One quarter, the textbook way: a uniform per customer, Gumbel noise per cell."""
    decide = np.flatnonzero((pop.provider < 0) | (rng.random(pop.n) < rule.renewal[pop.segment]))
    if decide.size:
        current = pop.provider[decide]
        w = pop.weights[decide].astype(np.float64)
        u = w @ rule.attraction
        u += w[:, 2, None] * rule.affinity[pop.segment[decide]]
        stay = np.flatnonzero(current >= 0)
        u[stay, current[stay]] += switching_cost(pop, rule, decide[stay], current[stay])
        u[:, ~rule.active] = -np.inf
        u += rng.gumbel(size=u.shape)
        chosen = u.argmax(axis=1).astype(np.int16)
        moved = decide[chosen != current]
        pop.provider[moved] = chosen[chosen != current]
    else:
        moved = decide
    pop.tenure += pop.provider >= 0
    pop.tenure[moved] = 0
    pop.uses_model[moved] = False
    candidates = np.flatnonzero((pop.provider >= 0) & ~pop.uses_model)
    hazard = rule.model_use_rate[pop.segment[candidates]] * rule.appeal[pop.provider[candidates]]
    pop.uses_model[candidates[rng.random(candidates.size) < hazard]] = True


def run(pop: Population, rule: Rule, quarters: int, seed: int, *, naive: bool = False) -> Population:
    rng = np.random.default_rng(seed)
    step = quarter_naive if naive else quarter
    for _ in range(quarters):
        step(pop, rule, rng)
    return pop
