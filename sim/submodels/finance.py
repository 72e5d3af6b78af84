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

import functools
from types import SimpleNamespace

import numpy as np

from sim.batch import over_runs
from sim.submodels import investment, parents

MILLION = 1e6
CASH_TOLERANCE = 1e-6  # US$ million; rounding in 'spend all that is available' must not count as debt


@over_runs
def step(batch) -> None:
    """Money for every run of ``batch``: revenue, opex, capex and what it buys, the parents'
    funding, cash and the compute stock (with the GPUs ordered ``capex_lag`` quarters ago);
    writes the provider table's columns of active slots (others keep their rows)."""
    table, active = batch.table, batch.active
    fin = batch.memo("finance.settings", _settings)
    cost_factor = np.array([m.gpu_cost_factor for m in batch.markets])[:, None]
    own_cost = fin.gpu_cost_own * cost_factor / MILLION
    import_cost = fin.gpu_cost_import * cost_factor / MILLION

    def put(column: np.ndarray, values) -> None:
        np.copyto(column, values, where=active)

    revenue = table.price * table.billed_gpu / MILLION
    internal = _transfer_prices(batch, active & (table.captive_served != 0)) * table.captive_served / MILLION
    opex = fin.opex_per_gpu * table.compute / MILLION
    put(table.revenue, revenue)
    put(table.internal_revenue, internal)
    put(table.opex, opex)
    own_funds = np.maximum(table.cash + revenue + internal - opex, 0.0)
    chips = table.own_chip_share
    imports = 1 - chips  # the imported share of a provider's chips
    unit = chips * own_cost + imports * import_cost
    with np.errstate(divide="ignore", invalid="ignore"):  # a fleet that only trains: x / 0
        gap_spend = _capacity_gap(batch, fin) * unit
    t = batch.markets[0].t  # the runs of a batch share their quarter
    start = table.committed_start
    committed = np.where((start <= t) & (t < start + table.committed_quarters), table.committed_per_quarter, 0.0)
    wanted = investment.discretionary_capex(batch, unit) + committed + gap_spend
    grants = _grant_capex(batch, np.maximum(0.0, wanted - own_funds))

    budget = np.minimum(wanted, own_funds + grants)
    # GPUs are GPUs: the capacity its demand needs is unfunded only if all it can spend falls short of it.
    put(table.capacity_unfunded, budget < gap_spend - CASH_TOLERANCE)
    own = budget * chips / own_cost
    asked = budget * imports / import_cost
    if fin.capped:
        imported = asked * import_scale(batch.sum_slots(asked), fin.import_cap)[:, None]
    else:  # no run caps imports: the scale is 1 everywhere (asked * 1.0 is asked, bit for bit)
        imported = asked
    if fin.substitutes:
        domestic = (asked - imported) * fin.gpu_cost_import / fin.domestic_divisor
        if not fin.all_substitute:
            domestic = np.where(fin.domestic_chip_cost > 0, domestic, 0.0)
        domestic_capex = domestic * fin.domestic_chip_cost
    else:  # no run buys domestic chips with a refused import budget: 0.0 everywhere
        domestic = domestic_capex = 0.0
    bought = own + imported + domestic
    capex = ((own * fin.gpu_cost_own + imported * fin.gpu_cost_import + domestic_capex) * cost_factor / MILLION)
    put(table.gpus_bought, bought)
    put(table.capex, capex)
    # A provider draws from its parent only what it was granted: none granted, none drawn.
    funding = _draw(batch, np.minimum(grants, capex - own_funds)) if grants.any() else np.zeros(grants.shape)
    put(table.parent_funding, funding)
    put(table.cash, table.cash + (revenue + internal - opex - capex + funding))
    arrived = _order(batch, bought, fin)
    put(table.compute, table.compute * fin.keep + arrived)
    _cover_losses(batch)


