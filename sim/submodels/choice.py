"""Submodel 3, choice: customers whose contract comes up, new adopters and the
customers of exited providers choose a provider by a random-utility
(multinomial logit) rule.  Which model they buy is chosen apart (``model_choice``).

Utility of provider j to customer i:
    U_ij = w_cap_i * capability_j / frontier - w_price_i * log(price_j / reference_price)
         + w_fit_i * affinity_j[segment_i] + w_rel_i * reliability_j
         + standing_j [segment_i watches surges, sim.submodels.showcase] + Gumbel noise
(drawn as a multinomial logit: P(j) = exp(V_ij) / sum_k exp(V_ik), V = U without noise)
Leaving the current provider c costs
    S_i = lock_in_c * (switching_base + switching_tenure * (1 - exp(-tenure_i / tenure_scale)))
          * (1 + model_lock * [model_provider_i = c] * edge_c)
where edge_c is c's model's lead over the open-weights model (0 for porters): only a
customer who buys its cloud's own model is held by it.
Article: "if a customer uses Alibaba Cloud's services, they are more inclined to
use Tongyi Qianwen's large model; once they use Tongyi Qianwen's model, it
becomes difficult to leave Alibaba Cloud's computing support."
"""

from __future__ import annotations

import numpy as np

from sim.batch import Batch, over_runs
from sim.customers import NO_PROVIDER, W_CAPABILITY, W_FIT, W_PRICE, W_RELIABILITY
from sim.errors import NonFiniteState
from sim.submodels import installed_base, showcase


@over_runs
def step(batch: Batch) -> None:
    """Contracts come up, new adopters and renewers choose, every run of ``batch`` at once.
    Sets each run's ``cloud_movers`` (indices within the run), ``cloud_moved_from``, ``churn``
    and ``flows``.  Random numbers: each run draws from its own generator what it draws alone."""
    people = batch.customers
    one = batch.size == 1
    hazard = batch.param("demand.segments.renewal_hazard")  # (runs, segments)
    had = people.provider != NO_PROVIDER
    # Contracts come up with the segment's hazard: candidates are drawn at the run's highest
    # hazard and thinned, so only ~n * max(hazard) customers are touched.
    top = batch.memo("choice.top_hazard", lambda b: hazard.max(axis=1))
    renewing = batch.bernoulli(top)
    if one:
        u = batch.markets[0].rng.random(renewing.size)
        renewing = np.compress(u * top[0] < hazard[0].take(people.segment[renewing]), renewing)
    else:
        runs = batch.run_of[renewing]
        u = batch.uniforms(run_counts(batch, renewing))
        renewing = np.compress(u * top[runs] < hazard[runs, people.segment[renewing]], renewing)
    renewing = np.compress(had[renewing] & people.adopted[renewing], renewing)
    deciders = np.concatenate([np.flatnonzero(people.adopted & ~had), renewing])
    if one:
        if not batch.active.any():
            deciders = deciders[:0]
    else:  # a run alone decides its new adopters first, then its renewals: keep that order per run
        runs = batch.run_of[deciders]
        order = np.argsort(runs, kind="stable")
        deciders, runs = deciders[order], runs[order]
        has_active = batch.active.any(axis=1)
        if not has_active.all():  # a run without providers: nobody moves
            keep = has_active[runs]
            deciders, runs = deciders[keep], runs[keep]
    # Only deciders can move: the bookkeeping below touches them, not the whole population.
    previous = people.provider[deciders]
    chosen = previous
    if deciders.size:
        counts = np.array([deciders.size]) if one else np.bincount(runs, minlength=batch.size)
        chosen = logit_draw(utilities(batch, deciders, counts=counts), batch, counts)
        people.provider[deciders] = chosen
        people.first_contract[deciders] = chosen != previous  # a renewal with the incumbent ends the first contract

    changed = np.flatnonzero(chosen != previous)  # one pass over the mask, then three gathers
    moved = deciders.take(changed)
    people.tenure += people.provider != NO_PROVIDER  # everyone with a provider; movers reset next
    people.tenure[moved] = 0

    n_slots, n = batch.n_slots, batch.n
    moved_from = previous.take(changed)
    from_, to = moved_from.astype(np.int64), chosen.take(changed).astype(np.int64)
    cells = (n_slots + 1) ** 2
    key = (from_ + 1) * (n_slots + 1) + to + 1  # row/col 0 = none
    # (count_nonzero along an axis is ~7x slower than over the whole array)
    incumbents = [np.count_nonzero(had)] if one else np.count_nonzero(had.reshape(batch.size, n), axis=1)
    if one:
        switched = [np.count_nonzero(from_ != NO_PROVIDER)]
        bounds = (0, moved.size)
    else:
        moved_runs = runs.take(changed)
        switched = np.bincount(moved_runs[from_ != NO_PROVIDER], minlength=batch.size)
        key += moved_runs * cells
        bounds = np.concatenate([[0], np.cumsum(np.bincount(moved_runs, minlength=batch.size))])
    flows = np.bincount(key, minlength=batch.size * cells).reshape(batch.size, n_slots + 1, n_slots + 1)
    local = moved if one else moved - moved_runs.astype(np.intp) * n  # indices within each run
    bounds, switched, incumbents = list(bounds), list(switched), list(incumbents)
    for r, market in enumerate(batch.markets):
        # Read by multi-homing (workload moves from the old cloud) and model choice (movers reconsider their model).
        market.cloud_movers = local[bounds[r]:bounds[r + 1]]
        market.cloud_moved_from = moved_from[bounds[r]:bounds[r + 1]]
        market.churn = float(switched[r]) / int(incumbents[r]) if incumbents[r] else 0.0
        market.flows = flows[r]


