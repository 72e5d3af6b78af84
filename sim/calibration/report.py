"""Fit and validation reports as JSON (complete) and markdown (for people)."""

from __future__ import annotations

import hashlib
from dataclasses import asdict
from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd

from sim.calibration.facts import FactResult
from sim.calibration.fit import FitResult
from sim.calibration.validate import ValidationResult
from sim.output import json_records


def file_digest(path: Path) -> str:
    return hashlib.sha256(Path(path).read_bytes()).hexdigest()[:16]


def markdown_table(frame: pd.DataFrame, digits: int = 2) -> str:
    """A GitHub markdown table (no extra dependency)."""
    def cell(v: Any) -> str:
        if isinstance(v, (bool, np.bool_)):
            return "yes" if v else "no"
        if isinstance(v, (float, np.floating)):
            return "–" if np.isnan(v) else f"{v:,.{digits}f}"
        return str(v).replace("|", "/")
    head = "| " + " | ".join(map(str, frame.columns)) + " |"
    rule = "|" + "|".join("---" for _ in frame.columns) + "|"
    body = ["| " + " | ".join(cell(v) for v in row) + " |" for row in frame.itertuples(index=False)]
    return "\n".join([head, rule, *body])


# ---------------------------------------------------------------------- fit
def params_frame(fit: FitResult) -> pd.DataFrame:
    return pd.DataFrame({"parameter": [p.key for p in fit.params], "low": [p.low for p in fit.params],
                         "high": [p.high for p in fit.params], "start": fit.start, "fitted": fit.best,
                         "what it is": [p.description for p in fit.params]})


def profile_summary(prof: pd.DataFrame, best_loss: float, slack: float = 0.25) -> pd.DataFrame:
    """Per parameter: the grid values whose loss is within ``slack`` pp of the fit (a crude
    interval of values the data cannot tell apart) and the loss at the ends of the range."""
    rows = []
    for key, part in prof.groupby("parameter", sort=False):
        near = part[part["rmse_pp"] <= best_loss + slack]["value"]
        rows.append({"parameter": key, "fitted": part["fitted"].iloc[0],
                     f"values within {slack} pp": f"{near.min():.3g} to {near.max():.3g}" if len(near) else "none on the grid",
                     "RMSE at low end": part["rmse_pp"].iloc[0], "RMSE at high end": part["rmse_pp"].iloc[-1],
                     "worst RMSE on grid": part["rmse_pp"].max()})
    return pd.DataFrame(rows)


def fit_json(fit: FitResult, table: pd.DataFrame, info: dict[str, Any], prof: pd.DataFrame | None = None,
             ident: pd.DataFrame | None = None, pairs: pd.DataFrame | None = None) -> dict[str, Any]:
    extra = {} if prof is None else {"profile": json_records(prof)}
    if ident is not None:
        extra["identification"] = json_records(ident)
        extra["collinearity"] = json_records(pairs)
    return {**info, **extra, "loss": "RMSE over targets, pp (mean of replications vs observed)",
            "start_rmse_pp": fit.start_loss, "fitted_rmse_pp": fit.best_loss, "evaluations": fit.evaluations,
            "generations": fit.generations, "seconds": round(fit.seconds, 1), "optimizer_message": fit.message,
            "history_rmse_pp": fit.history, "parameters": json_records(params_frame(fit)),
            "targets": json_records(table)}


