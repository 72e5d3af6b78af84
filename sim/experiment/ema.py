"""Exploratory modelling with EMA Workbench (the ``ema`` extra): scenario discovery on sweeps.

Three bridges, all built on EMA Workbench's own algorithms (we write no PRIM or
feature scoring of our own):

* ``ema_model(spec)``: the model as an EMA ``Model``; the spec's parameters with
  ``role = "uncertainty"`` become its uncertainties, ``role = "lever"`` its
  levers, the spec's outcomes its ``ScalarOutcome``s, so
  ``ema_workbench.perform_experiments`` can drive it;
* ``to_ema(results)``: a finished sweep as EMA's ``(experiments, outcomes)``:
  a DataFrame with one row per finished run (each parameter, plus ``scenario``,
  ``policy`` and ``model`` as EMA names them) and a dict of 1-D arrays;
* figures for ``sim.experiment.report``: ``prim`` (the PRIM peeling trajectory
  and the chosen box's limits, with coverage and density), ``feature_scoring``
  (extra-trees scores per parameter and outcome, the run's random seed scored
  beside them as the noise floor) and ``parcoords`` (parallel coordinates of
  parameters and outcome, cases of interest highlighted).

PRIM follows Friedman and Fisher (1999), "Bump hunting in high-dimensional data",
as implemented by EMA Workbench (Kwakkel 2017, Environmental Modelling & Software 96).
Coverage = share of all cases of interest that fall in the box; density = share
of the runs in the box that are cases of interest.
"""

from __future__ import annotations

import hashlib
import json
import logging
from typing import Any

import numpy as np
import pandas as pd

from sim.config import ConfigError, with_overrides
from sim.experiment.spec import Figure, Spec

EMA_KINDS = ("prim", "feature_scoring", "parcoords")
INSTALL = "pip install 'aicloud-sim[ema]' (make setup installs it)"


def require_ema():
    """Import EMA Workbench, or stop with one line saying how to install it."""
    import warnings

    import matplotlib

    try:
        logging.getLogger("EMA").setLevel(logging.WARNING)
        # EMA Workbench sets a seaborn style when imported; rc_context puts our figures' style back.
        with warnings.catch_warnings(), matplotlib.rc_context():
            warnings.simplefilter("ignore")  # "ipyparallel not installed", which we do not use
            import ema_workbench
    except ImportError:
        raise ConfigError([f"prim, feature_scoring and parcoords need EMA Workbench: {INSTALL}"]) from None
    return ema_workbench


# --------------------------------------------------------------------- sweeps -> EMA
def experiments_table(spec: Spec, design: pd.DataFrame, runs: pd.DataFrame) -> pd.DataFrame:
    """One row per run in ``runs`` (run_id, design_index): the parameters as EMA names them, plus
    ``scenario`` (numbering the uncertainties' combinations), ``policy`` (the levers') and ``model``."""
    params = list(spec.params)
    table = runs[["run_id", "design_index"]].merge(design[["design_index", *params]], on="design_index", how="left")
    experiments = pd.DataFrame(index=table.index)
    for name, p in spec.params.items():
        column = table[name]
        if p.type == "categorical":
            experiments[name] = column.astype("category")
        elif p.type == "int":
            experiments[name] = column.astype("int64")
        else:
            experiments[name] = column.astype("float64")
    uncertainties = [n for n, p in spec.params.items() if p.role == "uncertainty"]
    levers = [n for n, p in spec.params.items() if p.role == "lever"]
    experiments["scenario"] = _numbering(table, uncertainties)
    experiments["policy"] = _numbering(table, levers)
    experiments["model"] = "aicloud"
    return experiments


def _numbering(table: pd.DataFrame, columns: list[str]) -> np.ndarray:
    if not columns:
        return np.zeros(len(table), dtype=np.int64)
    return table.groupby(columns, sort=False, dropna=False).ngroup().to_numpy()


def to_ema(results, outcomes: list[str] | None = None) -> tuple[pd.DataFrame, dict[str, np.ndarray]]:
    """A finished sweep (``SweepResults`` or its directory) as EMA Workbench's ``(experiments, outcomes)``.

    ``experiments``: one row per finished run, columns = the spec's parameters, ``scenario``,
    ``policy``, ``model``.  ``outcomes``: outcome name -> 1-D float array in the same row order
    (default: every outcome of the spec, including the built-in ones).
    """
    from sim.experiment.report import stored_spec
    from sim.experiment.results import SweepResults

    results = results if isinstance(results, SweepResults) else SweepResults(results)
    spec = stored_spec(results.store)
    table = results.outcomes()
    names = outcomes or list(spec.all_outcomes())
    missing = [n for n in names if n not in table.columns]
    if missing:
        raise ConfigError([f"{results.root}: outcome(s) {', '.join(missing)} not computed; "
                           f"allowed: {', '.join(spec.all_outcomes())}"])
    experiments = experiments_table(spec, results.design(), table)
    return experiments, {n: table[n].to_numpy(dtype=float) for n in names}


