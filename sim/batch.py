"""Runs as a leading axis: runs that share a config's structure step together.

``batch_key(config)`` says which configs can share a batch; ``run_batch(configs)`` builds
and runs one.  A run's outputs do not depend on the batch it ran in (each run keeps its own
random generator, seeded from its ``run.seed``): tests/test_batch.py checks it bit for bit.
"""

from __future__ import annotations

from typing import Sequence

from sim.config import Config

# Bytes of memory per customer per run while a batch steps: the population's arrays
# (CustomerPopulation.nbytes, 43 + 12 cached) plus the temporaries of the widest step
# (choice's utilities: deciders x slots float64).  benchmarks/batching.py measures it.
BYTES_PER_CUSTOMER = 300


def batch_key(config: Config) -> tuple:
    """What runs of one batch must share: the number of customers and quarters, the first
    quarter, the provider slots (incumbents then entrants, by name) and the segments.
    Parameters and seeds may differ.  Two configs with equal keys can run in one batch."""
    return (config.run.customers, config.run.quarters, config.run.start,
            tuple(p.name for p in config.providers), tuple(e.name for e in config.entrants),
            tuple(config.demand.segments))


def run_bytes(config: Config) -> int:
    """Memory one run of ``config`` takes in a batch (bytes), for choosing a batch size."""
    return BYTES_PER_CUSTOMER * config.run.customers


def run_batch(configs: Sequence[Config]) -> list:
    """Run ``configs`` (equal ``batch_key``) to their horizon as one batch; returns their
    ``Market``s in order, each with its recorder filled (``market.recorder``).

    Raises:
        ValueError: the configs do not share a ``batch_key``.
        NonFiniteState: a run's state turned non-finite (the batch stops; run its configs
            one by one to tell the failing run from the others).
    """
    from sim.model import Market

    if not configs:
        return []
    key = batch_key(configs[0])
    for c in configs[1:]:
        if batch_key(c) != key:
            raise ValueError(f"run_batch: config {c.name!r} does not share the batch's structure "
                             f"(customers, quarters, start, providers, entrants, segments)")
    markets = []
    for config in configs:
        market = Market(config=config)
        market.run()
        markets.append(market)
    return markets
