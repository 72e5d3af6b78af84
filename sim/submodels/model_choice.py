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

from sim.batch import Batch, over_runs
from sim.customers import NO_PROVIDER, W_CAPABILITY, W_FIT, W_PRICE, W_RELIABILITY
from sim.submodels.choice import (RunsOf, _as_batch, _weights, affinity_of, affinity_table, cloud_movers, logit_draw,
                                  run_counts)


@over_runs
def step(batch: Batch) -> None:
    """Model choice in every run of ``batch`` at once (runs with ``models.choose_apart = false``
    follow ``tied_step``).  Each run draws from its own generator what it draws alone."""
    people = batch.customers
    people.model_tenure += people.model_provider != NO_PROVIDER
    moved, _ = cloud_movers(batch)  # set by choice (empty before the first quarter)
    apart = batch.param("models.choose_apart")
    if not apart.all():
        tied_step(batch, moved, ~apart)
    if not apart.any():
        return
    run_of = batch.run_of
    slots = batch.slot_table()
    go = apart & services_open(batch)
    if not go.any():
        return
    mine = None if go.all() else go  # None: every run takes part (no filtering needed)

    def ours(group: np.ndarray) -> np.ndarray:
        return group if mine is None else group[mine[run_of[group]]]

    orphans = ours(np.flatnonzero(people.uses_model & (people.model_provider == NO_PROVIDER)))
    deciders = [starters(batch, slots, go), orphans, ours(np.compress(people.uses_model[moved], moved))]
    hazard = batch.param("models.model_renewal_hazard")
    if mine is not None:
        hazard = np.where(go, hazard, 0.0)
    renewing = batch.bernoulli(hazard)
    deciders.append(np.compress(people.model_provider[renewing] != NO_PROVIDER, renewing))
    if batch.markets[0].t == 0:  # the runs of a batch share their clock
        initial = batch.param("models.initial_use")
        fresh = np.array([not m.from_snapshot for m in batch.markets])
        first = batch.bernoulli(np.where(go & fresh & (initial > 0), initial, 0.0))
        deciders.append(first[people.provider[first] != NO_PROVIDER])
    marked = np.zeros(people.n, dtype=bool)  # the union, sorted: cheaper than np.unique at this size
    for group in deciders:
        marked[group] = True
    deciders = np.flatnonzero(marked)
    has_active = slots["active"].any(axis=1)
    if not has_active.all():
        deciders = deciders[has_active[run_of[deciders]]]
    if not deciders.size:
        return
    current = people.model_provider[deciders]
    counts = run_counts(batch, deciders)
    chosen = logit_draw(model_utilities(batch, deciders, slots, current, counts), batch, counts)
    people.model_tenure[np.compress(chosen != current, deciders)] = 0
    people.model_provider[deciders] = chosen
    people.uses_model[deciders] = True


def services_open(batch) -> np.ndarray:
    """(runs,) bool: False before the run's ``demand.model_services_start`` (nobody can start
    using a model yet).  A lone ``Market`` may stand for its batch of one."""
    batch = _as_batch(batch)
    start = batch.memo("models.services_start", lambda b: np.array(
        [-1 if m.config.demand.model_services_start is None else m.config.quarter_offset(m.config.demand.model_services_start)
         for m in b.markets]))
    return batch.markets[0].t >= start  # the runs of a batch share their clock


def starters(batch: Batch, slots: dict[str, np.ndarray], runs: np.ndarray) -> np.ndarray:
    """Customers with a cloud who start using models this quarter (cloud use leads to model
    use), in the runs where ``runs`` (runs,) bool holds; indices into ``batch.customers``."""
    people = batch.customers
    rate = batch.param("demand.segments.model_use_rate")  # (runs, segments)
    best = slots["capability"].max(axis=1)  # 0 where inactive (Batch.slot_table)
    appeal = np.minimum(1.0, best / batch.market_values("frontier"))
    top = rate.max(axis=1) * appeal
    top = np.where(runs & (top > 0), top, 0.0)
    # Candidates drawn at the highest hazard, then thinned to their segment's: ~n * top draws.
    picked = batch.bernoulli(top)
    picked = np.compress((people.provider[picked] != NO_PROVIDER) & ~people.uses_model[picked], picked)
    if batch.size == 1:
        u = batch.markets[0].rng.random(picked.size)
        return np.compress(u * top[0] < rate[0].take(people.segment[picked]) * appeal[0], picked)
    r = batch.run_of[picked]
    u = batch.uniforms(np.bincount(r, minlength=batch.size))
    return np.compress(u * top[r] < rate[r, people.segment[picked]] * appeal[r], picked)


def token_price_ratio(batch, slots: dict[str, np.ndarray] | None = None) -> np.ndarray:
    """Per run and slot: token price / (reference_price x token_compute at the start), i.e.
    price_j x cut_j(t) x token_compute_t / (reference_price x token_compute); shape (runs, slots).
    ``slots``: ``Batch.slot_table()`` (built when not given).  A ``Market`` (alone or one run of
    a batch) gives its run's row, shape (slots,)."""
    if not isinstance(batch, Batch):
        return token_price_ratio(batch._batch)[batch.run_index]
    slots = batch.slot_table() if slots is None else slots
    cut = batch.table.token_factor  # token_factors, per run
    if not batch.active.all():
        cut = np.where(batch.active, cut, 1.0)
    reference = batch.param("pricing.reference_price")[:, None]
    start = batch.param("pricing.token_compute")
    return (slots["price"] * cut / reference) * (batch.market_values("token_compute") / start)[:, None]


