"""Submodel 4, service: providers serve their customers' compute and token demand and
their own captive demand from finite serving capacity.  Demand beyond capacity is
not served; who bears the shortfall follows the rationing rule (``ration``), and the
share of customers' demand served sets reliability, which customers weigh when they choose.

Token volume responds to the provider's token price with constant elasticity:
    tokens_i = token_need_i * uses_model_i * (token_price_j / reference_token_price) ** -elasticity
Article: "Only cloud services that can withstand the triple tests of traffic,
stability, and security at the scale of the Spring Festival Gala are qualified to
compete"; "when price falls to one tenth, volume may rise tenfold".
"""

from __future__ import annotations

import numpy as np

from sim.submodels import parents
from sim.submodels.pricing import token_price_factor


def surge_multipliers(market) -> tuple[np.ndarray | None, np.ndarray]:
    """Per-customer and per-slot demand multipliers for this quarter's surges (None = no surge)."""
    people = market.customers
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
            mask &= people.provider == slot
            per_slot[slot] *= surge.multiplier
        else:
            per_slot *= surge.multiplier
        if per_customer is None:
            per_customer = np.ones(people.n, dtype=np.float32)
        per_customer[mask] *= surge.multiplier
    return per_customer, per_slot


def step(market) -> None:
    people = market.customers
    cfg = market.config
    slots = market.slot_table()
    n = market.n_slots
    intensity = market.token_compute
    # Token price = compute price x compute per token x any price cut in force.
    cut = np.array([token_price_factor(cfg, name, market.t) for name in market.names])
    price_ratio = (slots["price"] * cut / cfg.pricing.reference_price) * (intensity / cfg.pricing.token_compute)
    volume_factor = np.power(np.maximum(price_ratio, 1e-9), -cfg.demand.token_elasticity)

    # Token need of model users is summed per provider first, then scaled by the provider's
    # volume factor: the same total as scaling each customer, without a gather per customer.
    need = people.token_need * people.uses_model
    compute = people.compute
    customer_compute, used_need, customers = people.provider_totals(n, compute, need, None)
    # Providers plan capacity for the usual demand; a surge is served (or not) from what is there.
    planned = customer_compute + used_need * volume_factor * intensity
    per_customer, per_slot = surge_multipliers(market)
    if per_customer is not None:
        customer_compute, used_need = people.provider_totals(n, compute * per_customer, need * per_customer)
    token_volume = used_need * volume_factor
    for p in market.active_providers():
        captive = p.captive_compute * per_slot[p.slot]
        p.customer_compute = float(customer_compute[p.slot])
        p.tokens = float(token_volume[p.slot])
        p.customers = int(customers[p.slot])
        customer_gpu = p.customer_compute + p.tokens * intensity
        p.demand_gpu = customer_gpu + captive
        p.planned_gpu = float(planned[p.slot]) + p.captive_compute
        capacity = p.serving_capacity
        p.utilisation = p.demand_gpu / capacity if capacity > 0 else np.inf
        served, captive_share = ration(capacity, customer_gpu, captive, parents.rationing_rule(market, p))
        p.served_gpu = customer_gpu * served
        p.captive_served = captive * captive_share
        p.served_share = (p.served_gpu + p.captive_served) / p.demand_gpu if p.demand_gpu > 0 else 1.0
        p.customer_served_share = served
        p.billed_gpu = (p.customer_compute + p.tokens * intensity * cut[p.slot]) * served
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
        return ((capacity - first * own_apps) / customers if customers > 0 else 1.0), first
    if rule == "customers_first":
        first = min(1.0, capacity / customers) if customers > 0 else 1.0
        return first, ((capacity - first * customers) / own_apps if own_apps > 0 else 1.0)
    raise ValueError(f"unknown rationing rule {rule!r}; allowed: own_apps_first, customers_first, proportional")
