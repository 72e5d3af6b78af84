"""Submodel 2, pricing: unit cost plus a markup that follows the invest-or-harvest
trade-off of switching-cost markets (Klemperer 1987; Farrell and Klemperer 2007).

A provider below its fair share (1 / number of active providers) prices low to
win the customers who are choosing now ("invest"); one above it raises price on
a locked-in base ("harvest").  Article: Volcano Engine won customers with prices
at 20-30 % of its rivals' (market-shares.md section 4); the CMA finds
"significant price increases on contract renewal".
"""

from __future__ import annotations

import numpy as np


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


def step(market) -> None:
    cfg = market.config.pricing
    active = market.active_providers()
    if not active:
        return
    base = market.installed_compute_shares()
    fair = 1.0 / len(active)
    for p in active:
        p.markup = markup(base[p.slot], fair, cfg)
        target = unit_cost(market, p) * (1.0 + p.markup)
        p.price += cfg.adjustment * (target - p.price)
