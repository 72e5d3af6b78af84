"""State snapshots: the end state of one run as the start of another.

``write_snapshot`` stores a sample of the customers' arrays and the providers' state at the
end of a run (a compressed ``.npz`` with a JSON manifest inside, written atomically);
``load_state`` reads one back for a config whose ``run.start_from`` names it, so that a
preset such as ``china_2025`` starts where the calibrated 2020-2024 history got to: model
users and their model providers, token need, multi-homing, tenure.

What carries over and what the new config sets:
  - customers: segment, adoption, cloud, second cloud and split, multi-homing, tenure,
    model provider and model tenure are the snapshot's (resampled to ``run.customers``);
  - sizes: compute demand and token need are rescaled by one factor, so that adopted
    customers demand the new config's ``demand.market_compute``.  The new run's compute per
    token starts again at ``pricing.token_compute``, so a token unit now stands for what it
    cost in compute at the end of the history: the compute customers spend on tokens carries
    over, and the count of token units restarts on a scale ``token_compute_ratio`` (in the
    manifest) times the old one; a config starting from a snapshot sets ``models.token_unit``
    to the history's divided by that ratio, so that physical tokens carry over too;
  - preferences: each customer keeps its individual noise, around the new config's
    segment weights;
  - providers: the new config's values (stocks, cash, capability, prices: from its own data);
    the snapshot's provider state is in the file for inspection only.
Providers and segments are matched by name; a snapshot whose customers sit with a provider
the config lacks, or whose segments differ, is refused with one line naming both.
"""

from __future__ import annotations

import hashlib
import json
from functools import lru_cache
from pathlib import Path

import numpy as np

from sim.config import CONFIG_DIR, Config, ConfigError
from sim.output import atomic_path

FORMAT = "aicloud-snapshot/1"
CUSTOMER_ARRAYS = ("segment", "adopted", "compute", "token_need", "weights", "provider", "tenure", "uses_model",
                   "model_provider", "model_tenure", "second_provider", "split", "multihomer")
SLOT_ARRAYS = ("provider", "second_provider", "model_provider")
WEIGHT_FIELDS = ("w_capability", "w_price", "w_fit", "w_reliability")


def write_snapshot(market, target: Path, *, sample: int = 100_000, source: str | None = None) -> dict:
    """Write the market's end state to ``target`` (``.npz``, compressed, atomic): at most
    ``sample`` customers drawn without replacement (seeded by the run's seed), every
    provider's state, and a manifest (config hash, quarter, names, scales).  Returns the
    manifest."""
    people = market.customers
    cfg = market.config
    n = people.n
    rows = np.arange(n) if n <= sample else np.sort(np.random.default_rng(cfg.run.seed).choice(n, sample, replace=False))
    arrays = {f"c_{name}": getattr(people, name)[rows] for name in CUSTOMER_ARRAYS}
    providers = []
    for slot, name in enumerate(market.names):
        p = market.slots[slot]
        providers.append({"name": name, "status": market.status[slot], **({} if p is None else {
            "capability": p.capability, "own_capability": p.own_capability, "compute": p.compute, "price": p.price,
            "reliability": p.reliability, "cash": p.cash, "captive_compute": p.captive_compute,
            "captive_tokens": p.captive_tokens, "has_model": p.has_model})})
    manifest = {
        "format": FORMAT, "config_name": cfg.name, "config_hash": cfg.hash(), "config_source": source,
        "seed": cfg.run.seed, "quarter": _label(market, -1), "next_quarter": _label(market, 0),
        "customers": n, "sampled": int(rows.size), "segments": people.segment_names,
        "segment_weights": {s: [getattr(seg, f) for f in WEIGHT_FIELDS] for s, seg in cfg.demand.segments.items()},
        "providers": providers, "token_compute_ratio": market.token_compute / cfg.pricing.token_compute,
        "token_elasticity": cfg.demand.token_elasticity,
    }
    arrays["manifest"] = np.array(json.dumps(manifest, sort_keys=True))
    target = Path(target)
    with atomic_path(target) as tmp:
        with open(tmp, "wb") as fh:
            np.savez_compressed(fh, **arrays)
    return manifest


def _label(market, shift: int) -> str:
    """Label of the quarter ``shift`` from the next one to simulate (-1: the last simulated)."""
    from sim import quarters

    return quarters.label(quarters.parse(market.config.run.start) + market.t + shift)


def resolve(ref: str) -> Path:
    """A snapshot path as given (absolute, or relative to the working directory), else
    relative to ``configs/`` (where presets keep theirs)."""
    path = Path(ref)
    if path.is_file() or path.is_absolute():
        return path
    return CONFIG_DIR / path


def file_sha256(path: Path) -> str:
    return hashlib.sha256(Path(path).read_bytes()).hexdigest()[:16]


