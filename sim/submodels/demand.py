"""Submodel 1, demand: adoption (Bass diffusion) and growth of existing demand.

Article: "after 2025, AI cloud became the sole growth engine"; the AI-related
compute demand of internet companies, start-ups and government and enterprise
clients "exploded".  Price response of token volume is applied where tokens are
consumed (``service``), since it depends on the provider's price.

Vectorised over the runs of a batch (``sim.batch``): one call steps every run.
"""

from __future__ import annotations

import numpy as np

from sim.batch import over_runs


@over_runs
def step(batch) -> None:
    """Existing demand grows at its segment's rates (from the second quarter on), then
    non-adopters adopt with the Bass hazard of their run (``market.new_adopters``)."""
    people = batch.customers
    if batch.markets[0].t > 0:  # runs of a batch share their quarter
        people.compute *= batch.memo("demand.growth", lambda b: _per_customer(b, "growth"))
        people.token_need *= batch.memo("demand.token_growth", lambda b: _per_customer(b, "token_growth"))
    n = batch.n
    # Each run's count of adopters (np.count_nonzero over a whole run: its fast path, not a sum over an axis).
    adopted = np.array([np.count_nonzero(people.adopted[r * n:(r + 1) * n]) for r in range(batch.size)])
    hazard = adoption_hazard(adopted / n, batch.param("demand.bass_p"), batch.param("demand.bass_q"))
    drawn = batch.bernoulli(hazard)
    new = drawn[~people.adopted[drawn]]
    people.adopted[new] = True
    if batch.size == 1:
        batch.markets[0].new_adopters = new.size
        return
    counts = np.bincount(batch.run_of[new], minlength=batch.size)
    for market, count in zip(batch.markets, counts):
        market.new_adopters = int(count)


def _per_customer(batch, field: str) -> np.ndarray:
    """(runs * n,) float32, read-only: 1 + the segment's ``field`` rate of each customer's run."""
    rates = 1.0 + batch.param(f"demand.segments.{field}").astype(np.float32)  # (runs, segments)
    values = rates[batch.run_of, batch.customers.segment]
    values.flags.writeable = False
    return values


def adoption_hazard(adopted_share, p, q):
    """Bass (1969): the chance that a non-adopter adopts this quarter, min(1, p + q * adopted
    share); elementwise over arrays (one value per run)."""
    return np.minimum(1.0, p + q * adopted_share)

