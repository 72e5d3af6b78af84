"""Submodel 2, pricing: unit cost plus a markup that follows the invest-or-harvest
trade-off of switching-cost markets (Klemperer 1987; Farrell and Klemperer 2007).

A provider below its fair share (1 / number of active providers) prices low to
win the customers who are choosing now ("invest"); one above it raises price on
a locked-in base ("harvest").  Article: Volcano Engine won customers with prices
at 20-30 % of its rivals' (market-shares.md section 4); the CMA finds
"significant price increases on contract renewal".

Two prices around that list price (Klemperer 1987, 1995): new customers are offered
less, customers renewing with their incumbent are asked more, by shares of the
switching cost a locked-in customer bears, turned into price terms:

    premium_j      = lock_in_j * (switching_base + switching_tenure) / mean w_price     (log price)
    price_renewal_j = list_j * exp(min(renewal_harvest * premium_j, ln 10))
    price_new_j     = max(list_j * exp(-min(new_customer_discount * premium_j, ln 10)), unit_j * (1 + min_markup))

Customers in their first contract with a provider pay its new-customer price, the
others its renewal price; ``price`` is what its customers pay on average (weighted
by compute demand), and bills tokens too.
"""

from __future__ import annotations

import numpy as np

MAX_LOG_GAP = float(np.log(10.0))  # renewal price at most 10x the list price; new-customer price at least 1/10


def unit_cost(market, provider) -> float:
    """Cost of one served GPU-equivalent for a quarter: depreciation of the blended chip
    purchase cost plus opex, spread over the serving part of the fleet."""
    fin = market.config.finance
    chip = provider.own_chip_share * fin.gpu_cost_own + (1 - provider.own_chip_share) * fin.gpu_cost_import
    per_gpu = chip * market.gpu_cost_factor * fin.depreciation + fin.opex_per_gpu
    return per_gpu / (1.0 - provider.training_share)


def token_price_factor(config, name: str, t: int) -> float:
    """Price per token relative to the compute price for provider ``name`` in quarter ``t``:
    the product of (1 - cut) over the token price cuts in force (the 2024 model price war:
    Doubao at 0.0008 yuan per 1k tokens, Qwen cut 85-97 %, market-shares.md section 2)."""
    factor = 1.0
    for c in config.pricing.token_price_cuts:
        if (c.provider is None or c.provider == name) and t >= config.quarter_offset(c.quarter):
            factor *= 1.0 - c.cut
    return factor


def markup(share: float, fair_share: float, cfg) -> float:
    return float(np.clip(cfg.base_markup + cfg.harvest_slope * (share - fair_share), cfg.min_markup, cfg.max_markup))


def lock_in_premium(config, lock_in: float) -> float:
    """The long-tenure switching cost of a customer of a provider with ``lock_in``, in
    log-price units: lock_in * (switching_base + switching_tenure) / mean w_price (mean over
    segments by weight; a switching cost S utils is worth a price ratio exp(S / w_price))."""
    segs = config.demand.segments.values()
    weight = sum(s.weight for s in segs)
    w_price = sum(s.weight * s.w_price for s in segs) / weight if weight > 0 else 0.0
    ch = config.choice
    return lock_in * (ch.switching_base + ch.switching_tenure) / max(w_price, 0.1)


def two_prices(list_price: float, unit: float, lock_in: float, config) -> tuple[float, float]:
    """(new-customer price, renewal price) around ``list_price`` (US$ per GPU-quarter) for a
    provider with ``lock_in``; the gap grows with lock-in.  Klemperer (1987, 1995)."""
    cfg = config.pricing
    premium = lock_in_premium(config, lock_in)
    floor = min(list_price, unit * (1.0 + cfg.min_markup))  # a discount never takes it below min_markup
    # Extreme settings (lock-in 20, switching costs of 100 utils) would ask e^1000 times the list
    # price: no contract goes beyond ten times it, nor a discount below a tenth.
    new = max(list_price * float(np.exp(-min(cfg.new_customer_discount * premium, MAX_LOG_GAP))), floor)
    return new, list_price * float(np.exp(min(cfg.renewal_harvest * premium, MAX_LOG_GAP)))


def step(market) -> None:
    cfg = market.config.pricing
    active = market.active_providers()
    if not active:
        return
    base = market.installed_compute_shares()
    fair = 1.0 / len(active)
    for p in active:
        p.markup = markup(base[p.slot], fair, cfg)
        unit = unit_cost(market, p)
        p.list_price += cfg.adjustment * (unit * (1.0 + p.markup) - p.list_price)
        p.price_new, p.price_renewal = two_prices(p.list_price, unit, p.lock_in, market.config)
        p.price = p.price_new


def renewal_surcharge(slots: dict[str, np.ndarray], current: np.ndarray) -> np.ndarray:
    """ln(renewal price / new-customer price) of each customer's current provider slot:
    what a customer renewing with its incumbent pays on top, in the utility's log-price
    units (to be multiplied by its price weight)."""
    return np.log(slots["price_renewal"] / slots["price_new"])[current]


def settle(market) -> None:
    """After choice: each provider's ``price`` becomes what its customers pay on average,
    weighted by compute demand: the new-customer price for those in their first contract,
    the renewal price for the rest.  One pass over the customers, skipped when no provider
    charges two prices."""
    active = market.active_providers()
    if all(p.price_new == p.price_renewal for p in active):
        for p in active:
            p.price = p.price_new
        return
    people = market.customers
    n = market.n_slots
    key = people.provider.astype(np.intp)
    key += 1
    key *= 2
    key += people.first_contract
    totals = np.bincount(key, weights=people.compute.astype(np.float64), minlength=2 * (n + 1))
    renewed, first = totals[2::2], totals[3::2]
    for p in active:
        weight = renewed[p.slot] + first[p.slot]
        p.price = (first[p.slot] * p.price_new + renewed[p.slot] * p.price_renewal) / weight if weight > 0 else p.price_new