@lru_cache(maxsize=4)
def _read(path: str, mtime: float) -> tuple[dict, dict[str, np.ndarray]]:
    try:
        with np.load(path, allow_pickle=False) as data:
            manifest = json.loads(str(data["manifest"]))
            arrays = {name: data[f"c_{name}"] for name in CUSTOMER_ARRAYS}
    except (OSError, ValueError, KeyError, json.JSONDecodeError) as exc:
        raise ConfigError([f"run.start_from: {path}: not a readable snapshot ({exc})"]) from None
    if manifest.get("format") != FORMAT:
        raise ConfigError([f"run.start_from: {path}: snapshot format {manifest.get('format')!r}; allowed: {FORMAT}"])
    return manifest, arrays


@lru_cache(maxsize=4)
def _slots_used(path: str, mtime: float) -> frozenset[int]:
    """The snapshot's provider slots that hold customers (in any of ``SLOT_ARRAYS``): looked
    up once per file, not once per run started from it."""
    _, snap = _read(path, mtime)
    used: set[int] = set()
    for key in SLOT_ARRAYS:
        used |= set(np.unique(snap[key][snap[key] >= 0]).tolist())
    return frozenset(used)


def _located(ref: str) -> tuple[str, float]:
    """(path, modification time) of the snapshot file ``ref``: the key of the caches above."""
    path = resolve(ref)
    if not path.is_file():
        raise ConfigError([f"run.start_from: {ref}: no such snapshot file (looked in the working directory and {CONFIG_DIR})"])
    return str(path), path.stat().st_mtime


def read_snapshot(ref: str) -> tuple[dict, dict[str, np.ndarray]]:
    """The manifest and customer arrays of a snapshot file (cached; read-only: copy before use)."""
    return _read(*_located(ref))


def load_state(config: Config, names: list[str], rng: np.random.Generator) -> dict[str, np.ndarray]:
    """Customer arrays for a run of ``config`` (provider slots in the order of ``names``)
    from the snapshot ``config.run.start_from``: resampled to ``run.customers``, slots
    renumbered by provider name, sizes and preferences rescaled (module docstring).
    Raises ConfigError (one line) when the snapshot does not fit the config."""
    ref = config.run.start_from
    located = _located(ref)
    manifest, snap = _read(*located)
    segments = list(config.demand.segments)
    if manifest["segments"] != segments:
        raise ConfigError([f"run.start_from: {ref}: the snapshot's segments ({', '.join(manifest['segments'])}) "
                           f"differ from the config's ({', '.join(segments)})"])
    renamed = {snap: own for own, snap in config.run.start_from_names.items()}
    snap_names = [renamed.get(p["name"], p["name"]) for p in manifest["providers"]]
    incumbents = [p.name for p in config.providers]
    missing = sorted(snap_names[s] for s in _slots_used(*located) if snap_names[s] not in incumbents)
    if missing:
        raise ConfigError([f"run.start_from: {ref}: customers of {', '.join(missing)} in the snapshot, but the config has "
                           f"no such provider at the start; providers: {', '.join(incumbents)} "
                           f"(run.start_from_names maps a config name to a snapshot name)"])
    remap = np.array([names.index(s) if s in incumbents else -1 for s in snap_names] + [-1], dtype=np.int16)

    n_snap, n = snap["segment"].size, config.run.customers
    repeats = n > n_snap
    rows = rng.choice(n_snap, n, replace=repeats)
    if repeats:
        # The drawn rows in increasing order, without sorting them: each snapshot row drawn, repeated
        # as often as it was drawn.  What is worked out per row (new slot numbers, preferences) is
        # worked out once per distinct row, before the repeat.
        counts = np.bincount(rows, minlength=n_snap)
        drawn = np.flatnonzero(counts)
    else:  # distinct rows
        drawn = np.sort(rows)
    picked = {name: snap[name][drawn] for name in CUSTOMER_ARRAYS}
    for key in SLOT_ARRAYS:
        picked[key] = remap[picked[key]]  # -1 stays -1 (last entry)
    old = np.array([manifest["segment_weights"][s] for s in segments])
    new = np.array([[getattr(seg, f) for f in WEIGHT_FIELDS] for seg in config.demand.segments.values()])
    ratio = np.divide(new, old, out=np.ones_like(new), where=old > 0)
    picked["weights"] = (picked["weights"] * ratio[picked["segment"]]).astype(np.float32)
    out = picked
    if repeats:
        times = counts[drawn]
        out = {name: np.repeat(values, times, axis=0) for name, values in picked.items()}
    adopted_compute = float(out["compute"][out["adopted"]].sum(dtype=np.float64))
    if adopted_compute <= 0:
        raise ConfigError([f"run.start_from: {ref}: the snapshot has no adopted customers"])
    scale = config.demand.market_compute / adopted_compute
    out["compute"] = (out["compute"] * scale).astype(np.float32)
    out["token_need"] = (out["token_need"] * scale).astype(np.float32)
    return out
