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
    markets = batch.markets
    param = batch.param
    cost_factor = np.array([m.gpu_cost_factor for m in markets])
    own_cost = (param("finance.gpu_cost_own") * cost_factor / MILLION)[:, None]
    import_cost = (param("finance.gpu_cost_import") * cost_factor / MILLION)[:, None]

    def put(column: np.ndarray, values) -> None:
        np.copyto(column, values, where=active)

    revenue = table.price * table.billed_gpu / MILLION
    internal = _transfer_prices(batch, active & (table.captive_served != 0)) * table.captive_served / MILLION
    opex = param("finance.opex_per_gpu")[:, None] * table.compute / MILLION
    put(table.revenue, revenue)
    put(table.internal_revenue, internal)
    put(table.opex, opex)
    own_funds = np.maximum(table.cash + revenue + internal - opex, 0.0)
    chips = table.own_chip_share
    unit = chips * own_cost + (1 - chips) * import_cost
    gap_spend = capacity_gap(batch) * unit
    t = np.array([m.t for m in markets])[:, None]
    start = table.committed_start
    committed = np.where((start <= t) & (t < start + table.committed_quarters), table.committed_per_quarter, 0.0)
    wanted = investment.discretionary_capex(batch, unit) + committed + gap_spend
    grants = _grant_capex(batch, np.maximum(0.0, wanted - own_funds))

    budget = np.minimum(wanted, own_funds + grants)
    # GPUs are GPUs: the capacity its demand needs is unfunded only if all it can spend falls short of it.
    put(table.capacity_unfunded, budget < gap_spend - CASH_TOLERANCE)
    own = budget * chips / own_cost
    asked = budget * (1 - chips) / import_cost
    cap = batch.memo("finance.import_cap", lambda b: np.array(
        [np.inf if m.config.finance.import_cap is None else m.config.finance.import_cap for m in b.markets]))
    scale = import_scale(batch.sum_slots(asked), cap)[:, None]
    imported = asked * scale
    domestic_cost = batch.memo("finance.domestic_chip_cost", lambda b: np.array(
        [m.config.finance.domestic_chip_cost or 0.0 for m in b.markets])[:, None])
    domestic = np.where(domestic_cost > 0, (asked - imported) * param("finance.gpu_cost_import")[:, None]
                        / np.where(domestic_cost > 0, domestic_cost, 1.0), 0.0)
    bought = own + imported + domestic
    capex = ((own * param("finance.gpu_cost_own")[:, None] + imported * param("finance.gpu_cost_import")[:, None]
              + domestic * domestic_cost) * cost_factor[:, None] / MILLION)
    put(table.gpus_bought, bought)
    put(table.capex, capex)
    funding = _draw(batch, np.minimum(grants, capex - own_funds))
    put(table.parent_funding, funding)
    put(table.cash, table.cash + (revenue + internal - opex - capex + funding))
    arrived = _order(batch, bought)
    put(table.compute, table.compute * (1.0 - param("finance.depreciation"))[:, None] + arrived)
    _cover_losses(batch)


def _order(batch, bought: np.ndarray) -> np.ndarray:
    """Puts this quarter's ``bought`` (runs, slots) at the end of each active provider's pipeline
    and takes out the oldest order, which arrives now (this quarter's own with capex_lag 0)."""
    table = batch.table
    pipe, lags = table.pipeline, table.lags
    longest = pipe.shape[2]
    queue = np.concatenate([pipe, bought[:, :, None]], axis=2)  # run r's orders: its last lags[r] + 1
    if (lags == longest).all():  # every run has the longest lag (the usual case): a plain shift
        np.copyto(pipe, queue[:, :, 1:], where=batch.active[:, :, None])
        return queue[:, :, 0]
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
    with np.errstate(divide="ignore", invalid="ignore"):
        return np.where((np.asarray(requested) <= cap) | np.isinf(cap), 1.0, np.divide(cap, requested))


def capacity_gap(batch) -> np.ndarray:
    """(runs, slots) GPU-equivalents to order so that serving capacity catches up with demand
    plus headroom, own apps' demand taken at its expected level when GPUs ordered now start
    serving (capex_lag + 1 quarters on).  Meaningful at active slots."""
    table, param = batch.table, batch.param
    lead = table.lags + 1
    # (1 + captive_growth) ** lead as the per-provider code computed it (C pow on each value);
    # only providers with own apps need it (the product is 0 for the others).
    apps = batch.active & (table.captive_compute != 0)
    growth = np.ones(apps.shape)
    if apps.any():
        growth[apps] = batch.power((1.0 + table.captive_growth)[apps], lead[np.nonzero(apps)[0]])
    captive_growth = table.captive_compute * (growth - 1.0)
    with np.errstate(divide="ignore", invalid="ignore"):
        needed = (table.planned_gpu + captive_growth) * (1.0 + param("finance.headroom"))[:, None] / (1.0 - table.training_share)
    installed = installed_at_lead(table.compute, table.pipeline, param("finance.depreciation"), table.lags)
    return param("finance.capacity_response")[:, None] * np.maximum(0.0, needed - installed)


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
