"""Submodel 4, service: providers serve their customers' compute and token demand and
their own captive demand from finite serving capacity.  Demand beyond capacity is
not served and lowers reliability, which customers weigh when they choose.

Token volume responds to the provider's token price with constant elasticity:
    tokens_i = token_need_i * uses_model_i * (token_price_j / reference_token_price) ** -elasticity
Article: "Only cloud services that can withstand the triple tests of traffic,
stability, and security at the scale of the Spring Festival Gala are qualified to
compete"; "when price falls to one tenth, volume may rise tenfold".
"""

from __future__ import annotations

import numpy as np

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
        served = 1.0 if p.utilisation <= 1.0 else 1.0 / p.utilisation
        p.served_gpu = customer_gpu * served
        p.captive_served = captive * served
        p.billed_gpu = (p.customer_compute + p.tokens * intensity * cut[p.slot]) * served
        target = served ** cfg.service.overload_penalty
        mem = cfg.service.reliability_memory
        p.reliability = mem * p.reliability + (1.0 - mem) * target