# ---------------------------------------------------------------------- EMA model
def ema_model(spec: Spec | str | dict[str, Any], name: str = "aicloud"):
    """The spec's model as an EMA Workbench ``Model``.

    Uncertainties and levers come from the spec's parameters (their ``role``): a numeric range
    becomes a ``RealParameter`` or ``IntegerParameter``, a list of values a ``CategoricalParameter``.
    Each experiment runs the spec's base config (with ``fixed``) and the point's overrides; its seed
    derives from the spec's seed and the point's values (the same point gives the same run).
    Outcomes are the spec's outcomes (and the built-in final HHI and leader shares).
    """
    ema = require_ema()
    from sim.experiment.keys import Overrides
    from sim.experiment.spec import base_config, load_spec, validate_spec

    if isinstance(spec, dict):
        spec = validate_spec(spec, "<dict spec>")
    elif not isinstance(spec, Spec):
        spec = load_spec(spec)
    base = base_config(spec)
    overrides = Overrides(spec, base)
    outcome_names = list(spec.all_outcomes())

    def run(**point: Any) -> dict[str, float]:
        return evaluate(spec, base, overrides, point)

    model = ema.Model(name, function=run)
    uncertainties, levers = [], []
    for pname, p in spec.params.items():
        (levers if p.role == "lever" else uncertainties).append(_ema_parameter(ema, pname, p))
    model.uncertainties = uncertainties
    model.levers = levers
    model.outcomes = [ema.ScalarOutcome(o) for o in outcome_names]
    return model


def _ema_parameter(ema, name: str, p):
    if p.values is not None:
        return ema.CategoricalParameter(name, list(p.values))
    if p.type == "int":
        return ema.IntegerParameter(name, int(p.low), int(p.high))
    return ema.RealParameter(name, float(p.low), float(p.high))


def point_seed(master: int, point: dict[str, Any]) -> int:
    """A run seed from the spec's seed and the point's values (stable across processes)."""
    digest = hashlib.sha256(json.dumps(point, sort_keys=True, default=str).encode()).digest()
    entropy = [master, int.from_bytes(digest[:8], "little")]
    return int(np.random.SeedSequence(entropy).generate_state(1, dtype=np.uint64)[0] >> 1)


def evaluate(spec: Spec, base, overrides, point: dict[str, Any]) -> dict[str, float]:
    """Run one point (parameter name -> value) and return the spec's outcomes."""
    from sim.experiment import analysis
    from sim.simulate import simulate

    point = {k: (v.item() if hasattr(v, "item") else v) for k, v in point.items() if k in spec.params}
    config = with_overrides(base, {**overrides(point), "run.seed": point_seed(spec.seed, point)},
                            source=f"{spec.source or 'spec'}: EMA experiment")
    result = simulate(config)
    keys = {"run_id": 0, "design_index": 0, "replicate": 0}
    table = analysis.outcomes(spec, result.providers.assign(**keys), result.market.assign(**keys),
                              analysis.provider_groups(config.resolved()))
    return {name: float(table[name].iloc[0]) for name in spec.all_outcomes()}


# ------------------------------------------------------------------------ figures
def draw(ctx, f: Figure):
    """A prim, feature_scoring or parcoords figure from a report context; writes its tables to summary/."""
    require_ema()
    table = ctx.outcomes.merge(ctx.runs[["run_id", "seed"]], on="run_id", how="left")
    table = table[table["design_index"].isin(ctx.design["design_index"])].reset_index(drop=True)
    experiments = experiments_table(ctx.spec, ctx.design, table)
    params = list(ctx.spec.params)
    x = experiments[params]
    if f.kind == "prim":
        return _prim_figure(ctx, f, x, table)
    if f.kind == "feature_scoring":
        return _feature_figure(ctx, f, x, table)
    return _parcoords_figure(ctx, f, x, table)


def cases_of_interest(values: pd.Series, f: Figure) -> np.ndarray:
    return (values < f.threshold) if f.below else (values > f.threshold)


