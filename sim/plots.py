"""Figures for a single run (matplotlib, Agg backend; no display needed)."""

from __future__ import annotations

import sys
from pathlib import Path

import matplotlib

if "ipykernel" not in sys.modules:  # headless files; in Jupyter keep its inline backend so figures show
    matplotlib.use("Agg")
import matplotlib.pyplot as plt  # noqa: E402
import pandas as pd  # noqa: E402

from sim.colors import provider_styles, text_colour  # noqa: E402
from sim.output import atomic_path  # noqa: E402

METRIC_LABELS = {"revenue": "revenue", "compute": "compute demand", "tokens": "model tokens served", "customers": "customers",
                 "cloud_revenue": "cloud revenue (IaaS + PaaS)", "ai_cloud_revenue": "AI cloud revenue (IaaS + PaaS + MaaS for AI)",
                 "maas_tokens": "MaaS tokens served (external customers)"}


def share_figure(providers: pd.DataFrame, market: pd.DataFrame, *, metric: str = "revenue", title: str = ""):
    """Share over time, one line per provider labelled at its end with its name and final share,
    with an HHI panel below.  Colours follow the provider order (``sim.colors``), the same as in
    every other figure of the config; the end labels are spread so that none overlaps another or
    leaves the axes, also with a dozen providers."""
    fig, (top, bottom) = plt.subplots(2, 1, figsize=(9, 6.5), sharex=True,
                                      gridspec_kw={"height_ratios": [3, 1.2]}, layout="constrained")
    table = providers.pivot(index="step", columns="provider", values=f"share_{metric}")
    order = list(providers["provider"].unique())  # slot order = config order: incumbents, then entrants
    styles = provider_styles(order)
    shown = [c for c in order if table[c].max() > 0]
    quarters = market.set_index("step")["quarter"]
    for name in shown:
        top.plot(table.index, 100 * table[name], lw=2, color=styles[name].color, ls=styles[name].linestyle, label=name)
    finals = 100 * table[shown].iloc[-1] if shown else pd.Series(dtype=float)
    high = max(5.0, 1.06 * float(100 * table[shown].max().max())) if shown else 100.0
    top.set_ylim(0, high)
    # About one line of 8-point text in data units: the top panel is ~280 points tall.
    placed = label_positions(finals, gap=high * 10.5 / 280, low=0.0, high=high)
    last = table.index[-1]
    top.set_xlim(table.index[0], last)
    for name, y in placed.items():
        # The label sits just right of the axes at its placed height; a thin leader joins it to the
        # line's end when the two differ.
        top.annotate(f"{name} {finals[name]:.0f}%", xy=(last, finals[name]), xytext=(1.025, y),
                     textcoords=("axes fraction", "data"), va="center", fontsize=8, color=text_colour(styles[name].color),
                     annotation_clip=False,
                     arrowprops=dict(arrowstyle="-", lw=0.6, color=styles[name].color, shrinkA=1, shrinkB=0))
    top.set_ylabel(f"share of {METRIC_LABELS.get(metric, metric)} (%)")
    top.grid(alpha=0.3)
    top.set_title(title or f"Share of {METRIC_LABELS.get(metric, metric)} by provider")
    bottom.plot(market["step"], market[f"hhi_{metric}"], color="black", lw=1.8)
    bottom.set_ylabel("HHI (0–10,000)")
    bottom.grid(alpha=0.3)
    ticks = list(range(0, len(quarters), max(1, len(quarters) // 10)))
    bottom.set_xticks([quarters.index[i] for i in ticks])
    bottom.set_xticklabels([quarters.iloc[i] for i in ticks], rotation=45, ha="right")
    bottom.set_xlabel("quarter")
    return fig


def label_positions(values: pd.Series, gap: float, low: float | None = None, high: float | None = None) -> dict:
    """End-of-line label heights: the values, moved apart so that no two are closer than ``gap``,
    kept in their order and within [low, high] when given (pushed up first, then down from the
    top; if even that cannot fit them, spread evenly over the range)."""
    ordered = values.sort_values()
    names, ys = list(ordered.index), [float(v) for v in ordered]
    if not names:
        return {}
    if low is not None:
        ys[0] = max(ys[0], low)
    for i in range(1, len(ys)):
        ys[i] = max(ys[i], ys[i - 1] + gap)
    if high is not None and ys[-1] > high:
        ys[-1] = high
        for i in range(len(ys) - 2, -1, -1):
            ys[i] = min(ys[i], ys[i + 1] - gap)
        if low is not None and ys[0] < low:  # more labels than the range holds at this gap
            step = (high - low) / max(len(ys) - 1, 1)
            ys = [low + i * step for i in range(len(ys))]
    return dict(zip(names, ys))


def save_figure(fig, target: Path) -> None:
    """Save atomically; the format follows the file suffix (png, svg, pdf)."""
    target = Path(target)
    with atomic_path(target) as tmp:
        fig.savefig(tmp, format=target.suffix.lstrip("."), dpi=150, metadata=_fixed_metadata(target.suffix))
    plt.close(fig)


def _fixed_metadata(suffix: str) -> dict:
    # Drop creation dates and software versions so identical runs give identical images.
    if suffix == ".png":
        return {"Software": None}
    if suffix == ".svg":
        return {"Date": None, "Creator": None}
    if suffix == ".pdf":
        return {"CreationDate": None, "Creator": None, "Producer": None}
    return {}
