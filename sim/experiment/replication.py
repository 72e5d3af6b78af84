"""Replicates chosen by a rule, and the 95 % intervals used by it, by heatmaps and by verdicts.

A stochastic, path-dependent model gives a different outcome with every seed, so a design point's
result is a mean over replicates with an interval, and how many replicates a point needs depends on
how noisy it is there.  The rule (``[replication]`` in a spec): run ``first`` replicates of every
point; then, block by block, give ``block`` more to each point whose 95 % interval of the headline
outcome's mean is still wider than ``width``, until it is narrower or the point has ``replicates``
(the cap).  Which replicates a point gets depends only on its own runs so far (seeds are fixed by
design index and replicate), so the rule's decisions are the same with any number of workers and
after ``--resume``.

Intervals (95 %):

- mean of a numeric outcome: Student's t, mean ± t(0.975, n-1) s / sqrt(n);
- mean of a yes/no outcome (every value 0 or 1): Wilson's score interval (Wilson 1927), which stays
  inside [0, 1] and is not empty at 0 of n or n of n;
- median: the distribution-free interval between order statistics (binomial, e.g. Conover 1999 3.2);
- a difference of means (verdicts): paired t on replicate-by-replicate differences when the two sides
  are single design points run with common random numbers, else Welch's t.
"""

from __future__ import annotations

import math
from typing import TYPE_CHECKING, Any

import numpy as np
import pandas as pd

if TYPE_CHECKING:
    from sim.experiment.runner import Plan
    from sim.experiment.spec import Replication, Spec
    from sim.experiment.store import Store

Z95 = 1.959963984540054


def _t(df: float) -> float:
    from scipy.stats import t

    return float(t.ppf(0.975, df))


def is_binary(values: np.ndarray) -> bool:
    values = values[np.isfinite(values)]
    return values.size > 0 and bool(np.isin(values, (0.0, 1.0)).all())


def mean_interval(values: Any, *, binary: bool | None = None) -> tuple[float, float, float, int]:
    """(mean, low, high, n) of the finite values: the 95 % interval of the mean (t, or Wilson for 0/1
    values).  With fewer than 2 values the interval is (nan, nan); n = 0 gives a nan mean too."""
    x = np.asarray(values, dtype=float)
    x = x[np.isfinite(x)]
    n = int(x.size)
    if n == 0:
        return math.nan, math.nan, math.nan, 0
    mean = float(x.mean())
    if n < 2:
        return mean, math.nan, math.nan, n
    if binary if binary is not None else is_binary(x):
        centre = (mean + Z95**2 / (2 * n)) / (1 + Z95**2 / n)
        half = Z95 * math.sqrt(mean * (1 - mean) / n + Z95**2 / (4 * n**2)) / (1 + Z95**2 / n)
        # exact ends at 0 of n and n of n (rounding would leave 1e-19 there, enough to "exclude" 0)
        low = 0.0 if mean == 0.0 else max(0.0, centre - half)
        high = 1.0 if mean == 1.0 else min(1.0, centre + half)
        return mean, low, high, n
    half = _t(n - 1) * float(x.std(ddof=1)) / math.sqrt(n)
    return mean, mean - half, mean + half, n


def median_interval(values: Any) -> tuple[float, float, float, int]:
    """(median, low, high, n): order statistics x_(k) and x_(n+1-k) with k the largest index such that
    P(Binomial(n, 1/2) < k) <= 2.5 %: at least 95 % coverage; nan bounds when n < 6 (no such k)."""
    from scipy.stats import binom

    x = np.sort(np.asarray(values, dtype=float)[np.isfinite(np.asarray(values, dtype=float))])
    n = int(x.size)
    if n == 0:
        return math.nan, math.nan, math.nan, 0
    k = int(binom.ppf(0.025, n, 0.5))  # P(B <= k-1) <= 0.025 < P(B <= k)
    if binom.cdf(k, n, 0.5) <= 0.025:
        k += 1
    if k < 1:
        return float(np.median(x)), math.nan, math.nan, n
    return float(np.median(x)), float(x[k - 1]), float(x[n - k]), n


