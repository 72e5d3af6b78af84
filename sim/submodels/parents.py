"""Group-backed providers: the parent group's funding, the price its apps pay for compute,
who bears a shortfall, and how the group splits its provider's fleet between training and
serving.

A provider may name a parent (``parent = "ByteDance"``, a ``[[parents]]`` entry).  Per parent g
and quarter t, in US$ million:

    pot_g        += allotment_g           in the budget window (budget_per_quarter, or
                                           budget_total / budget_quarters); unspent allotments carry over
    ask_j         = max(0, capex wanted_j - own funds_j)          (finance: what its own cash cannot pay)
    grant_j       = ask_j * min(1, pot_g / sum of asks of g's providers)     (pro rata, order-free)
    drawn_j       = min(grant_j, max(0, capex_j - own funds_j))   (the import cap may leave part unspent)
    cover_j       = -cash_j * min(1, credit_left_g / sum of g's providers' -cash)   for cash_j < 0
    parent_funding_j = drawn_j + cover_j
Internal revenue (what the group's apps pay for the compute they are served):
    internal_j    = transfer price_j * captive GPU-quarters served_j / 1e6,
    transfer price = unit cost_j ('cost', also for standalone providers) or price_j ('market')
Internal split of the fleet (model owners with a parent; others keep their training_share):
    gap_j         = max(0, frontier - own capability_j) / frontier
    training_share_j = base_j + (max(max_training_share_g, base_j) - base_j) * priority_g * gap_j
Rationing of a shortfall between own apps and customers follows the parent's ``rationing``
(default ``service.rationing``; see ``sim.submodels.service.ration``).

Article: Alibaba is "considering increasing its planned investment of 380 billion yuan over
the next three years in AI infrastructure and cloud computing"; "new businesses have demanded
substantial computing power and technological resources, inevitably leading to resource
competition with existing business fundamentals"; "all computing power services for Doubao are
provided by Volcano Engine".
"""

from __future__ import annotations

import numpy as np

from sim.batch import over_runs
from sim.config import Config, ParentConfig
from sim.submodels.pricing import unit_costs

NUMBERS = ("pot", "credit_left", "funded")  # an account's money, in this order in its row of Parents.cells


class _Number:
    """An ``Account`` number stored in its row of the batch's ``Parents.cells`` (reads back as float64)."""

    def __init__(self, index: int):
        self.index = index

    def __get__(self, obj, owner=None):
        return self if obj is None else obj._cells[self.index]

    def __set__(self, obj, value) -> None:
        obj._cells[self.index] = value


class Account:
    """A parent's money over the run (US$ million): ``pot`` allotted and not yet drawn,
    ``credit_left`` losses it will still carry, ``funded`` paid in so far (capex and losses).
    Its numbers live in its row of the batch's ``Parents`` arrays (until a batch adopts the
    run, in a row of its own)."""

    pot = _Number(0)
    credit_left = _Number(1)
    funded = _Number(2)

    def __init__(self, spec: ParentConfig, start: int, *, credit_left: float = 0.0):
        self.spec = spec
        self.start = start  # first quarter of the budget window (offset)
        self._cells = np.array([0.0, credit_left, 0.0])

    def in_window(self, t: int) -> bool:
        end = self.start + self.spec.budget_quarters if self.spec.budget_quarters is not None else None
        return t >= self.start and (end is None or t < end)

    def non_finite(self):
        """(name, value) of the account's numbers that are not finite (the guard)."""
        for name, value in zip(NUMBERS, self._cells):
            if not np.isfinite(value):
                yield name, float(value)

    def __repr__(self) -> str:
        return f"Account({self.spec.name!r}, pot={self.pot!r}, credit_left={self.credit_left!r}, funded={self.funded!r})"


def accounts(config: Config) -> dict[str, Account]:
    """One account per ``[[parents]]`` entry, keyed by name."""
    return {g.name: Account(g, config.quarter_offset(g.budget_start), credit_left=g.credit_line) for g in config.parents}


