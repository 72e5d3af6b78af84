"""The choice rule for a batch of runs at once, written for any array library (``sim.arrays``).

State has runs as the leading axis: customers ``(runs, customers)``, preference weights
``(runs, customers, 4)``; provider attributes ``(slots,)`` are shared by the batch (the rule of
``benchmarks/choice_rule.py``, held still).  One quarter is a fixed sequence of dense array
operations over every customer of every run, the shape a GPU wants (no index lists, whose
lengths would differ from run to run):

    decide   = no provider, or a uniform < the segment's renewal hazard
    V        = w @ attraction + w_fit * affinity[segment] + switching cost at the current slot
    chosen   = argmax(V + Gumbel noise)       (multinomial logit; inactive slots -inf)
    tenure, model use: as ``benchmarks/kernel.py``

Only array-API operations are used (the tests run it on ``array-api-strict``), so the same code
runs on NumPy, CuPy and PyTorch.  The random stream is the library's own, so a batch agrees
with the engine in distribution, not draw for draw (``benchmarks/agreement.py`` checks it).
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

import numpy as np

from benchmarks.choice_rule import Population, Rule
from sim.arrays import Arrays

TINY = 1e-30


@dataclass
class Batch:
    """A batch's customer state on the array library's device (runs x customers)."""

    segment: Any     # int64 (runs * customers,): flat, for gathers of per-segment values
    weights: Any     # float32 (runs, customers, 4)
    provider: Any    # int64 (runs, customers), -1 = none
    tenure: Any      # int16 (runs, customers)
    uses_model: Any  # bool (runs, customers)

    @property
    def shape(self) -> tuple[int, int]:
        return tuple(self.provider.shape)


@dataclass
class DeviceRule:
    attraction: Any  # float32 (4, slots)
    affinity: Any    # float32 (segments, slots)
    active: Any      # bool (slots,)
    lock_in: Any     # float32 (slots,)
    edge: Any        # float32 (slots,)
    appeal: Any      # float32 (slots,)
    renewal: Any     # float32 (segments,)
    model_use_rate: Any  # float32 (segments,)
    slots: Any       # int64 (slots,): 0 .. slots - 1
    switching_base: float
    switching_tenure: float
    tenure_scale: float
    model_lock: float


def to_device(lib: Arrays, rule: Rule) -> DeviceRule:
    xp = lib.xp
    f32 = xp.float32
    return DeviceRule(
        attraction=lib.asarray(rule.attraction.astype(np.float32), f32), affinity=lib.asarray(rule.affinity.astype(np.float32), f32),
        active=lib.asarray(rule.active, xp.bool), lock_in=lib.asarray(rule.lock_in.astype(np.float32), f32),
        edge=lib.asarray(rule.edge.astype(np.float32), f32), appeal=lib.asarray(rule.appeal.astype(np.float32), f32),
        renewal=lib.asarray(rule.renewal.astype(np.float32), f32),
        model_use_rate=lib.asarray(rule.model_use_rate.astype(np.float32), f32),
        slots=lib.asarray(np.arange(rule.active.size), xp.int64),
        switching_base=float(rule.switching_base), switching_tenure=float(rule.switching_tenure),
        tenure_scale=float(rule.tenure_scale), model_lock=float(rule.model_lock))


def batch_of(lib: Arrays, populations: list[Population]) -> Batch:
    """Stack populations of equal size (one per run) into a batch on the device."""
    xp = lib.xp
    stack = lambda name: np.stack([getattr(p, name) for p in populations])  # noqa: E731
    return Batch(segment=lib.asarray(stack("segment").reshape(-1).astype(np.int64), xp.int64),
                 weights=lib.asarray(stack("weights").astype(np.float32), xp.float32),
                 provider=lib.asarray(stack("provider").astype(np.int64), xp.int64),
                 tenure=lib.asarray(stack("tenure"), xp.int16), uses_model=lib.asarray(stack("uses_model"), xp.bool))


def per_segment(lib: Arrays, table: Any, batch: Batch) -> Any:
    """``table[segment]`` for every customer of the batch, shape (runs, customers) (or
    (runs, customers, k) for a (segments, k) table)."""
    xp = lib.xp
    runs, n = batch.shape
    values = xp.take(table, batch.segment, axis=0)
    return xp.reshape(values, (runs, n, *table.shape[1:]))


def quarter(lib: Arrays, batch: Batch, rule: DeviceRule, gen: Any) -> None:
    """One quarter for every customer of every run, in place."""
    xp = lib.xp
    runs, n = batch.shape
    slots = rule.slots.shape[0]
    provider = batch.provider
    has = provider >= 0
    decide = ~has | (lib.uniform(gen, (runs, n)) < per_segment(lib, rule.renewal, batch))

    w = batch.weights
    v = xp.matmul(w, rule.attraction)  # (runs, customers, slots)
    v = v + per_segment(lib, rule.affinity, batch) * w[:, :, 2:3]
    current = xp.where(has, provider, xp.zeros_like(provider))
    cur_flat = xp.reshape(current, (runs * n,))
    tenure_term = 1.0 - xp.exp(-xp.astype(batch.tenure, xp.float32) / rule.tenure_scale)
    lock = xp.reshape(xp.take(rule.lock_in, cur_flat), (runs, n))
    edge = xp.reshape(xp.take(rule.edge, cur_flat), (runs, n))
    model_term = 1.0 + rule.model_lock * xp.astype(batch.uses_model, xp.float32) * edge
    cost = lock * (rule.switching_base + rule.switching_tenure * tenure_term) * model_term
    at_current = (rule.slots == current[:, :, None]) & has[:, :, None]
    v = v + xp.where(at_current, cost[:, :, None], xp.zeros_like(v))
    v = xp.where(rule.active, v, xp.full_like(v, -xp.inf))
    # Gumbel noise: argmax of V + noise is the logit draw (a uniform of exactly 0 kept finite).
    noise = -xp.log(-xp.log(xp.maximum(lib.uniform(gen, (runs, n, slots)), TINY)))
    chosen = xp.argmax(v + noise, axis=2)

    new = xp.where(decide, chosen, provider)
    moved = new != provider
    tenure = batch.tenure + xp.astype(new >= 0, xp.int16)
    batch.tenure = xp.where(moved, xp.zeros_like(tenure), tenure)
    uses = batch.uses_model & ~moved
    batch.provider = new

    # Deepening model use: customers with a provider and no model start with its hazard.
    cur_flat = xp.reshape(xp.where(new >= 0, new, xp.zeros_like(new)), (runs * n,))
    appeal = xp.reshape(xp.take(rule.appeal, cur_flat), (runs, n))
    hazard = per_segment(lib, rule.model_use_rate, batch) * appeal
    start = (new >= 0) & ~uses & (lib.uniform(gen, (runs, n)) < hazard)
    batch.uses_model = uses | start


def run(lib: Arrays, populations: list[Population], rule: Rule, quarters: int, seed: int) -> Batch:
    """``quarters`` quarters for a batch made of ``populations``; returns the final batch."""
    batch, device_rule, gen = batch_of(lib, populations), to_device(lib, rule), lib.generator(seed)
    for _ in range(quarters):
        quarter(lib, batch, device_rule, gen)
    return batch


def final_states(lib: Arrays, batch: Batch) -> list[dict[str, np.ndarray]]:
    """Each run's final (provider, tenure, uses_model) as NumPy arrays on the host."""
    provider, tenure, uses = (lib.to_numpy(a) for a in (batch.provider, batch.tenure, batch.uses_model))
    return [{"provider": provider[r].astype(np.int16), "tenure": tenure[r].astype(np.int16), "uses_model": uses[r].astype(bool)}
            for r in range(provider.shape[0])]


def bytes_per_customer_quarter(slots: int) -> int:
    """Device memory traffic of one customer-quarter in ``quarter`` (reads + writes, bytes), counted
    from the operations above: per-slot float32 arrays (utilities, noise, masks) dominate."""
    per_slot = 4 * 9 + 1 * 2  # V built and added to 5 times, noise drawn and logged twice, argmax read; two masks
    per_customer = 16 + 8 * 6 + 4 * 10 + 2 * 3 + 1 * 6  # weights, int64 provider/current/new, float32 terms, tenure, flags
    return slots * per_slot + per_customer
