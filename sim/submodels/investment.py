"""Submodel 5b, strategic investment: the capex a provider spends beyond what its own
demand needs.  Money (finance.py) adds the committed budget and the capacity gap, and
caps the total at the funds available.

    fixed_share:  x_j = capex_share_j * revenue_j
    strategic:    x_j = capex_share_j * revenue_j + min(race_j, funds_j)
      target_j = (1 + escalation) * (1 + g) * max over rivals k of installed_k
      race_j   = response * effort_j * max(0, target_j - installed_j) * GPU cost_j
      effort_j = clip(1 - (1 - capability_j / frontier) / give_up_gap, 0, 1)
      funds_j  = max(0, revenue_j + internal_j - opex_j) + cash_draw * max(0, cash_j)

installed = compute stock plus GPUs on order; g = growth of the market's planned
demand over the last quarter (expected to go on).  Contenders near the frontier
race to lead the largest rival's fleet, so among near-equals outlays escalate
(Sutton 1991: endogenous sunk costs keep concentration bounded away from zero
however large the market); a provider far behind in capability stops racing.
Article: "to stay in the game in the AI era, at least 100,000 high-end GPU cards
are needed"; Alibaba plans "380 billion yuan over the next three years".
"""

from __future__ import annotations


def discretionary_capex(market, provider, gpu_cost: float) -> float:
    """US$ million the provider wants to spend this quarter beyond its capacity gap and
    committed budget.  ``gpu_cost``: its blended cost of one GPU-equivalent, US$ million.
    Reads this quarter's revenue, internal revenue and opex (set by finance before)."""
    base = provider.capex_share * provider.revenue
    if market.config.investment.policy == "fixed_share":
        return base
    return base + race_capex(market, provider, gpu_cost)


def installed(provider) -> float:
    """Compute stock plus GPUs on order, GPU-equivalents."""
    return provider.compute + sum(provider.pipeline)


def racing_effort(capability: float, frontier: float, give_up_gap: float) -> float:
    """1 at the frontier, falling linearly to 0 at a capability gap of ``give_up_gap``."""
    gap = 1.0 - capability / frontier if frontier > 0 else 0.0
    return min(1.0, max(0.0, 1.0 - gap / give_up_gap))


def expected_growth(market) -> float:
    """Growth of the market's planned demand (GPU-equivalents, all active providers) over
    the last quarter, at least 0; remembered on the market once per quarter."""
    memo = market.investment_memo
    if memo is None or memo[0] != market.t:
        total = sum(p.planned_gpu for p in market.active_providers())
        previous = memo[1] if memo is not None else total
        growth = max(0.0, total / previous - 1.0) if previous > 0 else 0.0
        memo = market.investment_memo = (market.t, total, growth)
    return memo[2]


def race_capex(market, provider, gpu_cost: float) -> float:
    """US$ million a strategic provider spends to lead its largest rival's fleet (0 if it
    already does, is far behind in capability, or has no funds to spare)."""
    inv = market.config.investment
    rivals = [installed(p) for p in market.active_providers() if p is not provider]
    if not rivals:
        return 0.0
    target = (1.0 + inv.escalation) * (1.0 + expected_growth(market)) * max(rivals)
    effort = racing_effort(provider.capability, market.frontier, inv.give_up_gap)
    wanted = inv.response * effort * max(0.0, target - installed(provider)) * gpu_cost
    funds = max(0.0, provider.revenue + provider.internal_revenue - provider.opex) + inv.cash_draw * max(0.0, provider.cash)
    return min(wanted, funds)