def cloud_movers(batch: Batch) -> tuple[np.ndarray, np.ndarray]:
    """The customers (indices into ``batch.customers``) who changed cloud this quarter and the
    slots they left, from each run's ``cloud_movers`` and ``cloud_moved_from`` (set by ``step``)."""
    if batch.size == 1:
        market = batch.markets[0]
        return market.cloud_movers, market.cloud_moved_from
    moved = [m.cloud_movers for m in batch.markets]
    offsets = np.repeat(np.arange(batch.size, dtype=np.intp) * batch.n, [len(m) for m in moved])
    return np.concatenate(moved) + offsets, np.concatenate([m.cloud_moved_from for m in batch.markets])


def logit_draw(utility: np.ndarray, rng, counts: np.ndarray | None = None) -> np.ndarray:
    """One choice per row with multinomial-logit probabilities exp(U_j) / sum_k exp(U_k)
    (-inf = unavailable).  The same law as argmax(U + Gumbel noise), drawn by inverting
    the cumulative probabilities: one uniform per row instead of one Gumbel per cell.
    ``utility`` is overwritten.  The work runs along the provider axis of ``utility.T``
    (contiguous for what ``utilities`` returns): a handful of long vector operations
    instead of a short reduction per customer.

    ``rng``: a generator (one uniform per row, in row order), or a ``Batch`` whose rows are
    grouped by run, ``counts[r]`` rows of run r: run r's uniforms come from its generator.
    Returns the chosen columns, int16, shape (rows,)."""
    v = utility.T
    v -= v.max(axis=0)
    np.exp(v, out=v)
    for j in range(1, len(v)):  # cumulative sum down the few providers: one vector add each
        v[j] += v[j - 1]          # (np.cumsum along axis 0 walks each short column separately)
    cumulative = v
    if not (cumulative[-1] > 0).all():  # NaN (inf - inf, inf * 0) or nothing available: no law to draw from
        raise _no_law(rng, counts, cumulative[-1])
    draws = rng.random(cumulative.shape[1]) if counts is None else rng.uniforms(counts)
    u = draws * cumulative[-1]
    below = cumulative <= u
    # The first provider whose cumulative weight exceeds u: count the rows below u, as int8
    # (bool's bytes; a sum that widens to intp is ~15x slower).
    count = np.int8 if len(v) <= 127 else np.int16
    chosen = below.view(np.int8).sum(axis=0, dtype=count).astype(np.int16)
    if below[-1].any():  # u rounded up to the total (rare): cumulative rises, so the last row says it
        over = np.flatnonzero(below[-1])
        positive = np.diff(cumulative[:, over], axis=0, prepend=0.0) > 0
        chosen[over] = cumulative.shape[0] - 1 - positive[::-1].argmax(axis=0)  # last available provider
    return chosen


