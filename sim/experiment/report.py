"""From stored results to summary tables and figures (what ``aicloud plot`` re-draws).

    OUT/summary/outcomes.parquet            one row per finished run: its outcomes
    OUT/summary/points.parquet              per design point and outcome: runs, failures, quantiles
    OUT/summary/quantiles_market.parquet    per design point and quarter: market variables' quantiles
    OUT/summary/quantiles_providers.parquet per design point, quarter and provider: shares' quantiles
    OUT/summary/sensitivity_<outcome>.csv   Sobol'/Morris indices (a row per parameter and master seed)
    OUT/summary/agreement_<outcome>.json    with several master seeds: do their indices agree?
    OUT/summary/verdicts.csv|.json          each verdict: difference, 95 % interval, verdict
    OUT/summary/replication.csv             replicates per design point and the headline interval
    OUT/summary/analysis.json               what was analysed, notes on failed runs
    OUT/figures/<name>.png|.svg
"""

from __future__ import annotations

import copy
from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd

from sim.colors import config_provider_names
from sim.config import Config, ConfigError, validate
from sim.experiment import analysis, labels, plots
from sim.experiment.analysis import AnalysisError
from sim.experiment.spec import Figure, Spec, validate_spec
from sim.experiment.store import Store
from sim.output import write_csv, write_json, write_parquet

Z95 = 1.959964


def stored_spec(store: Store) -> Spec:
    """The spec saved with the results, parameters in design order (the manifest's JSON keys are sorted,
    but the design's column order is what the samplers used)."""
    info = store.manifest()
    raw = dict(info["spec"])
    order = [c for c in store.design().columns
             if c not in ("design_index", "label", "master_seed", "local_index") and not c.startswith("unit:")]
    raw["params"] = {name: raw["params"][name] for name in order}
    return validate_spec(raw, info.get("spec_source") or str(store.manifest_path))


def report(root: str | Path, *, spec: Spec | None = None, formats: tuple[str, ...] = ("png", "svg"),
           log=print) -> dict[str, Any]:
    store = Store(root)
    info = store.manifest()
    spec = spec or stored_spec(store)
    runs = store.runs()
    providers, market = store.table("providers"), store.table("market")
    if market.empty:
        raise ConfigError([f"{store.root}: no finished runs to analyse ({(runs['status'] == 'failed').sum()} failed)"])
    check_columns(spec, market, providers)
    groups = analysis.provider_groups(info["config"])
    outcomes = analysis.outcomes(spec, providers, market, groups)
    names = list(spec.all_outcomes())
    summary = store.root / "summary"
    points = analysis.point_summary(outcomes, runs, names)
    write_parquet(summary / "outcomes.parquet", outcomes)
    write_parquet(summary / "points.parquet", points)
    mq = analysis.market_quantiles(market)
    pq = analysis.provider_quantiles(providers)
    write_parquet(summary / "quantiles_market.parquet", mq)
    write_parquet(summary / "quantiles_providers.parquet", pq)
    ctx = Context(spec, store.design(), runs, outcomes, providers, market, mq, pq, groups, summary,
                  base=_base_config(info["config"]))
    ctx.provider_order = config_provider_names(info["config"])
    notes: list[str] = []
    failed = int((runs["status"] == "failed").sum())
    if failed:
        notes.append(f"{failed} of {len(runs)} runs failed; outcomes use the runs that finished")
    missing = analysis.undefined(outcomes, list(spec.outcomes))
    for name in missing:
        notes.append(f"outcome {name} is undefined in every finished run ({_why_undefined(spec.outcomes[name])})")
    result_verdicts = []
    if spec.verdicts:
        table = analysis.verdicts(spec, store.design(), outcomes)
        write_csv(summary / "verdicts.csv", table)
        result_verdicts = table.to_dict(orient="records")
        write_json(summary / "verdicts.json", _finite(result_verdicts))
        for row in result_verdicts:
            log(f"verdict {row['name']}: {row['verdict']}: {row['outcome']} at {row['at']} minus {row['against']} = "
                f"{_num(row['diff'])} (95 % interval {_num(row['low'])} to {_num(row['high'])}; {row['method']})")
    replication_summary = _replication_summary(store, spec)
    if replication_summary:
        log(f"replicates: {replication_summary['text']}")
    ctx.verdicts = pd.DataFrame(result_verdicts)
    figs = list(spec.figures or default_figures(spec))
    if spec.verdicts and not any(f.kind == "verdicts" for f in figs):
        figs.append(Figure(kind="verdicts", name="verdicts"))
    figures, not_drawn = [], []
    for i, fig_spec in enumerate(figs):
        name = fig_spec.name or f"{i + 1:02d}_{fig_spec.kind}"
        try:  # one figure (or one outcome) that cannot be drawn must not take the others down
            fig, note = draw(ctx, fig_spec)
        except (AnalysisError, ConfigError) as exc:
            reason = "; ".join(exc.problems) if isinstance(exc, ConfigError) else str(exc)
            notes.append(f"{name}: not drawn: {reason}")
            not_drawn.append(name)
            continue
        if note:
            notes.append(f"{name}: {note}")
        figures += [str(p) for p in plots.save(fig, store.root / "figures" / name, formats)]
    result = {"experiment": spec.name, "runs": len(runs), "failed": failed,
              "pending": int((~runs["status"].isin(["ok", "failed"])).sum()), "figures": figures,
              "figures_not_drawn": not_drawn, "undefined_outcomes": missing, "notes": notes,
              "replicate_rule": info.get("replicate_rule"), "replication": replication_summary,
              "verdicts": _finite(result_verdicts)}
    write_json(summary / "analysis.json", result)
    for note in notes:
        log(f"note: {note}")
    return result


