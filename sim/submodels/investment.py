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

import numpy as np

# Every function works on all runs of a batch (sim.batch.Batch) at once: provider values are
# (runs, slots) arrays, the market's values (runs,) arrays.


def discretionary_capex(batch, gpu_cost: np.ndarray) -> np.ndarray:
    """(runs, slots) US$ million each provider wants to spend this quarter beyond its capacity
    gap and committed budget.  ``gpu_cost``: its blended cost of one GPU-equivalent, US$
    million, (runs, slots).  Reads this quarter's revenue, internal revenue and opex from the
    provider table (set by finance before).  Meaningful at active slots."""
    table = batch.table
    base = table.capex_share * table.revenue
    strategic = batch.memo("investment.strategic", lambda b: b.param("investment.policy") == "strategic")
    if not strategic.any():
        return base
    return np.where(strategic[:, None], base + race_capex(batch, gpu_cost, runs=strategic), base)


def installed(table) -> np.ndarray:
    """(runs, slots) compute stock plus GPUs on order, GPU-equivalents (the orders added oldest
    first, as Python's ``sum`` over them)."""
    on_order = np.zeros(table.compute.shape)
    for j in range(table.pipeline.shape[2]):
        on_order = on_order + table.pipeline[:, :, j]
    return table.compute + on_order


def racing_effort(capability, frontier, give_up_gap):
    """1 at the frontier, falling linearly to 0 at a capability gap of ``give_up_gap``
    (elementwise; numbers or arrays that broadcast)."""
    with np.errstate(divide="ignore", invalid="ignore"):
        gap = np.where(np.asarray(frontier) > 0, 1.0 - np.divide(capability, frontier), 0.0)
    return np.minimum(1.0, np.maximum(0.0, 1.0 - gap / give_up_gap))


def expected_growth(batch, runs: np.ndarray | None = None) -> np.ndarray:
    """(runs,) growth of each run's planned demand (GPU-equivalents, all active providers) over
    the last quarter, at least 0; remembered on the run's Market (``investment_memo``: quarter,
    planned demand, growth) once per quarter.  ``runs``: (runs,) bool, the runs that ask (only
    their memos move; others give 0)."""
    total = batch.sum_slots(batch.table.planned_gpu)
    out = np.zeros(batch.size)
    for r, market in enumerate(batch.markets):  # a per-run scalar memo
        if runs is not None and not runs[r]:
            continue
        memo = market.investment_memo
        if memo is None or memo[0] != market.t:
            now = total[r]
            previous = memo[1] if memo is not None else now
            growth = max(0.0, now / previous - 1.0) if previous > 0 else 0.0
            memo = market.investment_memo = (market.t, now, growth)
        out[r] = memo[2]
    return out


def race_capex(batch, gpu_cost, runs: np.ndarray | None = None) -> np.ndarray:
    """(runs, slots) US$ million a strategic provider spends to lead its largest rival's fleet
    (0 if it already does, has no active rival, is far behind in capability, or has no funds to
    spare).  ``gpu_cost``: US$ million per GPU-equivalent, (runs, slots) or a number.  ``runs``:
    the runs that race (default all); others give 0 and leave their growth memo alone."""
    table, active = batch.table, batch.active
    races = np.ones(batch.size, dtype=bool) if runs is None else runs
    fleet = installed(table)
    rival = largest_other(np.where(active, fleet, -np.inf))
    has_rival = active & ((active.sum(axis=1) > 1) & races)[:, None]  # an active slot with another active
    growth = expected_growth(batch, runs=has_rival.any(axis=1))
    escalation = batch.param("investment.escalation")
    target = ((1.0 + escalation) * (1.0 + growth))[:, None] * rival
    frontier = np.array([float(m.frontier) for m in batch.markets])[:, None]
    effort = racing_effort(table.capability, frontier, batch.param("investment.give_up_gap")[:, None])
    with np.errstate(invalid="ignore"):
        wanted = batch.param("investment.response")[:, None] * effort * np.maximum(0.0, target - fleet) * gpu_cost
    funds = (np.maximum(0.0, table.revenue + table.internal_revenue - table.opex)
             + batch.param("investment.cash_draw")[:, None] * np.maximum(0.0, table.cash))
    return np.where(has_rival, np.minimum(wanted, funds), 0.0)


def largest_other(values: np.ndarray) -> np.ndarray:
    """(runs, slots): for each slot, the largest of ``values`` (runs, slots) at the run's other slots
    (-inf for a run of one slot): the larger of the running maxima before it and after it."""
    before, after = np.empty(values.shape), np.empty(values.shape)
    before[:, 0] = after[:, -1] = -np.inf
    np.maximum.accumulate(values[:, :-1], axis=1, out=before[:, 1:])  # slots 0..j-1
    np.maximum.accumulate(values[:, :0:-1], axis=1, out=after[:, -2::-1])  # slots j+1.. (from the right)
    return np.maximum(before, after, out=before)
