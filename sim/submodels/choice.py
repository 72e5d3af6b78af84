"""Submodel 3, choice: customers whose contract comes up, new adopters and the
customers of exited providers choose a provider by a random-utility
(multinomial logit) rule.  Which model they buy is chosen apart (``model_choice``).

Utility of provider j to customer i:
    U_ij = w_cap_i * capability_j / frontier - w_price_i * log(price_j / reference_price)
         + w_fit_i * affinity_j[segment_i] + w_rel_i * reliability_j
         + standing_j [segment_i watches surges, sim.submodels.showcase] + Gumbel noise
(drawn as a multinomial logit: P(j) = exp(V_ij) / sum_k exp(V_ik), V = U without noise)
Leaving the current provider c costs
    S_i = lock_in_c * (switching_base + switching_tenure * (1 - exp(-tenure_i / tenure_scale)))
          * (1 + model_lock * [model_provider_i = c] * edge_c)
where edge_c is c's model's lead over the open-weights model (0 for porters): only a
customer who buys its cloud's own model is held by it.
Article: "if a customer uses Alibaba Cloud's services, they are more inclined to
use Tongyi Qianwen's large model; once they use Tongyi Qianwen's model, it
becomes difficult to leave Alibaba Cloud's computing support."
"""

from __future__ import annotations

import numpy as np

from sim.customers import NO_PROVIDER, W_CAPABILITY, W_FIT, W_PRICE, W_RELIABILITY, bernoulli_indices, thinned
from sim.submodels import installed_base, pricing, showcase


def step(market) -> None:
    people = market.customers
    cfg = market.config
    n_slots = market.n_slots
    hazard = people.segment_table("renewal_hazard", cfg)
    had = people.provider != NO_PROVIDER
    # Contracts come up with the segment's hazard: candidates are drawn at the highest
    # hazard and thinned, so only ~n * max(hazard) customers are touched.
    top = float(hazard.max())
    renewing = bernoulli_indices(market.rng, people.n, top)
    renewing = thinned(market.rng, renewing, hazard[people.segment[renewing]], top)
    renewing = renewing[had[renewing] & people.adopted[renewing]]
    deciders = np.concatenate([np.flatnonzero(people.adopted & ~had), renewing])
    # Only deciders can move: the bookkeeping below touches them, not the whole population.
    previous = people.provider[deciders]
    chosen = previous

    if deciders.size and market.active_providers():
        chosen = logit_draw(utilities(market, deciders), market.rng).astype(np.int16)
        people.provider[deciders] = chosen
        people.first_contract[deciders] = chosen != previous  # a renewal with the incumbent ends the first contract

    changed = chosen != previous
    moved = deciders[changed]
    people.tenure += people.provider != NO_PROVIDER  # everyone with a provider; movers reset next
    people.tenure[moved] = 0
    # Read by multi-homing (workload moves from the old cloud) and model choice (movers reconsider their model).
    market.cloud_movers, market.cloud_moved_from = moved, previous[changed]

    incumbents = np.count_nonzero(had)
    from_, to = previous[changed].astype(np.int64), chosen[changed].astype(np.int64)
    market.churn = float(np.count_nonzero(from_ != NO_PROVIDER)) / incumbents if incumbents else 0.0
    flows = np.bincount((from_ + 1) * (n_slots + 1) + to + 1, minlength=(n_slots + 1) ** 2)
    market.flows = flows.reshape(n_slots + 1, n_slots + 1)  # row/col 0 = none


def logit_draw(utility: np.ndarray, rng: np.random.Generator) -> np.ndarray:
    """One choice per row with multinomial-logit probabilities exp(U_j) / sum_k exp(U_k)
    (-inf = unavailable).  The same law as argmax(U + Gumbel noise), drawn by inverting
    the cumulative probabilities: one uniform per row instead of one Gumbel per cell.
    ``utility`` is overwritten.  The work runs along the provider axis of ``utility.T``
    (contiguous for what ``utilities`` returns): a handful of long vector operations
    instead of a short reduction per customer."""
    v = utility.T
    v -= v.max(axis=0)
    np.exp(v, out=v)
    for j in range(1, len(v)):  # cumulative sum down the few providers: one vector add each
        v[j] += v[j - 1]          # (np.cumsum along axis 0 walks each short column separately)
    cumulative = v
    u = rng.random(cumulative.shape[1]) * cumulative[-1]
    chosen = (cumulative <= u).sum(axis=0)  # the first provider whose cumulative weight exceeds u
    over = np.flatnonzero(chosen == cumulative.shape[0])  # u rounded up to the total (rare)
    if over.size:
        positive = np.diff(cumulative[:, over], axis=0, prepend=0.0) > 0
        chosen[over] = cumulative.shape[0] - 1 - positive[::-1].argmax(axis=0)  # last available provider
    return chosen


def utilities(market, idx: np.ndarray) -> np.ndarray:
    """Deterministic utility (without noise) of every provider slot for customers ``idx``,
    switching cost included; inactive slots get -inf.  Shape (customers, slots); built
    provider-major (its transpose is contiguous) so that each term is one long vector op."""
    people = market.customers
    slots = market.slot_table()
    # take() copies whole rows; weights[idx] is ~10x slower on an (n, 4) array.
    w = np.asarray(people.weights.take(idx, axis=0).T, dtype=np.float64, order="C")  # (4, customers)
    seg = people.segment[idx]
    # Everyone is offered the new-customer price; the current provider's renewal price is
    # swapped in below (invest and harvest, pricing.py).
    log_price = np.log(slots["price_new"] / market.config.pricing.reference_price)
    u = np.multiply.outer(slots["capability"] / market.frontier, w[W_CAPABILITY])
    u -= np.multiply.outer(log_price, w[W_PRICE])
    u += slots["affinity"].T[:, seg] * w[W_FIT]
    u += np.multiply.outer(slots["reliability"], w[W_RELIABILITY])
    bandwagon = installed_base.utility(market, seg)
    if bandwagon is not None:
        u += bandwagon
    u += showcase.utility(market, seg)  # standing earned or lost in public surges (the Gala)
    current = people.provider[idx]
    stay = current != NO_PROVIDER
    rows = np.flatnonzero(stay)
    flat = current[stay].astype(np.intp) * idx.size + rows  # one flat index: cheaper than a 2-D fancy index
    u.reshape(-1)[flat] += switching_cost(market, idx[stay], current[stay], slots)
    u.reshape(-1)[flat] -= pricing.renewal_surcharge(slots, current[stay]) * w[W_PRICE][rows]
    u[~slots["active"]] = -np.inf
    return u.T


def switching_cost(market, idx: np.ndarray, current: np.ndarray, slots: dict[str, np.ndarray]) -> np.ndarray:
    cfg = market.config.choice
    people = market.customers
    tenure_term = 1.0 - np.exp(-people.tenure[idx] / cfg.tenure_scale)
    base = slots["lock_in"][current] * (cfg.switching_base + cfg.switching_tenure * tenure_term)
    return base * (1.0 + cfg.model_lock * (people.model_provider[idx] == current) * slots["edge"][current])
