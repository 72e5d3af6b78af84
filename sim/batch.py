"""Runs as a leading axis: runs that share a config's structure step together.

``batch_key(config)`` says which configs can share a batch; ``run_batch(configs)`` builds
and runs one.  A run's outputs do not depend on the batch it ran in (each run keeps its own
random generator, seeded from its ``run.seed``): tests/test_batch.py checks it bit for bit.
"""

from __future__ import annotations

import functools
from typing import Callable, Sequence

import numpy as np

from sim.config import Config
from sim.customers import CustomerPopulation

# What one run holds in a batch, for sizing a sweep's batches (``run_bytes``).  Measured at
# ae867d8 with tracemalloc (every numpy buffer and Python object allocated) over a sweep worker's
# batch: ``run_batch`` and each run's tagged Arrow tables (sim.experiment.worker), which live
# together until the batch's records go back; the peak RSS above the start agreed within the
# page and arena rounding (docs/performance.md, "Memory of a batch").
# - per customer: the population's arrays plus the widest step's temporaries (choice: deciders x
#   slots float64), which grow with the slots: 132-136 bytes traced, 153-184 RSS at 6 slots (10 runs
#   x 10,000 and 2 x 50,000, china_2025); 111 / 134 / 186 traced at 3 / 20 / 40 identical providers
#   (2 runs x 20,000), i.e. about 110 + 2.5 a slot;
BYTES_PER_CUSTOMER = 260
BYTES_PER_CUSTOMER_SLOT = 4
# - per run: the Market, its Mesa agents and DataCollector, generator and bookkeeping: 45-77 kB
#   traced, 100-110 kB RSS (20 runs x 10 customers, 2-20 slots), growing about 1.5 kB a slot;
BYTES_PER_RUN = 150_000
BYTES_PER_RUN_SLOT = 2_000
# - per quarter, beside the recorder's own arrays (``recorder_bytes``, counted exactly): the
#   run's Arrow tables (40 provider columns a slot, 45 market columns; measured 421 bytes a slot
#   and 256 a quarter, plus 24 a row for the worker's three tag columns), the DataCollector's notes and the
#   frontier history (measured about 310 + 16 a slot).  A quarter of a run then costs, traced,
#   2,424 / 5,546 / 10,830 / 18,950 bytes at 2 / 6 / 12 / 20 slots; ``quarter_bytes`` gives
#   2,703 / 6,179 / 11,873 / 20,361 (measured in 4 runs x 100 customers x 40 and 200 quarters).
BYTES_PER_QUARTER = 700
BYTES_PER_QUARTER_SLOT = 500


def batch_key(config: Config) -> tuple:
    """What runs of one batch must share: the number of customers and quarters, the first
    quarter, the provider slots (incumbents then entrants, by name) and the segments.
    Parameters and seeds may differ.  Two configs with equal keys can run in one batch."""
    return (config.run.customers, config.run.quarters, config.run.start,
            tuple(p.name for p in config.providers), tuple(e.name for e in config.entrants),
            tuple(config.demand.segments))


def run_bytes(config: Config) -> int:
    """Memory one run of ``config`` takes in a batch (bytes), for choosing a batch size
    (sim.experiment.batching): an upper bound of what a sweep worker holds per run while its
    batch steps and returns its tables, measured at 2-40 slots, 10-50,000 customers and 1-200
    quarters (tests/test_experiment_batching.py checks it against a real batch)::

        run_bytes = BYTES_PER_RUN + BYTES_PER_RUN_SLOT * slots                    (150 kB + 2 kB a slot)
                  + (BYTES_PER_CUSTOMER + BYTES_PER_CUSTOMER_SLOT * slots) * customers  (260 + 4 a slot)
                  + quarters * quarter_bytes(slots)                    (the recorder and outputs)

    Units: bytes; ``slots`` = incumbents + entrants (``config.all_providers``).  The sources of the
    constants are in the comments above them."""
    slots = len(config.all_providers)
    return (BYTES_PER_RUN + BYTES_PER_RUN_SLOT * slots
            + (BYTES_PER_CUSTOMER + BYTES_PER_CUSTOMER_SLOT * slots) * config.run.customers
            + config.run.quarters * quarter_bytes(slots))


def quarter_bytes(slots: int) -> int:
    """Bytes one run keeps per quarter for the whole run (they add up over the quarters): the
    recorder's arrays (``recorder_bytes``) plus ``BYTES_PER_QUARTER + BYTES_PER_QUARTER_SLOT *
    slots`` for the run's tables and Mesa's collector (measured; see the constants)."""
    return recorder_bytes(slots) + BYTES_PER_QUARTER + BYTES_PER_QUARTER_SLOT * slots


