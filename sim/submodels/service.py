"""Submodel 4, service: providers serve their customers' compute, the model tokens bought
from them and their own captive demand from finite serving capacity.  Demand beyond capacity
is not served; who bears the shortfall follows the rationing rule (``ration``), and the
share of customers' demand served sets reliability, which customers weigh when they choose.

Compute demand sits where the customer's workload is (primary and second cloud, submodel
multi-homing); token demand sits with the model provider the customer buys from (submodel
model choice): tokens are served on the model owner's GPUs.  Token volume responds to the
model provider's token price with constant elasticity:
    tokens_i = token_need_i * uses_model_i * (token_price_m / reference_token_price) ** -elasticity
Shares and revenue count what is served; what is not served is ``unserved_tokens``.
Article: "Only cloud services that can withstand the triple tests of traffic,
stability, and security at the scale of the Spring Festival Gala are qualified to
compete"; "when price falls to one tenth, volume may rise tenfold".
"""

from __future__ import annotations

import numpy as np

from sim.customers import NO_PROVIDER
from sim.submodels import parents
from sim.submodels.model_choice import token_price_ratio
from sim.submodels.pricing import token_factors


def surge_multipliers(market, holder: np.ndarray | None = None) -> tuple[np.ndarray | None, np.ndarray]:
    """Per-customer (float32, shape (customers,)) and per-slot (float64, shape (slots,)) demand
    multipliers for this quarter's surges (per-customer None = no surge).
    ``holder`` is the slot each customer's demand sits on (default: its primary cloud; the
    second cloud or the model provider for those parts of its demand)."""
    people = market.customers
    holder = people.provider if holder is None else holder
    per_customer = None
    per_slot = np.ones(market.n_slots)
    for surge in market.config.service.surges:
        if market.config.quarter_offset(surge.quarter) != market.t:
            continue
        mask = np.ones(people.n, dtype=bool)
        if surge.segments:
            seg_ids = [people.segment_names.index(s) for s in surge.segments]
            mask &= np.isin(people.segment, seg_ids)
        if surge.provider is not None:
            slot = market.slot_of(surge.provider)
            mask &= holder == slot
            per_slot[slot] *= surge.multiplier
        else:
            per_slot *= surge.multiplier
        if per_customer is None:
            per_customer = np.ones(people.n, dtype=np.float32)
        per_customer[mask] *= surge.multiplier
    return per_customer, per_slot


def demand_by_slot(market, *, surges: bool = True) -> dict[str, np.ndarray]:
    """Per slot, this quarter: ``compute`` (customers' compute on it, primary and second
    clouds), ``ai_compute`` (the part of it from customers who use models), ``token_need``
    (token need of the customers buying its model, before the price response),
    ``customers`` (count by primary cloud) and ``model_users`` (count by model provider).
    With ``surges`` the quarter's surges are applied; without them it is the usual demand
    that capacity is planned for.  float64 arrays of shape (slots,).

    A customer's compute splits as in ``multihoming.workload_parts`` (second = compute x
    split, primary = compute - second, float64), so the slots' totals conserve workload."""
    people = market.customers
    n = market.n_slots
    second = people.second_provider
    multi = bool(people.split.any())  # split is 0 exactly where there is no second cloud
    mult = {"provider": None, "second": None, "model": None}
    if surges:
        mult["provider"] = surge_multipliers(market, people.provider)[0]
        if mult["provider"] is not None:
            mult["second"] = surge_multipliers(market, second)[0]
            mult["model"] = surge_multipliers(market, people.model_provider)[0]
    primary = people.compute.astype(np.float64)
    if multi:
        part = primary * people.split  # exact: a product of two float32 in float64
        primary -= part
    if mult["provider"] is not None:
        primary *= mult["provider"]
    # One pass for compute, AI compute and counts: bins are (slot + 1, uses a model).
    uses = people.uses_model.view(np.int8)
    key = people.provider.astype(np.intp)
    key += 1
    key *= 2
    key += uses
    sums = np.bincount(key, weights=primary, minlength=2 * (n + 1)).reshape(n + 1, 2)[1:]
    counts = np.bincount(key, minlength=2 * (n + 1)).reshape(n + 1, 2)[1:]
    out = {"compute": sums.sum(axis=1), "ai_compute": sums[:, 1].copy(), "customers": counts.sum(axis=1).astype(np.float64)}
    if multi:
        if mult["second"] is not None:
            part *= mult["second"]
        np.copyto(key, second)
        key += 1  # no second cloud: bin 0 (its part is 0 anyway), dropped
        key *= 2
        key += uses
        extra = np.bincount(key, weights=part, minlength=2 * (n + 1)).reshape(n + 1, 2)[1:]
        out["compute"] += extra.sum(axis=1)
        out["ai_compute"] += extra[:, 1]
    model_key = people.model_provider.astype(np.intp)
    model_key += 1  # customers without a model provider fall in bin 0, dropped
    need = people.token_need if mult["model"] is None else people.token_need * mult["model"]
    out["token_need"] = np.bincount(model_key, weights=need, minlength=n + 1)[1:]
    out["model_users"] = np.bincount(model_key, minlength=n + 1)[1:].astype(np.float64)
    return out