def _settings(batch) -> SimpleNamespace:
    """The ``finance`` settings of every run of ``batch`` as (runs, 1) arrays (they broadcast over
    slots), and what follows from them alone: kept once per batch (``batch.memo``), as configs
    and ``capex_lag`` do not change during a run."""
    param, table = batch.param, batch.table
    column = lambda name: param(f"finance.{name}")[:, None]  # noqa: E731
    configs = [m.config.finance for m in batch.markets]
    cap = np.array([np.inf if f.import_cap is None else f.import_cap for f in configs])
    domestic = np.array([f.domestic_chip_cost or 0.0 for f in configs])[:, None]
    longest = table.pipeline.shape[2]
    lags = tuple(int(x) for x in table.lags)
    at_lead, waits = _keep_powers(tuple(float(d) for d in param("finance.depreciation")), lags, longest)
    return SimpleNamespace(
        gpu_cost_own=column("gpu_cost_own"), gpu_cost_import=column("gpu_cost_import"),
        opex_per_gpu=column("opex_per_gpu"), keep=1.0 - column("depreciation"),
        headroom=1.0 + column("headroom"), capacity_response=column("capacity_response"),
        import_cap=cap, capped=not np.isinf(cap).all(),
        domestic_chip_cost=domestic, domestic_divisor=np.where(domestic > 0, domestic, 1.0),
        substitutes=bool((domestic > 0).any()), all_substitute=bool((domestic > 0).all()),
        lead=(table.lags + 1)[:, None], at_lead=at_lead, waits=waits,
        shift=all(lag == longest for lag in lags), growth={})


def _order(batch, bought: np.ndarray, fin: SimpleNamespace) -> np.ndarray:
    """Puts this quarter's ``bought`` (runs, slots) at the end of each active provider's pipeline
    and takes out the oldest order, which arrives now (this quarter's own with capex_lag 0)."""
    table = batch.table
    pipe, lags = table.pipeline, table.lags
    longest = pipe.shape[2]
    if fin.shift:  # every run has the longest lag (the usual case): a plain shift
        if longest == 0:
            return bought
        arrived = pipe[:, :, 0].copy()
        where = batch.active[:, :, None]
        np.copyto(pipe[:, :, :-1], pipe[:, :, 1:], where=where)  # numpy copes with the overlap
        np.copyto(pipe[:, :, -1], bought, where=batch.active)
        return arrived
    queue = np.concatenate([pipe, bought[:, :, None]], axis=2)  # run r's orders: its last lags[r] + 1
    oldest = (longest - lags)[:, None, None]
    arrived = np.take_along_axis(queue, np.broadcast_to(oldest, bought.shape + (1,)), axis=2)[:, :, 0]
    kept = np.arange(longest)[None, :] >= (longest - lags)[:, None]  # (runs, longest): run r's entries
    moved = np.where(kept[:, None, :], queue[:, :, 1:], 0.0)
    np.copyto(pipe, moved, where=batch.active[:, :, None])
    return arrived


def import_scale(requested, cap):
    """Share of requested imports allowed under a market-wide cap (pro rata), elementwise;
    ``cap`` None or inf: no cap."""
    if cap is None:
        cap = np.inf
    within = (np.asarray(requested) <= cap) | np.isinf(cap)
    return np.divide(cap, requested, out=np.ones(within.shape), where=~within)


def capacity_gap(batch) -> np.ndarray:
    """(runs, slots) GPU-equivalents to order so that serving capacity catches up with demand
    plus headroom, own apps' demand taken at its expected level when GPUs ordered now start
    serving (capex_lag + 1 quarters on).  Meaningful at active slots."""
    with np.errstate(divide="ignore", invalid="ignore"):
        return _capacity_gap(batch, batch.memo("finance.settings", _settings))


def _capacity_gap(batch, fin: SimpleNamespace) -> np.ndarray:
    """``capacity_gap`` with the batch's finance settings (``_settings``), under the caller's ``np.errstate``."""
    table = batch.table
    apps = batch.active & (table.captive_compute != 0)
    # Only providers with own apps need (1 + captive_growth) ** lead - 1 (the product is 0 for the others).
    if apps.any():
        captive_growth = table.captive_compute * np.where(apps, _growth_to_lead(batch, fin), 0.0)
    else:
        captive_growth = table.captive_compute * 0.0
    needed = (table.planned_gpu + captive_growth) * fin.headroom / (1.0 - table.training_share)
    stock = table.compute * fin.at_lead
    on_order = np.zeros(stock.shape)
    for j, wait in enumerate(fin.waits):  # oldest first (installed_at_lead)
        on_order = on_order + table.pipeline[:, :, j] * wait
    return fin.capacity_response * np.maximum(0.0, needed - (stock + on_order))