def _num(x) -> str:
    return "n/a" if x is None or not np.isfinite(x) else f"{x:.4g}"


def _finite(rows: list[dict]) -> list[dict]:
    """JSON has no NaN: undefined numbers become null."""
    return [{k: (None if isinstance(v, float) and not np.isfinite(v) else v) for k, v in r.items()} for r in rows]


def _replication_summary(store: Store, spec: Spec) -> dict[str, Any] | None:
    """What the replicate rule did: replicates per point, and at how many points the width was reached."""
    table = store.replication()
    if table is None or spec.replication is None:
        return None
    write_csv(store.root / "summary" / "replication.csv", table)
    reached = int(table["reached"].sum())
    n = table["n"]
    return {"points": len(table), "reached": reached, "replicates_min": int(n.min()), "replicates_max": int(n.max()),
            "replicates_total": int(n.sum()), "widest": float(table["width"].replace(np.inf, np.nan).max()),
            "text": f"{int(n.min())}-{int(n.max())} per point ({int(n.sum())} runs); the 95 % interval of "
                    f"{spec.replication.outcome} is narrower than {spec.replication.width:g} at {reached} of "
                    f"{len(table)} points (cap {spec.replicates})"}


def _why_undefined(o) -> str:
    if o.kind == "quarters_to_share":
        return f"no run reaches a share of {o.threshold:g}" + (f" for {o.sustained} quarters" if o.sustained > 1 else "")
    if o.kind == "provider":
        return "the providers named are never active"
    return "no run records it"


def check_columns(spec: Spec, market: pd.DataFrame, providers: pd.DataFrame) -> None:
    allowed = [c for c in market.columns if c not in ("run_id", "design_index", "replicate", "step", "quarter")]
    bad = [f"{spec.source}: outcomes.{name}.column: {o.column!r} is not a market column; allowed: {', '.join(allowed)}"
           for name, o in spec.outcomes.items() if o.kind in ("final", "change") and o.column not in market.columns]
    bad += [f"{spec.source}: figures[{i}].column: {f.column!r} is not a market column; allowed: {', '.join(allowed)}"
            for i, f in enumerate(spec.figures) if f.column is not None and f.column not in market.columns]
    cols = [c for c in providers.columns if c not in ("run_id", "design_index", "replicate", "step", "quarter")]
    bad += [f"{spec.source}: outcomes.{name}.column: {o.column!r} is not a provider column; allowed: {', '.join(cols)}"
            for name, o in spec.outcomes.items() if o.kind == "provider" and o.column not in providers.columns]
    if bad:
        raise ConfigError(bad)


