"""Submodel 3c, model choice: the model layer (MaaS) as a market of its own.

A customer that uses models buys the tokens of one model provider, chosen apart from its
cloud: any active provider's model, its own model if it owns one, otherwise the open-weights
model it serves on its own GPUs (a porter).  Tokens are served on the model provider's GPUs,
so they load its capacity and count in its revenue and ``maas_tokens``.

Deciders this quarter (all others keep their model):
  - starters: adopted customers with a cloud who use no model yet, with hazard
        model_use_rate[s] x min(1, best capability on offer / frontier)
    (from ``demand.model_services_start`` on; ``models.initial_use`` of the adopted customers
    start in the first quarter of a fresh run);
  - model users whose model contract comes up (hazard ``models.model_renewal_hazard``);
  - model users who changed cloud this quarter (re-platforming is when a model is reconsidered);
  - model users whose model provider has exited (``entry_exit`` cleared it).

Utility of model m for customer i (multinomial logit, P = exp V / sum exp V):
    V_im = capability_weight * w_cap_i * capability_m / frontier
         - price_weight * w_price_i * ln(token_price_m / (reference_price * token_compute_t))
         + reliability_weight * w_rel_i * reliability_m
         + fit_weight * w_fit_i * affinity_m[s_i]
         + same_cloud_bonus * [m = cloud_i]                                  (the closed loop)
         + [m = current model_i] * (model_switching_base + model_switching_use * (1 - exp(-model_tenure_i / model_tenure_scale)))
with token_price_m = price_m * token_compute_t * cut_m(t) (submodel pricing).  The switching
cost grows with use (prompts, fine-tunes, evaluations), as the cloud's grows with tenure.
Article: "if a customer uses Alibaba Cloud's services, they are more inclined to use Tongyi
Qianwen's large model"; "MaaS is not the entirety of the AI cloud concept".

With ``models.choose_apart = false`` the layer is tied to the cloud (the rule before issue 10):
a customer starts using its own cloud's model with hazard model_use_rate[s] x
min(1, capability_cloud / frontier) and loses it when it changes cloud.
"""

from __future__ import annotations

import numpy as np

from sim.customers import NO_PROVIDER, W_CAPABILITY, W_FIT, W_PRICE, W_RELIABILITY, bernoulli_indices, thinned
from sim.submodels.choice import logit_draw
from sim.submodels.pricing import token_factors


def step(market) -> None:
    people = market.customers
    people.model_tenure += people.model_provider != NO_PROVIDER
    moved = market.cloud_movers  # set by choice (empty before the first quarter)
    if not market.config.models.choose_apart:
        tied_step(market, moved)
        return
    slots = market.slot_table()
    orphans = np.flatnonzero(people.uses_model & (people.model_provider == NO_PROVIDER))
    if not services_open(market):
        return
    deciders = [starters(market, slots), orphans, moved[people.uses_model[moved]]]
    hazard = market.config.models.model_renewal_hazard
    renewing = bernoulli_indices(market.rng, people.n, hazard)
    deciders.append(renewing[people.model_provider[renewing] != NO_PROVIDER])
    if market.t == 0 and market.config.models.initial_use > 0 and not market.from_snapshot:
        first = bernoulli_indices(market.rng, people.n, market.config.models.initial_use)
        deciders.append(first[people.provider[first] != NO_PROVIDER])
    marked = np.zeros(people.n, dtype=bool)  # the union, sorted: cheaper than np.unique at this size
    for group in deciders:
        marked[group] = True
    deciders = np.flatnonzero(marked)
    if not deciders.size or not slots["active"].any():
        return
    chosen = logit_draw(model_utilities(market, deciders, slots), market.rng).astype(np.int16)
    people.model_tenure[deciders[chosen != people.model_provider[deciders]]] = 0
    people.model_provider[deciders] = chosen
    people.uses_model[deciders] = True


def services_open(market) -> bool:
    """False before ``demand.model_services_start`` (nobody can start using a model yet)."""
    start = market.config.demand.model_services_start
    return start is None or market.t >= market.config.quarter_offset(start)


