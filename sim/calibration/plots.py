"""Figures of the validation: simulated bands (median, 50 %, 90 % over replications)
against the observed points.  Filled markers were fitted (in sample); open
markers were not (out of sample).  Year figures are drawn as a bar across the year."""

from __future__ import annotations

import sys

import matplotlib

if "ipykernel" not in sys.modules:  # headless files; in Jupyter keep its inline backend so figures show
    matplotlib.use("Agg")
import matplotlib.pyplot as plt  # noqa: E402
import pandas as pd  # noqa: E402

from sim import quarters as qtr  # noqa: E402
from sim.calibration.targets import period_quarters  # noqa: E402
from sim.colors import NEUTRAL, provider_colours, text_colour  # noqa: E402

BAND_COLOUR = NEUTRAL  # market-level series; a provider's series takes the provider's colour (sim.colors)


def _axis_quarters(ax, labels: list[str]) -> None:
    ticks = list(range(0, len(labels), 4))
    ax.set_xticks(ticks)
    ax.set_xticklabels([labels[i] for i in ticks], rotation=45, ha="right", fontsize=8)
    ax.grid(alpha=0.3)


def _band(ax, bands: pd.DataFrame, series: str, label: str = "simulated median", colour: str = BAND_COLOUR) -> bool:
    b = bands[bands["series"] == series].sort_values("step")
    if b.empty or b["p95"].max() <= 0:
        return False
    ax.fill_between(b["step"], b["p05"], b["p95"], color=colour, alpha=0.15, lw=0, label="90 % band")
    ax.fill_between(b["step"], b["p25"], b["p75"], color=colour, alpha=0.3, lw=0, label="50 % band")
    ax.plot(b["step"], b["median"], color=colour, lw=1.8, label=label)
    return True


def _points(ax, targets: pd.DataFrame, steps: dict[str, int], colour: str = "black") -> None:
    for row in targets.itertuples(index=False):
        qs = [steps[q] for q in period_quarters(row.period) if q in steps]
        if not qs:
            continue
        filled = row.sample == "in"
        marker = "^" if row.qualifier == "lower_bound" else "o"
        style = dict(color=colour, marker=marker, ms=6, mfc=colour if filled else "white", mec=colour, ls="none")
        if len(qs) > 1:  # a year figure
            ax.plot([qs[0], qs[-1]], [row.observed] * 2, color=colour, lw=2.5, alpha=0.7)
            ax.plot([(qs[0] + qs[-1]) / 2], [row.observed], **style)
        else:
            ax.plot(qs, [row.observed], **style)


def _fit_end(ax, steps: dict[str, int], fit_end: str) -> None:
    if fit_end in steps:
        ax.axvline(steps[fit_end] + 0.5, color="grey", ls="--", lw=1)


def _legend_handles(fig) -> None:
    from matplotlib.lines import Line2D
    from matplotlib.patches import Patch

    # Generic (grey) keys: each panel draws its provider's own colour.
    handles = [Line2D([], [], color=BAND_COLOUR, lw=1.8, label="simulated median"),
               Patch(color=BAND_COLOUR, alpha=0.45, label="50 % band"), Patch(color=BAND_COLOUR, alpha=0.15, label="90 % band"),
               Line2D([], [], color="black", marker="o", ls="none", label="observed, fitted"),
               Line2D([], [], color="black", marker="o", mfc="white", ls="none", label="observed, not fitted"),
               Line2D([], [], color="black", marker="^", ls="none", label="observed lower bound"),
               Line2D([], [], color="grey", ls="--", label="end of fit window")]
    fig.legend(handles=handles, loc="lower center", ncol=4, frameon=False, fontsize=8)