def _no_law(rng, counts, totals: np.ndarray) -> NonFiniteState:
    """The error for rows of ``logit_draw`` whose utilities give no probabilities (a NaN
    utility, or no available alternative): the guard's (raised from here) if some state is not
    finite, which names the variable and its settings; else one line naming the run and quarter.
    Drawing anyway would hand the customer to slot 0, available or not."""
    row = int(np.flatnonzero(~(totals > 0))[0])
    if not isinstance(rng, Batch):
        return NonFiniteState(f"logit_draw: the utilities of row {row} give no choice probabilities (NaN, "
                              "or every alternative unavailable)")
    from sim import guard  # a state variable that is not finite is the likely cause: name it, as the guard does
    guard.check(rng)
    run = 0 if counts is None else int(np.searchsorted(np.cumsum(counts), row, side="right"))
    market = rng.markets[run]
    details = dict(quarter=market.quarter_label, step=market.t, variable="utility", mechanism="choice")
    which = ""
    if rng.size > 1:
        details.update(run=run, name=market.config.name, seed=market.config.run.seed)
        which = f" in run {run + 1} of a batch of {rng.size} (config {market.config.name!r}, run.seed = {market.config.run.seed})"
    return NonFiniteState(
        f"quarter {market.quarter_label} (quarter {market.t + 1} of {market.config.run.quarters}): a customer's "
        f"choice utilities became NaN or left no available provider{which}; the run was stopped (no results "
        "written)", details)


class RunsOf:
    """The runs ``runs`` (k,) of k customers, for spreading per-run values over them.  Customers
    grouped by run (as deciders come: run by run) get their run's values by ``np.repeat`` (a
    block copy, ~4x quicker than a gather); others by a gather; in a batch of one the values
    broadcast instead (``runs`` may then be None).  The same values either way."""

    __slots__ = ("runs", "counts", "one")

    def __init__(self, batch: Batch, runs: np.ndarray | None, counts: np.ndarray | None = None):
        self.runs = runs
        self.one = batch.size == 1
        self.counts = counts  # given: the caller knows the customers come run by run
        if counts is None and not self.one and (runs.size < 2 or bool((runs[1:] >= runs[:-1]).all())):
            self.counts = np.bincount(runs, minlength=batch.size)

    @classmethod
    def of(cls, batch: Batch, idx: np.ndarray, counts: np.ndarray | None = None) -> "RunsOf":
        """The runs of customers ``idx`` (indices into ``batch.customers``): by ``grouped`` when
        ``counts`` says they come run by run, else by a gather of ``batch.run_of``."""
        if batch.size == 1 or counts is None:
            return cls(batch, None if batch.size == 1 else batch.run_of[idx])
        return cls.grouped(batch, counts)

    @classmethod
    def grouped(cls, batch: Batch, counts: np.ndarray) -> "RunsOf":
        """Customers that come run by run, ``counts[r]`` of run r (a block fill, not a gather)."""
        if batch.size == 1:
            return cls(batch, None)
        return cls(batch, np.repeat(np.arange(batch.size, dtype=np.int32), counts), counts)

    def slots(self, values: np.ndarray) -> np.ndarray:
        """(slots, k) of per-slot ``values`` (runs, slots); (slots, 1) in a batch of one."""
        if self.one:
            return values.T
        if self.counts is not None:
            return np.repeat(values.T, self.counts, axis=1)
        return values.T.take(self.runs, axis=1)

    def each(self, values: np.ndarray) -> np.ndarray:
        """(k,) of a per-run value (runs,); (1,) in a batch of one."""
        if self.one:
            return values
        return np.repeat(values, self.counts) if self.counts is not None else values[self.runs]