def starters(market, slots: dict[str, np.ndarray]) -> np.ndarray:
    """Customers with a cloud who start using models this quarter (cloud use leads to model use)."""
    people = market.customers
    rate = people.segment_table("model_use_rate", market.config)
    best = slots["capability"][slots["active"]].max(initial=0.0)
    appeal = min(1.0, best / market.frontier)
    top = float(rate.max() * appeal)
    if top <= 0:
        return np.empty(0, dtype=np.intp)
    # Candidates drawn at the highest hazard, then thinned to their segment's: ~n * top draws.
    picked = bernoulli_indices(market.rng, people.n, top)
    picked = picked[(people.provider[picked] != NO_PROVIDER) & ~people.uses_model[picked]]
    return thinned(market.rng, picked, rate[people.segment[picked]] * appeal, top)


def token_price_ratio(market, slots: dict[str, np.ndarray] | None = None) -> np.ndarray:
    """Per slot: token price / (reference_price x token_compute at the start), i.e.
    price_j x cut_j(t) x token_compute_t / (reference_price x token_compute); shape (slots,)."""
    cfg = market.config
    slots = market.slot_table() if slots is None else slots
    cut = token_factors(market)
    return (slots["price"] * cut / cfg.pricing.reference_price) * (market.token_compute / cfg.pricing.token_compute)


def model_utilities(market, idx: np.ndarray, slots: dict[str, np.ndarray]) -> np.ndarray:
    """Deterministic utility of every slot's model for customers ``idx``, switching cost and
    same-cloud bonus included; inactive slots -inf.  Shape (customers, slots)."""
    cfg = market.config.models
    people = market.customers
    w = np.asarray(people.weights.take(idx, axis=0).T, dtype=np.float64, order="C")  # (4, customers)
    seg = people.segment[idx]
    log_price = np.log(np.maximum(token_price_ratio(market, slots), 1e-300))
    u = np.multiply.outer(cfg.capability_weight * slots["capability"] / market.frontier, w[W_CAPABILITY])
    u -= np.multiply.outer(cfg.price_weight * log_price, w[W_PRICE])
    u += np.multiply.outer(cfg.reliability_weight * slots["reliability"], w[W_RELIABILITY])
    u += cfg.fit_weight * slots["affinity"].T[:, seg] * w[W_FIT]
    rows = np.arange(idx.size)
    cloud = people.provider[idx]
    on = cloud != NO_PROVIDER
    u.reshape(-1)[cloud[on].astype(np.intp) * idx.size + rows[on]] += cfg.same_cloud_bonus
    current = people.model_provider[idx]
    on = current != NO_PROVIDER
    tenure = people.model_tenure[idx[on]]
    cost = cfg.model_switching_base + cfg.model_switching_use * (1.0 - np.exp(-tenure / cfg.model_tenure_scale))
    u.reshape(-1)[current[on].astype(np.intp) * idx.size + rows[on]] += cost
    u[~slots["active"]] = -np.inf
    return u.T


def tied_step(market, moved: np.ndarray) -> None:
    """The model layer tied to the cloud: movers lose their model; customers start using
    their own cloud's model with hazard model_use_rate[s] x min(1, capability / frontier)."""
    people = market.customers
    people.uses_model[moved] = False
    people.model_provider[moved] = NO_PROVIDER
    people.model_tenure[moved] = 0
    # A cloud's exit already cleared its customers' model (entry_exit).
    if not services_open(market):
        return
    slots = market.slot_table()
    rate = people.segment_table("model_use_rate", market.config)
    appeal = np.minimum(slots["capability"] / market.frontier, 1.0)
    top = float(rate.max() * appeal.max())
    if top <= 0:
        return
    picked = bernoulli_indices(market.rng, people.n, top)
    provider = people.provider[picked]
    eligible = (provider != NO_PROVIDER) & ~people.uses_model[picked]
    picked, provider = picked[eligible], provider[eligible]
    hazard = rate[people.segment[picked]] * appeal[provider]
    start = thinned(market.rng, picked, hazard, top)
    people.uses_model[start] = True
    people.model_provider[start] = people.provider[start]
