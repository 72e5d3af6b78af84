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

import numpy as np


def standing_change(served: float, size: float, pass_mark: float) -> float:
    """Standing (utils) earned by serving ``served`` (0..1) of a surge: piecewise linear,
    0 at ``pass_mark``, ``+size`` at 1 and ``-size`` at 0."""
    if served >= pass_mark:
        return size * (served - pass_mark) / (1.0 - pass_mark)
    return size * (served - pass_mark) / pass_mark


def tested_slots(market) -> set[int]:
    """Slots of the active providers whose demand surges (multiplier > 1) this quarter."""
    cfg = market.config
    tested: set[int] = set()
    active = {p.slot for p in market.active_providers()}
    for surge in cfg.service.surges:
        if cfg.quarter_offset(surge.quarter) != market.t or surge.multiplier <= 1.0:
            continue
        tested |= {market.slot_of(surge.provider)} & active if surge.provider is not None else active
    return tested


def step(market) -> None:
    cfg = market.config.showcase
    tested = tested_slots(market)
    for p in market.active_providers():
        p.standing *= 1.0 - cfg.decay
        if p.slot in tested:
            p.standing += standing_change(min(p.served_share, 1.0), cfg.size, cfg.pass_mark)


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
    return standing.T.take(runs, axis=1) * watching[runs, seg]
