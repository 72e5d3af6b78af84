"""Identification of a fit (issue 12): how far the observed figures pin each free parameter down.

Three measurements around the fitted values, all with the objective's own figures and loss:

- **Replicate noise.**  The loss at the fitted values on ``sets`` fresh sets of seeds (disjoint
  from the fit's): their standard deviation ``sd`` is the noise of one loss evaluation, their
  mean ``fresh`` the loss free of the fit's selection on its own seeds (the fit's loss is biased
  low: the optimiser keeps what its seeds favour).
- **Loss profiles** (``fit.profile``): each parameter moved over a grid of its range, the others
  at their fitted values, at the fit's seeds (common random numbers).  Values whose loss is
  within ``fresh + 2 sd`` cannot be told from the fit by these figures: a noise-band interval.
- **Collinearity** (Brun, Reichert and Künsch 2001, Water Resources Research 37(4)): the
  sensitivity of every figure's error to each parameter (central differences of 5 % of its
  range, fit's seeds), columns scaled to unit length; for each pair the collinearity index
  gamma = 1 / sqrt(smallest eigenvalue of their 2 x 2 cross-product).  gamma > 10 means the two
  move the figures in nearly the same way: the data cannot tell them apart (Brun et al. use
  10-15 as the threshold).

Warnings: a fitted value on a bound (within 2 % of its range); a fitted value in a dip narrower
than the noise: the loss rises out of the fit's noise band within one grid step on both sides
(``min(neighbours) > fit + 2 sd``), yet at fresh seeds the fitted value does no better than
those neighbours (``fresh + 2 sd > min(neighbours)``), so the dip is the luck of the fit's seeds.
"""

from __future__ import annotations

import math
from dataclasses import dataclass

import numpy as np
import pandas as pd

from sim.calibration.objective import Objective
from sim.calibration.replicate import process_pool

EDGE = 0.02  # share of a parameter's range counted as "on the bound"
STEP = 0.05  # central-difference half step, share of the range
COLLINEAR = 10.0  # collinearity index above which two parameters cannot be told apart


@dataclass
class Noise:
    fit_loss: float  # at the fit's seeds
    losses: list[float]  # at each fresh seed set
    seed_sets: list[list[int]]

    @property
    def fresh(self) -> float:
        return float(np.mean(self.losses))

    @property
    def sd(self) -> float:
        return float(np.std(self.losses, ddof=1)) if len(self.losses) > 1 else float("nan")

    @property
    def band(self) -> float:
        """Upper edge of the noise band: fresh mean + 2 sd."""
        return self.fresh + 2.0 * self.sd


def fresh_seed_sets(objective: Objective, sets: int) -> list[list[int]]:
    """``sets`` seed lists as long as the fit's, disjoint from it and from each other."""
    r = len(objective.seeds)
    start = max(objective.seeds) + 1000
    return [[start + k * r + i for i in range(r)] for k in range(sets)]


def noise(objective: Objective, best: np.ndarray, fit_loss: float, sets: int = 8, workers: int = 2) -> Noise:
    """The loss at ``best`` on ``sets`` fresh seed sets."""
    seed_sets = fresh_seed_sets(objective, sets)
    objectives = [objective.with_seeds(s) for s in seed_sets]
    with process_pool(workers) as pool:
        if pool is None:
            losses = [o(best) for o in objectives]
        else:
            losses = list(pool.map(_call, objectives, [best] * len(objectives)))
    return Noise(float(fit_loss), [float(v) for v in losses], seed_sets)


def _call(objective: Objective, x) -> float:
    return objective(x)


def _errors(objective: Objective, x) -> np.ndarray:
    return objective.errors(x)