def recorder_bytes(slots: int) -> int:
    """Bytes the recorder (sim.metrics.BatchRecorder) allocates per run and quarter, from its
    arrays' shapes and dtypes: per slot the provider floats, model users (int64) and status (int8);
    the (slots + 1)^2 int64 switching flows; the market floats and ints; the flags, steps, labels
    and entry/exit names (object pointers)."""
    from sim import metrics

    per_slot = 8 * len(metrics.PROVIDER_FLOATS) + 8 + 1
    market = 8 * (len(metrics.MARKET_FLOATS) + len(metrics.MARKET_INTS))
    return per_slot * slots + 8 * (slots + 1) ** 2 + market + 1 + 8 + 8 + 2 * 8


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
    """Marks a schedule entry as vectorised over runs: ``Batch.step`` calls it once with the batch.

    The entry may also be called with a ``Market`` on its own (a batch of one: it runs on that
    Market's batch), as tests and notebooks step one submodel of one run; a Market that is one
    run of a larger batch is refused (RuntimeError: the entry would step every run of it)."""
    @functools.wraps(fn)
    def entry(batch, *args, **kwargs):
        if not isinstance(batch, Batch):
            market = batch
            batch = market._batch
            if batch.size > 1:
                raise RuntimeError(f"{fn.__module__}.{fn.__name__}: Market {market.config.name!r} is run "
                                   f"{market.run_index} of a batch of {batch.size}: call it with the batch")
        return fn(batch, *args, **kwargs)

    entry.over_runs = True
    return entry


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
        from sim import allocator

        # The quarter's temporaries span the whole batch: keep the heap for it (sim/allocator.py).
        allocator.keep_heap_for(len(configs) * configs[0].run.customers, start=allocator.FROM_BATCH_CUSTOMERS)
        table = ProviderTable(len(configs), len(configs[0].all_providers), len(configs[0].demand.segments),
                              lags=[c.finance.capex_lag for c in configs])
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
        self.n_slots = table.slots
        self._params: dict[str, np.ndarray] = {}
        self._run_of: np.ndarray | None = None
        self._memo: dict[str, object] = {}
        # slot_table within schedule entries that change customers only: None (build each call),
        # {} (keep the next one built), or the kept table (Batch.quarter sets and clears it).
        self._slots_kept: dict | None = None
        from sim.metrics import BatchRecorder, Recorder

        self.recorder = BatchRecorder(self)  # every run's rows, recorded at once each quarter
        for r, m in enumerate(markets):
            m.recorder = Recorder(self.recorder, r)
        from sim.submodels.entry_exit import Entrants

        self.entrants = Entrants(markets)  # pending entrants' bankrolls; each market.bankrolls is a view
        from sim.submodels.parents import Parents

        self.parents = Parents(markets)  # every run's parent groups; each market.parent_accounts reads its row

    # ------------------------------------------------------- for vectorised submodels
    @property
    def active(self) -> np.ndarray:
        """(runs, slots) bool: the slot's provider is active, the one record of it (the provider
        table's ``active``): ``Market.enter`` and ``Market.retire`` set it, each run's
        ``Market.status`` reads its row.  Write into it, never rebind it."""
        return self.table.active

    @property
    def rngs(self) -> list[np.random.Generator]:
        """Each run's random generator, in run order: draw per run, in the order a run alone draws."""
        return [m.rng for m in self.markets]

    def param(self, path: str) -> np.ndarray:
        """A config value of every run, shape (runs,): ``param("pricing.adjustment")``.  Cached
        (configs do not change during a run).  Sections that hold one value per segment
        (``demand.segments.renewal_hazard``) give shape (runs, segments)."""
        values = self._params.get(path)
        if values is None:
            values = np.array([_config_value(m.config, path) for m in self.markets])
            values.flags.writeable = False
            self._params[path] = values
        return values

    @property
    def run_of(self) -> np.ndarray:
        """(runs * n,) int32: the run each customer of ``customers`` belongs to."""
        if self._run_of is None:
            self._run_of = np.repeat(np.arange(self.size, dtype=np.int32), self.n)
            self._run_of.flags.writeable = False
        return self._run_of

    def slot_key(self, provider: np.ndarray, run_of: np.ndarray | None = None) -> np.ndarray:
        """intp key ``run * (slots + 1) + provider + 1`` of each customer (provider -1, none, is
        its run's bin 0): bincount it with ``minlength = runs * (slots + 1)`` and reshape to
        (runs, slots + 1) for per-run, per-slot totals (``totals``).  ``run_of``: the runs of the
        customers in ``provider`` when it is not the whole population."""
        key = provider.astype(np.intp)
        key += 1
        if run_of is not None:
            if self.size > 1:
                key += run_of.astype(np.intp) * (self.n_slots + 1)
        elif self.size > 1:
            key += self.run_base(self.n_slots + 1)
        return key

    def run_base(self, k: int) -> np.ndarray:
        """(runs * n,) intp ``run_of * k`` (read-only, kept per ``k``): the offset of each customer's
        run for keys with ``k`` bins per run (``slot_key``).  A batch of one: zeros (add nothing)."""
        bases = self._memo.setdefault("run_base", {})
        base = bases.get(k)
        if base is None:
            base = bases[k] = self.run_of.astype(np.intp) * k
            base.flags.writeable = False
        return base

    def totals(self, provider: np.ndarray, weights: np.ndarray | None = None,
               run_of: np.ndarray | None = None, key: np.ndarray | None = None) -> np.ndarray:
        """(runs, slots) float64: per run and slot, the count (``weights`` None) or the sum of
        ``weights`` over customers with that provider; customers without one count nowhere.
        Each (run, slot) total adds its customers in index order, as ``np.bincount`` over one
        run alone does, so a run's totals do not depend on the batch.  ``key``: ``slot_key(provider,
        run_of)`` when the caller has it already (totals of one provider array with other weights)."""
        if key is None:
            key = self.slot_key(provider, run_of) if run_of is not None else self.bin_key(provider)
        w = None if weights is None else weights.astype(np.float64, copy=False)
        out = np.bincount(key, weights=w, minlength=self.size * (self.n_slots + 1))
        return out.reshape(self.size, self.n_slots + 1)[:, 1:]

    def bernoulli(self, p: np.ndarray | float) -> np.ndarray:
        """Sorted indices into ``customers`` (all runs), each included with its run's probability
        ``p`` (shape (runs,) or a scalar): ``customers.bernoulli_indices`` per run from the run's
        generator, offset to its rows.  The draws of a run are those it makes alone."""
        from sim.customers import GAPS_BELOW, bernoulli_indices

        n = self.n
        if self.size == 1 and np.size(p) == 1:  # a batch of one: its run's draw, no broadcast
            return bernoulli_indices(self.markets[0].rng, n, float(np.ravel(p)[0]) if np.ndim(p) else float(p))
        probs = np.broadcast_to(np.asarray(p, dtype=float), (self.size,))
        # Small p (the usual quarterly hazards): each run draws its gaps from its generator as
        # bernoulli_indices does (one chunk of standard exponentials); the arithmetic on them,
        # the same per element, runs once over a (runs, chunk) array instead of once per run.
        parts, rows, gaps, scales = [], [], [], []
        known: dict[float, tuple] = {}  # p -> (scale, chunk): a p that many runs share is worked out once
        with np.errstate(over="ignore", divide="ignore"):
            for r, (m, q) in enumerate(zip(self.markets, probs.tolist())):
                if n <= 0 or q <= 0:
                    continue
                if q >= GAPS_BELOW:
                    parts.append(bernoulli_indices(m.rng, n, q) + r * n)
                    continue
                got = known.get(q)
                if got is None:
                    scale = -1.0 / np.log1p(-q)
                    expected = n * q
                    got = known[q] = (scale, int(expected + 4.0 * np.sqrt(expected) + 16) if np.isfinite(scale) else 0)
                if got[1]:
                    gaps.append(m.rng.standard_exponential(got[1]))
                    rows.append(r)
                    scales.append(got[0])
        if gaps:
            lengths = np.array([g.size for g in gaps])
            filled = np.arange(lengths.max()) < lengths[:, None]
            steps = np.zeros(filled.shape)
            steps[filled] = np.concatenate(gaps)
            with np.errstate(over="ignore"):  # a gap beyond ~1e308 becomes inf (cut below)
                steps *= np.array(scales)[:, None]
            np.floor(steps, out=steps)
            steps += 1.0
            # Gaps are whole numbers, so their running sums are exact in integers; a gap beyond
            # n + 1 lands past n wherever it falls, so it is cut to n + 1 (no overflow).
            np.minimum(steps, n + 1.0, out=steps)
            positions = np.cumsum(steps.astype(np.intp), axis=1)
            positions -= 1
            short = positions[np.arange(len(rows)), lengths - 1] < n  # the chunk did not reach n (rare)
            for i in np.flatnonzero(short):  # that run goes on as bernoulli_indices does (nothing was cut)
                first = positions[i, :lengths[i]].astype(np.float64)
                parts.append(_more_gaps(self.markets[rows[i]].rng, n, scales[i], first) + rows[i] * n)
            keep = filled & (positions < n) & ~short[:, None]
            positions += np.array(rows, dtype=np.intp)[:, None] * n
            parts.append(positions[keep])
        if not parts:
            return np.empty(0, dtype=np.intp)
        out = np.concatenate(parts)
        return np.sort(out) if len(parts) > 1 else out  # runs hold disjoint, increasing index ranges

    def uniforms(self, counts) -> np.ndarray:
        """``counts[r]`` uniforms from run r's own generator, concatenated in run order (the draws
        a run makes alone).  ``counts``: (runs,) whole numbers, e.g. ``np.bincount(run_of[idx],
        minlength=runs)``."""
        if self.size == 1:
            return self.markets[0].rng.random(int(counts[0]))
        return np.concatenate([m.rng.random(k) for m, k in zip(self.markets, np.asarray(counts).tolist())])

    def sum_slots(self, values: np.ndarray, where: np.ndarray | None = None) -> np.ndarray:
        """(runs,) left-to-right sum over slots of ``values`` (runs, slots), counting only ``where``
        (default: active slots): the same float64 additions, in the same order, as Python's
        ``sum(p.x for p in market.active_providers())`` over float64 attributes (numpy's own
        reductions add in a different order, so their last bit can differ)."""
        mask = self.active if where is None else where
        # np.add.accumulate adds one element after the other, left to right (no pairwise summation,
        # unlike np.add.reduce): its last column is that sum, in one call instead of one per slot.
        return np.add.accumulate(np.where(mask, values, 0.0), axis=1)[:, -1]

    def installed_compute_shares(self) -> np.ndarray:
        """(runs, slots) float64: each slot's share of its run's compute demand of customers
        currently with a provider (a run without any: zeros).  The totals are ``totals``; a run's
        sum over slots is numpy's, as one run alone sums its (slots,) totals."""
        totals = self.totals(self.customers.provider, self.customers.compute)
        total = totals.sum(axis=1, keepdims=True)  # row by row: the pairwise sum of one run's (slots,) array
        with np.errstate(divide="ignore", invalid="ignore"):
            return np.where(total > 0, totals / total, 0.0)

    def memo(self, key: str, build: Callable[["Batch"], object]):
        """``build(batch)``, computed once per batch and kept under ``key`` (for tables derived from
        the configs alone, e.g. a submodel's per (run, slot, quarter) factors).  The value must not
        change during the run (configs do not)."""
        values = self._memo.get(key)
        if values is None:
            values = self._memo[key] = build(self)
        return values

    def slot_table(self) -> dict[str, np.ndarray]:
        """What choice reads of the providers, per run and slot: ``active`` (bool), ``price``,
        ``price_new``, ``price_renewal`` (1 where no provider is active), ``capability``,
        ``reliability``, ``lock_in``, ``edge`` (the own model's lead over the open-weights
        model, ``capability.edge_over_open``; 0 where inactive), all (runs, slots), and
        ``affinity`` (runs, segments, slots), 0 where inactive.  Built afresh from the table
        (the submodels change it during the quarter), except within a run of schedule entries
        that change customers only (``sim.model.CUSTOMERS_ONLY``: choice, multi-homing, model
        choice), which share the table built first (read-only arrays; a new dict each call)."""
        if self._slots_kept is not None:
            if self._slots_kept:
                return dict(self._slots_kept)
            kept = self._slots_kept = self._build_slot_table()
            for values in kept.values():
                values.flags.writeable = False
            return dict(kept)
        return self._build_slot_table()

    def _build_slot_table(self) -> dict[str, np.ndarray]:
        t, active = self.table, self.active
        own = t.own_capability
        open_capability = np.array([m.open_capability for m in self.markets], dtype=np.float64)[:, None]
        from sim.submodels.capability import edge_over_open  # the submodels import this module
        edge = np.where(active, edge_over_open(own, open_capability, t.has_model), 0.0)
        return {
            "active": active.copy(),
            "price": np.where(active, t.price, 1.0), "price_new": np.where(active, t.price_new, 1.0),
            "price_renewal": np.where(active, t.price_renewal, 1.0),
            "capability": np.where(active, t.capability, 0.0), "reliability": np.where(active, t.reliability, 0.0),
            "lock_in": np.where(active, t.lock_in, 0.0), "edge": edge,
            "affinity": np.where(active[:, None, :], t.affinity.transpose(0, 2, 1), 0.0),
        }

    def spread(self, table: np.ndarray) -> np.ndarray:
        """``table[run, segment]`` of every customer of ``customers`` (float32, read-only), from a
        (runs, segments) table: ``CustomerPopulation.spread`` over runs.  When every run has the
        same row, the population's cached spread of that row; else a gather, cached by value."""
        table = np.asarray(table, dtype=np.float32)
        if (table == table[0]).all():
            return self.customers.spread(table[0])
        key = table.tobytes()
        cache = self._memo.setdefault("spread", {})
        values = cache.get(key)
        if values is None:
            if len(cache) >= 4:
                cache.clear()
            values = cache[key] = table[self.run_of, self.customers.segment]
            values.flags.writeable = False
        return values

    def market_values(self, name: str) -> np.ndarray:
        """(runs,) float64: the per-run Market scalar ``name`` (``frontier``, ``token_compute``...)."""
        return np.array([getattr(m, name) for m in self.markets], dtype=np.float64)

    @staticmethod
    def power(base, exponent) -> np.ndarray:
        """``base ** exponent`` elementwise (broadcast), float64, each element by the C library's
        ``pow`` as a scalar computes it (``np.float64(b) ** e``, Python's ``b ** e``).  numpy's
        array power takes a SIMD pow on this machine's CPU whose last bit differs from the scalar
        one for about 5 % of values (even 6 elements, even strided), so a submodel that raised one
        provider's number to a power and now raises a (runs, slots) array uses this to keep each
        run's results bit for bit.  About 0.15 us an element: index the elements that need it."""
        b, e = np.asarray(base, dtype=np.float64), np.asarray(exponent, dtype=np.float64)
        try:  # Python floats' ** (C's pow), element by element: cheaper than object arrays for a few values
            if e.ndim == 0:
                y = float(e)
                out = np.array([x ** y for x in b.ravel().tolist()], dtype=np.float64).reshape(b.shape)
            else:
                if b.shape != e.shape:
                    b, e = np.broadcast_arrays(b, e)
                out = np.array([x ** y for x, y in zip(b.ravel().tolist(), e.ravel().tolist())],
                               dtype=np.float64).reshape(b.shape)
        except (ArithmeticError, TypeError, ValueError):  # 0 ** -1, overflow, a negative base: numpy's scalar rules
            b, e = np.broadcast_arrays(b, e)
            out = np.asarray(_scalar_pow(b, e), dtype=np.float64)
        return out[()] if out.ndim == 0 else out

    def numpy_power(self, base: np.ndarray, exponent: np.ndarray) -> np.ndarray:
        """``base`` (runs, ...) to the power ``exponent`` (runs,), float64, with the bits each run
        alone gets from ``np.power(base[r], e_r)`` with a Python float ``e_r`` (e.g. a config value).
        numpy's power with a scalar exponent takes fast paths (-1: 1 / x, 0.5: sqrt, 2: x * x)
        and otherwise its SIMD pow; with an exponent array broadcast over slots it may take
        neither, so the last bit would depend on the batch.  One call per distinct exponent.  (Code
        that raised a numpy or Python scalar to a power wants ``power``, C's pow, instead.)"""
        exponent = np.asarray(exponent, dtype=np.float64)
        if (exponent == exponent[0]).all():  # one exponent (the usual case): one call
            return np.power(np.ascontiguousarray(base, dtype=np.float64), float(exponent[0]))
        out = np.empty(base.shape, dtype=np.float64)
        for e in np.unique(exponent):
            rows = exponent == e
            out[rows] = np.power(np.ascontiguousarray(base[rows], dtype=np.float64), float(e))
        return out

    def slot_memo(self, slots: dict[str, np.ndarray], key: str, build: Callable[["Batch", dict], object]):
        """``build(batch, slots)``: values derived from a ``slot_table()`` (and provider state that
        stays as it is while that table is shared, e.g. the frontier), computed once while
        consecutive schedule entries share the quarter's table (``slot_table``) and ``slots`` is
        it; afresh otherwise (a table built for one call).  For per-slot terms that several of
        those entries, or several calls, derive from the same table."""
        kept = self._slots_kept
        if not kept or kept["active"] is not slots["active"]:
            return build(self, slots)
        memo = self._memo.get("slot_memo")
        if memo is None or memo[0] is not kept:  # holding ``kept`` keeps its identity unique
            memo = self._memo["slot_memo"] = (kept, {})
        values = memo[1].get(key)
        if values is None:
            values = memo[1][key] = build(self, slots)
        return values

    def bin_key(self, provider: np.ndarray, scale: int = 1, plus: np.ndarray | None = None) -> np.ndarray:
        """Key ``scale * (provider + 1) + plus`` of each customer of ``customers``, offset by its
        run (``run * scale * (slots + 1)``): ``slot_key`` with ``scale`` bins per slot, e.g. a flag
        in ``plus`` (0 or 1, ``scale`` 2) or a second slot (``plus`` = other + 1, ``scale`` slots + 1);
        ``plus`` must lie in [0, scale) (the keys' type is chosen for that range).  Bincount it with ``minlength = runs * scale * (slots + 1)``.  The same keys as ``slot_key``
        arithmetic in intp, built in the narrowest of int16, int32 and intp that holds them (a
        quarter or half of the memory traffic; ``np.bincount`` takes any integer array): the bins
        and their order of additions are the same."""
        per_run = scale * (self.n_slots + 1)
        bins = per_run * self.size
        small = np.int16 if bins <= 2**15 else np.int32 if bins <= 2**31 else np.intp
        key = np.add(provider, 1, dtype=small)
        if scale != 1:
            key *= scale
        if plus is not None:
            key += plus
        if self.size > 1:
            bases = self._memo.setdefault("bin_key", {})
            base = bases.get((per_run, small))
            if base is None:  # run_base in the key's integer type (an add of one type is the fast one)
                base = bases[per_run, small] = self.run_base(per_run).astype(small)
                base.flags.writeable = False
            key += base
        return key

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
        from sim.model import CUSTOMERS_ONLY, SCHEDULE

        for m in self.markets:
            m._in_quarter = True
        # Providers' numbers are numpy float64 (the table's): a ratio over zero capacity or an overflow
        # gives inf as Python floats did, without numpy's warning; the guard then names any state that
        # is not finite in one line (utilisation may be inf: demand without capacity).
        try:
            with np.errstate(over="ignore", divide="ignore"):
                for module, name in SCHEDULE:
                    # One slot table for consecutive entries that leave the providers as they are.
                    if (module, name) not in CUSTOMERS_ONLY:
                        self._slots_kept = None
                    elif self._slots_kept is None:
                        self._slots_kept = {}
                    entry = getattr(module, name)
                    if getattr(entry, "over_runs", False):
                        entry(self)
                    else:
                        for m in self.markets:
                            entry(m)
                self.recorder.record()
        finally:
            self._slots_kept = None
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


