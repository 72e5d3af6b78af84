"""Analysis of stored sweep results.

- per-run outcomes (final HHI, leader share, a start-up's survival, quarters to
  reach a share, ...) computed from the stored per-quarter tables;
- quantile summaries across replicates per design point and quarter (mean,
  median, 5/25/75/95 %);
- Sobol' and Morris indices.  SALib trusts row order (SALib#665), so outcomes
  are put in design-index order first; design points whose runs all failed are
  handled explicitly: the Saltelli blocks / Morris trajectories that contain them
  are dropped (they are independent samples), and the report says how many.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any

import numpy as np
import pandas as pd

from sim.experiment.seeds import design_seed
from sim.experiment.spec import Outcome, Spec

QUANTILES = {"q05": 0.05, "q25": 0.25, "q75": 0.75, "q95": 0.95}
MARKET_VARIABLES = ("hhi_revenue", "hhi_compute", "hhi_tokens", "cr3_revenue", "cr3_tokens", "churn",
                    "active_providers", "total_revenue", "total_tokens")
SHARE_VARIABLES = ("share_revenue", "share_compute", "share_tokens", "share_customers")


class AnalysisError(Exception):
    """The stored results cannot support the analysis asked for (worded for the user)."""


# -------------------------------------------------------------------- groups
def provider_groups(config: dict[str, Any]) -> dict[str, list[str]]:
    """Named groups of providers in the (resolved) base config."""
    providers, entrants = config.get("providers", []), config.get("entrants", [])
    everyone = providers + entrants
    return {
        "porters": [p["name"] for p in everyone if not p.get("has_model", True)],
        "model_owners": [p["name"] for p in everyone if p.get("has_model", True)],
        "entrants": [p["name"] for p in entrants],
        "incumbents": [p["name"] for p in providers],
    }


def members(selector: list[str] | str, groups: dict[str, list[str]]) -> list[str]:
    return groups[selector] if isinstance(selector, str) else list(selector)


# ------------------------------------------------------------------ outcomes
def outcomes(spec: Spec, providers: pd.DataFrame, market: pd.DataFrame, groups: dict[str, list[str]]) -> pd.DataFrame:
    """One row per run that finished: run_id, design_index, replicate and one column per outcome."""
    runs = market.groupby("run_id", sort=True)[["design_index", "replicate"]].first()
    final_market, first_market, prov_last = _ends(providers, market)
    table = runs.copy()
    for name, spec_o in spec.all_outcomes().items():
        table[name] = _outcome(spec_o, providers, prov_last, final_market, groups, first_market).reindex(runs.index)
    return table.reset_index()


def outcome_values(spec: Spec, name: str, providers: pd.DataFrame, market: pd.DataFrame,
                   groups: dict[str, list[str]]) -> pd.Series:
    """One outcome per run that finished (index run_id), as ``outcomes`` computes it."""
    runs = market.groupby("run_id", sort=True)["step"].first()
    final_market, first_market, prov_last = _ends(providers, market)
    o = spec.all_outcomes()[name]
    return _outcome(o, providers, prov_last, final_market, groups, first_market).reindex(runs.index).astype(float)


def _ends(providers: pd.DataFrame, market: pd.DataFrame):
    last = market.groupby("run_id")["step"].transform("max") == market["step"]
    first = market.groupby("run_id")["step"].transform("min") == market["step"]
    prov_last = providers.groupby("run_id")["step"].transform("max") == providers["step"]
    return market[last].set_index("run_id"), market[first].set_index("run_id"), prov_last


def undefined(outcome_table: pd.DataFrame, names: list[str]) -> list[str]:
    """Outcomes that no finished run defines (e.g. a share threshold that no run reaches)."""
    if outcome_table.empty:
        return []
    return [n for n in names if n in outcome_table and outcome_table[n].isna().all()]


def _outcome(o: Outcome, providers: pd.DataFrame, prov_last: pd.Series, final_market: pd.DataFrame,
             groups: dict[str, list[str]], first_market: pd.DataFrame | None = None) -> pd.Series:
    share = f"share_{o.metric}"
    needed = o.column if o.kind in ("final", "change", "provider") else share
    if needed not in (final_market.columns if o.kind in ("final", "change") else providers.columns):
        return pd.Series(np.nan, index=final_market.index)  # a column this model version does not record
    if o.kind == "final":
        return final_market[o.column].astype(float)
    if o.kind == "change":  # final quarter minus first quarter, run by run
        return final_market[o.column].astype(float) - first_market[o.column].reindex(final_market.index).astype(float)
    if o.kind == "leader_share":
        top = providers[prov_last].groupby("run_id")[share].max()
        return top if o.threshold is None else (top >= o.threshold).astype(float)
    names = members(o.providers, groups)
    mine = providers[providers["provider"].isin(names)]
    if mine.empty:  # e.g. no porters in this market: the group holds nothing
        return pd.Series(0.0, index=providers["run_id"].unique())
    group = mine.groupby(["run_id", "step"])[share].sum()
    if o.kind == "provider":
        # mean over the group's active providers in each quarter (exited ones have no values)
        per_step = mine[mine["status"] == "active"].groupby(["run_id", "step"])[o.column].mean()
        return _at(per_step, o.at)
    if o.kind == "share":
        return _at(group, o.at)
    if o.kind in ("reaches_share", "quarters_to_share") and o.sustained > 1:
        # the share held for `sustained` quarters in a row: a rolling minimum, dated by the first of them
        held = group.groupby("run_id", group_keys=False).apply(lambda s: s.rolling(o.sustained).min().shift(1 - o.sustained))
        group = held.fillna(-1.0)
    if o.kind == "reaches_share":
        reached = group.groupby("run_id").max() >= o.threshold
        if o.survive:
            reached &= _active_at_end(mine, prov_last)
        return reached.astype(float)
    if o.kind == "quarters_to_share":
        hit = group[group >= o.threshold].reset_index()
        first = hit.groupby("run_id")["step"].min() + 1  # quarters from the start, counting the first
        return first.reindex(providers["run_id"].unique()).astype(float)  # NaN: never reached
    if o.kind == "survives":
        return _active_at_end(mine, prov_last).astype(float)
    if o.kind == "entered":
        return (mine["status"] != "pending").groupby(mine["run_id"]).any().astype(float)
    raise ValueError(o.kind)


def _at(per_step: pd.Series, at: str) -> pd.Series:
    """Per run from a (run_id, step) series: the final, first, max or mean value, or final minus first."""
    by_run = per_step.groupby("run_id")
    if at == "final":
        return by_run.last()
    if at == "first":
        return by_run.first()
    if at == "change":
        return by_run.last() - by_run.first()
    return by_run.agg(at)


def _active_at_end(rows: pd.DataFrame, prov_last: pd.Series) -> pd.Series:
    end = rows[prov_last.loc[rows.index]]
    return (end["status"] == "active").groupby(end["run_id"]).all()


# ----------------------------------------------------------------- summaries
def quantile_table(frame: pd.DataFrame, keys: list[str], variables: list[str]) -> pd.DataFrame:
    """Long table: keys, variable, n, mean, median, q05, q25, q75, q95 (NaN rows ignored)."""
    variables = [v for v in variables if v in frame.columns]
    grouped = frame.groupby(keys, sort=True)[variables]
    parts = {"n": grouped.count(), "mean": grouped.mean(), "median": grouped.median()}
    for label, q in QUANTILES.items():
        parts[label] = grouped.quantile(q)
    stacked = {label: part.stack(future_stack=True) for label, part in parts.items()}
    table = pd.DataFrame(stacked)
    table.index = table.index.set_names([*keys, "variable"])
    table["n"] = table["n"].astype("int64")
    return table.reset_index()[[*keys, "variable", "n", "mean", "median", "q05", "q25", "q75", "q95"]]


def market_quantiles(market: pd.DataFrame) -> pd.DataFrame:
    return quantile_table(market, ["design_index", "step", "quarter"], list(MARKET_VARIABLES))


def provider_quantiles(providers: pd.DataFrame) -> pd.DataFrame:
    return quantile_table(providers, ["design_index", "step", "quarter", "provider"], list(SHARE_VARIABLES))


def point_summary(outcome_table: pd.DataFrame, runs: pd.DataFrame, names: list[str]) -> pd.DataFrame:
    """Per design point and outcome: runs ok/failed, the quantiles across replicates and the 95 % interval
    of the mean (``ci_low``, ``ci_high``: Student t, Wilson for a yes/no outcome; sim.experiment.replication)."""
    from sim.experiment.replication import mean_interval

    table = quantile_table(outcome_table, ["design_index"], names)
    bounds = {}
    for name in names:
        if name not in outcome_table:
            continue
        binary = is_binary_column(outcome_table[name])
        for d, values in outcome_table.groupby("design_index")[name]:
            _, low, high, _ = mean_interval(values, binary=binary)
            bounds[(d, name)] = (low, high)
    keys = list(zip(table["design_index"], table["variable"]))
    table["ci_low"] = [bounds.get(k, (np.nan, np.nan))[0] for k in keys]
    table["ci_high"] = [bounds.get(k, (np.nan, np.nan))[1] for k in keys]
    counts = runs.assign(failed=runs["status"] != "ok").groupby("design_index")["failed"].agg(["sum", "size"])
    table = table.merge(counts.rename(columns={"sum": "runs_failed", "size": "runs"}).reset_index(),
                        on="design_index", how="left")
    return table


def is_binary_column(values: pd.Series) -> bool:
    """A yes/no outcome: every defined value is 0 or 1 (its interval is Wilson's)."""
    from sim.experiment.replication import is_binary

    return is_binary(values.to_numpy(dtype=float))


def select(design: pd.DataFrame, selection: dict[str, Any]) -> list[int]:
    """Design indices whose parameters take the given values (numbers compared with isclose)."""
    keep = pd.Series(True, index=design.index)
    for name, value in selection.items():
        column = design[name]
        numeric = isinstance(value, (int, float)) and not isinstance(value, bool)
        keep &= np.isclose(column.astype(float), float(value)) if numeric else column == value
    return [int(d) for d in design.loc[keep, "design_index"]]


def verdicts(spec: Spec, design: pd.DataFrame, outcome_table: pd.DataFrame) -> pd.DataFrame:
    """One row per verdict of the spec: the means at ``at`` and ``against``, the difference with its 95 %
    interval (paired by replicate when both sides are one design point run with common random numbers,
    else Welch), and the verdict word (sim.experiment.replication.verdict_word)."""
    from sim.experiment.replication import difference_interval, verdict_word

    rows = []
    for v in spec.verdicts:
        at = select(design, v.at)
        data = outcome_table[["design_index", "replicate", v.outcome]]
        a = data[data["design_index"].isin(at)]
        if v.against is None:
            res = difference_interval(a[v.outcome].to_numpy(dtype=float), v.value)
            mean_b, against_text = float(v.value), f"{v.value:g}"
        else:
            against = select(design, v.against)
            b = data[data["design_index"].isin(against)]
            paired = spec.common_random_numbers and len(at) == 1 and len(against) == 1
            if paired:
                both = a.merge(b, on="replicate", suffixes=("_a", "_b"))
                res = difference_interval(both[f"{v.outcome}_a"].to_numpy(dtype=float),
                                          both[f"{v.outcome}_b"].to_numpy(dtype=float), paired=True)
            else:
                res = difference_interval(a[v.outcome].to_numpy(dtype=float), b[v.outcome].to_numpy(dtype=float))
            mean_b = float(b[v.outcome].mean())
            against_text = _selection_text(v.against)
        rows.append({"name": v.name, "claim": v.claim, "outcome": v.outcome, "at": _selection_text(v.at),
                     "against": against_text, "expect": v.expect, "mean_at": float(a[v.outcome].mean()),
                     "mean_against": mean_b, **res, "verdict": verdict_word(res["low"], res["high"], v.expect)})
    return pd.DataFrame(rows, columns=["name", "claim", "outcome", "at", "against", "expect", "mean_at", "mean_against",
                                       "diff", "low", "high", "n_at", "n_against", "method", "verdict"])


def _selection_text(selection: dict[str, Any]) -> str:
    return ", ".join(f"{k}={v}" for k, v in selection.items()) or "all points"


# --------------------------------------------------------------- sensitivity
@dataclass
class Sensitivity:
    method: str
    outcome: str
    table: pd.DataFrame  # one row per parameter
    blocks_used: int
    blocks_dropped: int
    points_missing: list[int] = field(default_factory=list)
    noise_share: float | None = None  # share of the variance of point means due to replicate noise
    master_seed: int | None = None  # the master seed of this sample, when the design has several

    def note(self) -> str:
        if not self.blocks_dropped:
            return f"{self.method} indices of {self.outcome} from {self.blocks_used} complete blocks"
        return (f"{self.method} indices of {self.outcome} from {self.blocks_used} blocks; {self.blocks_dropped} dropped "
                f"because design points {self.points_missing[:10]}{'...' if len(self.points_missing) > 10 else ''} "
                f"have no finished run")


def point_means(outcome_table: pd.DataFrame, outcome: str, points: int) -> np.ndarray:
    """Mean over replicates per design point, in design-index order (NaN: no run finished)."""
    means = outcome_table.groupby("design_index")[outcome].mean()
    return means.reindex(range(points)).to_numpy(dtype=float)


def sensitivities(spec: Spec, design: pd.DataFrame, outcome_table: pd.DataFrame, outcome: str) -> list[Sensitivity]:
    """The indices of ``outcome``: one Sensitivity per master seed (one for a design with one seed)."""
    if "master_seed" not in design.columns:
        return [sensitivity(spec, design, outcome_table, outcome)]
    results = []
    for master, part in design.groupby("master_seed", sort=False):
        local = part.sort_values("design_index")
        to_local = dict(zip(local["design_index"], local["local_index"]))
        rows = outcome_table[outcome_table["design_index"].isin(to_local)]
        rows = rows.assign(design_index=rows["design_index"].map(to_local))
        res = sensitivity(spec, local.assign(design_index=local["local_index"]), rows, outcome, master=int(master))
        results.append(res)
    return results


def agreement(results: list[Sensitivity]) -> dict[str, Any]:
    """Do the indices of two master seeds agree?  Criterion: for every parameter, the two seeds' ST differ
    by no more than the 95 % interval of their difference, 1.96 sqrt(se_a^2 + se_b^2) with se = conf / 1.96
    from SALib's bootstrap (independent samples), nor S1; and the parameter with the largest ST is the
    same.  Returns the largest gaps, their allowances and the verdict."""
    a, b = results[0].table.set_index("parameter"), results[1].table.set_index("parameter")
    index, conf = ("ST", "ST_conf") if "ST" in a else ("mu_star", "mu_star_conf")
    gaps = (a[index] - b[index]).abs()
    allowed = np.sqrt(a[conf] ** 2 + b[conf] ** 2)
    outside = gaps > allowed
    if "S1" in a:
        outside |= (a["S1"] - b["S1"]).abs() > np.sqrt(a["S1_conf"] ** 2 + b["S1_conf"] ** 2)
    ok = not bool(outside.any())
    same_top = a[index].idxmax() == b[index].idxmax()
    return {"outcome": results[0].outcome, "index": index, "seeds": [r.master_seed for r in results[:2]],
            "max_gap": float(gaps.max()), "gap_parameter": str(gaps.idxmax()),
            "allowed_there": float(allowed[gaps.idxmax()]), "within_intervals": ok,
            "outside": {str(p): {f"{index}_a": float(a.loc[p, index]), f"{index}_b": float(b.loc[p, index]),
                                 "gap": float(gaps[p]), "allowed": float(allowed[p])} for p in gaps.index[outside]},
            "top": [str(a[index].idxmax()), str(b[index].idxmax())], "same_top": bool(same_top),
            "agree": bool(ok and same_top),
            "criterion": f"every parameter's {index} (and S1) differs between the seeds by no more than the 95 % "
                         f"interval of the difference (SALib's bootstrap conf of each, combined), and the top "
                         f"parameter by {index} is the same"}


def sensitivity(spec: Spec, design: pd.DataFrame, outcome_table: pd.DataFrame, outcome: str,
                master: int | None = None) -> Sensitivity:
    from SALib.analyze import morris, sobol  # imported here: SALib takes ~1 s to import

    design = design.sort_values("design_index")
    names = list(spec.params)
    columns = [c.removeprefix("unit:") for c in design.columns if c.startswith("unit:")]
    if columns != names:  # Saltelli blocks follow the order the sample was drawn in
        raise AnalysisError(f"the spec's parameters ({', '.join(names)}) are not those of the stored design "
                            f"({', '.join(columns)}), in that order")
    problem = {"num_vars": len(names), "names": names, "bounds": [[0.0, 1.0]] * len(names)}
    y = point_means(outcome_table, outcome, len(design))
    d = len(names)
    kind = spec.design.kind
    if kind == "sobol":
        block = 2 * d + 2 if spec.design.second_order else d + 2
    elif kind == "morris":
        block = d + 1
    else:
        raise AnalysisError(f"sensitivity indices need a sobol or morris design, not {kind}")
    complete = ~np.isnan(y).reshape(-1, block).any(axis=1)
    missing = [int(i) for i in np.flatnonzero(np.isnan(y))]
    if np.isnan(y).all():
        raise AnalysisError(f"{outcome} is undefined in every run (e.g. a share threshold no run reaches): "
                            f"no {kind} indices")
    if not complete.any():
        raise AnalysisError(f"no complete {kind} block for {outcome}: every block has a design point "
                            f"without a finished run (or with an undefined outcome)")
    keep = np.repeat(complete, block)
    seed = design_seed(spec.seed if master is None else master)
    if kind == "sobol":
        res = sobol.analyze(problem, y[keep], calc_second_order=spec.design.second_order, seed=seed)
        table = pd.DataFrame({"parameter": names, "S1": res["S1"], "S1_conf": res["S1_conf"],
                              "ST": res["ST"], "ST_conf": res["ST_conf"]})
    else:
        unit = design[[f"unit:{n}" for n in names]].to_numpy(dtype=float)
        res = morris.analyze(problem, unit[keep], y[keep], num_levels=spec.design.levels, seed=seed)
        table = pd.DataFrame({"parameter": names, "mu_star": res["mu_star"], "mu_star_conf": res["mu_star_conf"],
                              "sigma": res["sigma"], "mu": res["mu"]})
    return Sensitivity(kind, outcome, table, int(complete.sum()), int((~complete).sum()), missing,
                       noise_share(outcome_table, outcome), master)


def noise_share(outcome_table: pd.DataFrame, outcome: str) -> float | None:
    """Share of the variance of the per-point means that is replicate noise (within-point variance
    over the number of replicates): indices of a stochastic model are only as clean as this is small."""
    by_point = outcome_table.groupby("design_index")[outcome]
    counts = by_point.count()
    if counts.max() < 2:
        return None
    within = by_point.var(ddof=1).mean() / counts[counts > 0].mean()
    total = by_point.mean().var(ddof=1)
    return float(within / total) if total > 0 else None