def run_counts(batch: Batch, idx: np.ndarray) -> np.ndarray:
    """(runs,) how many of the customers ``idx`` (indices into ``batch.customers``, ascending)
    each run holds, for ``Batch.uniforms`` and ``logit_draw``."""
    if batch.size == 1:
        return np.array([idx.size])
    return np.diff(np.searchsorted(idx, np.arange(batch.size + 1) * batch.n))


def utilities(batch: Batch, idx: np.ndarray, exclude_current: bool = False,
              counts: np.ndarray | None = None) -> np.ndarray:
    """Deterministic utility (without noise) of every provider slot for customers ``idx``
    (indices into ``batch.customers``, any runs), switching cost included; inactive slots get
    -inf.  Shape (customers, slots); built provider-major (its transpose is contiguous) so that
    each term is one long vector op.  A lone ``Market`` may stand for its batch of one.
    ``exclude_current``: each customer's current provider (every one must have one) gets -inf
    too, and its switching cost is not worked out (a second cloud is another provider).
    ``counts``: (runs,) when ``idx`` comes run by run, ``counts[r]`` of run r (``run_counts``)."""
    batch = _as_batch(batch)
    people = batch.customers
    slots = batch.slot_table()
    terms = batch.slot_memo(slots, "choice.terms", _choice_terms)
    at = RunsOf.of(batch, idx, counts)
    runs, one = at.runs, at.one
    w = _weights(people, idx)
    seg = people.segment[idx]
    # Everyone is offered the new-customer price; the current provider's renewal price is
    # swapped in below (invest and harvest, pricing.py).
    u = at.slots(terms["capability"]) * w[W_CAPABILITY]
    part = np.multiply(at.slots(terms["log_price"]), w[W_PRICE])
    u -= part
    fit = affinity_of(batch, terms["affinity"], runs, seg)
    fit *= w[W_FIT]
    u += fit
    np.multiply(at.slots(slots["reliability"]), w[W_RELIABILITY], out=part)
    u += part
    bandwagon = installed_base.utility(batch, at, seg, slots)
    if bandwagon is not None:
        u += bandwagon
    standing = showcase.utility(batch, at, seg)  # standing earned or lost in public surges (the Gala)
    if standing is not None:
        u += standing
    current = people.provider[idx]
    if exclude_current:
        u.reshape(-1)[current.astype(np.intp) * idx.size + np.arange(idx.size)] = -np.inf
        if not terms["all_active"]:
            np.copyto(u, -np.inf, where=at.slots(terms["inactive"]))
        return u.T
    stay = current != NO_PROVIDER
    if stay.all():
        rows, runs_stay, current_stay, idx_stay = np.arange(idx.size), runs, current, idx
    else:
        rows = np.flatnonzero(stay)
        runs_stay, current_stay, idx_stay = None if one else runs[rows], current[rows], idx[rows]
    flat = current_stay.astype(np.intp) * idx.size + rows  # one flat index: cheaper than a 2-D fancy index
    # What a customer renewing with its incumbent pays on top: ln(renewal / new-customer price).
    surcharge = terms["surcharge"][0].take(current_stay) if one else terms["surcharge"][runs_stay, current_stay]
    cell = u.reshape(-1)[flat]  # one gather and one scatter for both terms (the same additions, in order)
    cell += switching_cost(batch, idx_stay, current_stay, slots, runs_stay)
    cell -= surcharge * w[W_PRICE][rows]
    u.reshape(-1)[flat] = cell
    if not terms["all_active"]:
        np.copyto(u, -np.inf, where=at.slots(terms["inactive"]))  # (slots, k) or (slots, 1)
    return u.T


