"""Customer agents, stored as a vectorised population.

Each customer is one index into a set of numpy arrays owned by the model: every
quarter's work on customers is array operations, never a Python loop per
customer.  ``CustomerPopulation.view(i)`` gives a read-only snapshot of one
customer for inspection.
"""

from __future__ import annotations

import math
from dataclasses import dataclass

import numpy as np
import pandas as pd

from sim.config import Config

NO_PROVIDER = -1
# Columns of the preference-weight matrix.
W_CAPABILITY, W_PRICE, W_FIT, W_RELIABILITY = range(4)
# Above this probability one uniform per customer is cheaper than drawing the gaps.
GAPS_BELOW = 0.25
# Gap draws need numpy's overflow guard only for a scale (1 / -log(1 - p)) above about 1e290, i.e. p
# below ~1e-290: an exponential draw stays below ~750 and a chunk's running sum below ~1e300 otherwise.
SAFE_SCALE_BELOW = 1e-290


def bernoulli_indices(rng: np.random.Generator, n: int, p: float) -> np.ndarray:
    """Sorted indices in range(n), each included independently with probability ``p``.

    The law of ``np.flatnonzero(rng.random(n) < p)``; for a small ``p`` it is drawn
    from the gaps between successes (geometric: floor(E / -log(1 - p)) + 1 with E
    exponential), about n * p draws instead of n.  Quarterly hazards (renewal,
    adoption, model use) are small, so most customers cost nothing here.
    """
    if n <= 0 or p <= 0:
        return np.empty(0, dtype=np.intp)
    if p >= GAPS_BELOW:
        return np.flatnonzero(rng.random(n) < p)
    log_keep = np.log1p(-p)
    if log_keep < -SAFE_SCALE_BELOW:  # the usual case: 1 / log_keep and the gaps below cannot overflow
        scale, safe = -1.0 / log_keep, True
    else:
        with np.errstate(over="ignore", divide="ignore"):
            scale, safe = -1.0 / log_keep, False
    if not np.isfinite(scale):  # p below ~1e-308: no draw in any population that fits in memory
        return np.empty(0, dtype=np.intp)
    expected = n * p
    chunk = int(expected + 4.0 * math.sqrt(expected) + 16)  # sqrt is correctly rounded: numpy's bits
    pieces, last = [], -1.0
    while True:
        if safe:
            positions = last + np.cumsum(np.floor(rng.standard_exponential(chunk) * scale) + 1.0)
        else:
            with np.errstate(over="ignore"):  # a gap beyond ~1e308 becomes inf: past n, dropped below
                positions = last + np.cumsum(np.floor(rng.standard_exponential(chunk) * scale) + 1.0)
        if positions[-1] >= n:
            kept = positions[positions < n]
            return (np.concatenate([*pieces, kept]) if pieces else kept).astype(np.intp)
        pieces.append(positions)
        last = positions[-1]


DISCARD_CHUNK = 1 << 16


def discard(rng: np.random.Generator, method: str, count: int) -> None:
    """Move ``rng`` on as ``getattr(rng, method)(count)`` does (``random``, ``standard_exponential``
    or ``standard_normal``: float64 draws, each taken from the stream one after the other), keeping
    nothing: drawn in chunks into one reused buffer, so that a large population's draws fault in no
    fresh memory (~40 ms of page faults for 4 million normals)."""
    draw = getattr(rng, method)
    buffer = np.empty(max(min(count, DISCARD_CHUNK), 1))
    for start in range(0, count, buffer.size):
        draw(out=buffer[:min(buffer.size, count - start)])


def thinned(rng: np.random.Generator, candidates: np.ndarray, hazard: np.ndarray, top: float) -> np.ndarray:
    """Keep each of ``candidates`` (drawn with probability ``top``) with probability
    hazard / top, so that each is finally drawn with its own ``hazard`` (<= top)."""
    return candidates[rng.random(candidates.size) * top < hazard]


@dataclass(frozen=True)
class CustomerView:
    """A read-only snapshot of one customer."""

    index: int
    segment: str
    adopted: bool
    provider: str | None
    tenure: int
    uses_model: bool
    model_provider: str | None
    model_tenure: int
    second_provider: str | None
    split: float
    multihomer: bool
    compute_demand: float
    token_need: float
    w_capability: float
    w_price: float
    w_fit: float
    w_reliability: float


