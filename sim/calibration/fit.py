"""The optimiser: scipy's differential evolution over the free parameters' box.

Differential evolution needs no gradient (the simulated loss is noisy and stepwise)
and keeps a population, so it is less easily trapped than a local search.  It is
seeded, and with ``updating="deferred"`` its result does not depend on how many
worker processes evaluate a generation: same config, data and seed => same fit.
The config's own values are put into the first population, so the fit can only
improve on the starting guess.
"""

from __future__ import annotations

import time
from dataclasses import dataclass, field

import numpy as np
from scipy.optimize import differential_evolution
from tqdm import tqdm

from sim.calibration import params as fp
from sim.calibration.objective import Objective
from sim.calibration.replicate import process_pool


@dataclass
class FitSettings:
    generations: int = 30
    popsize: int = 6  # population = popsize x number of free parameters
    seed: int = 0
    workers: int = 2
    tol: float = 0.0  # run all generations: the objective is noisy, early stops mislead
    progress: bool = True


@dataclass
class FitResult:
    params: list[fp.FreeParam]
    start: np.ndarray
    start_loss: float
    best: np.ndarray
    best_loss: float
    evaluations: int
    generations: int
    seconds: float
    history: list[float] = field(default_factory=list)  # best loss after each generation
    message: str = ""

    def values(self) -> dict[str, float]:
        return {p.key: float(v) for p, v in zip(self.params, self.best)}


def starting_point(objective: Objective) -> np.ndarray:
    """The config's values, clipped into the bounds."""
    x0 = []
    for p in objective.params:
        value = fp.current(objective.config, p)
        x0.append(np.clip(value if value is not None else (p.low + p.high) / 2, p.low, p.high))
    return np.array(x0, dtype=float)


def calibrate(objective: Objective, settings: FitSettings) -> FitResult:
    bounds = [(p.low, p.high) for p in objective.params]
    x0 = starting_point(objective)
    started = time.perf_counter()
    start_loss = objective(x0)
    history: list[float] = []
    bar = tqdm(total=settings.generations, desc="calibrate", unit="gen", disable=not settings.progress,
               dynamic_ncols=True)

    def on_generation(intermediate_result) -> None:
        history.append(float(intermediate_result.fun))
        bar.set_postfix_str(f"best RMSE {intermediate_result.fun:.2f} pp")
        bar.update(1)

    with process_pool(settings.workers) as pool:
        workers = (lambda f, xs: list(pool.map(f, xs, chunksize=max(1, len(xs) // (4 * settings.workers))))) \
            if pool is not None else 1
        result = differential_evolution(
            objective, bounds, maxiter=settings.generations, popsize=settings.popsize, seed=settings.seed,
            x0=x0, init="latinhypercube",
            polish=False, updating="deferred", workers=workers, tol=settings.tol, callback=on_generation,
        )
    bar.close()
    best, best_loss = np.asarray(result.x, float), float(result.fun)
    if start_loss < best_loss:  # x0 is in the population, so this only guards against surprises
        best, best_loss = x0, start_loss
    return FitResult(objective.params, x0, start_loss, best, best_loss, int(result.nfev) + 1,
                     len(history), time.perf_counter() - started, history, str(result.message))



def profile(objective: Objective, best: np.ndarray, points: int = 7, workers: int = 2) -> "pd.DataFrame":
    """One-at-a-time loss profile around the fit: each parameter moved across its range on an
    even grid while the others keep their fitted values.  A flat profile means the observed
    figures do not pin that parameter down."""
    import pandas as pd

    rows, candidates = [], []
    for i, p in enumerate(objective.params):
        for value in np.linspace(p.low, p.high, points):
            x = np.array(best, dtype=float)
            x[i] = value
            rows.append({"parameter": p.key, "value": float(value), "fitted": float(best[i])})
            candidates.append(x)
    with process_pool(workers) as pool:
        losses = list(pool.map(objective, candidates)) if pool is not None else [objective(x) for x in candidates]
    return pd.DataFrame(rows).assign(rmse_pp=losses)
