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

from dataclasses import dataclass

from sim.config import Config, ParentConfig
from sim.submodels.pricing import unit_cost


@dataclass
class Account:
    """A parent's money over the run (US$ million)."""

    spec: ParentConfig
    start: int  # first quarter of the budget window (offset)
    pot: float = 0.0  # allotted and not yet drawn
    credit_left: float = 0.0  # losses it will still carry
    funded: float = 0.0  # paid in so far (capex and losses)

    def in_window(self, t: int) -> bool:
        end = self.start + self.spec.budget_quarters if self.spec.budget_quarters is not None else None
        return t >= self.start and (end is None or t < end)


def accounts(config: Config) -> dict[str, Account]:
    """One account per ``[[parents]]`` entry, keyed by name."""
    return {g.name: Account(g, config.quarter_offset(g.budget_start), credit_left=g.credit_line) for g in config.parents}


def parent_of(market, provider) -> Account | None:
    return market.parent_accounts.get(provider.parent) if provider.parent is not None else None


def step(market) -> None:
    """Start of a quarter: allot each parent's budget and set its providers' training share."""
    for account in market.parent_accounts.values():
        if account.in_window(market.t):
            account.pot += account.spec.allotment()
    for p in market.active_providers():
        account = parent_of(market, p)
        if account is not None and p.has_model:
            g = account.spec
            p.training_share = training_share(p.base_training_share, g.max_training_share, g.priority,
                                              p.own_capability, market.frontier)


def training_share(base: float, max_share: float, priority: float, own: float, frontier: float) -> float:
    """Share of the fleet the group puts into training (0..0.95): its provider's own share,
    raised toward ``max_share`` in proportion to the group's priority and to how far the
    model trails the frontier (a gap of 0..1).  Never below ``base``."""
    gap = max(0.0, frontier - own) / frontier if frontier > 0 else 0.0
    top = max(max_share, base)
    return base + (top - base) * priority * min(gap, 1.0)


def rationing_rule(market, provider) -> str:
    """Who bears this provider's shortfall: its parent's rule, else ``service.rationing``."""
    account = parent_of(market, provider)
    if account is not None and account.spec.rationing is not None:
        return account.spec.rationing
    return market.config.service.rationing


def transfer_price(market, provider) -> float:
    """US$ per GPU-quarter the group's apps pay: the provider's unit cost ('cost', and for a
    provider without a parent) or its price to customers ('market')."""
    account = parent_of(market, provider)
    if account is not None and account.spec.transfer_price == "market":
        return provider.price
    return unit_cost(market, provider)


def grant_capex(market, asks: dict[int, float]) -> dict[int, float]:
    """US$ million each provider may draw this quarter for capex beyond its own funds.
    ``asks`` maps slot -> the shortfall; a parent's pot is shared pro rata among its providers."""
    grants = {slot: 0.0 for slot in asks}
    by_parent: dict[str, list[int]] = {}
    for slot, ask in asks.items():
        p = market.slots[slot]
        if ask > 0 and parent_of(market, p) is not None:
            by_parent.setdefault(p.parent, []).append(slot)
    for name, slots in by_parent.items():
        pot = market.parent_accounts[name].pot
        total = sum(asks[s] for s in slots)
        scale = min(1.0, pot / total) if total > 0 else 0.0
        for s in slots:
            grants[s] = asks[s] * scale
    return grants


def draw(market, provider, amount: float) -> float:
    """Takes ``amount`` (already within the provider's grant) from its parent's pot."""
    account = parent_of(market, provider)
    if account is None or amount <= 0:
        return 0.0
    amount = min(amount, account.pot)
    account.pot -= amount
    account.funded += amount
    return amount


def cover_losses(market, providers) -> None:
    """Tops negative cash back up to zero from each parent's credit line (pro rata if it
    cannot cover all its providers); adds the cover to ``parent_funding``."""
    by_parent: dict[str, list] = {}
    for p in providers:
        if p.cash < 0 and parent_of(market, p) is not None:
            by_parent.setdefault(p.parent, []).append(p)
    for name, group in by_parent.items():
        account = market.parent_accounts[name]
        need = sum(-p.cash for p in group)
        scale = min(1.0, account.credit_left / need) if need > 0 else 0.0
        for p in group:
            cover = -p.cash * scale
            p.cash += cover
            p.parent_funding += cover
            account.credit_left -= cover
            account.funded += cover
        account.credit_left = max(account.credit_left, 0.0)
