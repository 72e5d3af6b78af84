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
from sim.submodels.multihoming import workload_parts
from sim.submodels.pricing import token_price_factor


def surge_multipliers(market, holder: np.ndarray | None = None) -> tuple[np.ndarray | None, np.ndarray]:
    """Per-customer and per-slot demand multipliers for this quarter's surges (None = no surge).
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


def totals(holder: np.ndarray, weights: np.ndarray | None, n_slots: int) -> np.ndarray:
    """Per slot: the sum of ``weights`` (or the count, for None) over customers whose
    ``holder`` is that slot; -1 counts nowhere.  float64, shape (n_slots,)."""
    key = holder.astype(np.intp)
    key += 1
    if weights is None:
        return np.bincount(key, minlength=n_slots + 1)[1:].astype(np.float64)
    return np.bincount(key, weights=weights.astype(np.float64, copy=False), minlength=n_slots + 1)[1:]


def demand_by_slot(market, *, surges: bool = True) -> dict[str, np.ndarray]:
    """Per slot, this quarter: ``compute`` (customers' compute on it, primary and second
    clouds), ``ai_compute`` (the part of it from customers who use models), ``token_need``
    (token need of the customers buying its model, before the price response).  With
    ``surges`` the quarter's surges are applied; without them it is the usual demand that
    capacity is planned for.  float64 arrays of shape (slots,)."""
    people = market.customers
    n = market.n_slots
    second = people.second_provider
    split_any = bool((second != NO_PROVIDER).any())
    mult = {"provider": None, "second": None, "model": None}
    if surges:
        mult["provider"] = surge_multipliers(market, people.provider)[0]
        if mult["provider"] is not None:
            mult["second"] = surge_multipliers(market, second)[0]
            mult["model"] = surge_multipliers(market, people.model_provider)[0]
    primary = workload_parts(people)[0] if split_any else people.compute
    if mult["provider"] is not None:
        primary = primary * mult["provider"]
    out = {"compute": totals(people.provider, primary, n),
           "ai_compute": totals(people.provider, primary * people.uses_model, n)}
    if split_any:
        on = np.flatnonzero(second != NO_PROVIDER)
        part = workload_parts(people, on)[1]
        if mult["second"] is not None:
            part = part * mult["second"][on]
        out["compute"] += totals(second[on], part, n)
        out["ai_compute"] += totals(second[on], part * people.uses_model[on], n)
    users = np.flatnonzero(people.model_provider != NO_PROVIDER)
    need = people.token_need[users]
    if mult["model"] is not None:
        need = need * mult["model"][users]
    out["token_need"] = totals(people.model_provider[users], need, n)
    return out


def step(market) -> None:
    people = market.customers
    cfg = market.config
    n = market.n_slots
    intensity = market.token_compute
    slots = market.slot_table()
    cut = np.array([token_price_factor(cfg, name, market.t) for name in market.names])
    volume_factor = np.power(np.maximum(token_price_ratio(market, slots), 1e-9), -cfg.demand.token_elasticity)

    usual = demand_by_slot(market, surges=False)
    planned = usual["compute"] + usual["token_need"] * volume_factor * intensity
    surging = surge_multipliers(market)[0] is not None
    now = demand_by_slot(market) if surging else usual
    per_slot = surge_multipliers(market)[1]
    token_volume = now["token_need"] * volume_factor
    customers = totals(people.provider, None, n)
    model_users = totals(people.model_provider, None, n)
    for p in market.active_providers():
        j = p.slot
        captive = p.captive_compute * per_slot[j]
        p.customer_compute = float(now["compute"][j])
        p.tokens_demanded = float(token_volume[j])
        p.customers = int(customers[j])
        p.model_users = int(model_users[j])
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