def model_utilities(batch: Batch, idx: np.ndarray, slots: dict[str, np.ndarray],
                    current: np.ndarray | None = None, counts: np.ndarray | None = None) -> np.ndarray:
    """Deterministic utility of every slot's model for customers ``idx`` (indices into
    ``batch.customers``), switching cost and same-cloud bonus included; inactive slots -inf.
    Shape (customers, slots); ``slots``: ``Batch.slot_table()``; ``current``: the customers'
    ``model_provider`` when the caller has it already; ``counts``: (runs,) when ``idx`` comes
    run by run, ``counts[r]`` of run r (``choice.run_counts``)."""
    batch = _as_batch(batch)
    people = batch.customers
    terms = batch.slot_memo(slots, "model_choice.terms", _model_terms)
    at = RunsOf.of(batch, idx, counts)
    runs, one = at.runs, at.one
    k = idx.size
    w = _weights(people, idx)
    u = at.slots(terms["capability"]) * w[W_CAPABILITY]
    part = np.multiply(at.slots(terms["price"]), w[W_PRICE])
    u -= part
    np.multiply(at.slots(terms["reliability"]), w[W_RELIABILITY], out=part)
    u += part
    fit = affinity_of(batch, terms["fit"], runs, people.segment[idx])  # fit_weight x affinity, per slot and segment
    fit *= w[W_FIT]
    u += fit
    rows = np.arange(k)
    flat = u.reshape(-1)
    cloud = people.provider[idx]
    on = cloud != NO_PROVIDER
    bonus = batch.param("models.same_cloud_bonus")
    if on.all():
        flat[cloud.astype(np.intp) * k + rows] += bonus if one else at.each(bonus)
    else:
        rows_on = np.flatnonzero(on)  # one pass over the mask, then gathers
        flat[cloud.take(rows_on).astype(np.intp) * k + rows_on] += bonus if one else RunsOf(batch, runs.take(rows_on)).each(bonus)
    current = people.model_provider[idx] if current is None else current
    on = current != NO_PROVIDER
    if on.all():
        tenure, mine, cells = people.model_tenure[idx], at, current.astype(np.intp) * k + rows
    else:
        rows_on = np.flatnonzero(on)
        tenure, cells = people.model_tenure[idx.take(rows_on)], current.take(rows_on).astype(np.intp) * k + rows_on
        mine = RunsOf(batch, None if one else runs.take(rows_on))
    base, use, scale = (mine.each(batch.param(f"models.{name}"))
                        for name in ("model_switching_base", "model_switching_use", "model_tenure_scale"))
    flat[cells] += base + use * (1.0 - np.exp(-tenure / scale))
    if not terms["all_active"]:
        np.copyto(u, -np.inf, where=at.slots(terms["inactive"]))
    return u.T


def _model_terms(batch: Batch, slots: dict[str, np.ndarray]) -> dict:
    """The per-(run, slot) parts of ``model_utilities`` (the model weights times each slot's
    capability / frontier, log token price and reliability, and times its affinity per segment),
    as the utility needs them; kept while the quarter's slot table is (``Batch.slot_memo``)."""
    def weight(name: str) -> np.ndarray:
        return batch.param(f"models.{name}")

    frontier = batch.market_values("frontier")[:, None]
    log_price = np.log(np.maximum(token_price_ratio(batch, slots), 1e-300))
    return {
        "capability": weight("capability_weight")[:, None] * slots["capability"] / frontier,
        "price": weight("price_weight")[:, None] * log_price,
        "reliability": weight("reliability_weight")[:, None] * slots["reliability"],
        "fit": affinity_table(batch, weight("fit_weight")[:, None, None] * slots["affinity"]),
        "all_active": bool(slots["active"].all()),
        "inactive": ~slots["active"],
    }


def tied_step(batch, moved: np.ndarray, tied: np.ndarray | None = None) -> None:
    """The model layer tied to the cloud, in the runs where ``tied`` (runs,) bool holds (default
    all): movers (``moved``, indices into ``batch.customers``) lose their model; customers start
    using their own cloud's model with hazard model_use_rate[s] x min(1, capability / frontier)."""
    batch = _as_batch(batch)
    people = batch.customers
    run_of = batch.run_of
    if tied is not None and not tied.all():
        moved = moved[tied[run_of[moved]]]
    else:
        tied = np.ones(batch.size, dtype=bool)
    people.uses_model[moved] = False
    people.model_provider[moved] = NO_PROVIDER
    people.model_tenure[moved] = 0
    # A cloud's exit already cleared its customers' model (entry_exit).
    tied = tied & services_open(batch)
    if not tied.any():
        return
    slots = batch.slot_table()
    rate = batch.param("demand.segments.model_use_rate")
    appeal = np.minimum(slots["capability"] / batch.market_values("frontier")[:, None], 1.0)  # (runs, slots)
    top = rate.max(axis=1) * appeal.max(axis=1)
    top = np.where(tied & (top > 0), top, 0.0)
    picked = batch.bernoulli(top)
    provider = people.provider[picked]
    eligible = (provider != NO_PROVIDER) & ~people.uses_model[picked]
    picked, provider = picked[eligible], provider[eligible]
    r = run_of[picked]
    hazard = rate[r, people.segment[picked]] * appeal[r, provider]
    u = batch.uniforms(np.bincount(r, minlength=batch.size))
    start = picked[u * top[r] < hazard]
    people.uses_model[start] = True
    people.model_provider[start] = people.provider[start]