class Parents:
    """The parents of every run of a batch: group g of run r is ``config_r.parents[g]``.

    ``cells`` (runs, groups, 3) holds the accounts' numbers (``pot``, ``credit_left``,
    ``funded``: (runs, groups) views); each run's ``market.parent_accounts[name]`` reads and
    writes its row.  ``group`` (runs, slots) is the group of each slot's provider (-1: none);
    the rest are the groups' settings, (runs, groups)."""

    def __init__(self, markets: list):
        runs, slots = len(markets), markets[0].n_slots
        groups = max(len(m.parent_accounts) for m in markets)
        self.cells = np.zeros((runs, groups, len(NUMBERS)))
        self.pot, self.credit_left, self.funded = (self.cells[:, :, i] for i in range(len(NUMBERS)))
        self.exists = np.zeros((runs, groups), dtype=bool)
        self.allotment = np.zeros((runs, groups))
        self.start = np.zeros((runs, groups))
        self.end = np.full((runs, groups), np.inf)  # budget window [start, end)
        self.max_training_share = np.zeros((runs, groups))
        self.priority = np.zeros((runs, groups))
        self.group = np.full((runs, slots), -1, dtype=np.intp)
        self.market_priced = np.zeros((runs, slots), dtype=bool)  # transfer price 'market' (else unit cost)
        for r, market in enumerate(markets):
            names = list(market.parent_accounts)
            for g, account in enumerate(market.parent_accounts.values()):
                self.cells[r, g] = account._cells
                account._cells = self.cells[r, g]
                spec = account.spec
                self.exists[r, g] = True
                self.allotment[r, g] = spec.allotment()
                self.start[r, g] = account.start
                if spec.budget_quarters is not None:
                    self.end[r, g] = account.start + spec.budget_quarters
                self.max_training_share[r, g] = spec.max_training_share
                self.priority[r, g] = spec.priority
            for s, spec in enumerate(market.config.all_providers):
                if spec.parent is not None and spec.parent in market.parent_accounts:
                    g = names.index(spec.parent)
                    self.group[r, s] = g
                    self.market_priced[r, s] = market.parent_accounts[spec.parent].spec.transfer_price == "market"
        self.has_group = self.group >= 0  # (runs, slots) bool: the slot's provider has a parent
        self.any_market_priced = bool(self.market_priced.any())
        self._windows: dict[int, np.ndarray] = {}  # quarter -> budget_window(quarter)
        self._group_index = np.maximum(self.group, 0)  # for gathers (slots without a group read group 0)
        self.slot_max_training_share = self.of_slots(self.max_training_share)  # (runs, slots): the slot's group's
        self.slot_priority = self.of_slots(self.priority)

    def budget_window(self, t: int) -> np.ndarray:
        """(runs, groups) bool: the groups whose budget window holds quarter ``t`` (kept per quarter:
        the windows come from the configs)."""
        window = self._windows.get(t)
        if window is None:
            window = self._windows[t] = self.exists & (t >= self.start) & (t < self.end)
            window.flags.writeable = False
        return window

    def groups_of(self, where: np.ndarray) -> list[int]:
        """The groups (ascending) of the slots in ``where`` (bool (runs, slots)) that have one."""
        return sorted(set(self.group[where & self.has_group].tolist()))

    def members(self, where: np.ndarray) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
        """The slots in ``where`` (bool (runs, slots), only slots with a group), run by run and in
        slot order: their runs, their slots and the flat index ``run * groups + group`` of their
        run's group (into ``pot.ravel()`` and the like)."""
        runs, slots = np.nonzero(where)
        return runs, slots, runs * self.cells.shape[1] + self.group[runs, slots]

    def sums(self, values: np.ndarray, where: np.ndarray) -> np.ndarray:
        """(runs, groups): per run and group, the sum of ``values`` (runs, slots) over the group's
        slots in ``where``, added in slot order from 0 (``where`` must hold only slots with a group).
        For positive ``values`` (asks, losses) these are the additions ``Batch.sum_slots(values,
        where=where & (group == g))`` makes for each group g: the slots outside the group add +0.0,
        which leaves a positive partial sum (or +0.0) as it is."""
        runs, slots, key = self.members(where)
        return self._sums(key, values[runs, slots]).reshape(self.cells.shape[:2])

    def _sums(self, key: np.ndarray, values: np.ndarray) -> np.ndarray:
        """(runs * groups,): ``values`` added up by ``key`` in their order from 0 (bincount adds one by one)."""
        return np.bincount(key, weights=values, minlength=self.cells.shape[0] * self.cells.shape[1])

    def of_slots(self, values: np.ndarray) -> np.ndarray:
        """(runs, slots): the (runs, groups) ``values`` of each slot's group (0 for slots without one)."""
        if values.shape[1] == 0:
            return np.zeros(self.group.shape)
        picked = np.take_along_axis(values, self._group_index, axis=1)
        return np.where(self.has_group, picked, 0)