def difference_interval(a: Any, b: Any, *, paired: bool = False) -> dict[str, Any]:
    """Mean of ``a`` minus mean of ``b`` with its 95 % interval.  ``paired``: a and b are aligned
    replicate by replicate (NaN in either drops the pair); else Welch's t (unequal variances).
    ``b`` may be a number (one-sample t on a - b)."""
    x = np.asarray(a, dtype=float)
    if np.ndim(b) == 0:
        x = x[np.isfinite(x)]
        if is_binary(x):  # a probability against a number: Wilson's interval, shifted
            mean, low, high, n = mean_interval(x, binary=True)
            return {"diff": mean - float(b), "low": low - float(b), "high": high - float(b), "n_at": n,
                    "n_against": 0, "method": "Wilson interval of a proportion"}
        mean, low, high, n = mean_interval(x - float(b), binary=False)
        return {"diff": mean, "low": low, "high": high, "n_at": n, "n_against": 0, "method": "one-sample t"}
    y = np.asarray(b, dtype=float)
    if paired:
        keep = np.isfinite(x) & np.isfinite(y)
        mean, low, high, n = mean_interval(x[keep] - y[keep], binary=False)
        return {"diff": mean, "low": low, "high": high, "n_at": n, "n_against": n, "method": "paired t (common random numbers)"}
    x, y = x[np.isfinite(x)], y[np.isfinite(y)]
    nx, ny = x.size, y.size
    if nx < 2 or ny < 2:
        diff = float(x.mean() - y.mean()) if nx and ny else math.nan
        return {"diff": diff, "low": math.nan, "high": math.nan, "n_at": int(nx), "n_against": int(ny), "method": "Welch t"}
    vx, vy = x.var(ddof=1) / nx, y.var(ddof=1) / ny
    diff = float(x.mean() - y.mean())
    se = math.sqrt(vx + vy)
    if se == 0:
        return {"diff": diff, "low": diff, "high": diff, "n_at": int(nx), "n_against": int(ny), "method": "Welch t"}
    df = (vx + vy) ** 2 / (vx**2 / (nx - 1) + vy**2 / (ny - 1))
    half = _t(df) * se
    return {"diff": diff, "low": diff - half, "high": diff + half, "n_at": int(nx), "n_against": int(ny), "method": "Welch t"}


def verdict_word(low: float, high: float, expect: str) -> str:
    """'supported' if the interval lies wholly on the expected side of 0, 'contradicted' if wholly on
    the other side, else 'not resolved' (including an interval that could not be computed)."""
    if not (np.isfinite(low) and np.isfinite(high)):
        return "not resolved"
    above, below = low > 0, high < 0
    if (expect == "higher" and above) or (expect == "lower" and below):
        return "supported"
    if above or below:
        return "contradicted"
    return "not resolved"


# -------------------------------------------------------------------- the rule
def describe(spec: "Spec") -> dict[str, Any]:
    """The replicate rule in the manifest's words."""
    rule = spec.replication
    if rule is None:
        return {"rule": "fixed", "replicates": spec.replicates,
                "text": f"{spec.replicates} replicates at every design point"}
    return {"rule": "interval width", **rule.model_dump(mode="json"), "cap": spec.replicates,
            "text": f"blocks of {rule.block} replicates after a first {rule.first}, until the 95 % interval of "
                    f"the mean of {rule.outcome} is narrower than {rule.width:g}, at most {spec.replicates}"}


def assess(plan: "Plan", store: "Store", planned: dict[int, int]) -> pd.DataFrame:
    """Per design point, from its finished runs among the first ``planned[d]`` replicates: n, the headline
    outcome's mean and 95 % interval, its width and whether it is below the rule's width."""
    from sim.experiment import analysis

    spec, rule = plan.spec, plan.spec.replication
    cap = spec.replicates
    ids = sorted(r for r in store.done_ids() if r % cap < planned.get(r // cap, 0))
    points = len(plan.design)
    values = pd.Series(np.nan, index=pd.Index([], name="run_id"), dtype=float)
    if ids:
        providers, market = store.table("providers", run_ids=ids), store.table("market", run_ids=ids)
        groups = analysis.provider_groups(plan.base.resolved())
        values = analysis.outcome_values(spec, rule.outcome, providers, market, groups)
    by_point = {d: [] for d in range(points)}
    for run_id, value in values.items():
        by_point[int(run_id) // cap].append(value)
    binary = is_binary(values.to_numpy(dtype=float)) if len(values) else False
    rows = []
    for d in range(points):
        mean, low, high, n = mean_interval(by_point[d], binary=binary)
        width = high - low if n >= 2 else math.inf
        rows.append({"design_index": d, "n": n, "mean": mean, "low": low, "high": high, "width": width,
                     "reached": bool(width < rule.width)})
    return pd.DataFrame(rows)


def next_block(status: pd.DataFrame, planned: dict[int, int], rule: "Replication", cap: int) -> dict[int, int]:
    """Points that get another block (design index -> new planned replicates): interval too wide, below the cap."""
    grow = {}
    for row in status.itertuples():
        d = int(row.design_index)
        if not row.reached and planned[d] < cap:
            grow[d] = min(planned[d] + rule.block, cap)
    return grow
