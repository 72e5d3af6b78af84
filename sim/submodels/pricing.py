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

Scarcity pricing (peak-load pricing: Boiteux 1949, Steiner 1957; when capacity binds,
price rises above cost until demand fits it): the target price is raised by the expected
utilisation (last quarter's demand over this quarter's serving capacity) above ``scarcity_target``,

    u_j      = demand_j(t-1) / serving_capacity_j(t)
    target_j = unit_j * (1 + markup_j) * min(max(1, u_j / scarcity_target) ** scarcity_elasticity, scarcity_cap)

so an overloaded provider asks more, new and renewing customers and model buyers move
to rivals, token volume falls (demand.token_elasticity), and the extra revenue pays for
the capacity it lacks, instead of the provider going broke serving a fraction of its demand.

Token price: tokens are billed at the average price times a token factor f_j (<= 1).  A
configured cut multiplies f_j in its quarter (the 2024 model price war).  A cut that puts
tokens below the floor of any price, unit_j * (1 + min_markup), is a promotion, not a
lasting price (Areeda and Turner 1975: no firm sustains prices below cost; Klemperer
1995: introductory offers in switching-cost markets are followed by higher prices once
customers are locked in): each quarter f_j closes a share ``token_relaxation`` of its
log gap to the floor,

    floor_j = min(1, unit_j * (1 + min_markup) / list_j)
    ln f_j <- ln f_j + token_relaxation * (ln floor_j - ln f_j)     if f_j < floor_j