def step(market) -> None:
    cfg = market.config
    intensity = market.token_compute
    cut = token_factors(market)
    volume_factor = np.power(np.maximum(token_price_ratio(market), 1e-9), -cfg.demand.token_elasticity)

    usual = demand_by_slot(market, surges=False)
    planned = usual["compute"] + usual["token_need"] * volume_factor * intensity
    surging = surge_multipliers(market)[0] is not None
    now = demand_by_slot(market) if surging else usual
    per_slot = surge_multipliers(market)[1]
    token_volume = now["token_need"] * volume_factor
    customers, model_users = now["customers"], now["model_users"]
    for p in market.active_providers():
        j = p.slot
        captive = p.captive_compute * per_slot[j]
        p.customer_compute = float(now["compute"][j])
        p.tokens_demanded = float(token_volume[j])
        p.customers = int(customers[j])
        p.model_users = int(model_users[j])
        p.captive_tokens_quarter = p.captive_tokens
        customer_gpu = p.customer_compute + p.tokens_demanded * intensity
        p.demand_gpu = customer_gpu + captive
        p.planned_gpu = float(planned[j]) + p.captive_compute
        capacity = p.serving_capacity
        p.utilisation = p.demand_gpu / capacity if capacity > 0 else np.inf
        served, captive_share = ration(capacity, customer_gpu, captive, parents.rationing_rule(market, p))
        p.tokens = p.tokens_demanded * served
        p.unserved_tokens = p.tokens_demanded - p.tokens
        p.served_gpu = customer_gpu * served
        p.captive_served = captive * captive_share
        p.served_share = (p.served_gpu + p.captive_served) / p.demand_gpu if p.demand_gpu > 0 else 1.0
        p.customer_served_share = served
        p.apps_served_share = captive_share
        p.billed_compute_gpu = p.customer_compute * served
        p.billed_ai_gpu = float(now["ai_compute"][j]) * served
        p.billed_token_gpu = p.tokens * intensity * cut[j]
        p.billed_gpu = p.billed_compute_gpu + p.billed_token_gpu
        target = served ** cfg.service.overload_penalty
        mem = cfg.service.reliability_memory
        p.reliability = mem * p.reliability + (1.0 - mem) * target


def ration(capacity: float, customers: float, own_apps: float, rule: str) -> tuple[float, float]:
    """Shares (0..1) of customers' and of own apps' demand served from ``capacity`` (all in
    GPU-equivalents).  With enough capacity both are 1; otherwise ``rule`` decides:
    'proportional' serves both the same share, 'own_apps_first' serves the group's apps in
    full before customers, 'customers_first' the reverse.  Capacity is never left idle while
    demand goes unserved."""
    total = customers + own_apps
    if total <= capacity:
        return 1.0, 1.0
    if capacity <= 0:
        return 0.0, 0.0
    if rule == "proportional":
        share = capacity / total
        return share, share
    if rule == "own_apps_first":
        first = min(1.0, capacity / own_apps) if own_apps > 0 else 1.0
        return _rest(capacity - first * own_apps, customers), first
    if rule == "customers_first":
        first = min(1.0, capacity / customers) if customers > 0 else 1.0
        return first, _rest(capacity - first * customers, own_apps)
    raise ValueError(f"unknown rationing rule {rule!r}; allowed: own_apps_first, customers_first, proportional")


def _rest(left: float, demand: float) -> float:
    """Share of ``demand`` served from the capacity ``left`` after the first claim (0..1; the
    subtraction may round a hair below zero)."""
    return min(1.0, max(0.0, left / demand)) if demand > 0 else 1.0
