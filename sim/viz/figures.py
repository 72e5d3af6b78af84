"""The dashboard's plots and provider table, from the recorder's frames (no UI code).

Figures are plain ``matplotlib.figure.Figure`` objects, not pyplot ones: the
server renders them from worker threads and pyplot's global state is not
thread-safe (and would leak figures).
"""

from __future__ import annotations

from html import escape

import numpy as np
import pandas as pd
from matplotlib.figure import Figure

from sim.colors import provider_colours, provider_styles

METRIC_LABELS = {"revenue": "revenue", "compute": "compute demand", "tokens": "model tokens served", "customers": "customers",
                 "cloud_revenue": "cloud revenue (IaaS + PaaS)", "ai_cloud_revenue": "AI cloud revenue (IaaS + PaaS + MaaS for AI)",
                 "maas_tokens": "MaaS tokens served (external customers)"}
# US merger-guideline bands (2010): above 1,500 moderately, above 2,500 highly concentrated.
HHI_BANDS = ((1500, "moderately concentrated"), (2500, "highly concentrated"))
SIZE = (6.4, 3.4)


def colours(names: list[str]) -> dict[str, str]:
    """One fixed colour per provider slot (config order), the same as in every other figure (``sim.colors``)."""
    return provider_colours(names)


def share_figure(providers: pd.DataFrame, names: list[str], quarter_labels: list[str], metric: str) -> Figure:
    """Share of ``metric`` over time, one line per provider, on the run's full time axis."""
    fig = Figure(figsize=SIZE, layout="constrained")
    ax = fig.subplots()
    colour = colours(names)
    styles = provider_styles(names)
    if providers.empty:
        _waiting(ax)
    else:
        table = providers.pivot(index="step", columns="provider", values=f"share_{metric}")
        for name in names:
            if name in table and table[name].max() > 0:
                ax.plot(table.index, 100 * table[name], lw=2, color=colour[name], ls=styles[name].linestyle,
                        label=name)
        ax.legend(loc="upper left", fontsize=8, frameon=False, ncols=2)
    ax.set_ylim(0, 100)
    ax.set_ylabel(f"share of {METRIC_LABELS[metric]} (%)")
    _time_axis(ax, quarter_labels)
    ax.set_title(f"Share of {METRIC_LABELS[metric]} by provider", fontsize=10)
    return fig


def hhi_figure(market: pd.DataFrame, quarter_labels: list[str], metric: str) -> Figure:
    """Herfindahl-Hirschman index (0-10,000) of ``metric`` over time, with the usual bands."""
    fig = Figure(figsize=SIZE, layout="constrained")
    ax = fig.subplots()
    for level, label in HHI_BANDS:
        ax.axhline(level, color="grey", lw=0.8, ls="--")
        ax.annotate(label, (0, level), xytext=(2, 2), textcoords="offset points", fontsize=7, color="grey")
    if market.empty:
        _waiting(ax)
    else:
        ax.plot(market["step"], market[f"hhi_{metric}"], color="black", lw=2)
    # Room for both bands and the series; the full 0-10,000 scale would flatten a typical market.
    top = max(3_000.0, 1.2 * float(market[f"hhi_{metric}"].max())) if not market.empty else 3_000.0
    ax.set_ylim(0, min(10_000.0, top))
    ax.set_ylabel("HHI (0-10,000)")
    _time_axis(ax, quarter_labels)
    ax.set_title(f"Concentration (HHI) of {METRIC_LABELS[metric]}", fontsize=10)
    return fig


def provider_table(market, providers: pd.DataFrame, metric: str) -> pd.DataFrame:
    """One row per provider slot: the live state of the model and its latest recorded share.

    Before the first quarter nothing is recorded yet, so the share shown is the
    share of installed compute demand the market starts from."""
    if providers.empty:
        share = market.installed_compute_shares()
    else:
        last = providers[providers["step"] == providers["step"].max()].set_index("provider")
        share = np.array([last[f"share_{metric}"].get(name, 0.0) for name in market.names])
    rows = []
    for slot, name in enumerate(market.names):
        p = market.slots[slot]
        status = market.status[slot]
        live = status == "active" and p is not None
        rows.append({
            "provider": name if live else f"{name} ({status})",
            "capability": p.capability if live else np.nan,
            "compute": p.compute if live else np.nan,
            "price": p.price if live else np.nan,
            "share": share[slot],
            "cash": p.cash if live else np.nan,
            "lock-in": p.lock_in if live else np.nan,
        })
    return pd.DataFrame(rows)


def table_note(metric: str) -> str:
    return (f"share of {METRIC_LABELS[metric]}; compute in GPU-equivalents; price in US$ per GPU-quarter; "
            "cash in US$ million")


def table_html(table: pd.DataFrame, metric: str) -> str:
    """A plain HTML table (numbers formatted for reading) with its units below."""
    fmt = {"capability": "{:.3f}", "compute": "{:,.0f}", "price": "{:,.0f}", "cash": "{:,.0f}", "lock-in": "{:.2f}"}
    formatters = {column: _cell(pattern) for column, pattern in fmt.items()}
    formatters["share"] = lambda v: f"{100 * v:.1f}%"
    html = table.to_html(index=False, classes="provider-table", border=0, formatters=formatters, na_rep="-",
                         justify="right")
    return f"{html}<div class='table-note'>{escape(table_note(metric))}</div>"


def _cell(pattern: str):
    def format_(value: float) -> str:  # pandas shows NaN as na_rep without calling this
        text = pattern.format(value)
        # A small negative number rounds to "-0": drop the sign when no digit is left.
        return text[1:] if text.startswith("-") and not text.strip("-0.,") else text
    return format_


def _time_axis(ax, quarter_labels: list[str]) -> None:
    n = len(quarter_labels)
    ax.set_xlim(0, max(n - 1, 1))
    ticks = list(range(0, n, max(1, n // 8)))
    ax.set_xticks(ticks)
    ax.set_xticklabels([quarter_labels[i] for i in ticks], rotation=30, ha="right", fontsize=8)
    ax.grid(alpha=0.3)


def _waiting(ax) -> None:
    ax.text(0.5, 0.5, "press Step or \u25b6 to simulate", transform=ax.transAxes, ha="center", va="center",
            color="grey")