def default_figures(spec: Spec) -> list[Figure]:
    figs = [Figure(kind="shares", points="first"), Figure(kind="timeseries")]
    if spec.design.kind in ("sobol", "morris"):
        figs.append(Figure(kind="sensitivity", outcome=["final_hhi_revenue", "leader_share_revenue"]))
    return figs


def _base_config(raw: dict) -> Config | None:
    """The sweep's base config (to put parameter values in words); None if it no longer validates."""
    try:
        return validate(raw, "sweep.json")
    except ConfigError:
        return None


class Context:
    def __init__(self, spec, design, runs, outcomes, providers, market, mq, pq, groups, summary_dir,
                 base: Config | None = None):
        self.summary_dir = summary_dir
        self.spec, self.design, self.runs, self.outcomes = spec, design, runs, outcomes
        self.providers, self.market, self.mq, self.pq, self.groups = providers, market, mq, pq, groups
        self.base = base
        if spec.design.labels:  # the spec named its scenarios
            self.labels = dict(zip(design["design_index"], design["label"]))
        else:  # values in words: 'release=never', not 'release=99'
            names = [n for n in spec.params if n in design.columns]
            self.labels = {int(row["design_index"]): labels.point_label(spec, {n: row[n] for n in names}, base)
                           for _, row in design.iterrows()}
        self.provider_order: list[str] = []
        self.verdicts = pd.DataFrame()

    def value_text(self, name: str, value) -> str:
        return labels.param_value_text(self.spec, name, value, self.base)

    def outcome_is_share(self, name: str) -> bool:
        return labels.is_share(self.spec.all_outcomes()[name])

    def param_label(self, name: str) -> str:
        return self.spec.params[name].label or name

    def outcome_label(self, name: str) -> str:
        return self.spec.all_outcomes()[name].label or name

    def with_params(self) -> pd.DataFrame:
        params = self.design[["design_index", *self.spec.params]]
        return self.outcomes.merge(params, on="design_index", how="inner")

    def restricted(self, where: dict) -> "Context":
        """The same results limited to the design points where parameters take the given values."""
        keep = pd.Series(True, index=self.design.index)
        for name, value in where.items():
            keep &= np.isclose(self.design[name], value) if _numeric(value) else self.design[name] == value
        design = self.design[keep]
        if design.empty:
            raise ConfigError([f"{self.spec.source}: figures: no design point has {where}"])
        ctx = copy.copy(self)
        ctx.design = design
        return ctx