def prim_boxes(x: pd.DataFrame, y: np.ndarray, *, min_density: float = 0.8, mass_min: float = 0.05) -> dict[str, Any]:
    """EMA Workbench's PRIM on ``x`` (parameters) and the boolean ``y``; the box with the highest
    coverage whose density reaches ``min_density`` (else the densest), and the peeling trajectory.

    Returns a dict: ``trajectory`` (DataFrame: coverage, density, mass, res_dim per peeling step),
    ``chosen`` (its row index), ``coverage``, ``density``, ``mass``, ``cases``, ``cases_of_interest``
    and ``limits`` (restricted parameter -> [low, high], or the allowed values of a categorical one).
    """
    require_ema()
    from ema_workbench.analysis import prim

    x = x.reset_index(drop=True)
    # Whole-number parameters are peeled as floats: EMA Workbench 3.0's pasting writes limits such as
    # 23.5 into an int64 box, which pandas 3 refuses.  The limits read the same.
    x = x.astype({c: "float64" for c in x.columns if pd.api.types.is_integer_dtype(x[c])})
    finder = prim.Prim(x, np.asarray(y, dtype=bool), mass_min=mass_min)
    box = finder.find_box()
    trajectory = box.peeling_trajectory.copy()
    dense = trajectory[trajectory["density"] >= min_density]
    chosen = int(dense["coverage"].idxmax() if len(dense) else trajectory["density"].idxmax())
    lims = box.box_lims[chosen]
    initial = finder.box_init
    limits: dict[str, Any] = {}
    for column in x.columns:
        low, high = lims.loc[0, column], lims.loc[1, column]
        if isinstance(low, set):
            if low != initial.loc[0, column]:
                limits[column] = sorted(low, key=str)
        elif low != initial.loc[0, column] or high != initial.loc[1, column]:
            limits[column] = [_plain(low), _plain(high)]
    row = trajectory.loc[chosen]
    return {"trajectory": trajectory, "chosen": chosen, "coverage": float(row["coverage"]),
            "density": float(row["density"]), "mass": float(row["mass"]), "limits": limits,
            "cases": int(len(y)), "cases_of_interest": int(np.sum(y)), "box": box}


def _plain(value: Any) -> Any:
    return value.item() if hasattr(value, "item") else value


def _prim_figure(ctx, f: Figure, x: pd.DataFrame, table: pd.DataFrame):
    import matplotlib.pyplot as plt

    from sim.output import write_csv, write_json

    outcome = f.outcomes[0]
    keep = table[outcome].notna()
    y = cases_of_interest(table.loc[keep, outcome], f).to_numpy()
    if y.sum() == 0:
        return _empty_figure(f, f"no run has {outcome} {'<' if f.below else '>'} {f.threshold:g}"), \
            f"prim: no case of interest ({outcome} {'<' if f.below else '>'} {f.threshold:g}); no box"
    found = prim_boxes(x[keep.to_numpy()], y, min_density=f.min_density)
    stem = f"prim_{f.name or outcome}"
    write_csv(ctx.summary_dir / f"{stem}_trajectory.csv", found["trajectory"])
    write_json(ctx.summary_dir / f"{stem}.json", {
        "outcome": outcome, "threshold": f.threshold, "below": f.below, "min_density": f.min_density,
        "cases": found["cases"], "cases_of_interest": found["cases_of_interest"], "box_index": found["chosen"],
        "coverage": round(found["coverage"], 4), "density": round(found["density"], 4),
        "mass": round(found["mass"], 4), "limits": found["limits"]})
    traj = found["trajectory"]
    fig, (left, right) = plt.subplots(1, 2, figsize=(11, 4.6), layout="constrained",
                                      gridspec_kw={"width_ratios": [1, 1.3]})
    points = left.scatter(traj["coverage"], traj["density"], c=traj["res_dim"], cmap="viridis", s=22)
    left.scatter([found["coverage"]], [found["density"]], s=120, facecolors="none", edgecolors="red", lw=1.5,
                 label=f"box {found['chosen']}: coverage {found['coverage']:.2f}, density {found['density']:.2f}")
    left.set_xlabel("coverage (share of cases of interest in the box)")
    left.set_ylabel("density (share of the box's runs of interest)")
    left.set_xlim(0, 1.02)
    left.set_ylim(0, 1.02)
    left.grid(alpha=0.3)
    left.legend(loc="lower left", fontsize=8)
    fig.colorbar(points, ax=left, label="restricted parameters")
    _draw_limits(right, ctx, x, found)
    sign = "<" if f.below else ">"
    fig.suptitle(f.title or f"PRIM: runs with {ctx.outcome_label(outcome)} {sign} {f.threshold:g} "
                            f"({found['cases_of_interest']} of {found['cases']})")
    return fig, None


