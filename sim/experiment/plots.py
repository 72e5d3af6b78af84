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
                   xtexts: list[str] | None = None, ytexts: list[str] | None = None):
    """grid: index = y values, columns = x values, cells = the outcome statistic; ``xtexts``/``ytexts``:
    the values in words (e.g. 'never' for a release after the run)."""
    fig, ax = plt.subplots(figsize=(7.5, 5.5), layout="constrained")
    values = grid.to_numpy(dtype=float)
    image = ax.imshow(values, origin="lower", aspect="auto", cmap="viridis")
    ax.set_xticks(range(grid.shape[1]), xtexts or [_fmt(v) for v in grid.columns])
    ax.set_yticks(range(grid.shape[0]), ytexts or [_fmt(v) for v in grid.index])
    finite = values[np.isfinite(values)]
    middle = (finite.min() + finite.max()) / 2 if finite.size else 0
    for (i, j), value in np.ndenumerate(values):
        text = "n/a" if not np.isfinite(value) else _fmt(value)
        ax.text(j, i, text, ha="center", va="center", fontsize=8, color="white" if value < middle else "black")
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


def sensitivity_figure(results: list[Any], labels: dict[str, str], title: str):
    """Bars per parameter: Sobol' S1 and ST, or Morris mu* and sigma, with confidence intervals."""
    fig, axes = plt.subplots(1, len(results), figsize=(5.5 * len(results) + 1, 4.8), squeeze=False,
                             layout="constrained")
    for ax, res in zip(axes[0], results):
        t = res.table
        pos = np.arange(len(t))
        names = [labels.get(p, p) for p in t["parameter"]]
        if res.method == "sobol":
            ax.bar(pos - 0.2, t["S1"], 0.4, yerr=t["S1_conf"], capsize=3, label="first order S1")
            ax.bar(pos + 0.2, t["ST"], 0.4, yerr=t["ST_conf"], capsize=3, label="total ST")
            ax.set_ylabel("Sobol' index (95 % CI)")
            ax.axhline(0, color="black", lw=0.6)
        else:
            ax.bar(pos - 0.2, t["mu_star"], 0.4, yerr=t["mu_star_conf"], capsize=3, label="mu* (mean |effect|)")
            ax.bar(pos + 0.2, t["sigma"], 0.4, label="sigma (interaction / non-linearity)")
            ax.set_ylabel("elementary effect (95 % CI on mu*)")
        ax.set_xticks(pos, names, rotation=30, ha="right", fontsize=8)
        noise = f"; replicate noise {100 * res.noise_share:.0f} % of variance" if res.noise_share is not None else ""
        ax.set_title(f"{labels.get(res.outcome, res.outcome)}\n({res.blocks_used} blocks"
                     + (f", {res.blocks_dropped} dropped" if res.blocks_dropped else "") + f"{noise})", fontsize=9)
        ax.grid(alpha=0.3, axis="y")
        ax.legend(frameon=False, fontsize=8)
    fig.suptitle(_wrap(title, 90))
    return fig


def _fmt(value: Any) -> str:
    if isinstance(value, (float, np.floating)):
        if abs(value) >= 1e7:
            return f"{value:.3g}"
        return f"{value:.3g}" if abs(value) < 1000 else f"{value:,.0f}"
    return str(value)