def draw(ctx: Context, f: Figure):
    """The figure and an optional note (e.g. on dropped Sobol' blocks)."""
    if f.where:
        ctx = ctx.restricted(f.where)
    if f.kind in ("prim", "feature_scoring", "parcoords"):
        from sim.experiment import ema  # EMA Workbench: imported only when such a figure is asked for

        return ema.draw(ctx, f)
    if f.kind in ("heatmap", "curve"):
        for o in f.outcomes:
            if ctx.outcomes.empty or ctx.outcomes[o].isna().all():
                raise AnalysisError(f"outcome {o} is undefined in every finished run")
    title = f.title
    if f.kind == "shares":
        return plots.shares_figure(ctx.pq, select_points(ctx, f.points or "corners"), ctx.labels,
                                   metric=f.metric, title=title, order=ctx.provider_order), None
    if f.kind == "timeseries":
        table, ylabel, scale = series_quantiles(ctx, f)
        return plots.timeseries_figure(table, select_points(ctx, f.points or "all"), ctx.labels,
                                       ylabel=ylabel, title=title, scale=scale), None
    if f.kind == "heatmap":
        grid, low, high, counts = heatmap_grid(ctx, f)
        share = ctx.outcome_is_share(f.outcome)
        if share:
            grid, low, high = 100 * grid, 100 * low, 100 * high
        # A probability (the mean of a yes/no outcome) is shown on its whole scale, 0 to 1: a grid of
        # zeros would otherwise get a colour bar from -0.1 to 0.1.
        probability = f.stat == "mean" and analysis.is_binary_column(ctx.outcomes[f.outcome])
        lo_n, hi_n = int(np.nanmin(counts.to_numpy(dtype=float))), int(np.nanmax(counts.to_numpy(dtype=float)))
        n_text = f"{lo_n}" if lo_n == hi_n else f"{lo_n}-{hi_n}"
        return plots.heatmap_figure(grid, x=f.x, y=f.y, xlabel=ctx.param_label(f.x), ylabel=ctx.param_label(f.y),
                                    label=f"{ctx.outcome_label(f.outcome)} ({'%, ' if share else ''}{f.stat}; "
                                          f"95 % interval below it; {n_text} runs per cell)",
                                    title=title, xtexts=[ctx.value_text(f.x, v) for v in grid.columns],
                                    ytexts=[ctx.value_text(f.y, v) for v in grid.index], low=low, high=high,
                                    limits=(0.0, 100.0 if share else 1.0) if probability else None), None
    if f.kind == "winners":
        table = winners_table(ctx, f)
        return plots.winners_figure(table, xlabel=ctx.param_label(f.x), title=title,
                                    xtexts={v: ctx.value_text(f.x, v) for v in table.index},
                                    order=ctx.provider_order, metric=f.metric), None
    if f.kind == "verdicts":
        if ctx.verdicts.empty:
            raise AnalysisError("no verdicts to draw")
        labels_ = {o: ctx.outcome_label(o) for o in ctx.verdicts["outcome"].unique()}
        return plots.verdicts_figure(ctx.verdicts, labels_, title or f"{ctx.spec.name}: verdicts "
                                     "(difference of means, 95 % interval)"), None
    if f.kind == "curve":
        table, binary = curve_table(ctx, f)
        share = ctx.outcome_is_share(f.outcomes[0]) and not binary
        if share:
            table = table.assign(**{c: 100 * table[c] for c in ("median", *analysis.QUANTILES)})
        texts = {v: ctx.value_text(f.x, v) for v in table["x"].unique()}
        # A stand-in value ('never', 'none') cannot sit on a numeric axis: such an x is shown as categories.
        categorical = ctx.spec.params[f.x].type == "categorical" or any(
            t in ("never", "none") for t in texts.values())
        return plots.curve_figure(table, x=f.x, hue=f.hue, xlabel=ctx.param_label(f.x),
                                  ylabel=ctx.outcome_label(f.outcomes[0]) + (" (%)" if share else ""), title=title,
                                  binary=binary, categorical_x=categorical, xtexts=texts,
                                  hue_text=(lambda v: ctx.value_text(f.hue, v)) if f.hue else None), None
    groups, skipped, agreements = [], [], []
    for o in f.outcomes:
        try:
            groups.append(analysis.sensitivities(ctx.spec, ctx.design, ctx.outcomes, o))
        except AnalysisError as exc:
            skipped.append(str(exc))
    if not groups:
        raise AnalysisError("; ".join(skipped))
    for results in groups:
        res0 = results[0]
        table = pd.concat([r.table.assign(master_seed=r.master_seed) if r.master_seed is not None else r.table
                           for r in results], ignore_index=True)
        write_csv(ctx.summary_dir / f"sensitivity_{res0.outcome}.csv", table)
        info = [{"master_seed": r.master_seed, "method": r.method, "blocks_used": r.blocks_used,
                 "blocks_dropped": r.blocks_dropped, "points_missing": r.points_missing,
                 "noise_share": None if r.noise_share is None else round(r.noise_share, 4)} for r in results]
        write_json(ctx.summary_dir / f"sensitivity_{res0.outcome}.json", info[0] if len(info) == 1 else {"seeds": info})
        if len(results) >= 2:
            agree = analysis.agreement(results)
            agreements.append(agree)
            write_json(ctx.summary_dir / f"agreement_{res0.outcome}.json", agree)
    labels = {n: ctx.param_label(n) for n in ctx.spec.params} | {o: ctx.outcome_label(o) for o in f.outcomes}
    flat = [r for results in groups for r in results]
    note = "; ".join([r.note() for r in flat if r.blocks_dropped] + [f"left out: {s}" for s in skipped]
                     + [f"indices of {a['outcome']} {'agree' if a['agree'] else 'do NOT agree'} across master seeds "
                        f"{a['seeds'][0]} and {a['seeds'][1]} (largest {a['index']} gap {a['max_gap']:.3f} at "
                        f"{a['gap_parameter']}, allowed {a['allowed_there']:.3f}; top {a['top'][0]} / {a['top'][1]})"
                        for a in agreements]) or None
    return plots.sensitivity_figure(groups, labels, title, agreements), note