def sensitivities(objective: Objective, best: np.ndarray, workers: int = 2) -> np.ndarray:
    """(targets, parameters): change of each figure's error (pp) per step of 10 % of the
    parameter's range, by central differences of ``STEP`` of the range (one-sided at a bound)."""
    points, steps = [], []
    for i, p in enumerate(objective.params):
        h = STEP * (p.high - p.low)
        lo, hi = max(p.low, best[i] - h), min(p.high, best[i] + h)
        for v in (lo, hi):
            x = np.array(best, dtype=float)
            x[i] = v
            points.append(x)
        steps.append((hi - lo) / (p.high - p.low))
    with process_pool(workers) as pool:
        errs = [objective.errors(x) for x in points] if pool is None else list(pool.map(_errors, [objective] * len(points), points))
    cols = [(errs[2 * i + 1] - errs[2 * i]) / (steps[i] / 0.1) if steps[i] > 0 else np.zeros_like(errs[0])
            for i in range(len(objective.params))]
    return np.column_stack(cols)


def collinearity(sens: np.ndarray, names: list[str]) -> pd.DataFrame:
    """Every pair of parameters: the cosine of their sensitivity columns and Brun et al.'s
    collinearity index (inf when a column is zero: that parameter moves no figure)."""
    norms = np.linalg.norm(sens, axis=0)
    rows = []
    for i in range(len(names)):
        for j in range(i + 1, len(names)):
            if norms[i] == 0 or norms[j] == 0:
                cos, gamma = float("nan"), float("inf")
            else:
                a, b = sens[:, i] / norms[i], sens[:, j] / norms[j]
                cos = float(a @ b)
                lam = 1.0 - abs(cos)  # smallest eigenvalue of [[1, c], [c, 1]]
                gamma = 1.0 / math.sqrt(lam) if lam > 0 else float("inf")
            rows.append({"parameter A": names[i], "parameter B": names[j], "cosine": cos, "collinearity index": gamma,
                         "told apart": bool(gamma <= COLLINEAR)})
    return pd.DataFrame(rows).sort_values("collinearity index", ascending=False, kind="stable").reset_index(drop=True)


def identification_table(prof: pd.DataFrame, objective: Objective, best: np.ndarray, nz: Noise,
                         sens: np.ndarray | None = None) -> pd.DataFrame:
    """One row per parameter: fitted value, the noise-band interval from its profile, the size
    of its effect on the figures, and the warnings (bound, narrow dip, flat)."""
    rows = []
    for i, p in enumerate(objective.params):
        part = prof[prof["parameter"] == p.key].sort_values("value")
        values, losses = part["value"].to_numpy(), part["rmse_pp"].to_numpy()
        inside = values[losses <= nz.band]
        span = p.high - p.low
        warnings = []
        if best[i] - p.low <= EDGE * span:
            warnings.append("on the lower bound")
        if p.high - best[i] <= EDGE * span:
            warnings.append("on the upper bound")
        left, right = losses[values < best[i]], losses[values > best[i]]
        neighbours = ([left[-1]] if left.size else []) + ([right[0]] if right.size else [])
        if neighbours and min(neighbours) > nz.fit_loss + 2 * nz.sd and nz.band > min(neighbours):
            warnings.append("in a dip narrower than the noise")
        covered = (inside.max() - inside.min()) / span if inside.size else 0.0
        if inside.size and covered >= 0.5:
            warnings.append("flat: half its range or more fits as well")
        rows.append({
            "parameter": p.key, "low": p.low, "high": p.high, "fitted": float(best[i]),
            "within noise": f"{inside.min():.3g} to {inside.max():.3g}" if inside.size else "fitted value only",
            "share of range within noise": covered,
            "effect (pp per 10 % of range)": float(np.linalg.norm(sens[:, i]) / math.sqrt(sens.shape[0])) if sens is not None else float("nan"),
            "warning": "; ".join(warnings) or "-",
        })
    return pd.DataFrame(rows)


def warnings_of(table: pd.DataFrame) -> list[str]:
    """One line per parameter with a warning."""
    return [f"WARNING {r.parameter} = {r.fitted:.4g}: {r.warning}" for r in table.itertuples(index=False) if r.warning != "-"]