def parent_of(market, provider) -> Account | None:
    return market.parent_accounts.get(provider.parent) if provider.parent is not None else None


@over_runs
def step(batch) -> None:
    """Start of a quarter: allot each parent's budget and set its providers' training share."""
    state, table = batch.parents, batch.table
    t = batch.markets[0].t  # runs of a batch share their quarter
    np.add(state.pot, state.allotment, out=state.pot, where=state.budget_window(t))
    owners = batch.active & state.has_group & (table.has_model != 0)
    if owners.any():
        frontier = np.array([m.frontier for m in batch.markets], dtype=float)[:, None]
        share = training_share(table.base_training_share, state.slot_max_training_share, state.slot_priority,
                               table.own_capability, frontier)
        np.copyto(table.training_share, share, where=owners)


def training_share(base, max_share, priority, own, frontier):
    """Share of the fleet the group puts into training (0..0.95): its provider's own share,
    raised toward ``max_share`` in proportion to the group's priority and to how far the
    model trails the frontier (a gap of 0..1).  Never below ``base``.  Elementwise."""
    behind = np.maximum(0.0, frontier - own)
    gap = np.divide(behind, frontier, out=np.zeros(np.shape(behind)), where=frontier > 0)  # 0 without a frontier
    top = np.maximum(max_share, base)
    out = base + (top - base) * priority * np.minimum(gap, 1.0)
    return out if np.ndim(out) else out[()]


def rationing_rule(market, provider) -> str:
    """Who bears this provider's shortfall: its parent's rule, else ``service.rationing``."""
    account = parent_of(market, provider)
    if account is not None and account.spec.rationing is not None:
        return account.spec.rationing
    return market.config.service.rationing


def transfer_prices(batch, where: np.ndarray) -> np.ndarray:
    """(runs, slots) US$ per GPU-quarter the group's apps pay, for the slots in ``where`` (bool
    (runs, slots); 0 elsewhere): the provider's unit cost ('cost', and for a provider without a
    parent) or its price to customers ('market')."""
    state = batch.parents
    price = unit_costs(batch)
    if state.any_market_priced:
        price = np.where(state.market_priced, batch.table.price, price)
    return np.where(where, price, 0.0)


def grant_capex_runs(batch, asks: np.ndarray) -> np.ndarray:
    """(runs, slots) US$ million each provider may draw this quarter for capex beyond its own
    funds, for the shortfalls ``asks`` (runs, slots; 0 where nothing is asked): a parent's pot is
    shared pro rata among its providers that ask (their asks summed in slot order)."""
    state = batch.parents
    asking = (asks > 0) & state.has_group
    if not asking.any():
        return np.zeros(asks.shape)
    runs, slots, key = state.members(asking)
    ask = asks[runs, slots]
    total = state._sums(key, ask)  # (runs * groups,) what each group is asked for
    scale = np.minimum(1.0, np.divide(state.pot.ravel(), total, out=np.zeros(total.shape), where=total > 0))
    grants = np.zeros(asks.shape)
    grants[runs, slots] = ask * scale[key]
    return grants


