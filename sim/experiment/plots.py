"""Figures of a sweep (matplotlib, Agg): bands over time, heatmaps, curves, sensitivity bars.

Every function takes summary tables and returns a Figure; ``save`` writes it
as PNG and SVG atomically, without dates, so the same results give the same files.
"""

from __future__ import annotations

import sys
import textwrap
from pathlib import Path
from typing import Any

import matplotlib

if "ipykernel" not in sys.modules:  # headless files; in Jupyter keep its inline backend so figures show
    matplotlib.use("Agg")
import matplotlib.pyplot as plt  # noqa: E402
import numpy as np  # noqa: E402
import pandas as pd  # noqa: E402

from sim.colors import palette, provider_styles  # noqa: E402
from sim.output import atomic_path  # noqa: E402

METADATA = {"png": {"Software": None}, "svg": {"Date": None, "Creator": None}}
MAX_PANELS = 9
MAX_LINES = 12


def save(fig, stem: Path, formats: tuple[str, ...] = ("png", "svg")) -> list[Path]:
    paths = []
    for fmt in formats:
        target = Path(f"{stem}.{fmt}")
        # a fixed salt makes SVG element ids (and so the file) the same on every save
        with atomic_path(target) as tmp, matplotlib.rc_context({"svg.hashsalt": "aicloud-sim"}):
            fig.savefig(tmp, format=fmt, dpi=130, metadata=METADATA.get(fmt, {}))
        paths.append(target)
    plt.close(fig)
    return paths


def _wrap(text: str, width: int = 80) -> str:
    return textwrap.fill(text, width) if text else text