class CustomerPopulation:
    """All customers as arrays (43 bytes per customer, plus 4 for each per-segment table
    cached by ``spread``: 12 in a run, for demand growth and the multi-homing split).

    segment      int8     index into ``segment_names``
    compute      float32  compute demand, GPU-equivalents
    token_need   float32  token need at the reference token price, token units per quarter
    weights      float32  (n, 4) preference weights: capability, price, fit, reliability (read-only:
                          they do not change during a run; ``set_weights`` replaces them)
    provider     int16    provider slot, or -1 for none
    tenure       int16    quarters with the current provider
    uses_model   bool     uses a model (buys model tokens)
    first_contract bool   in its first contract with its (primary) provider: pays the new-customer price
    adopted      bool     has adopted AI cloud
    model_provider  int16   slot of the provider whose model tokens it buys (a model owner, or
                            a porter serving open weights), or -1 for none
    model_tenure    int16   quarters with the current model provider
    second_provider int16   slot of its second cloud (multi-homing or a switch in progress), or -1
    split           float32 share of its compute workload on the second cloud (0 without one)
    multihomer      bool    keeps a second cloud by choice (segment share in [multihoming])
    """

    def __init__(self, config: Config, rng: np.random.Generator, *, replaced: bool = False):
        """Draws the population of ``config`` from ``rng``.  With ``replaced`` (a run that starts
        from a snapshot, whose arrays replace these) the same random numbers are drawn, so that
        the stream goes on exactly as after a drawn population, but nothing is computed from them."""
        demand = config.demand
        n = config.run.customers
        self.segment_names = list(demand.segments)
        segs = list(demand.segments.values())
        self.n = n
        self.first_contract = np.zeros(n, dtype=bool)
        self._spread: dict[bytes, np.ndarray] = {}
        mh_share = multihoming_table(config, "share")
        if replaced:
            self._draw_only(config, rng, multihoming=bool(mh_share.max() > 0))
            return

        weights = np.array([s.weight for s in segs])
        self.segment = rng.choice(len(segs), size=n, p=weights / weights.sum()).astype(np.int8)

        # Heavy-tailed sizes (Pareto with index size_tail, mean 1), scaled per segment.
        alpha = demand.size_tail
        size = rng.pareto(alpha, n)
        size += 1.0  # in place, in the order of (pareto + 1) * (alpha - 1) / alpha: the same numbers
        size *= alpha - 1.0
        size /= alpha
        size *= np.array([s.compute_size for s in segs])[self.segment]
        self.adopted = rng.random(n) < demand.initial_adoption
        base = size[self.adopted].sum() if self.adopted.any() else size.sum()
        self.compute = (size * demand.market_compute / base).astype(np.float32)
        token_scale = np.array([s.token_intensity for s in segs])[self.segment] / config.pricing.token_compute
        self.token_need = (self.compute * token_scale * demand.token_share).astype(np.float32)

        seg_w = np.array([[s.w_capability, s.w_price, s.w_fit, s.w_reliability] for s in segs])
        if demand.preference_spread > 0:
            noise = rng.lognormal(0.0, demand.preference_spread, size=(n, 4))
            noise *= seg_w.take(self.segment, axis=0)  # take: ~10x faster than seg_w[segment]
            self.weights = noise.astype(np.float32)
        else:
            self.weights = seg_w.take(self.segment, axis=0).astype(np.float32)
        self.weights.flags.writeable = False  # a customer's preferences do not change (set_weights)

        self.provider = np.full(n, NO_PROVIDER, dtype=np.int16)
        self.tenure = np.zeros(n, dtype=np.int16)
        self.uses_model = np.zeros(n, dtype=bool)
        self.model_provider = np.full(n, NO_PROVIDER, dtype=np.int16)
        self.model_tenure = np.zeros(n, dtype=np.int16)
        self.second_provider = np.full(n, NO_PROVIDER, dtype=np.int16)
        self.split = np.zeros(n, dtype=np.float32)
        # Drawn only when some segment multi-homes, so that configs without it keep their draws.
        self.multihomer = (rng.random(n) < mh_share[self.segment]) if mh_share.max() > 0 else np.zeros(n, dtype=bool)

    @staticmethod
    def _draw_only(config: Config, rng: np.random.Generator, *, multihoming: bool) -> None:
        """The draws of a drawn population, in its order, each from the same underlying stream
        (numpy's Generator: ``choice`` with ``p`` draws one uniform per item, ``pareto`` one
        standard exponential, ``lognormal`` one standard normal); nothing is kept."""
        n = config.run.customers
        discard(rng, "random", n)  # segment
        discard(rng, "standard_exponential", n)  # size (Pareto)
        discard(rng, "random", n)  # adoption
        if config.demand.preference_spread > 0:
            discard(rng, "standard_normal", 4 * n)  # preference noise (log-normal), (n, 4) in C order
        if multihoming:
            discard(rng, "random", n)  # multi-homers

    def set_weights(self, weights: np.ndarray) -> None:
        """Replace the preference weights ((n, 4), float32; kept as given when already float32) and
        make them read-only (the guard checks an array that cannot change once)."""
        self.weights = np.asarray(weights, dtype=np.float32)
        self.weights.flags.writeable = False

    def spread(self, table: np.ndarray) -> np.ndarray:
        """``table[segment]`` (float32, read-only): a per-segment value for every customer.
        Cached by the table's values, since a customer's segment never changes: a gather
        over all customers every quarter (~1.5 ns each) becomes a lookup, for 4 bytes per
        customer per table in use."""
        table = np.asarray(table, dtype=np.float32)
        key = table.tobytes()
        values = self._spread.get(key)
        if values is None:
            if len(self._spread) >= 4:  # tables change only between configs; keep memory bounded
                self._spread.clear()
            values = self._spread[key] = table[self.segment]
            values.flags.writeable = False
        return values

    def segment_table(self, attr: str, config: Config) -> np.ndarray:
        """One value per segment of a ``SegmentConfig`` field, in segment order."""
        return np.array([getattr(s, attr) for s in config.demand.segments.values()])

    def view(self, i: int, provider_names: list[str] | None = None) -> CustomerView:
        def name(slot: int) -> str | None:
            return None if slot == NO_PROVIDER else (provider_names[slot] if provider_names else str(slot))

        w = self.weights[i]
        return CustomerView(
            index=int(i), segment=self.segment_names[self.segment[i]], adopted=bool(self.adopted[i]),
            provider=name(int(self.provider[i])), tenure=int(self.tenure[i]), uses_model=bool(self.uses_model[i]),
            model_provider=name(int(self.model_provider[i])), model_tenure=int(self.model_tenure[i]),
            second_provider=name(int(self.second_provider[i])), split=float(self.split[i]),
            multihomer=bool(self.multihomer[i]),
            compute_demand=float(self.compute[i]), token_need=float(self.token_need[i]),
            w_capability=float(w[W_CAPABILITY]), w_price=float(w[W_PRICE]),
            w_fit=float(w[W_FIT]), w_reliability=float(w[W_RELIABILITY]),
        )

    def frame(self) -> pd.DataFrame:
        """All customers as a DataFrame (a copy; for inspection, not for the hot path)."""
        return pd.DataFrame({
            "segment": pd.Categorical.from_codes(self.segment, self.segment_names),
            "adopted": self.adopted, "provider": self.provider, "tenure": self.tenure,
            "uses_model": self.uses_model, "model_provider": self.model_provider, "model_tenure": self.model_tenure,
            "second_provider": self.second_provider, "split": self.split, "multihomer": self.multihomer,
            "compute_demand": self.compute, "token_need": self.token_need,
            "w_capability": self.weights[:, W_CAPABILITY], "w_price": self.weights[:, W_PRICE],
            "w_fit": self.weights[:, W_FIT], "w_reliability": self.weights[:, W_RELIABILITY],
        })

    ARRAYS = ("segment", "compute", "token_need", "weights", "provider", "tenure", "uses_model", "adopted",
              "model_provider", "model_tenure", "second_provider", "split", "multihomer", "first_contract")

    @property
    def nbytes(self) -> int:
        return sum(getattr(self, a).nbytes for a in self.ARRAYS)


def multihoming_table(config: Config, field: str) -> np.ndarray:
    """Per segment (in segment order): the multi-homing ``share`` or ``split`` in force,
    the segment's own value where [multihoming.segments.NAME] gives one, else the default."""
    mh = config.multihoming
    default = getattr(mh, field)
    out = []
    for name in config.demand.segments:
        own = mh.segments.get(name)
        value = getattr(own, field) if own is not None else None
        out.append(default if value is None else value)
    return np.array(out, dtype=np.float64)
