"""Submodel 1, demand: adoption (Bass diffusion) and growth of existing demand.

Article: "after 2025, AI cloud became the sole growth engine"; the AI-related
compute demand of internet companies, start-ups and government and enterprise
clients "exploded".  Price response of token volume is applied where tokens are
consumed (``service``), since it depends on the provider's price.
"""

from __future__ import annotations

import numpy as np

from sim.customers import bernoulli_indices


def step(market) -> None:
    people = market.customers
    cfg = market.config
    growth = 1.0 + people.segment_table("growth", cfg).astype(np.float32)
    token_growth = 1.0 + people.segment_table("token_growth", cfg).astype(np.float32)
    if market.t > 0:
        people.compute *= people.spread(growth)
        people.token_need *= people.spread(token_growth)
    market.new_adopters = adopt(people.adopted, cfg.demand.bass_p, cfg.demand.bass_q, market.rng)


def adoption_hazard(adopted_share: float, p: float, q: float) -> float:
    """Bass (1969): the chance that a non-adopter adopts this quarter."""
    return min(1.0, p + q * adopted_share)


def adopt(adopted: np.ndarray, p: float, q: float, rng: np.random.Generator) -> int:
    """Marks new adopters in place (they choose a provider in the choice step); returns how many."""
    hazard = adoption_hazard(np.count_nonzero(adopted) / adopted.size, p, q)
    # Every customer is drawn with the hazard (from geometric gaps: ~n * hazard draws, not n);
    # those already adopted are unaffected, so each non-adopter adopts with the hazard.
    drawn = bernoulli_indices(rng, adopted.size, hazard)
    new = drawn[~adopted[drawn]]
    adopted[new] = True
    return int(new.size)
