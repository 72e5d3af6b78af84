"""Designs: the list of design points (parameter name -> value) of a spec.

grid    full factorial, first parameter varying slowest
zip     scenario i takes the i-th value of every parameter
random  independent uniform draws
latin   Latin hypercube (SALib)
sobol   Saltelli's scheme on a Sobol' sequence (SALib), for Sobol' indices
morris  Morris trajectories (SALib), for elementary effects

Sampling designs draw in the unit cube and map each column to its parameter:
floats linearly (or on a log scale), integers and explicit value lists by
equal-width bins, so integer and categorical parameters work with every sampler.
The unit matrix is kept for the analysis: SALib needs it in design order.
"""

from __future__ import annotations

import itertools
import math
from dataclasses import dataclass
from typing import Any

import numpy as np
import pandas as pd

from sim.experiment.seeds import design_seed
from sim.experiment.spec import Param, Spec


@dataclass
class Design:
    kind: str
    names: list[str]
    points: list[dict[str, Any]]
    labels: list[str]
    unit: np.ndarray | None = None  # SALib sample in [0, 1]^d, rows in design order
    problem: dict | None = None
    # With several master seeds (spec.seeds), the design is one sample per seed, one after the other:
    # point d belongs to master seed masters[d] and is point local[d] of that seed's sample.
    masters: list[int] | None = None
    local: list[int] | None = None

    def __len__(self) -> int:
        return len(self.points)

    def seed_of(self, index: int, default: int) -> tuple[int, int]:
        """(master seed, index within that seed's sample) of design point ``index``."""
        if self.masters is None:
            return default, index
        return self.masters[index], self.local[index]

    def frame(self) -> pd.DataFrame:
        """One row per design point: design_index, label, the parameter values (and the unit sample)."""
        table = pd.DataFrame(self.points, columns=self.names)
        table.insert(0, "label", self.labels)
        table.insert(0, "design_index", np.arange(len(self.points), dtype=np.int64))
        if self.unit is not None:
            for j, name in enumerate(self.names):
                table[f"unit:{name}"] = self.unit[:, j]
        if self.masters is not None:
            table["master_seed"] = np.asarray(self.masters, dtype=np.int64)
            table["local_index"] = np.asarray(self.local, dtype=np.int64)
        return table


def build(spec: Spec) -> Design:
    names = list(spec.params)
    params = [spec.params[n] for n in names]
    kind = spec.design.kind
    if kind == "grid":
        points = [dict(zip(names, combo)) for combo in itertools.product(*(grid_values(p) for p in params))]
        return Design(kind, names, points, [_label(pt) for pt in points])
    if kind == "zip":
        count = len(params[0].values) if params else 1
        points = [{n: p.values[i] for n, p in zip(names, params)} for i in range(count)]
        labels = spec.design.labels or [_label(pt) for pt in points]
        return Design(kind, names, points, labels)
    if spec.seeds:  # one sample per master seed, stacked
        samples = [unit_sample(spec, names, master=m) for m in spec.seeds]
        unit, problem = np.vstack([u for u, _ in samples]), samples[0][1]
        masters = [m for (u, _), m in zip(samples, spec.seeds) for _ in range(len(u))]
        local = [i for u, _ in samples for i in range(len(u))]
    else:
        unit, problem = unit_sample(spec, names)
        masters = local = None
    points = [{n: from_unit(p, u) for n, p, u in zip(names, params, row)} for row in unit]
    return Design(kind, names, points, [_label(pt) for pt in points], unit, problem, masters, local)


def size(spec: Spec) -> int:
    """Number of design points, without building large designs."""
    d, n = len(spec.params), spec.design.samples
    match spec.design.kind:
        case "grid":
            return math.prod(len(grid_values(p)) for p in spec.params.values())
        case "zip":
            return len(next(iter(spec.params.values())).values) if spec.params else 1
        case "sobol":
            return n * (2 * d + 2 if spec.design.second_order else d + 2) * len(spec.masters)
        case "morris":
            return n * (d + 1) * len(spec.masters)
    return n


def grid_values(p: Param) -> list[Any]:
    if p.values is not None:
        return [_cast(p, v) for v in p.values]
    if p.type == "int" and p.num is None:
        return list(range(int(p.low), int(p.high) + 1))
    space = np.geomspace if p.log else np.linspace
    values = [_cast(p, v) for v in space(p.low, p.high, p.num)]
    return list(dict.fromkeys(values))  # integer rounding can repeat a value


def unit_sample(spec: Spec, names: list[str], master: int | None = None) -> tuple[np.ndarray, dict]:
    """The design's sample in the unit cube, drawn with the master seed (default: the spec's)."""
    from SALib.sample import latin, morris, sobol  # imported here: SALib takes ~1 s to import

    problem = {"num_vars": len(names), "names": names, "bounds": [[0.0, 1.0]] * len(names)}
    seed = design_seed(spec.seed if master is None else master)
    n = spec.design.samples
    match spec.design.kind:
        case "random":
            unit = np.random.default_rng(seed).random((n, len(names)))
        case "latin":
            unit = latin.sample(problem, n, seed=seed)
        case "sobol":
            unit = sobol.sample(problem, n, calc_second_order=spec.design.second_order, seed=seed)
        case "morris":
            unit = morris.sample(problem, n, num_levels=spec.design.levels, seed=seed)
        case other:
            raise ValueError(f"not a sampling design: {other}")
    return np.asarray(unit, dtype=float), problem


def from_unit(p: Param, u: float) -> Any:
    """Map u in [0, 1] to a value of the parameter."""
    u = min(max(float(u), 0.0), 1.0)
    if p.values is not None:
        k = len(p.values)
        return _cast(p, p.values[min(int(u * k), k - 1)])
    if p.type == "int":
        lo, hi = int(p.low), int(p.high)
        return min(lo + int(u * (hi - lo + 1)), hi)
    if p.log:
        return float(math.exp(math.log(p.low) + u * (math.log(p.high) - math.log(p.low))))
    return float(p.low + u * (p.high - p.low))


def _cast(p: Param, value: Any) -> Any:
    if p.type == "int":
        return int(round(float(value)))
    if p.type == "float":
        return float(value)
    return value


def _label(point: dict[str, Any]) -> str:
    return ", ".join(f"{k}={_fmt(v)}" for k, v in point.items()) or "base"


def _fmt(value: Any) -> str:
    if isinstance(value, float):
        if 1000 <= abs(value) < 1e7 and value == int(value):
            return f"{value:,.0f}"
        return f"{value:.4g}"
    return str(value)
