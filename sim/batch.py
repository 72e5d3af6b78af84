"""Runs as a leading axis: runs that share a config's structure step together.

``batch_key(config)`` says which configs can share a batch; ``run_batch(configs)`` builds
and runs one.  A run's outputs do not depend on the batch it ran in (each run keeps its own
random generator, seeded from its ``run.seed``): tests/test_batch.py checks it bit for bit.
"""

from __future__ import annotations

from typing import Callable, Sequence

import numpy as np

from sim.config import Config
from sim.customers import CustomerPopulation

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
    batch = Batch(configs)
    batch.run()
    return batch.markets


def over_runs(fn: Callable) -> Callable:
    """Marks a schedule entry as vectorised over runs: ``Batch.step`` calls it once with the batch."""
    fn.over_runs = True
    return fn


class Batch:
    """Runs of one structure (equal ``batch_key``) that step together, one quarter at a time.

    Each run is a ``sim.model.Market`` (a Mesa model with its own random generator, seeded
    from its ``run.seed``, and its own Provider agents).  The batch holds what the runs share
    in memory:

    - ``customers``: one ``CustomerPopulation`` whose arrays are the runs' populations end to
      end (run ``r`` holds rows ``[r * n, (r + 1) * n)``); each run's ``market.customers``
      arrays are views of its rows;
    - ``table``: the ``ProviderTable`` (runs, slots, columns); each run's Provider agents read
      and write their row.

    Args:
        configs: configs with equal ``batch_key`` (ValueError otherwise).
    """

    def __init__(self, configs: Sequence[Config]):
        from sim.model import Market
        from sim.provider_table import ProviderTable

        if not configs:
            raise ValueError("Batch: no configs")
        key = batch_key(configs[0])
        for c in configs[1:]:
            if batch_key(c) != key:
                raise ValueError(f"Batch: config {c.name!r} does not share the batch's structure "
                                 f"(customers, quarters, start, providers, entrants, segments)")
        table = ProviderTable(len(configs), len(configs[0].all_providers))
        markets = [Market(config=c, _table=(table, r)) for r, c in enumerate(configs)]
        self._adopt(markets, table)

    @classmethod
    def of_markets(cls, markets: list) -> "Batch":
        """The batch of Markets already built on one table (a Market on its own: a batch of one)."""
        batch = cls.__new__(cls)
        batch._adopt(markets, markets[0].provider_table)
        return batch

    def _adopt(self, markets: list, table) -> None:
        self.stepping = False
        self.markets = markets
        self.size = len(markets)
        self.table = table
        self.n = markets[0].customers.n  # customers per run
        self.customers = join_populations([m.customers for m in markets])
        for m in markets:
            m._batch = self

    def step(self) -> None:
        """One quarter of every run: ``sim.model.SCHEDULE``, then each run's record and clock.

        Raises:
            HorizonReached: some run has done all its quarters (nothing changes).
            NonFiniteState: a run's state turned non-finite (the quarter stops there).
        """
        for m in self.markets:
            m._check_horizon()
        self.stepping = True
        try:
            for m in self.markets:
                m._mesa_step()  # Mesa's clock: steps + 1, time + 1 (Market._on_mesa_step does nothing more)
        finally:
            self.stepping = False
        self.quarter()

    def quarter(self) -> None:
        """The quarter of every run, once Mesa's clocks have advanced (``step`` without the clock)."""
        from sim.model import SCHEDULE

        for m in self.markets:
            m._in_quarter = True
        try:
            for module, name in SCHEDULE:
                entry = getattr(module, name)
                if getattr(entry, "over_runs", False):
                    entry(self)
                else:
                    for m in self.markets:
                        entry(m)
            for m in self.markets:
                m.recorder.record(m)
        finally:
            for m in self.markets:
                m._in_quarter = False
        for m in self.markets:
            m._advance_clock()
            m.datacollector.collect(m)
            m.running = m.steps < m.config.run.quarters

    def run(self) -> None:
        """Step every run to its horizon (``run.quarters``)."""
        for _ in range(self.markets[0].remaining_quarters):  # equal quarters: batch_key
            self.step()


def join_populations(populations: list[CustomerPopulation]) -> CustomerPopulation:
    """One population holding ``populations`` end to end; each of them then holds views of its
    rows of the joined arrays (so writes through either are seen by both).  One population: it
    is returned as it is (no copy)."""
    if len(populations) == 1:
        return populations[0]
    first = populations[0]
    joined = CustomerPopulation.__new__(CustomerPopulation)
    joined.segment_names = first.segment_names
    joined.n = sum(p.n for p in populations)
    joined._spread = {}
    for name in CustomerPopulation.ARRAYS:
        whole = np.concatenate([getattr(p, name) for p in populations])
        setattr(joined, name, whole)
        start = 0
        for p in populations:
            setattr(p, name, whole[start:start + p.n])
            start += p.n
    return joined
