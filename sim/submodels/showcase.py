"""The surge as a public test (the Spring Festival Gala): serving a surge well lifts a
provider's standing with the segments that watch it; serving it badly lowers it; standing
fades.

After the service step of quarter t, for each active provider j:

    standing_j ← standing_j × (1 − decay)
    if j's demand surged in t:
        s = share of j's demand (customers' and own apps') served in t
        standing_j += size × (s − pass_mark) / (1 − pass_mark)    if s ≥ pass_mark   (up to +size)
                      size × (s − pass_mark) / pass_mark          otherwise          (down to −size)

Customers of the watching ``segments`` add ``standing_j`` to their utility of j (utils), from
the next quarter's choice on.  A surge named for one provider tests only that provider; a
market-wide surge tests every provider.  Article: "Only cloud services that can withstand the
triple tests of traffic, stability, and security at the scale of the Spring Festival Gala are
qualified to compete in the core battlefield of the AI era"; the Gala was "a showcase of its
capabilities to the entire industry".
"""

from __future__ import annotations

from types import SimpleNamespace

import numpy as np

from sim.batch import over_runs


def standing_change(served, size, pass_mark):
    """Standing (utils) earned by serving ``served`` (0..1) of a surge: piecewise linear,
    0 at ``pass_mark``, ``+size`` at 1 and ``-size`` at 0.  Elementwise over arrays."""
    with np.errstate(divide="ignore", invalid="ignore"):
        out = np.where(served >= pass_mark, size * (served - pass_mark) / (1.0 - pass_mark),
                       size * (served - pass_mark) / pass_mark)
    return out if out.ndim else out[()]


def surge_slots(batch) -> np.ndarray:
    """(runs, slots, quarters) bool: the slot's demand surges (multiplier > 1) in quarter t of the
    run, by its config's ``service.surges`` (a surge without a provider: every slot).  Whether
    the slot's provider is active is not part of it (``tested``)."""
    quarters = batch.markets[0].config.run.quarters
    out = np.zeros((batch.size, batch.n_slots, quarters), dtype=bool)
    for r, market in enumerate(batch.markets):
        cfg = market.config
        for surge in cfg.service.surges:
            q = cfg.quarter_offset(surge.quarter)
            if surge.multiplier <= 1.0 or not 0 <= q < quarters:
                continue
            if surge.provider is None:
                out[r, :, q] = True
            else:
                out[r, market.slot_of(surge.provider), q] = True
    return out


def tested(batch) -> np.ndarray:
    """(runs, slots) bool: the active providers whose demand surges this quarter (``surge_slots``)."""
    return batch.memo("showcase.surges", surge_slots)[:, :, batch.markets[0].t] & batch.active


def tested_slots(market) -> set[int]:
    """Slots of the active providers of ``market`` whose demand surges (multiplier > 1) this quarter."""
    return {int(s) for s in np.flatnonzero(tested(market._batch)[market.run_index])}


@over_runs
def step(batch) -> None:
    """Every active provider's standing fades, then moves with how it served this quarter's surge, if it had one."""
    table, active = batch.table, batch.active
    settings = batch.memo("showcase.settings", _settings)
    standing = table.standing * settings.keep
    if settings.surges[batch.markets[0].t]:  # some run has a surge this quarter (few quarters do)
        surged = tested(batch)
        if surged.any():
            change = standing_change(np.minimum(table.served_share, 1.0), settings.size, settings.pass_mark)
            standing = np.where(surged, standing + change, standing)
    np.copyto(table.standing, standing, where=active)


def _settings(batch) -> SimpleNamespace:
    """The showcase settings of every run as (runs, 1) arrays (``keep`` = 1 - decay), and for each
    quarter whether any slot of any run surges in it; once per batch (``batch.memo``)."""
    column = lambda name: batch.param(f"showcase.{name}")[:, None]  # noqa: E731
    surges = batch.memo("showcase.surges", surge_slots).any(axis=(0, 1)).tolist()
    return SimpleNamespace(keep=1.0 - column("decay"), size=column("size"), pass_mark=column("pass_mark"), surges=surges)


def utility(batch, runs: np.ndarray, seg: np.ndarray) -> np.ndarray | None:
    """Standing term of utility for k customers of runs ``runs`` and segments ``seg`` (shape
    (k,)): an array (slots, k) in utils, or None when no active provider of any run has any
    standing.  A lone ``Market`` may stand for its batch of one."""
    batch = getattr(batch, "_batch", batch)
    standing = np.where(batch.active, batch.table.standing, 0.0)
    if not standing.any():
        return None
    watching = batch.memo("showcase.watching", lambda b: np.array(
        [[name in m.config.showcase.segments for name in b.customers.segment_names] for m in b.markets]))
    if batch.size == 1:
        return np.multiply.outer(standing[0], watching[0][seg])
    from sim.submodels.choice import RunsOf

    at = runs if isinstance(runs, RunsOf) else RunsOf(batch, runs)
    return at.slots(standing) * watching[at.runs, seg]
