"""Figures for a single run (matplotlib, Agg backend; no display needed)."""

from __future__ import annotations

import sys
from pathlib import Path

import matplotlib

if "ipykernel" not in sys.modules:  # headless files; in Jupyter keep its inline backend so figures show
    matplotlib.use("Agg")
import matplotlib.pyplot as plt  # noqa: E402
import pandas as pd  # noqa: E402

from sim.output import atomic_path  # noqa: E402

METRIC_LABELS = {"revenue": "revenue", "compute": "compute demand", "tokens": "model tokens", "customers": "customers"}


def share_figure(providers: pd.DataFrame, market: pd.DataFrame, *, metric: str = "revenue", title: str = ""):
    """Share over time, one labelled line per provider, with an HHI panel below."""
    fig, (top, bottom) = plt.subplots(2, 1, figsize=(9, 6.5), sharex=True,
                                      gridspec_kw={"height_ratios": [3, 1.2]}, layout="constrained")
    table = providers.pivot(index="step", columns="provider", values=f"share_{metric}")
    table = table[[c for c in providers["provider"].unique() if table[c].max() > 0]]
    quarters = market.set_index("step")["quarter"]
    colours = {name: top.plot(table.index, 100 * table[name], lw=2, label=name)[0].get_color() for name in table.columns}
    finals = 100 * table.iloc[-1]
    for name, y in label_positions(finals, gap=0.035 * max(finals.max(), 1e-9)).items():
        top.annotate(f"{finals[name]:.0f}%", (table.index[-1], y), xytext=(4, 0), textcoords="offset points",
                     va="center", fontsize=8, color=colours[name])
    top.set_ylabel(f"share of {METRIC_LABELS.get(metric, metric)} (%)")
    top.set_ylim(bottom=0)
    top.grid(alpha=0.3)
    top.legend(loc="upper left", bbox_to_anchor=(1.06, 1.0), frameon=False, fontsize=9)
    top.set_title(title or f"Share of {METRIC_LABELS.get(metric, metric)} by provider")
    bottom.plot(market["step"], market[f"hhi_{metric}"], color="black", lw=1.8)
    bottom.set_ylabel("HHI (0–10,000)")
    bottom.grid(alpha=0.3)
    ticks = list(range(0, len(quarters), max(1, len(quarters) // 10)))
    bottom.set_xticks([quarters.index[i] for i in ticks])
    bottom.set_xticklabels([quarters.iloc[i] for i in ticks], rotation=45, ha="right")
    bottom.set_xlabel("quarter")
    return fig


def label_positions(values: pd.Series, gap: float) -> dict:
    """End-of-line label heights: the values, pushed apart upwards so that no two are closer than ``gap``."""
    placed, last = {}, None
    for name, y in values.sort_values().items():
        y = y if last is None else max(y, last + gap)
        placed[name] = last = y
    return placed


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