def fit_markdown(fit: FitResult, table: pd.DataFrame, info: dict[str, Any], prof: pd.DataFrame | None = None,
                 ident: pd.DataFrame | None = None, pairs: pd.DataFrame | None = None) -> str:
    lines = [f"# Fit report: {info['config_name']}", "",
             f"- command: `{info['command']}`",
             f"- config: `{info['config']}` (hash {info['config_hash']}); data: `{info['data']}` (sha256 {info['data_sha256']})",
             f"- fit window: {info['fit_window']}; {len(table)} observed figures; {info['replications']} replications "
             f"per candidate with common seeds {info['seeds']}; {info['customers']:,} customers",
             f"- optimiser: scipy differential evolution, {fit.generations} generations, population {info['population']}, "
             f"seed {info['optimizer_seed']}, {fit.evaluations} evaluations (wall time: timing.json)",
             f"- RMSE: {fit.start_loss:.2f} pp at the config's values, {fit.best_loss:.2f} pp fitted "
             f"(layers weigh alike: root of the mean of the layers' mean squared errors)",
             "- in-sample RMSE by layer: " + ", ".join(f"{k} {v:.2f} pp" for k, v in info.get("layer_rmse_pp", {}).items()),
             *([f"- models.token_unit = {info['token_unit']['token_unit']:.4g} tokens per token unit: the simulated "
                f"{info['token_unit']['period']} customers' tokens equal IDC's {info['token_unit']['observed_trillion']:g} "
                f"trillion (a reporting scale set after the fit, not fitted)"] if info.get("token_unit") else []),
             "",
             "## Free parameters", "", markdown_table(params_frame(fit), 3), "",
             "## Observed and simulated (fitted values, mean of replications)", "",
             markdown_table(table[["target", "qualifier", "observed", "simulated_mean", "simulated_sd", "error_pp"]]), ""]
    if prof is not None and ident is not None:
        nz = info["noise"]
        warn = [f"- **{w}**" for w in _warnings(ident)]
        apart = pairs[~pairs["told apart"]]
        lines += ["## Identification", "",
                  f"Replicate noise: the loss at the fitted values on {len(nz['losses'])} fresh seed sets has mean "
                  f"{nz['fresh_mean_rmse_pp']:.2f} pp and standard deviation {nz['sd_pp']:.2f} pp (at the fit's own seeds "
                  f"{nz['fit_rmse_pp']:.2f} pp). A profile value whose loss is below the band edge, mean + 2 sd = "
                  f"{nz['band_pp']:.2f} pp, fits as well as the fitted value.", "",
                  markdown_table(ident, 3), "",
                  "Warnings:" if warn else "No warning: no fitted value on a bound or in a dip narrower than the noise.",
                  *warn, "",
                  "### Parameters the data cannot tell apart", "",
                  f"Collinearity index of each pair (Brun et al. 2001; above {10:g}: their effects on the figures are "
                  f"nearly the same, so the figures cannot tell them apart). "
                  + (f"{len(apart)} of {len(pairs)} pairs are above it." if len(apart) else f"No pair of {len(pairs)} is above it."),
                  "", markdown_table(pairs.head(12), 2), ""]
    if prof is not None:
        lines += ["## Loss profile (one parameter moved over its range, the others at their fitted values)", "",
                  markdown_table(profile_summary(prof, fit.best_loss), 3), ""]
        if info.get("profile_figure"):
            lines += [f"![loss profile]({info['profile_figure']})", ""]
    return "\n".join(lines)


def _warnings(ident: pd.DataFrame) -> list[str]:
    from sim.calibration.identify import warnings_of

    return warnings_of(ident)


# --------------------------------------------------------------- validation
def facts_frame(results: list[FactResult]) -> pd.DataFrame:
    return pd.DataFrame({
        "#": [r.number for r in results], "check": [r.name for r in results],
        "measured (median over replications)": ["; ".join(f"{k} {_num(v)}" for k, v in r.measured.items()) for r in results],
        "replications passing": [f"{100 * r.pass_rate:.0f} %" for r in results],
        "result": ["pass" if r.passed else "FAIL" for r in results],
    })


def _num(v: float) -> str:
    if np.isnan(v):
        return "–"
    if float(v).is_integer() and abs(v) < 1e6:
        return f"{int(v)}"
    return f"{v:,.1f}" if abs(v) >= 10 else f"{v:.2f}"


def validation_json(result: ValidationResult, info: dict[str, Any]) -> dict[str, Any]:
    return {**info, "replications": result.replications, "fit_window": ":".join(result.window),
            "errors": json_records(result.errors), "targets": json_records(result.targets),
            "stylized_facts": [asdict(f) for f in result.facts],
            "market_size": json_records(result.market_size)}


def validation_markdown(result: ValidationResult, info: dict[str, Any], figures: list[str]) -> str:
    t = result.targets
    out = t[t["sample"] == "out"]
    shown = ["metric", "provider", "period", "qualifier", "observed", "median", "p05", "p95", "error_pp", "in_90_band"]
    lines = [f"# Validation report: {info['config_name']}", "",
             f"- command: `{info['command']}`",
             f"- config: `{info['config']}`" + (f" + overlay `{info['overlay']}`" if info.get("overlay") else "")
             + f" (resolved hash {info['config_hash']}); data: `{info['data']}` (sha256 {info['data_sha256']})",
             f"- {result.replications} replications (seeds {info['seeds'][0]}..{info['seeds'][-1]}), "
             f"{info['customers']:,} customers, {info['quarters']} quarters; fit window {':'.join(result.window)}",
             f"- errors are the median run minus the observed figure, in percentage points; a lower bound counts only when broken",
             "", "## Out-of-sample error (after the fit window)", ""]
    if out.empty:
        lines.append("No observed figure after the fit window has a simulated counterpart.")
    else:
        lines += [markdown_table(out[shown]), ""]
    from sim.calibration.validate import layer_table

    lines += ["", "## Error by layer (median run vs observed; pp, a market size as 10 x ln(simulated / observed))", "",
              markdown_table(layer_table(t)), "",
              "## Error by metric and provider (mean absolute error, pp)", "",
              markdown_table(result.errors), "",
              "## Stylized facts (model-anchors.md section 6)", "", markdown_table(facts_frame(result.facts)), "",
              "## Market size (diagnostic, not fitted)", "",
              markdown_table(result.market_size.dropna(subset=["observed_bn"])), "",
              "## All observed figures", "", markdown_table(t[["sample", *shown]]), "",
              "## Figures", "", *[f"![{Path(f).stem}]({f})" for f in figures], ""]
    return "\n".join(lines)
