"""Submodel 5, money: revenue, operating cost, capex and the compute it buys.

    revenue  = price * billed GPU-quarters (customers' compute served, plus tokens served at the
               token price, which a price cut may set below the compute price; captive use is internal)
    internal = transfer price * captive GPU-quarters served (the group's apps pay for their compute at
               unit cost or at market price, sim.submodels.parents; not market revenue)
    opex     = opex_per_gpu * compute stock
    own      = max(0, cash + revenue + internal - opex)                       (own funds)
    wanted   = discretionary capex (investment.py: capex_share * revenue, plus racing if strategic)
               + committed budget + cost of the capacity gap bought
    capex    = min(wanted, own + the parent's grant)                          (parents.grant_capex)
    gap      = capacity_response * max(0, (planned demand + captive growth over the lead time) * (1 + headroom)
               / (1 - training_share) - fleet when new orders serve (stock and orders, net of depreciation))
               (planned demand leaves out this quarter's surges: a one-off surge is not built for;
               own apps grow at a known rate, so their growth until new GPUs serve, capex_lag + 1 quarters, is planned for)
    new GPUs = own-chip part / own chip cost + imported part / import cost (imports capped market-wide,
               pro rata; the refused import budget buys domestic chips at domestic_chip_cost if set)
    compute  = compute * (1 - depreciation) + GPUs bought capex_lag quarters ago
    cash     = cash + revenue + internal - opex - capex + parent funding (capex beyond own funds; then
               losses, from the parent's credit line)
Money is in US$ million.  Article: Alibaba plans "380 billion yuan over the next
three years in AI infrastructure"; own chips (T-Head, Kunlun) are cheaper and not
exposed to import limits.
"""

from __future__ import annotations

from sim.submodels import investment, parents

MILLION = 1e6
CASH_TOLERANCE = 1e-6  # US$ million; rounding in 'spend all that is available' must not count as debt


def step(market) -> None:
    fin = market.config.finance
    active = market.active_providers()
    own_cost = fin.gpu_cost_own * market.gpu_cost_factor / MILLION
    import_cost = fin.gpu_cost_import * market.gpu_cost_factor / MILLION
    plans = {}
    for p in active:
        p.revenue = p.price * p.billed_gpu / MILLION
        p.internal_revenue = parents.transfer_price(market, p) * p.captive_served / MILLION
        p.opex = fin.opex_per_gpu * p.compute / MILLION
        own_funds = max(p.cash + p.revenue + p.internal_revenue - p.opex, 0.0)
        unit = p.own_chip_share * own_cost + (1 - p.own_chip_share) * import_cost
        gap_spend = capacity_gap(p, fin) * unit
        wanted = investment.discretionary_capex(market, p, unit) + p.committed_capex(market.t) + gap_spend
        plans[p.slot] = (wanted, own_funds, gap_spend)
    grants = parents.grant_capex(market, {slot: max(0.0, wanted - own) for slot, (wanted, own, _) in plans.items()})

    orders = {}
    for p in active:
        wanted, own_funds, gap_spend = plans[p.slot]
        budget = min(wanted, own_funds + grants[p.slot])
        # GPUs are GPUs: the capacity its demand needs is unfunded only if all it can spend falls short of it.
        p.capacity_unfunded = budget < gap_spend - CASH_TOLERANCE
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
        p.parent_funding = parents.draw(market, p, min(grants[p.slot], p.capex - plans[p.slot][1]))
        p.cash += p.revenue + p.internal_revenue - p.opex - p.capex + p.parent_funding
        p.pipeline.append(p.gpus_bought)
        p.compute = p.compute * (1.0 - fin.depreciation) + p.pipeline.popleft()
    parents.cover_losses(market, active)


def import_scale(requested: float, cap: float | None) -> float:
    """Share of requested imports allowed under a market-wide cap (pro rata)."""
    if cap is None or requested <= cap:
        return 1.0
    return cap / requested


def capacity_gap(provider, fin) -> float:
    """GPU-equivalents to order so that serving capacity catches up with demand plus headroom,
    own apps' demand taken at its expected level when GPUs ordered now start serving."""
    lead = fin.capex_lag + 1
    captive_growth = provider.captive_compute * ((1.0 + provider.captive_growth) ** lead - 1.0)
    needed = (provider.planned_gpu + captive_growth) * (1.0 + fin.headroom) / (1.0 - provider.training_share)
    installed = installed_at_lead(provider.compute, list(provider.pipeline), fin.depreciation)
    return fin.capacity_response * max(0.0, needed - installed)


def installed_at_lead(compute: float, pipeline: list[float], depreciation: float) -> float:
    """GPU-equivalents that will be in the fleet when GPUs ordered now start serving (the stock at
    the end of quarter t + capex_lag, with capex_lag = len(pipeline)): today's stock after
    capex_lag + 1 depreciations (this quarter's included), plus each order in the pipeline (oldest
    first, arriving at the end of t + i) after the depreciations left once it has arrived."""
    lag = len(pipeline)
    keep = 1.0 - depreciation
    return compute * keep ** (lag + 1) + sum(batch * keep ** (lag - i) for i, batch in enumerate(pipeline))
