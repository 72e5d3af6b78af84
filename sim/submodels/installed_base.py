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


def shares(market) -> np.ndarray:
    """Per provider slot: its share of the customers who had a provider at the end of last
    quarter (counted in last quarter's service step); before the first quarter, of those
    with a provider now.  Inactive slots get 0.  Shape (slots,)."""
    counts = np.zeros(market.n_slots)
    active = market.active_providers()
    for p in active:
        counts[p.slot] = p.customers
    if market.t == 0:
        (counts,) = market.customers.provider_totals(market.n_slots, None)
        counts = counts.astype(float)
        counts[[s for s in range(market.n_slots) if market.status[s] != "active"]] = 0.0
    total = counts.sum()
    return counts / total if total > 0 else counts


def utility(market, segment: np.ndarray) -> np.ndarray | None:
    """The bandwagon term for deciders of the given segments (int codes, shape (customers,)):
    an array (slots, customers), in utils; None when every segment's weight is 0 (the term
    is left out, at no cost)."""
    weight = market.customers.segment_table("bandwagon", market.config)
    if not weight.any():
        return None
    floor = market.config.installed_base.floor
    log_share = np.log(np.maximum(shares(market), floor))
    return np.multiply.outer(log_share, weight[segment])