def select_points(ctx: Context, which: list[int] | str) -> list[int]:
    available = list(ctx.design["design_index"])
    n = len(available)
    if isinstance(which, list):
        bad = [p for p in which if p not in available]
        if bad:
            raise ConfigError([f"{ctx.spec.source}: figures: design point(s) {bad} do not exist (or are excluded "
                               f"by where); allowed: {_ranges(available)}"])
        return which
    if which == "first" or n == 1:
        return available[:1]
    if which == "all":
        if n <= plots.MAX_LINES:
            return available
        return [available[int(round(i))] for i in np.linspace(0, n - 1, plots.MAX_LINES)]
    return corners(ctx)


def _ranges(ids: list[int]) -> str:
    return f"{ids[0]}..{ids[-1]}" if ids == list(range(ids[0], ids[-1] + 1)) else ", ".join(map(str, ids))


def _numeric(value) -> bool:
    return isinstance(value, (int, float)) and not isinstance(value, bool)


def corners(ctx: Context) -> list[int]:
    """Design points at the extremes of the first two parameters (others at their first value)."""
    names = [n for n in ctx.spec.params if ctx.design[n].nunique() > 1][:2]
    design = ctx.design
    if not names:
        return list(design["design_index"])[:1]
    others = [n for n in ctx.spec.params if n not in names and design[n].nunique() > 1]
    mask = pd.Series(True, index=design.index)
    for n in others:
        mask &= design[n] == design[n].iloc[0]
    picked = []
    for combo in _extremes(design, names):
        rows = design[mask & np.logical_and.reduce([design[n] == v for n, v in zip(names, combo)])]
        if not rows.empty:
            picked.append(int(rows["design_index"].iloc[0]))
    return list(dict.fromkeys(picked)) or list(design["design_index"])[:1]


def _extremes(design: pd.DataFrame, names: list[str]) -> list[tuple]:
    ends = []
    for n in names:
        values = list(dict.fromkeys(design[n]))
        try:
            values = sorted(values)
        except TypeError:
            pass
        ends.append([values[0], values[-1]] if len(values) > 1 else values)
    if len(ends) == 1:
        return [(v,) for v in ends[0]]
    return [(a, b) for b in reversed(ends[1]) for a in ends[0]]  # top row first, as the panels read


