"""Submodel 3b, installed base: a bandwagon term in the choice utility.  Deciders (new
adopters and customers whose contract comes up) favour providers with a large
installed base of customers (developers, tooling, partners, know-how):

    B_ij = bandwagon[s_i] * ln(max(floor, share_j))

with share_j provider j's share of the customers who had a provider at the end of
last quarter.  In the logit this multiplies provider j's choice odds by
max(floor, share_j) ** bandwagon: the bandwagon term of the history-friendly model's
propensity (Malerba, Nelson, Orsenigo and Winter 1999/2001, Eq. 9: exponent 0.8
for large organisations, 0.4 for small users), and Arthur's (1989) increasing
returns to adoption: above an exponent of 1 the symmetric market is unstable.
"""

from __future__ import annotations

import numpy as np


def shares(batch) -> np.ndarray:
    """Per run and provider slot: its share of the customers who had a provider at the end of
    last quarter (counted in last quarter's service step); before the first quarter, of those
    with a provider now.  Inactive slots get 0.  Shape (runs, slots).  A lone ``Market`` may
    stand for its batch of one."""
    batch = getattr(batch, "_batch", batch)
    if batch.markets[0].t == 0:  # the runs of a batch share their clock
        counts = batch.totals(batch.customers.provider).astype(float)
    else:
        counts = batch.table.customers
    if not batch.active.all():
        counts = np.where(batch.active, counts, 0.0)
    total = counts.sum(axis=1, keepdims=True)  # whole numbers: exact in any order
    if (total > 0).all():
        return counts / total
    return np.divide(counts, total, out=np.zeros_like(counts), where=total > 0)  # a run without customers: zeros


def utility(batch, runs, segment: np.ndarray, slots: dict | None = None) -> np.ndarray | None:
    """The bandwagon term for k deciders of runs ``runs`` (an array (k,) or a
    ``choice.RunsOf``) and segments ``segment`` (int codes, shape (k,)): an array (slots, k), in
    utils; None when every segment's weight is 0 in every run (the term is left out, at no cost).
    ``slots``: the ``Batch.slot_table()`` the caller works with, to keep the log shares with it."""
    from sim.submodels.choice import RunsOf

    weight = batch.param("demand.segments.bandwagon")  # (runs, segments)
    if not batch.memo("installed_base.on", lambda b: bool(weight.any())):
        return None
    if slots is None or batch.markets[0].t == 0:  # the first quarter's shares count providers as they are now
        log_share = _log_shares(batch)
    else:
        log_share = batch.slot_memo(slots, "installed_base.log_share", _log_shares)
    if batch.size == 1:
        return np.multiply.outer(log_share[0], weight[0][segment])
    at = runs if isinstance(runs, RunsOf) else RunsOf(batch, runs)
    return at.slots(log_share) * weight[at.runs, segment]


def _log_shares(batch, slots=None) -> np.ndarray:
    """(runs, slots) ln(max(floor, share)): the per-slot factor of the bandwagon term."""
    return np.log(np.maximum(shares(batch), batch.param("installed_base.floor")[:, None]))
