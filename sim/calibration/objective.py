"""The fit criterion: root mean squared error, in percentage points, between the observed
figures and the mean of the simulated ones over the replications (a method of
simulated moments).  A lower bound ("top four > 80 %") only counts when the
simulation falls below it.

Layers weigh alike (issue 12): the loss is the root of the mean over layers (cloud,
tokens) of each layer's mean squared error, so the three IDC figures of the token
layer count as much as the fifty-odd Canalys figures of the cloud layer; with one
layer it is the plain RMSE."""

from __future__ import annotations

import math

import numpy as np
import pandas as pd

from sim import quarters as qtr
from sim.calibration import params as fp
from sim.calibration.replicate import run_replications
from sim.calibration.targets import Panel, Target, period_quarters
from sim.config import Config, ConfigError

FAILED = 1.0e3  # loss of a candidate that cannot be run (never expected inside checked bounds)


def quarters_needed(config: Config, targets: list[Target]) -> int:
    """Quarters to simulate so that the last target is covered (no more: it saves time)."""
    start = qtr.parse(config.run.start)
    last = max(qtr.parse(q) for t in targets for q in period_quarters(t.period))
    return min(config.run.quarters, last - start + 1)


class Objective:
    """Callable on a vector of free-parameter values; picklable for worker processes."""

    def __init__(self, config: Config, params: list[fp.FreeParam], targets: list[Target], seeds: list[int],
                 fringe: list[str]):
        if not targets:
            raise ValueError("no observations to fit")
        self.config = config
        self.params = list(params)
        self.targets = list(targets)
        self.seeds = list(seeds)
        self.fringe = list(fringe)
        self.quarters = quarters_needed(config, targets)

    def panels(self, x) -> list[Panel]:
        cfg = fp.apply(self.config, self.params, x)
        runs = run_replications(cfg, self.seeds, quarters=self.quarters)
        return [Panel.from_frame(r.providers, self.fringe) for r in runs]

    def with_seeds(self, seeds: list[int]) -> "Objective":
        """The same objective on other seeds (replicate noise, sim.calibration.identify)."""
        return Objective(self.config, self.params, self.targets, list(seeds), self.fringe)

    def errors(self, x) -> np.ndarray:
        """Each figure's error (pp or worth as much) of the replications' mean at ``x``."""
        mean = self.simulated(x).mean(axis=0)
        return np.array([t.error(m) for t, m in zip(self.targets, mean)])

    def token_units(self, x, period: str) -> float:
        """Mean over the replications of the customers' model tokens served in ``period``
        (token units; times models.token_unit gives physical tokens)."""
        totals = []
        for panel in self.panels(x):
            rows = panel.rows(period)
            if rows is None:
                raise ValueError(f"the run does not cover {period}")
            totals.append(float(panel.tokens[rows].sum()))
        return float(np.mean(totals))

    def simulated(self, x) -> np.ndarray:
        """(replications, targets) simulated values in percent."""
        panels = self.panels(x)
        return np.array([[_value(p, t) for t in self.targets] for p in panels])

    def __call__(self, x) -> float:
        try:
            sims = self.simulated(x)
        except (ConfigError, ArithmeticError):  # refused, or a run that turned non-finite (sim.guard)
            return FAILED
        return loss(self.targets, sims)

    def table(self, x) -> pd.DataFrame:
        """One row per target: observed, simulated mean and spread, error in pp."""
        sims = self.simulated(x)
        mean = sims.mean(axis=0)
        return pd.DataFrame({
            "target": [t.label for t in self.targets], "layer": [t.layer for t in self.targets],
            "metric": [t.metric for t in self.targets],
            "provider": [t.provider for t in self.targets], "period": [t.period for t in self.targets],
            "qualifier": [t.qualifier for t in self.targets], "observed": [t.observed for t in self.targets],
            "simulated_mean": mean, "simulated_sd": sims.std(axis=0),
            "error_pp": [t.error(m) for t, m in zip(self.targets, mean)],
        })


def loss(targets: list[Target], sims: np.ndarray) -> float:
    """sqrt(mean over layers of the layer's mean squared error), pp; ``sims`` is
    (replications, targets)."""
    return float(math.sqrt(np.mean(list(layer_mse(targets, sims).values()))))


def layer_mse(targets: list[Target], sims: np.ndarray) -> dict[str, float]:
    """Mean squared error (pp²) per layer, of the replications' mean against each figure."""
    mean = sims.mean(axis=0)
    errors = np.array([t.error(m) for t, m in zip(targets, mean)])
    layers = [t.layer for t in targets]
    return {name: float(np.mean(errors[[l == name for l in layers]] ** 2)) for name in dict.fromkeys(layers)}


def layer_rmse(targets: list[Target], sims: np.ndarray) -> dict[str, float]:
    """In-sample RMSE (pp) per layer."""
    return {k: math.sqrt(v) for k, v in layer_mse(targets, sims).items()}


def _value(panel: Panel, target: Target) -> float:
    value = panel.measure(target)
    if value is None:
        raise ValueError(f"the run does not cover {target.label}")
    return value