def _quarter_ticks(ax, quarters: pd.Series) -> None:
    """quarters: step -> label."""
    steps = list(quarters.index)
    every = max(1, len(steps) // 8)
    ax.set_xticks(steps[::every])
    ax.set_xticklabels(list(quarters.iloc[::every]), rotation=45, ha="right", fontsize=8)


def _band(ax, x, rows: pd.DataFrame, color, label: str | None, *, outer: bool = True, linestyle: str = "-") -> None:
    ax.plot(x, rows["median"], color=color, lw=1.8, ls=linestyle, label=label)
    ax.fill_between(x, rows["q25"], rows["q75"], color=color, alpha=0.25, lw=0)
    if outer:
        ax.fill_between(x, rows["q05"], rows["q95"], color=color, alpha=0.10, lw=0)


def shares_figure(quantiles: pd.DataFrame, points: list[int], labels: dict[int, str], *, metric: str, title: str,
                  order: list[str] | None = None):
    """Share over time per provider: median line, 50 % and 90 % bands across replicates; a panel per design point.
    ``order``: provider names in config order, which fixes their colours (``sim.colors``), the same as in
    every other figure of the config."""
    points = points[:MAX_PANELS]
    cols = 2 if len(points) == 4 else min(len(points), 3)
    rows_n = int(np.ceil(len(points) / cols))
    fig, axes = plt.subplots(rows_n, cols, figsize=(4.6 * cols + 1.8, 3.4 * rows_n + 0.8), squeeze=False,
                             sharey=True, layout="constrained")
    variable = f"share_{metric}"
    data = quantiles[quantiles["variable"] == variable]
    seen = list(dict.fromkeys(data["provider"]))
    order = [p for p in (order or []) if p in seen] + [p for p in seen if p not in (order or [])]
    styles = provider_styles(order)
    providers = order
    colors = {p: styles[p].color for p in providers}
    for ax, point in zip(axes.flat, points):
        mine = data[data["design_index"] == point]
        for name in providers:
            rows = mine[mine["provider"] == name].sort_values("step")
            if rows.empty or rows["q95"].max() <= 0:
                continue
            _band(ax, rows["step"], rows.assign(**{c: 100 * rows[c] for c in ("median", "q05", "q25", "q75", "q95")}),
                  colors[name], name, linestyle=styles[name].linestyle)
        ax.set_title(labels.get(point, str(point)), fontsize=9)
        ax.grid(alpha=0.3)
        ax.set_ylim(bottom=0)
        _quarter_ticks(ax, mine.drop_duplicates("step").set_index("step")["quarter"].sort_index())
    for ax in axes.flat[len(points):]:
        ax.set_visible(False)
    for ax in axes[:, 0]:
        ax.set_ylabel(f"share of {metric} (%)")
    handles = [plt.Line2D([], [], color=colors[p], ls=styles[p].linestyle, lw=2) for p in providers]
    # Below the panels: a legend beside them reached up to the figure's top edge, into the title.
    width = fig.get_figwidth()
    fig.legend(handles, providers, loc="outside lower center", frameon=False, fontsize=8,
               ncols=max(1, min(len(providers), int(width / 1.6))),
               title="median; bands 50 % and 90 % across replicates", title_fontsize=8)
    fig.suptitle(_wrap(title or f"Share of {metric} across replicates", int(9 * width)))
    return fig


def timeseries_figure(quantiles: pd.DataFrame, points: list[int], labels: dict[int, str], *, ylabel: str,
                      title: str, scale: float = 1.0):
    """One line (median) with a 50 % band per design point; 90 % band too when few points."""
    points = points[:MAX_LINES]
    fig, ax = plt.subplots(figsize=(9, 5), layout="constrained")
    colours = palette(len(points))  # design points, not providers: the same colour-blind-safe scheme
    outer = len(points) <= 3
    for i, point in enumerate(points):
        rows = quantiles[quantiles["design_index"] == point].sort_values("step")
        scaled = rows.assign(**{c: scale * rows[c] for c in ("median", "q05", "q25", "q75", "q95")})
        _band(ax, rows["step"], scaled, colours[i], labels.get(point, str(point)), outer=outer)
    quarters = quantiles.drop_duplicates("step").set_index("step")["quarter"].sort_index()
    _quarter_ticks(ax, quarters)
    ax.set_ylabel(ylabel)
    ax.set_ylim(bottom=0)
    ax.grid(alpha=0.3)
    ax.legend(loc="upper left", bbox_to_anchor=(1.01, 1.0), frameon=False, fontsize=8,
              title="median; band 50 %" + (" and 90 %" if outer else ""), title_fontsize=8)
    ax.set_title(_wrap(title, 70))
    return fig


def heatmap_figure(grid: pd.DataFrame, *, x: str, y: str, xlabel: str, ylabel: str, label: str, title: str,
                   xtexts: list[str] | None = None, ytexts: list[str] | None = None,
                   low: pd.DataFrame | None = None, high: pd.DataFrame | None = None,
                   limits: tuple[float, float] | None = None):
    """grid: index = y values, columns = x values, cells = the outcome statistic; ``low``/``high``: the
    ends of each cell's 95 % interval, printed under the statistic; ``xtexts``/``ytexts``: the values in
    words (e.g. 'never' for a release after the run); ``limits``: the colour scale's ends (e.g. (0, 1)
    for a probability; default: the cells' range)."""
    fig, ax = plt.subplots(figsize=(max(7.5, 1.25 * grid.shape[1] + 3), max(5.5, 0.75 * grid.shape[0] + 2)),
                           layout="constrained")
    values = grid.to_numpy(dtype=float)
    lows = None if low is None else low.reindex(index=grid.index, columns=grid.columns).to_numpy(dtype=float)
    highs = None if high is None else high.reindex(index=grid.index, columns=grid.columns).to_numpy(dtype=float)
    vmin, vmax = limits or (None, None)
    image = ax.imshow(values, origin="lower", aspect="auto", cmap="viridis", vmin=vmin, vmax=vmax)
    ax.set_xticks(range(grid.shape[1]), xtexts or [_fmt(v) for v in grid.columns])
    ax.set_yticks(range(grid.shape[0]), ytexts or [_fmt(v) for v in grid.index])
    finite = values[np.isfinite(values)]
    middle = (finite.min() + finite.max()) / 2 if finite.size else 0
    if limits is not None:
        middle = (limits[0] + limits[1]) / 2
    for (i, j), value in np.ndenumerate(values):
        text = "n/a" if not np.isfinite(value) else _fmt(value)
        if lows is not None and np.isfinite(value):
            lo, hi = lows[i, j], highs[i, j]
            text += "\n" + (f"[{_fmt(lo)}, {_fmt(hi)}]" if np.isfinite(lo) and np.isfinite(hi) else "(1 run)")
        ax.text(j, i, text, ha="center", va="center", fontsize=7.5, color="white" if value < middle else "black")
    ax.set_xlabel(xlabel)
    ax.set_ylabel(ylabel)
    fig.colorbar(image, ax=ax, label=_wrap(label, 50))
    ax.set_title(_wrap(title, 70))
    return fig


def curve_figure(table: pd.DataFrame, *, x: str, hue: str | None, xlabel: str, ylabel: str, title: str,
                 binary: bool, categorical_x: bool, xtexts: dict | None = None, hue_text=None):
    """Outcome against a parameter: mean with a 95 % interval for yes/no outcomes (a probability),
    otherwise median with 50 % and 90 % bands; one line per value of ``hue``."""
    fig, ax = plt.subplots(figsize=(8, 5), layout="constrained")
    groups = [(None, table)] if hue is None else list(table.groupby(hue, sort=True))
    colours = palette(len(groups))
    for i, (value, rows) in enumerate(groups):
        rows = rows.sort_values("x")
        xs = np.arange(len(rows)) if categorical_x else rows["x"].to_numpy(dtype=float)
        color = colours[i]
        name = None if hue is None else f"{hue} = {hue_text(value) if hue_text else _fmt(value)}"
        if binary:
            ax.plot(xs, rows["mean"], marker="o", color=color, label=name)
            ax.fill_between(xs, rows["low"], rows["high"], color=color, alpha=0.2, lw=0)
        else:
            _band(ax, xs, rows, color, name)
            ax.scatter(xs, rows["median"], color=color, s=12)
        if categorical_x:
            ax.set_xticks(xs, [(xtexts or {}).get(v, _fmt(v)) for v in rows["x"]])
    ax.set_xlabel(xlabel)
    ax.set_ylabel(_wrap(ylabel + (" (mean, 95 % interval)" if binary else " (median; bands 50 %, 90 %)"), 55))
    ax.grid(alpha=0.3)
    if hue is not None:
        ax.legend(frameon=False, fontsize=8)
    ax.set_title(_wrap(title, 70))
    return fig


def sensitivity_figure(groups: list[Any], labels: dict[str, str], title: str, agreements: list[dict] | None = None):
    """Bars per parameter: Sobol' S1 and ST, or Morris mu* and sigma, with confidence intervals; a panel per
    outcome.  ``groups``: per outcome, the results of each master seed (bars side by side, one hue per seed,
    S1 hatched); ``agreements``: whether the seeds agree, for the panel titles."""
    groups = [g if isinstance(g, list) else [g] for g in groups]
    seeds = max(len(g) for g in groups)
    fig, axes = plt.subplots(1, len(groups), figsize=((5.5 + 1.5 * (seeds - 1)) * len(groups) + 1, 5.0),
                             squeeze=False, layout="constrained")
    colours = palette(max(seeds, 2))
    agree = {a["outcome"]: a for a in agreements or []}
    for ax, results in zip(axes[0], groups):
        k = len(results)
        width = 0.8 / (2 * k)
        for s, res in enumerate(results):
            t = res.table
            pos = np.arange(len(t))
            who = f" (seed {res.master_seed})" if res.master_seed is not None and k > 1 else ""
            first, total = (("S1", "S1_conf"), ("ST", "ST_conf")) if res.method == "sobol" else \
                (("mu_star", "mu_star_conf"), ("sigma", None))
            off1 = -0.4 + width * (2 * s + 0.5)
            off2 = -0.4 + width * (2 * s + 1.5)
            ax.bar(pos + off1, t[first[0]], width, yerr=t[first[1]], capsize=2, color=colours[s], alpha=0.55,
                   hatch="//", edgecolor="white", lw=0,
                   label=("first order S1" if res.method == "sobol" else "mu* (mean |effect|)") + who)
            ax.bar(pos + off2, t[total[0]], width, yerr=t[total[1]] if total[1] else None, capsize=2, color=colours[s],
                   label=("total ST" if res.method == "sobol" else "sigma (interaction / non-linearity)") + who)
            names = [labels.get(p, p) for p in t["parameter"]]
            ax.set_xticks(pos, names, rotation=30, ha="right", fontsize=8)
        if results[0].method == "sobol":
            ax.set_ylabel("Sobol' index (95 % CI, SALib bootstrap)")
            ax.axhline(0, color="black", lw=0.6)
        else:
            ax.set_ylabel("elementary effect (95 % CI on mu*)")
        res = results[0]
        noise = [r.noise_share for r in results if r.noise_share is not None]
        noise_text = ("; replicate noise " + " / ".join(f"{100 * v:.1f}" for v in noise) + " % of variance") if noise else ""
        a = agree.get(res.outcome)
        where = f" at {', '.join(a.get('outside') or [])}" if a is not None and a.get("outside") else ""
        agree_text = "" if a is None else ("\nseeds agree" if a["agree"] else f"\nseeds do NOT agree{where}") + \
            f" (largest {a['index']} gap {a['max_gap']:.2f}, allowed {a['allowed_there']:.2f})"
        ax.set_title(f"{labels.get(res.outcome, res.outcome)}\n({res.blocks_used} blocks"
                     + (f", {res.blocks_dropped} dropped" if res.blocks_dropped else "") + f"{noise_text}){agree_text}",
                     fontsize=9)
        ax.grid(alpha=0.3, axis="y")
        ax.legend(frameon=False, fontsize=7)
    fig.suptitle(_wrap(title, 90))
    return fig


def winners_figure(table: pd.DataFrame, *, xlabel: str, title: str, xtexts: dict | None = None,
                   order: list[str] | None = None, metric: str = "revenue"):
    """Stacked bars: for each value of x, the share of runs that each provider ends as the leader
    (largest final share of ``metric``), with the runs per bar above it; provider colours as everywhere."""
    present = [c for c in table.columns if c != "n"]
    everyone = list(order or []) + [p for p in present if p not in (order or [])]
    styles = provider_styles(everyone)  # colours by config order, as in every other figure, not by who won
    providers = [p for p in everyone if p in present]
    fig, ax = plt.subplots(figsize=(max(6.5, 0.9 * len(table) + 3.5), 4.8), layout="constrained")
    xs = np.arange(len(table))
    bottom = np.zeros(len(table))
    for p in providers:
        values = 100 * table[p].to_numpy(dtype=float)
        ax.bar(xs, values, 0.7, bottom=bottom, color=styles[p].color, label=p, edgecolor="white", lw=0.5)
        bottom += values
    for x, n in zip(xs, table["n"]):
        ax.text(x, 101, f"n={int(n)}", ha="center", va="bottom", fontsize=7)
    ax.set_xticks(xs, [(xtexts or {}).get(v, _fmt(v)) for v in table.index])
    ax.set_ylim(0, 108)
    ax.set_xlabel(xlabel)
    ax.set_ylabel(f"runs won (%): largest final share of {metric}")
    ax.legend(loc="upper left", bbox_to_anchor=(1.01, 1.0), frameon=False, fontsize=8)
    ax.set_title(_wrap(title, 70))
    return fig


def verdicts_figure(verdicts: pd.DataFrame, labels: dict[str, str], title: str):
    """One row per verdict: the difference of means (at minus against, or minus the value) with its 95 %
    interval and a line at 0; green = supported, red = contradicted, grey = not resolved.  Each row has
    its own x scale (outcomes have different units)."""
    n = len(verdicts)
    fig, axes = plt.subplots(n, 1, figsize=(9.5, 1.1 * n + 1.0), squeeze=False, layout="constrained")
    colour = {"supported": "#1b7837", "contradicted": "#b2182b", "not resolved": "#777777"}
    for ax, row in zip(axes[:, 0], verdicts.itertuples()):
        c = colour.get(row.verdict, "black")
        ok = np.isfinite(row.low) and np.isfinite(row.high)
        if ok:
            # max(0, ...): a Wilson interval holds its proportion, but rounding can put it a hair outside
            ax.errorbar([row.diff], [0], xerr=[[max(0.0, row.diff - row.low)], [max(0.0, row.high - row.diff)]],
                        fmt="o", color=c, capsize=4)
        else:
            ax.plot([row.diff], [0], "o", color=c)
        ax.axvline(0, color="black", lw=0.8)
        span = max(abs(row.low) if ok else 0, abs(row.high) if ok else 0, abs(row.diff) if np.isfinite(row.diff) else 0, 1e-9)
        ax.set_xlim(-1.15 * span, 1.15 * span)
        ax.set_yticks([])
        ax.tick_params(axis="x", labelsize=7)
        claim = row.claim or row.name
        interval = f"[{_fmt(row.low)}, {_fmt(row.high)}]" if ok else "[n/a]"
        ax.set_title(_wrap(f"{claim}: {row.verdict.upper()}, difference {_fmt(row.diff)} {interval} "
                           f"({labels.get(row.outcome, row.outcome)}; {row.at} vs {row.against})", 120),
                     fontsize=7, loc="left", color=c)
    fig.suptitle(_wrap(title, 90), fontsize=10)
    return fig


def _fmt(value: Any) -> str:
    if isinstance(value, (float, np.floating)):
        if abs(value) >= 1e7:
            return f"{value:.3g}"
        return f"{value:.3g}" if abs(value) < 1000 else f"{value:,.0f}"
    return str(value)
