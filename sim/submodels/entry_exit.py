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

from collections.abc import MutableMapping

import numpy as np

from sim.batch import over_runs
from sim.customers import NO_PROVIDER
from sim.submodels import multihoming
from sim.submodels.finance import CASH_TOLERANCE, MILLION


def entry_cost(market) -> float:
    """US$ million needed to enter now: this run's ``entry_costs``."""
    return float(entry_costs(market._batch)[market.run_index])


def entry_costs(batch) -> np.ndarray:
    """(runs,) US$ million each run's entrant needs to enter now: ``entry_computes`` GPUs at the
    import price and this quarter's GPU cost factor."""
    gpu_cost_import = batch.memo("entry.gpu_cost_import", lambda b: b.param("finance.gpu_cost_import"))
    cost_factor = np.array([m.gpu_cost_factor for m in batch.markets], dtype=np.float64)
    return entry_computes(batch) * gpu_cost_import * cost_factor / MILLION


def entry_computes(batch) -> np.ndarray:
    """(runs,) GPU-equivalents an entrant must buy: ``entry_compute``, times frontier / frontier_0
    where it ``scales_with_frontier``."""
    compute, scales = batch.memo("entry.compute", lambda b: (b.param("entry.entry_compute"),
                                                             b.param("entry.scales_with_frontier")))
    markets = batch.markets
    frontier = np.array([m.frontier for m in markets], dtype=np.float64)
    first = np.array([m.frontier_history[0] for m in markets], dtype=np.float64)
    scale = np.divide(frontier, first, out=np.ones(len(markets)), where=scales)  # 1.0 where it does not scale
    # No entry compute costs nothing, however far the frontier has moved (inf x 0 would be NaN,
    # and no bankroll is >= NaN: the entrant could never enter).
    return np.multiply(compute, scale, out=np.zeros(len(markets)), where=compute > 0)


def entry_compute(market) -> float:
    """GPU-equivalents this run's entrant must buy now: this run's ``entry_computes``."""
    return float(entry_computes(market._batch)[market.run_index])


@over_runs
def step(batch) -> None:
    """Exits, then entries, of every run of ``batch`` (a ``sim.batch.Batch``).  Distress counts
    and bankrolls are updated for all runs at once; the few runs where a provider exits or an
    entrant enters this quarter then do so one by one (a loop over those runs only)."""
    markets, table, active = batch.markets, batch.table, batch.active
    for market in markets:
        market.entries, market.exits = [], []
    overload_limit, exit_after = batch.memo("entry.settings", lambda b: (
        b.param("entry.overload_limit")[:, None], b.param("entry.exit_after")[:, None]))
    distress = insolvent(table.cash, table.utilisation, table.capacity_unfunded, overload_limit)
    np.copyto(table.distress_quarters, np.where(distress, table.distress_quarters + 1.0, 0.0), where=active)
    leaving = active & (table.distress_quarters >= exit_after)
    if leaving.any():  # rare: the runs where a provider exits
        for r in np.flatnonzero(leaving.any(axis=1)):
            market = markets[r]
            for slot in np.flatnonzero(leaving[r]):
                exit_provider(market, market.slots[slot])
    entrants = batch.entrants
    if not entrants.pending.any():
        return
    entrants.bankroll[...] = np.where(entrants.pending, entrants.bankroll + entrants.funding, entrants.bankroll)
    cost = np.where(entrants.pending.any(axis=1), entry_costs(batch), np.inf)
    t = markets[0].t  # the runs of a batch step together
    entering = entrants.pending & (t + 1 >= entrants.earliest) & (entrants.bankroll >= cost[:, None])
    if not entering.any():
        return
    for r in np.flatnonzero(entering.any(axis=1)):  # rare: the runs where an entrant enters
        market = markets[r]
        offset = len(market.config.providers)
        for slot in np.flatnonzero(entering[r]):
            spec = market.config.entrants[slot - offset]
            market.enter(slot, spec, cash=entrants.bankroll[r, slot] - cost[r], extra_compute=entry_compute(market))
            market.entries.append(spec.name)


class Entrants:
    """The potential entrants of a batch's runs, as (runs, slots) arrays (incumbents' slots never
    pending): ``pending`` (not entered yet), ``bankroll`` (US$ million saved so far), ``funding``
    (US$ million added each quarter) and ``earliest`` (first quarter it may enter, counted from
    ``run.start``).  Each run's ``market.bankrolls`` is a view of its row (``Bankrolls``)."""

    def __init__(self, markets: list):
        runs, slots = len(markets), markets[0].n_slots
        self.pending = np.zeros((runs, slots), dtype=bool)
        self.bankroll = np.zeros((runs, slots))
        self.funding = np.zeros((runs, slots))
        self.earliest = np.zeros((runs, slots))  # whole quarters
        for r, market in enumerate(markets):
            offset = len(market.config.providers)
            for i, spec in enumerate(market.config.entrants):
                self.funding[r, offset + i] = spec.funding
                self.earliest[r, offset + i] = market.config.quarter_offset(spec.earliest)
            for slot, value in market.bankrolls.items():
                self.pending[r, slot], self.bankroll[r, slot] = True, value
            market.bankrolls = Bankrolls(self, r)


class Bankrolls(MutableMapping):
    """One run's pending entrants' bankrolls by slot (US$ million): a view of its row of the
    batch's ``Entrants`` (``del`` when it enters)."""

    def __init__(self, entrants: Entrants, run: int):
        self.pending, self.bankroll = entrants.pending[run], entrants.bankroll[run]

    def __getitem__(self, slot: int) -> float:
        if not self.pending[slot]:
            raise KeyError(slot)
        return self.bankroll[slot]

    def __setitem__(self, slot: int, value: float) -> None:
        self.pending[slot], self.bankroll[slot] = True, value

    def __delitem__(self, slot: int) -> None:
        if not self.pending[slot]:
            raise KeyError(slot)
        self.pending[slot] = False

    def __iter__(self):
        return iter(np.flatnonzero(self.pending).tolist())

    def __len__(self) -> int:
        return int(np.count_nonzero(self.pending))

    def __repr__(self) -> str:
        return repr(dict(self))


def distressed(provider, entry_cfg) -> bool:
    """Insolvent this quarter: negative cash, or overloaded beyond ``overload_limit`` without
    the money (its own or its parent's) to buy the capacity its demand needs."""
    return bool(insolvent(provider.cash, provider.utilisation, provider.capacity_unfunded, entry_cfg.overload_limit))


def insolvent(cash, utilisation, capacity_unfunded, overload_limit):
    """``distressed`` elementwise: numbers or arrays (runs, slots) with a (runs, 1) limit."""
    return (cash < -CASH_TOLERANCE) | ((utilisation > overload_limit) & (capacity_unfunded != 0))


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
