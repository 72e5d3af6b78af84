"""Submodel 7, entry and exit.

An entrant enters in the first quarter (on or after its earliest) in which its
bankroll covers the entry cost: buying ``entry_compute`` GPU-equivalents, scaled
with the frontier when the arms race is on.  A provider exits after ``exit_after``
quarters of distress in a row; its customers must choose again next quarter.
Distress is insolvency in either of its two forms (after any parent's funding):

    distressed_j = cash_j < 0  or  (utilisation_j > overload_limit  and  capacity unfunded_j)

where the capacity is unfunded when all the provider and its parent can spend this
quarter buys less than the capacity gap of its demand (finance).  A provider that
cannot pay for the capacity its demand needs cannot keep serving a fraction of it
for ever: capex limited to the cash left keeps cash at zero, never negative.  Article: "to stay in the game in the AI era, at least
100,000 high-end GPU cards are needed ... For startups, this threshold is almost
impossible to overcome."
"""

from __future__ import annotations

from sim.customers import NO_PROVIDER
from sim.submodels import multihoming
from sim.submodels.finance import CASH_TOLERANCE, MILLION


def entry_cost(market) -> float:
    """US$ million needed to enter now."""
    cfg = market.config
    compute = entry_compute(market)
    return compute * cfg.finance.gpu_cost_import * market.gpu_cost_factor / MILLION


def entry_compute(market) -> float:
    cfg = market.config
    scale = market.frontier / market.frontier_history[0] if cfg.entry.scales_with_frontier else 1.0
    return cfg.entry.entry_compute * scale


def step(market) -> None:
    market.entries, market.exits = [], []
    for p in list(market.active_providers()):
        p.distress_quarters = p.distress_quarters + 1 if distressed(p, market.config.entry) else 0
        if p.distress_quarters >= market.config.entry.exit_after:
            exit_provider(market, p)
    for slot, spec in market.pending_entrants():
        market.bankrolls[slot] += spec.funding
        if market.t + 1 < market.config.quarter_offset(spec.earliest):
            continue
        cost = entry_cost(market)
        if market.bankrolls[slot] >= cost:
            market.enter(slot, spec, cash=market.bankrolls[slot] - cost, extra_compute=entry_compute(market))
            market.entries.append(spec.name)


def distressed(provider, entry_cfg) -> bool:
    """Insolvent this quarter: negative cash, or overloaded beyond ``overload_limit`` without
    the money (its own or its parent's) to buy the capacity its demand needs."""
    if provider.cash < -CASH_TOLERANCE:
        return True
    return provider.utilisation > entry_cfg.overload_limit and provider.capacity_unfunded


def exit_provider(market, provider) -> None:
    people = market.customers
    multihoming.on_exit(people, provider.slot)  # a second cloud takes over a multi-homer's workload
    orphans = people.provider == provider.slot
    people.provider[orphans] = NO_PROVIDER
    people.tenure[orphans] = 0
    # Its model's users lose it; with the model layer on they choose another next quarter.
    model_orphans = people.model_provider == provider.slot
    people.model_provider[model_orphans] = NO_PROVIDER
    people.model_tenure[model_orphans] = 0
    if not market.config.models.choose_apart:
        people.uses_model[orphans] = False
    market.exits.append(provider.name)
    market.retire(provider)