The per-token price still falls with cheaper inference (token_compute_t); only the price
per GPU-quarter of tokens returns to the floor.
"""

from __future__ import annotations

from types import SimpleNamespace

import numpy as np

from sim.batch import Batch, over_runs

MAX_LOG_GAP = float(np.log(10.0))  # renewal price at most 10x the list price; new-customer price at least 1/10
UTILISATION_RATIO_CAP = 1e6  # a provider without capacity (utilisation inf) is priced at this ratio (then the cap)


def unit_cost_of(own_chip_share, training_share, gpu_cost_factor, fin):
    """Cost of one served GPU-equivalent for a quarter (US$ per GPU-quarter): depreciation of
    the blended chip purchase cost plus opex, spread over the serving part of the fleet;
    elementwise over arrays (``fin``: a ``FinanceConfig`` or a namespace of per-run arrays)."""
    chip = own_chip_share * fin.gpu_cost_own + (1 - own_chip_share) * fin.gpu_cost_import
    per_gpu = chip * gpu_cost_factor * fin.depreciation + fin.opex_per_gpu
    return per_gpu / (1.0 - training_share)


def unit_cost(market, provider) -> float:
    """``unit_cost_of`` one provider of ``market`` (its chip mix, training share, this quarter's GPU cost)."""
    return unit_cost_of(provider.own_chip_share, provider.training_share, market.gpu_cost_factor, market.config.finance)


def unit_costs(batch) -> np.ndarray:
    """(runs, slots) ``unit_cost_of`` every slot of every run of ``batch`` (inactive slots: whatever their row gives)."""
    table = batch.table
    gpu_cost_factor = np.array([m.gpu_cost_factor for m in batch.markets])[:, None]
    fin = batch.memo("pricing.finance", lambda b: _section(b, "finance", FINANCE_KEYS))
    with np.errstate(divide="ignore", invalid="ignore"):
        return unit_cost_of(table.own_chip_share, table.training_share, gpu_cost_factor, fin)


FINANCE_KEYS = ("gpu_cost_own", "gpu_cost_import", "depreciation", "opex_per_gpu")


def _section(batch, section: str, names: tuple[str, ...]) -> SimpleNamespace:
    """Config values ``section.NAME`` of every run as (runs, 1) arrays (they broadcast over slots)."""
    return SimpleNamespace(**{name: batch.param(f"{section}.{name}")[:, None] for name in names})


def token_price_factor(config, name: str, t: int) -> float:
    """Product of (1 - cut) over the token price cuts for provider ``name`` dated at or
    before quarter ``t`` (the 2024 model price war: Doubao at 0.0008 yuan per 1k tokens,
    Qwen cut 85-97 %, market-shares.md section 2): the factor the cuts alone would set,
    before any relaxation (``token_relaxation``)."""
    return cuts_between(config, name, None, t)


def cuts_between(config, name: str, first: int | None, last: int) -> float:
    """Product of (1 - cut) over provider ``name``'s cuts dated in quarters first..last
    (offsets from run.start, both inclusive; ``first`` None = from any time before)."""
    factor = 1.0
    for c in config.pricing.token_price_cuts:
        q = config.quarter_offset(c.quarter)
        if (c.provider is None or c.provider == name) and q <= last and (first is None or q >= first):
            factor *= 1.0 - c.cut
    return factor


def cuts_by_quarter(batch) -> np.ndarray:
    """(runs, slots, quarters): ``cuts_between(config, name, t, t)`` of each run's config, slot
    name and quarter t of the run (the same products, in the same order of cuts)."""
    markets = batch.markets
    quarters = markets[0].config.run.quarters
    names = markets[0].names
    out = np.ones((batch.size, batch.n_slots, quarters))
    for r, market in enumerate(markets):
        config = market.config
        for c in config.pricing.token_price_cuts:
            q = config.quarter_offset(c.quarter)
            if 0 <= q < quarters:
                for s, name in enumerate(names):
                    if c.provider is None or c.provider == name:
                        out[r, s, q] *= 1.0 - c.cut
    return out


def initial_token_factor(config, name: str, first_quarter: int) -> float:
    """Token factor of a provider that prices for the first time in ``first_quarter``: the
    cuts dated before it are in force (without relaxation before it existed in the run)."""
    return cuts_between(config, name, None, first_quarter - 1)


def relax_token_factor(factor, floor, relaxation):
    """One quarter of a promotion's end: a token factor below ``floor`` (the factor at which
    tokens pay unit cost x (1 + min_markup)) closes the share ``relaxation`` of its log gap to
    it; at or above the floor it stays (a cut that leaves tokens above cost lasts).  Factors
    are in (0, 1]; elementwise over arrays.  Areeda and Turner (1975), Klemperer (1995)."""
    floor = np.minimum(floor, 1.0)
    keep = (factor >= floor) | (relaxation <= 0)
    if keep.all():  # no promotion to end (the usual case)
        return np.array(factor, dtype=np.float64)
    with np.errstate(divide="ignore", invalid="ignore"):
        relaxed = np.exp(np.log(factor) + relaxation * (np.log(floor) - np.log(factor)))
    return np.where(keep, factor, relaxed)


def scarcity_factor(utilisation, cfg):
    """Multiplier on the target price: (utilisation / scarcity_target) ** scarcity_elasticity
    above the target, 1 below it, at most ``scarcity_cap`` (peak-load pricing: Boiteux 1949,
    Steiner 1957; the cap: H100 rental above US$8 an hour in the 2023 shortage against about
    US$2 in 2026, market-shares.md).  ``utilisation`` is demand / serving capacity (may be inf);
    elementwise over arrays (``cfg``: a ``PricingConfig`` or a namespace of per-run arrays)."""
    utilisation = np.asarray(utilisation, dtype=float)
    scarce = (cfg.scarcity_elasticity > 0) & (utilisation > cfg.scarcity_target)
    out = np.ones(np.broadcast(scarce, cfg.scarcity_cap).shape)
    if scarce.any():
        ratio = np.broadcast_to(np.minimum(utilisation / cfg.scarcity_target, UTILISATION_RATIO_CAP), scarce.shape)[scarce]
        # C's pow per element, as the scalar ** of one provider (numpy's array power moves the last bit:
        # with it benchmarks/golden.py finds minimal seed 1 different)
        powered = Batch.power(ratio, np.broadcast_to(cfg.scarcity_elasticity, scarce.shape)[scarce])
        out[scarce] = np.minimum(powered, np.broadcast_to(cfg.scarcity_cap, scarce.shape)[scarce])
    return out if out.ndim else out[()]


def expected_utilisation(demand_gpu, serving_capacity):
    """Last quarter's demand (GPU-equivalents, surges included) over this quarter's serving
    capacity (after last quarter's GPUs arrived): the load a provider expects as it sets its
    price.  0 before its first quarter of service; inf without capacity.  Elementwise."""
    demand_gpu = np.asarray(demand_gpu, dtype=float)
    served = demand_gpu > 0
    divide = served & (serving_capacity > 0)  # (the shape both broadcast to)
    out = np.where(served, np.inf, np.zeros(divide.shape))
    np.divide(demand_gpu, serving_capacity, out=out, where=divide)
    return out if out.ndim else out[()]


def markup(share, fair_share, cfg):
    """base_markup + harvest_slope * (share - fair share), clipped to [min_markup, max_markup];
    elementwise (``cfg``: a ``PricingConfig`` or a namespace of per-run arrays)."""
    return np.clip(cfg.base_markup + cfg.harvest_slope * (share - fair_share), cfg.min_markup, cfg.max_markup)


def premium_scale(config) -> tuple[float, float]:
    """(switching_base + switching_tenure, max(mean w_price, 0.1)) of ``config``: the lock-in
    premium is lock_in * first / second (``lock_in_premium``)."""
    segs = config.demand.segments.values()
    weight = sum(s.weight for s in segs)
    w_price = sum(s.weight * s.w_price for s in segs) / weight if weight > 0 else 0.0
    ch = config.choice
    return ch.switching_base + ch.switching_tenure, max(w_price, 0.1)


def lock_in_premium(config, lock_in):
    """The long-tenure switching cost of a customer of a provider with ``lock_in``, in
    log-price units: lock_in * (switching_base + switching_tenure) / mean w_price (mean over
    segments by weight; a switching cost S utils is worth a price ratio exp(S / w_price))."""
    switching, w_price = premium_scale(config)
    return lock_in * switching / w_price


def prices_around(list_price, unit, premium, cfg):
    """(new-customer price, renewal price) around ``list_price`` for a lock-in ``premium`` (log
    price); elementwise (``cfg``: a ``PricingConfig`` or a namespace of per-run arrays)."""
    floor = np.minimum(list_price, unit * (1.0 + cfg.min_markup))  # a discount never takes it below min_markup
    # Extreme settings (lock-in 20, switching costs of 100 utils) would ask e^1000 times the list
    # price: no contract goes beyond ten times it, nor a discount below a tenth.
    new = np.maximum(list_price * np.exp(-np.minimum(cfg.new_customer_discount * premium, MAX_LOG_GAP)), floor)
    return new, list_price * np.exp(np.minimum(cfg.renewal_harvest * premium, MAX_LOG_GAP))


def two_prices(list_price, unit, lock_in, config):
    """(new-customer price, renewal price) around ``list_price`` (US$ per GPU-quarter) for a
    provider with ``lock_in``; the gap grows with lock-in.  Klemperer (1987, 1995)."""
    return prices_around(list_price, unit, lock_in_premium(config, lock_in), config.pricing)


PRICING_KEYS = ("base_markup", "harvest_slope", "min_markup", "max_markup", "adjustment", "scarcity_elasticity",
                "scarcity_target", "scarcity_cap", "new_customer_discount", "renewal_harvest", "token_relaxation")


@over_runs
def step(batch) -> None:
    """Every active provider of every run sets its list price (part way to cost plus markup,
    raised by scarcity), its two prices around it and its token factor (relaxation, then this
    quarter's cuts)."""
    table, active = batch.table, batch.active
    if not active.any():
        return
    cfg = batch.memo("pricing.pricing", lambda b: _section(b, "pricing", PRICING_KEYS))
    t = batch.markets[0].t  # runs of a batch share their quarter
    base = batch.installed_compute_shares()
    fair = 1.0 / np.maximum(active.sum(axis=1), 1)[:, None]
    # Inactive slots keep their rows (written where active, at the end); what is computed for
    # them from the new values instead of the rows they keep is not written.
    mk = markup(base, fair, cfg)
    unit = unit_costs(batch)
    capacity = table.compute * (1.0 - table.training_share)
    utilisation = expected_utilisation(table.demand_gpu, capacity)
    target = unit * (1.0 + mk)
    if ((cfg.scarcity_elasticity > 0) & (utilisation > cfg.scarcity_target)).any():  # else the factor is 1
        target *= scarcity_factor(utilisation, cfg)
    list_price = table.list_price + cfg.adjustment * (target - table.list_price)
    switching, w_price = batch.memo("pricing.premium_scale", _premium_scales)
    premium = table.lock_in * switching / w_price
    new, renewal = prices_around(list_price, unit, premium, cfg)
    # Last quarter's promotion relaxes, then this quarter's cuts (if any) apply in full.
    with np.errstate(divide="ignore", invalid="ignore"):
        floor = unit * (1.0 + cfg.min_markup) / list_price
    factor = relax_token_factor(table.token_factor, floor, cfg.token_relaxation)
    factor *= batch.memo("pricing.cuts", cuts_by_quarter)[:, :, t]
    for column, values in ((table.markup, mk), (table.list_price, list_price), (table.price_new, new),
                           (table.price_renewal, renewal), (table.price, new), (table.token_factor, factor)):
        np.copyto(column, values, where=active)


def _premium_scales(batch) -> tuple[np.ndarray, np.ndarray]:
    scales = np.array([premium_scale(m.config) for m in batch.markets])
    return scales[:, :1], scales[:, 1:]


@over_runs
def settle(batch) -> None:
    """After choice: each active provider's ``price`` becomes what its customers pay on average,
    weighted by compute demand: the new-customer price for those in their first contract, the
    renewal price for the rest (a provider without customers: its new-customer price).  One
    pass over the customers, skipped when no provider of any run charges two prices."""
    table, active = batch.table, batch.active
    two = (active & (table.price_new != table.price_renewal)).any(axis=1)  # (runs,): a run whose providers charge two prices
    price = np.where(active, table.price_new, table.price)
    if two.any():
        people = batch.customers
        key = batch.bin_key(people.provider, 2, people.first_contract.view(np.int8))
        totals = np.bincount(key, weights=people.compute, minlength=2 * batch.size * (batch.n_slots + 1))  # float64 sums
        totals = totals.reshape(batch.size, batch.n_slots + 1, 2)[:, 1:]
        renewed, first = totals[..., 0], totals[..., 1]
        weight = renewed + first
        np.divide(first * table.price_new + renewed * table.price_renewal, weight, out=price,
                  where=two[:, None] & active & (weight > 0))
    table.price[...] = price