def share_bands_figure(bands: pd.DataFrame, targets: pd.DataFrame, providers: list[str], fit_end: str, title: str,
                       colours: dict[str, str] | None = None):
    """A panel per provider; ``colours`` (provider -> colour, from the config order) keeps each
    provider's colour the same as in every other figure."""
    colours = colours or provider_colours(providers)
    labels = _labels(bands)
    steps = {q: i for i, q in enumerate(labels)}
    cols = 3
    rows = -(-len(providers) // cols)
    fig, axes = plt.subplots(rows, cols, figsize=(12, 3.4 * rows + 0.8), sharex=True, squeeze=False)
    for ax, name in zip(axes.flat, providers):
        _band(ax, bands, f"revenue_share:{name}", colour=colours[name])
        _points(ax, targets[(targets["metric"] == "spend_share") & (targets["provider"] == name)], steps)
        _fit_end(ax, steps, fit_end)
        ax.set_title(name, fontsize=10, color=text_colour(colours[name]))
        ax.set_ylim(bottom=0)
        ax.set_ylabel("revenue share (%)", fontsize=8)
        _axis_quarters(ax, labels)
    for ax in list(axes.flat)[len(providers):]:
        ax.axis("off")
    fig.suptitle(title)
    _legend_handles(fig)
    fig.tight_layout(rect=(0, 0.06, 1, 0.97))
    return fig


def concentration_figure(bands: pd.DataFrame, targets: pd.DataFrame, hhi_ranges: pd.DataFrame, fit_end: str, title: str):
    labels = _labels(bands)
    steps = {q: i for i, q in enumerate(labels)}
    fig, axes = plt.subplots(1, 3, figsize=(13, 4.4))
    for ax, series, metric, name in ((axes[0], "top4_share", "top4_share", "top-4 share of revenue (named providers)"),
                                     (axes[1], "top3_share", "top3_share", "top-3 share of revenue (named providers)")):
        _band(ax, bands, series)
        _points(ax, targets[targets["metric"] == metric], steps)
        _fit_end(ax, steps, fit_end)
        ax.set_title(name, fontsize=10)
        ax.set_ylabel("%", fontsize=8)
        _axis_quarters(ax, labels)
    ax = axes[2]
    _band(ax, bands, "named_hhi")
    for row in hhi_ranges.itertuples(index=False):
        if row.period in steps:
            ax.plot([steps[row.period]] * 2, [row.low, row.high], color="black", lw=3, alpha=0.7)
    _fit_end(ax, steps, fit_end)
    ax.set_title("HHI, named providers (bars: range from Canalys)", fontsize=10)
    _axis_quarters(ax, labels)
    fig.suptitle(title)
    _legend_handles(fig)
    fig.tight_layout(rect=(0, 0.1, 1, 0.95))
    return fig


def token_figure(bands: pd.DataFrame, targets: pd.DataFrame, providers: list[str], start: str, fit_end: str, title: str,
                 colours: dict[str, str] | None = None):
    colours = colours or provider_colours(providers)
    labels = _labels(bands)
    steps = {q: i for i, q in enumerate(labels)}
    fig, ax = plt.subplots(figsize=(9, 4.8))
    first = steps.get(start, 0)
    for name in providers:
        colour = colours[name]
        b = bands[(bands["series"] == f"tokens_share:{name}") & (bands["step"] >= first)].sort_values("step")
        if b.empty or b["p95"].max() <= 0:
            continue
        ax.fill_between(b["step"], b["p05"], b["p95"], color=colour, alpha=0.12, lw=0)
        ax.fill_between(b["step"], b["p25"], b["p75"], color=colour, alpha=0.25, lw=0)
        ax.plot(b["step"], b["median"], color=colour, lw=1.8, label=name)
        _points(ax, targets[(targets["metric"] == "token_share") & (targets["provider"] == name)], steps, colour=colour)
    _fit_end(ax, steps, fit_end)
    ax.set_xlim(first - 0.5, len(labels) - 0.5)
    ax.set_ylabel("share of customers' model tokens (%)")
    ax.set_title(title, fontsize=10)
    ax.legend(fontsize=8, frameon=False, loc="upper left")
    ticks = list(range(first, len(labels)))
    ax.set_xticks(ticks)
    ax.set_xticklabels([labels[i] for i in ticks], rotation=45, ha="right", fontsize=8)
    ax.grid(alpha=0.3)
    fig.text(0.01, 0.01, "bands: 50 % and 90 % over replications; bar with marker: IDC 2024 share (year), not fitted",
             fontsize=7)
    fig.tight_layout(rect=(0, 0.03, 1, 1))
    return fig


def _labels(bands: pd.DataFrame) -> list[str]:
    b = bands.drop_duplicates("step").sort_values("step")
    labels = list(b["quarter"])
    first = qtr.parse(labels[0])
    return [qtr.label(first + i) for i in range(len(labels))]


def profile_figure(prof: pd.DataFrame, best_loss: float, title: str, noise=None):
    """RMSE against each parameter's value, the others at their fitted values; with ``noise``
    (sim.calibration.identify.Noise) the replicate-noise band: fresh-seed mean +- 2 sd."""
    keys = list(dict.fromkeys(prof["parameter"]))
    cols = 4
    rows = -(-len(keys) // cols)
    fig, axes = plt.subplots(rows, cols, figsize=(13, 3.0 * rows + 0.6), squeeze=False)
    for ax, key in zip(axes.flat, keys):
        part = prof[prof["parameter"] == key]
        ax.plot(part["value"], part["rmse_pp"], marker="o", color=BAND_COLOUR)
        ax.axvline(part["fitted"].iloc[0], color="black", ls="--", lw=1)
        ax.axhline(best_loss, color="grey", lw=0.8)
        if noise is not None:
            ax.axhspan(noise.fresh - 2 * noise.sd, noise.band, color="grey", alpha=0.2, lw=0)
        ax.set_title(key, fontsize=8)
        ax.set_ylabel("RMSE (pp)", fontsize=8)
        ax.grid(alpha=0.3)
    for ax in list(axes.flat)[len(keys):]:
        ax.axis("off")
    extra = "; band: replicate noise, fresh seeds' mean +- 2 sd" if noise is not None else ""
    fig.suptitle(title + f" (dashed: fitted value; grey line: fitted RMSE{extra})", fontsize=10)
    fig.tight_layout(rect=(0, 0, 1, 0.95))
    return fig