def series_quantiles(ctx: Context, f: Figure) -> tuple[pd.DataFrame, str, float]:
    if f.providers is not None:
        names = analysis.members(f.providers, ctx.groups)
        mine = ctx.providers[ctx.providers["provider"].isin(names)]
        series = mine.groupby(["run_id", "design_index", "step", "quarter"], as_index=False)[f"share_{f.metric}"].sum()
        table = analysis.quantile_table(series, ["design_index", "step", "quarter"], [f"share_{f.metric}"])
        who = f.providers if isinstance(f.providers, str) else ", ".join(names)
        return table, f"share of {f.metric}: {who} (%)", 100.0
    column = f.column or f"hhi_{f.metric}"
    table = ctx.mq[ctx.mq["variable"] == column]
    if table.empty:
        table = analysis.quantile_table(ctx.market, ["design_index", "step", "quarter"], [column])
    if table.empty:
        raise ConfigError([f"{ctx.spec.source}: figures: {column!r} is not a market column"])
    return table, column.replace("hhi_", "HHI, ").replace("_", " "), 1.0


def heatmap_grid(ctx: Context, f: Figure) -> tuple[pd.DataFrame, pd.DataFrame, pd.DataFrame, pd.DataFrame]:
    """Cells of the statistic with the low and high ends of its 95 % interval and the runs per cell
    (sim.experiment.replication: t or Wilson for a mean, order statistics for a median)."""
    from sim.experiment.replication import mean_interval, median_interval

    data = ctx.with_params()
    binary = analysis.is_binary_column(data[f.outcome])
    rows = []
    for (y, x), values in data.groupby([f.y, f.x])[f.outcome]:
        stat, low, high, n = mean_interval(values, binary=binary) if f.stat == "mean" else median_interval(values)
        rows.append({f.y: y, f.x: x, "stat": stat, "low": low, "high": high, "n": n})
    cells = pd.DataFrame(rows)
    grids = [cells.pivot(index=f.y, columns=f.x, values=v).sort_index() for v in ("stat", "low", "high", "n")]
    return tuple(grids)  # type: ignore[return-value]


def winners_table(ctx: Context, f: Figure) -> pd.DataFrame:
    """Share of runs in which each provider has the largest final share of ``f.metric``, per value of x
    (rows: x values; columns: providers; plus n, the runs)."""
    share = f"share_{f.metric}"
    last = ctx.providers.groupby("run_id")["step"].transform("max") == ctx.providers["step"]
    final = ctx.providers[last & ctx.providers["design_index"].isin(ctx.design["design_index"])]
    leaders = final.loc[final.groupby("run_id")[share].idxmax(), ["run_id", "design_index", "provider"]]
    leaders = leaders.merge(ctx.design[["design_index", f.x]], on="design_index")
    counts = leaders.groupby([f.x, "provider"]).size().unstack("provider", fill_value=0)
    n = counts.sum(axis=1)
    table = counts.div(n, axis=0)
    table["n"] = n
    return table.sort_index()


def curve_table(ctx: Context, f: Figure) -> tuple[pd.DataFrame, bool]:
    outcome = f.outcomes[0]
    data = ctx.with_params().rename(columns={f.x: "x"}) if f.x != f.hue else ctx.with_params().assign(x=lambda d: d[f.x])
    keys = ["x"] + ([f.hue] if f.hue else [])
    values = data[outcome].dropna()
    binary = bool(len(values)) and set(np.unique(values)) <= {0.0, 1.0}
    grouped = data.groupby(keys, sort=True)[outcome]
    if binary:
        table = grouped.agg(["mean", "count"]).reset_index()
        table["low"], table["high"] = wilson(table["mean"], table["count"])
        return table, True
    parts = {"median": grouped.median(), **{k: grouped.quantile(q) for k, q in analysis.QUANTILES.items()}}
    return pd.DataFrame(parts).reset_index(), False


def wilson(p: pd.Series, n: pd.Series) -> tuple[pd.Series, pd.Series]:
    """Wilson score 95 % interval for a proportion."""
    n = n.clip(lower=1)
    centre = (p + Z95**2 / (2 * n)) / (1 + Z95**2 / n)
    half = Z95 * np.sqrt(p * (1 - p) / n + Z95**2 / (4 * n**2)) / (1 + Z95**2 / n)
    return centre - half, centre + half