_scalar_pow = np.frompyfunc(lambda b, e: np.float64(b) ** np.float64(e), 2, 1)


def _config_value(config: Config, path: str):
    """The value at ``path`` of one config; a segment field (``demand.segments.FIELD``) gives one
    value per segment, in segment order."""
    if path.startswith("demand.segments."):
        field = path.removeprefix("demand.segments.")
        return [getattr(seg, field) for seg in config.demand.segments.values()]
    node = config
    for part in path.split("."):
        node = getattr(node, part)
    return node


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
        parts = [getattr(p, name) for p in populations]
        whole = np.concatenate(parts)
        if not any(part.flags.writeable for part in parts):  # read-only arrays (weights) stay so
            whole.flags.writeable = False
        setattr(joined, name, whole)
        start = 0
        for p in populations:
            setattr(p, name, whole[start:start + p.n])
            start += p.n
    return joined


def _more_gaps(rng: np.random.Generator, n: int, scale: float, positions: np.ndarray) -> np.ndarray:
    """The rest of ``customers.bernoulli_indices`` for a run whose first chunk of gaps
    (``positions``) ended before ``n``: further chunks of the same size from its generator."""
    pieces, last, chunk = [positions], positions[-1], positions.size
    while True:
        with np.errstate(over="ignore"):
            more = last + np.cumsum(np.floor(rng.standard_exponential(chunk) * scale) + 1.0)
        if more[-1] >= n:
            pieces.append(more[more < n])
            return np.concatenate(pieces).astype(np.intp)
        pieces.append(more)
        last = more[-1]