def grant_capex(market, asks: dict[int, float]) -> dict[int, float]:
    """``grant_capex_runs`` for one run: ``asks`` maps slot -> the shortfall; returns slot -> grant."""
    batch = market._batch
    table = np.zeros((batch.size, batch.n_slots))
    for slot, ask in asks.items():
        table[market.run_index, slot] = ask
    grants = grant_capex_runs(batch, table)[market.run_index]
    return {slot: float(grants[slot]) for slot in asks}


def draw_runs(batch, amounts: np.ndarray) -> np.ndarray:
    """(runs, slots) what each provider takes of ``amounts`` (runs, slots; already within its
    grant) from its parent's pot, in slot order (a pot drawn empty gives the rest nothing)."""
    state = batch.parents
    drawn = np.zeros(amounts.shape)
    drawing = (amounts > 0) & state.has_group
    if not drawing.any():
        return drawn
    runs, slots, key = state.members(drawing)
    if key.size == 1 or np.bincount(key).max() == 1:  # one drawer per pot (the usual case): all at once
        groups = state.group[runs, slots]
        amount = np.minimum(amounts[runs, slots], state.pot[runs, groups])
        state.pot[runs, groups] -= amount
        state.funded[runs, groups] += amount
        drawn[runs, slots] = amount
        return drawn
    for s in np.flatnonzero(drawing.any(axis=0)):  # slot order: a pot drawn empty gives later slots nothing
        rows = np.flatnonzero(drawing[:, s])
        g = state.group[rows, s]
        amount = np.minimum(amounts[rows, s], state.pot[rows, g])
        state.pot[rows, g] -= amount
        state.funded[rows, g] += amount
        drawn[rows, s] = amount
    return drawn


def draw(market, provider, amount: float) -> float:
    """``draw_runs`` for one provider: takes ``amount`` (already within its grant) from its parent's pot."""
    batch = market._batch
    amounts = np.zeros((batch.size, batch.n_slots))
    amounts[market.run_index, provider.slot] = amount
    return float(draw_runs(batch, amounts)[market.run_index, provider.slot])


def cover_losses_runs(batch, where: np.ndarray) -> None:
    """Tops negative cash of the providers in ``where`` (bool (runs, slots)) back up to zero from
    each parent's credit line (pro rata if it cannot cover all its providers, their losses summed
    in slot order); adds the cover to ``parent_funding``."""
    state, table = batch.parents, batch.table
    losing = where & (table.cash < 0) & state.has_group
    if not losing.any():  # the usual case: nobody with a parent is in the red
        return
    need = state.sums(-table.cash, losing)  # (runs, groups), > 0 where a group has a provider in the red
    scale = np.minimum(1.0, np.divide(state.credit_left, need, out=np.zeros(need.shape), where=need > 0))
    for s in np.flatnonzero(losing.any(axis=0)):  # slot order, as each credit line is drawn down
        r = np.flatnonzero(losing[:, s])
        g = state.group[r, s]
        cover = -table.cash[r, s] * scale[r, g]
        table.cash[r, s] += cover
        table.parent_funding[r, s] += cover
        state.credit_left[r, g] -= cover
        state.funded[r, g] += cover
    np.copyto(state.credit_left, 0.0, where=(need > 0) & (state.credit_left < 0.0))


def cover_losses(market, providers) -> None:
    """``cover_losses_runs`` for the ``providers`` of one run."""
    batch = market._batch
    where = np.zeros((batch.size, batch.n_slots), dtype=bool)
    for p in providers:
        where[market.run_index, p.slot] = True
    cover_losses_runs(batch, where)