def _draw_limits(ax, ctx, x: pd.DataFrame, found: dict[str, Any]) -> None:
    """The chosen box: each restricted parameter's range as a bar on its full range (0..1 scaled)."""
    limits = found["limits"]
    names = list(limits) or ["(no restriction)"]
    for i, name in enumerate(names):
        ax.barh(i, 1.0, color="0.9", height=0.5)
        if name not in limits:
            continue
        values = x[name]
        if isinstance(limits[name][0], (int, float)) and pd.api.types.is_numeric_dtype(values):
            lo, hi = float(values.min()), float(values.max())
            span = hi - lo or 1.0
            a, b = (limits[name][0] - lo) / span, (limits[name][1] - lo) / span
            ax.barh(i, b - a, left=a, color="tab:red", height=0.5)
            ax.text(a, i + 0.33, f"{limits[name][0]:.3g}", ha="center", fontsize=8)
            ax.text(b, i + 0.33, f"{limits[name][1]:.3g}", ha="center", fontsize=8)
        else:
            ax.text(0.5, i, ", ".join(map(str, limits[name])), ha="center", va="center", fontsize=8)
    ax.set_yticks(range(len(names)), [ctx.param_label(n) if n in ctx.spec.params else n for n in names])
    ax.set_xlim(-0.05, 1.05)
    ax.set_xticks([0, 1], ["lowest sampled", "highest sampled"])
    ax.set_title(f"box {found['chosen']}: restricted parameters (red = inside the box)", fontsize=10)
    ax.invert_yaxis()


def _feature_figure(ctx, f: Figure, x: pd.DataFrame, table: pd.DataFrame):
    import matplotlib.pyplot as plt
    from ema_workbench.analysis import feature_scoring

    from sim.output import write_csv

    features = x.copy()
    # The run's seed scored as a feature is the noise floor: a parameter scoring no higher than
    # the seed explains no more of the outcome than the random stream does.
    features["seed (noise floor)"] = (table["seed"].to_numpy() % 1_000_003).astype(np.float64)
    y = {o: table[o].to_numpy(dtype=float) for o in f.outcomes}
    keep = np.all([np.isfinite(v) for v in y.values()], axis=0)
    scores = feature_scoring.get_feature_scores_all(features[keep], {o: v[keep] for o, v in y.items()},
                                                    random_state=0)
    scores = scores.reindex(list(features.columns))
    write_csv(ctx.summary_dir / f"feature_scores_{f.name or '_'.join(f.outcomes)}.csv",
              scores.reset_index(names="parameter"))
    labels = [ctx.param_label(n) if n in ctx.spec.params else n for n in scores.index]
    fig, ax = plt.subplots(figsize=(2.2 + 1.6 * len(f.outcomes), 0.9 + 0.45 * len(labels)), layout="constrained")
    image = ax.imshow(scores.to_numpy(), cmap="viridis", aspect="auto", vmin=0)
    for (i, j), value in np.ndenumerate(scores.to_numpy()):
        ax.text(j, i, f"{value:.2f}", ha="center", va="center", fontsize=8,
                color="white" if value < 0.6 * np.nanmax(scores.to_numpy()) else "black")
    ax.set_yticks(range(len(labels)), labels)
    ax.set_xticks(range(len(f.outcomes)), [ctx.outcome_label(o) for o in f.outcomes], rotation=20, ha="right")
    fig.colorbar(image, ax=ax, label="extra-trees feature score")
    ax.set_title(f.title or "Feature scores (EMA Workbench, extra trees)", fontsize=10)
    return fig, None


def _parcoords_figure(ctx, f: Figure, x: pd.DataFrame, table: pd.DataFrame):
    from ema_workbench.analysis import parcoords

    data = x.copy()
    for o in f.outcomes:
        data[o] = table[o].to_numpy(dtype=float)
    data = data[np.isfinite(data[f.outcomes].to_numpy(dtype=float)).all(axis=1)]
    data = data.rename(columns={n: ctx.param_label(n) for n in ctx.spec.params} |
                       {o: ctx.outcome_label(o) for o in f.outcomes})
    axes = parcoords.ParallelAxes(parcoords.get_limits(data), fontsize=9, rot=30)
    if f.threshold is not None:
        interest = cases_of_interest(table.loc[data.index, f.outcomes[0]], f).to_numpy()
        if (~interest).any():
            axes.plot(data[~interest], color="0.75", lw=0.6)
        if interest.any():
            axes.plot(data[interest], color="tab:red", lw=0.9,
                      label=f"{ctx.outcome_label(f.outcomes[0])} {'<' if f.below else '>'} {f.threshold:g}")
            axes.legend()
    else:
        axes.plot(data, color="tab:blue", lw=0.6, alpha=0.5)
    axes.fig.set_size_inches(max(8, 1.6 * len(data.columns)), 5)
    axes.fig.suptitle(f.title or "Parallel coordinates: parameters and outcomes", fontsize=11)
    return axes.fig, None


def _empty_figure(f: Figure, text: str):
    import matplotlib.pyplot as plt

    fig, ax = plt.subplots(figsize=(6, 2))
    ax.axis("off")
    ax.text(0.5, 0.5, text, ha="center", va="center")
    return fig