def _choice_terms(batch: Batch, slots: dict[str, np.ndarray]) -> dict:
    """The per-(run, slot) parts of ``utilities``: capability / frontier, the log of the
    new-customer price over the reference price and of the renewal surcharge, the affinity
    table; kept while the quarter's slot table is (``Batch.slot_memo``)."""
    frontier = batch.market_values("frontier")
    reference = batch.param("pricing.reference_price")
    return {
        "capability": slots["capability"] / frontier[:, None],
        "log_price": np.log(slots["price_new"] / reference[:, None]),
        "surcharge": np.log(slots["price_renewal"] / slots["price_new"]),
        "affinity": affinity_table(batch, slots["affinity"]),
        "all_active": bool(slots["active"].all()),
        "inactive": ~slots["active"],
    }


def _weights(people, idx: np.ndarray) -> np.ndarray:
    """(4, k) float64 preference weights of customers ``idx``, one contiguous row per weight."""
    # take() copies whole rows; weights[idx] is ~10x slower on an (n, 4) array.
    return np.asarray(people.weights.take(idx, axis=0).T, dtype=np.float64, order="C")


def affinity_table(batch: Batch, affinity: np.ndarray) -> np.ndarray:
    """``affinity`` (runs, segments, slots) laid out for ``affinity_of``: (slots, segments) in a
    batch of one, (slots, runs * segments) otherwise, contiguous."""
    if batch.size == 1:
        return np.ascontiguousarray(affinity[0].T)
    return np.ascontiguousarray(affinity.transpose(2, 0, 1).reshape(affinity.shape[2], -1))


def affinity_of(batch: Batch, table: np.ndarray, runs: np.ndarray | None, seg: np.ndarray) -> np.ndarray:
    """(slots, k), a new array: the value in ``table`` (``affinity_table``) of each slot for each of
    k customers (runs ``runs``, None in a batch of one; segments ``seg``)."""
    if batch.size == 1:
        return table.take(seg, axis=1)
    n_seg = table.shape[1] // batch.size
    return table.take(runs.astype(np.intp) * n_seg + seg, axis=1)


def switching_cost(batch: Batch, idx: np.ndarray, current: np.ndarray, slots: dict[str, np.ndarray],
                   runs: np.ndarray | None = None) -> np.ndarray:
    """S_i of customers ``idx`` (indices into ``batch.customers``) leaving their ``current``
    slots, utils, shape (k,); ``slots``: ``Batch.slot_table()``; ``runs``: ``batch.run_of[idx]``
    when the caller has it."""
    batch = _as_batch(batch)
    people = batch.customers
    if batch.size == 1:
        at = RunsOf(batch, None)
        lock_in, edge = slots["lock_in"][0].take(current), slots["edge"][0].take(current)
    else:
        runs = batch.run_of[idx] if runs is None else runs
        at = RunsOf(batch, runs)
        lock_in, edge = slots["lock_in"][runs, current], slots["edge"][runs, current]
    base_, tenure_, scale, lock = (at.each(batch.param(f"choice.{name}"))
                                   for name in ("switching_base", "switching_tenure", "tenure_scale", "model_lock"))
    tenure_term = 1.0 - np.exp(-people.tenure[idx] / scale)
    base = lock_in * (base_ + tenure_ * tenure_term)
    return base * (1.0 + lock * (people.model_provider[idx] == current) * edge)


def _as_batch(obj) -> Batch:
    """``obj`` if it is a Batch; a lone Market's batch of one (RuntimeError for one run of a larger batch)."""
    if isinstance(obj, Batch):
        return obj
    batch = obj._batch
    if batch.size > 1:
        raise RuntimeError(f"Market {obj.config.name!r} is run {obj.run_index} of a batch of {batch.size}: pass the batch")
    return batch
