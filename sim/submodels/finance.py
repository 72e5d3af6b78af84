"""Submodel 5, money: revenue, operating cost, capex and the compute it buys.

    revenue  = price * billed GPU-quarters (customers' compute served, plus tokens served at the
               token price, which a price cut may set below the compute price; captive use is internal)
    internal = captive_billing * unit cost * captive GPU-quarters served (the parent pays for its apps' compute;
               this funds the fleet but is not market revenue)
    opex     = opex_per_gpu * compute stock
    capex    = min(discretionary (investment.py: capex_share * revenue, plus racing if strategic)
                   + committed budget + cost of the capacity gap bought, funds available)
    gap      = capacity_response * max(0, planned demand * (1 + headroom) / (1 - training_share) - compute - on order)
               (planned demand leaves out this quarter's surges: a one-off surge is not built for)
    new GPUs = own-chip part / own chip cost + imported part / import cost (imports capped market-wide,
               pro rata; the refused import budget buys domestic chips at domestic_chip_cost if set)
    compute  = compute * (1 - depreciation) + GPUs bought capex_lag quarters ago
Money is in US$ million.  Article: Alibaba plans "380 billion yuan over the next
three years in AI infrastructure"; own chips (T-Head, Kunlun) are cheaper and not
exposed to import limits.
"""

from __future__ import annotations

from sim.submodels import investment
from sim.submodels.pricing import unit_cost

MILLION = 1e6
CASH_TOLERANCE = 1e-6  # US$ million; rounding in 'spend all that is available' must not count as debt


def step(market) -> None:
    fin = market.config.finance
    active = market.active_providers()
    orders = {}
    for p in active:
        p.revenue = p.price * p.billed_gpu / MILLION
        p.internal_revenue = fin.captive_billing * unit_cost(market, p) * p.captive_served / MILLION
        p.opex = fin.opex_per_gpu * p.compute / MILLION
        available = max(p.cash + p.revenue + p.internal_revenue - p.opex, 0.0)
        own_cost = fin.gpu_cost_own * market.gpu_cost_factor / MILLION
        import_cost = fin.gpu_cost_import * market.gpu_cost_factor / MILLION
        unit = p.own_chip_share * own_cost + (1 - p.own_chip_share) * import_cost
        gap_spend = capacity_gap(p, fin) * unit
        budget = min(investment.discretionary_capex(market, p, unit) + p.committed_capex(market.t) + gap_spend, available)
        orders[p.slot] = (budget * p.own_chip_share / own_cost, budget * (1 - p.own_chip_share) / import_cost)

    scale = import_scale(sum(imported for _, imported in orders.values()), fin.import_cap)
    for p in active:
        own, wanted = orders[p.slot]
        imported = wanted * scale
        domestic = 0.0
        if fin.domestic_chip_cost is not None:
            domestic = (wanted - imported) * fin.gpu_cost_import / fin.domestic_chip_cost
        p.gpus_bought = own + imported + domestic
        p.capex = (own * fin.gpu_cost_own + imported * fin.gpu_cost_import
                   + domestic * (fin.domestic_chip_cost or 0.0)) * market.gpu_cost_factor / MILLION
        p.cash += p.revenue + p.internal_revenue - p.opex - p.capex
        p.pipeline.append(p.gpus_bought)
        p.compute = p.compute * (1.0 - fin.depreciation) + p.pipeline.popleft()
        p.negative_cash_quarters = p.negative_cash_quarters + 1 if p.cash < -CASH_TOLERANCE else 0


def import_scale(requested: float, cap: float | None) -> float:
    """Share of requested imports allowed under a market-wide cap (pro rata)."""
    if cap is None or requested <= cap:
        return 1.0
    return cap / requested


def capacity_gap(provider, fin) -> float:
    """GPU-equivalents to order so that serving capacity catches up with demand plus headroom."""
    needed = provider.planned_gpu * (1.0 + fin.headroom) / (1.0 - provider.training_share)
    installed = provider.compute + sum(provider.pipeline)
    return fin.capacity_response * max(0.0, needed - installed)