def _growth_to_lead(batch, fin: SimpleNamespace) -> np.ndarray:
    """(runs, slots) (1 + captive_growth) ** (capex_lag + 1) - 1, the power by C's pow as the
    per-provider code computed it (``Batch.power``); kept for the growth rates it was computed for
    (they are set when a provider starts, so they rarely change)."""
    rates = batch.table.captive_growth
    kept = fin.growth
    if "rates" not in kept or not (kept["rates"] == rates).all():
        kept["rates"], kept["growth"] = rates.copy(), batch.power(1.0 + rates, fin.lead) - 1.0
    return kept["growth"]


def installed_at_lead(compute, pipeline, depreciation, lag=None):
    """GPU-equivalents that will be in the fleet when GPUs ordered now start serving (the stock at
    the end of quarter t + capex_lag): today's stock after capex_lag + 1 depreciations (this
    quarter's included), plus each order in the pipeline (oldest first, arriving at the end of
    t + i) after the depreciations left once it has arrived.

    Batch form: ``compute`` (runs, slots), ``pipeline`` (runs, slots, longest lag) with run r's
    orders in its last ``lag[r]`` entries (zeros before them), ``depreciation`` and ``lag``
    (runs,).  One provider: ``compute`` a number, ``pipeline`` its orders (capex_lag = their
    count), ``depreciation`` a number; returns a number.  The powers (1 - depreciation) ** k
    are Python floats, as per-provider code computed them."""
    if np.ndim(compute) == 0:
        orders = np.asarray(pipeline, dtype=np.float64).reshape(1, 1, -1)
        return installed_at_lead(np.array([[compute]], dtype=np.float64), orders, np.array([depreciation]))[0, 0]
    longest = pipeline.shape[2]
    lags = (longest,) * len(depreciation) if lag is None else tuple(int(x) for x in lag)
    at_lead, waits = _keep_powers(tuple(float(d) for d in depreciation), lags, longest)
    stock = compute * at_lead
    on_order = np.zeros(compute.shape)
    for j in range(longest):  # oldest first; the order in column j waits longest - j depreciations
        on_order = on_order + pipeline[:, :, j] * waits[j]
    return stock + on_order


@functools.lru_cache(maxsize=64)
def _keep_powers(depreciation: tuple[float, ...], lags: tuple[int, ...], longest: int):
    """Per run (columns of shape (runs, 1)): (1 - depreciation) ** (lag + 1), and for each pipeline
    column j, (1 - depreciation) ** (longest - j); Python floats (C pow), computed once per batch."""
    keep = [[(1.0 - d) ** k for k in range(longest + 2)] for d in depreciation]
    at_lead = np.array([row[lg + 1] for row, lg in zip(keep, lags)])[:, None]
    waits = [np.array([row[longest - j] for row in keep])[:, None] for j in range(longest)]
    for values in (at_lead, *waits):
        values.flags.writeable = False
    return at_lead, waits


# ------------------------------------------------------------------ parents, for money
# sim.submodels.parents keeps the parents' pots and credit lines for all runs (batch.parents).

def _transfer_prices(batch, where: np.ndarray) -> np.ndarray:
    """(runs, slots) US$ per GPU-quarter the group's apps pay (``parents.transfer_prices``) at ``where``; 0 elsewhere."""
    return parents.transfer_prices(batch, where)


def _grant_capex(batch, asks: np.ndarray) -> np.ndarray:
    """(runs, slots) US$ million each active provider may draw from its parent (``parents.grant_capex_runs``)."""
    return parents.grant_capex_runs(batch, np.where(batch.active, asks, 0.0))


def _draw(batch, amounts: np.ndarray) -> np.ndarray:
    """(runs, slots) what each active provider draws from its parent's pot (``parents.draw_runs``, in slot order)."""
    return parents.draw_runs(batch, np.where(batch.active, amounts, 0.0))


def _cover_losses(batch) -> None:
    """Negative cash of active providers topped up from the parents' credit lines (``parents.cover_losses_runs``)."""
    parents.cover_losses_runs(batch, batch.active)
