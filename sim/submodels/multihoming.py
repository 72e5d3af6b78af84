"""Submodel 3b, multi-homing: part of a customer's compute workload on a second cloud.

A customer's compute demand is split between its primary cloud (``provider``) and a second
cloud (``second_provider``): share ``split_i`` on the second, 1 - split_i on the primary, so
its workload is conserved.  Two things put a customer on two clouds:

  - multi-homing by choice: a ``multihomer`` (drawn at creation with its segment's
    ``share``) keeps a second cloud with target split tau_i = split[s]; when it has none
    (new adopter, second cloud gone) it picks one by the cloud-choice logit over the active
    providers other than its primary, and puts tau_i of its workload there at once;
  - a switch in progress: a customer that changes its primary cloud c -> c' keeps the
    workload that was on c there as its second cloud and moves it over gradually,

        split_i <- tau_i + (split_i - tau_i) * (1 - migration_rate)      each quarter, the first included

    until, for a customer that does not multi-home (tau_i = 0), less than 1 % is left, which
    moves at once.  With migration_rate 1 a switch moves everything at once.
    If the customer had a second cloud other than c', that workload joins c' at once.
Tokens are not split: they are served by the model provider the customer buys from
(``model_choice``), on that provider's GPUs, whichever clouds hold its compute.
Gartner: 81 % of public-cloud users use two or more providers [M] (market-shares.md §4).
"""

from __future__ import annotations

import numpy as np

from sim.batch import Batch, over_runs
from sim.customers import NO_PROVIDER, multihoming_table

MIN_SPLIT = 0.01  # below this a migration's remainder moves at once


@over_runs
def step(batch: Batch) -> None:
    """Migrations, settling and new second clouds, every run of ``batch`` at once."""
    from sim.submodels.choice import cloud_movers

    people = batch.customers
    moved, moved_from = cloud_movers(batch)  # set by choice (empty before the first quarter)
    target = split_targets(batch)
    if moved.size:
        migrate(people, moved, moved_from, batch.active, 0 if batch.size == 1 else batch.run_of[moved])
    # A second cloud that exits is cleared by ``on_exit`` (entry_exit), so none is inactive here.
    settle(people, target, batch.param("multihoming.migration_rate"), batch)
    pick_second_clouds(batch, target)


def split_targets(batch: Batch) -> np.ndarray:
    """(runs, segments) float32: each run's target split of a multi-homer, per segment."""
    return batch.memo("multihoming.split", lambda b: np.array(
        [multihoming_table(m.config, "split") for m in b.markets]).astype(np.float32))


def migrate(people, moved: np.ndarray, moved_from: np.ndarray, active: np.ndarray, runs: np.ndarray) -> None:
    """Customers ``moved`` (of runs ``runs``; 0 in a batch of one) left primary ``moved_from``: the
    workload that was there becomes their second cloud's share; a former second cloud's workload
    joins the new primary.  ``active``: (runs, slots) bool."""
    keep = (moved_from != NO_PROVIDER) & active[runs, np.maximum(moved_from, 0)]
    kept = np.flatnonzero(keep)
    idx, old = moved.take(kept), moved_from.take(kept)
    on_old = np.float32(1.0) - people.split[idx]  # what was on the old primary
    people.second_provider[idx] = old
    people.split[idx] = on_old
    # Customers whose old primary is gone (or who had none) start with everything on the new one.
    lost = np.compress(~keep, moved)
    people.second_provider[lost] = NO_PROVIDER
    people.split[lost] = 0.0


def settle(people, target: np.ndarray, rate, batch: Batch | None = None) -> None:
    """Migrations in progress move ``rate`` of the excess over the target split to the primary.
    ``target``: float32 per segment (segments,) for one population, or (runs, segments) with
    ``rate`` (runs,) for the joined customers of ``batch``."""
    # A customer's target: its segment's split for a multi-homer, 0 otherwise (an np.where on
    # this random mask is ~10x slower than the product).  Only customers above it move (so every
    # one selected has split > tau); one at its target is skipped cheaply.
    if batch is None:
        tau_mine = people.spread(np.asarray(target)) * people.multihomer
        keep = np.float32(1.0 - float(rate))
    else:  # a batch's targets and multi-homers (drawn at set-up) do not change: kept per batch
        tau_mine = batch.memo("multihoming.own_target", lambda b: b.spread(target) * people.multihomer)
        keep = (1.0 - np.asarray(rate, dtype=np.float64)).astype(np.float32)  # float32(1 - rate) of each run
    idx = np.flatnonzero(people.split > tau_mine)
    if not idx.size:
        return
    if batch is not None:
        keep = keep[0] if (keep == keep[0]).all() else keep[batch.run_of[idx]]
    tau = tau_mine[idx]
    split = people.split[idx]
    split = tau + (split - tau) * keep
    done = (tau == 0) & (split < MIN_SPLIT)
    done = np.flatnonzero(done)
    split[done] = 0.0
    people.split[idx] = split
    people.second_provider[idx.take(done)] = NO_PROVIDER


def pick_second_clouds(batch: Batch, target: np.ndarray) -> None:
    """Multi-homers with a primary and no second cloud choose one by the cloud-choice logit
    over the other active providers and put their target split there (runs with at least
    two active providers and some multi-homer)."""
    from sim.submodels.choice import logit_draw, run_counts, utilities

    people = batch.customers
    able = batch.active.sum(axis=1) >= 2
    if not able.any():
        return
    able &= batch.memo("multihoming.any", lambda b: people.multihomer.reshape(b.size, b.n).any(axis=1))  # drawn at set-up
    if not able.any():
        return
    idx = np.flatnonzero(people.multihomer & (people.second_provider == NO_PROVIDER) & (people.provider != NO_PROVIDER))
    tau = batch.spread(target)[idx]
    keep = tau > 0
    if not able.all():
        keep &= able[batch.run_of[idx]]
    if not keep.all():
        idx, tau = idx[keep], tau[keep]
    if not idx.size:
        return
    counts = run_counts(batch, idx)
    people.second_provider[idx] = logit_draw(utilities(batch, idx, exclude_current=True, counts=counts), batch, counts)
    people.split[idx] = tau


def on_exit(people, slot: int) -> None:
    """Provider ``slot`` exits: its multi-homing customers' second clouds take over their whole
    workload (they keep a cloud); customers with it as second cloud move that share home."""
    second = people.second_provider == slot
    people.second_provider[second] = NO_PROVIDER
    people.split[second] = 0.0
    promote = (people.provider == slot) & (people.second_provider != NO_PROVIDER)
    people.provider[promote] = people.second_provider[promote]
    people.tenure[promote] = 0
    people.second_provider[promote] = NO_PROVIDER
    people.split[promote] = 0.0


def workload_parts(people) -> tuple[np.ndarray, np.ndarray]:
    """Compute demand on the primary and on the second cloud, per customer, float64 arrays of
    shape (customers,): second = compute x split (exact in float64: a product of two float32)
    and primary = compute - second, so that primary + second == compute for every customer.
    ``service.demand_by_slot`` applies the same rule in place (split is 0 without a second cloud)."""
    second = people.compute.astype(np.float64) * np.where(people.second_provider != NO_PROVIDER, people.split, np.float32(0.0))
    return people.compute - second, second
