"""Validation: run the (calibrated) model with replications over the whole history and
compare it with every observed figure it has a counterpart for, in and out of the
fit window; keep the simulated bands for the figures; evaluate the stylized facts."""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np
import pandas as pd

from sim.calibration import facts
from sim.calibration.replicate import run_replications
from sim.calibration.targets import Panel, Target, in_window, select_targets
from sim.config import Config

QUANTILES = {"p05": 0.05, "p25": 0.25, "median": 0.5, "p75": 0.75, "p95": 0.95}


@dataclass
class ValidationResult:
    targets: pd.DataFrame  # one row per observed figure
    errors: pd.DataFrame  # mean absolute error per sample, metric and provider
    bands: pd.DataFrame  # quarter x series quantiles
    market_size: pd.DataFrame  # simulated vs observed market size (diagnostic, not fitted)
    hhi_ranges: pd.DataFrame  # observed HHI ranges (derived in market-shares.md section 6)
    facts: list[facts.FactResult]
    replications: int
    window: tuple[str, str]


def validate(config: Config, observations: pd.DataFrame, seeds: list[int], *, fit_window: tuple[str, str],
             fringe: list[str], pool=None) -> ValidationResult:
    runs = run_replications(config, seeds, pool=pool)
    panels = [Panel.from_frame(r.providers, fringe) for r in runs]
    targets = select_targets(observations, config, markets=("china_cloud", "china_maas"))
    table = target_table(targets, panels, fit_window)
    ctx = facts.Context.from_config(config, fringe, fit_window[1])
    return ValidationResult(
        targets=table, errors=error_table(table), bands=bands(runs, fringe),
        market_size=market_size(runs, observations), hhi_ranges=hhi_ranges(observations),
        facts=facts.evaluate(runs, ctx),
        replications=len(runs), window=fit_window,
    )


def target_table(targets: list[Target], panels: list[Panel], window: tuple[str, str]) -> pd.DataFrame:
    rows = []
    for t in targets:
        values = np.array([p.measure(t) for p in panels], dtype=float)
        q = {k: float(np.quantile(values, v)) for k, v in QUANTILES.items()}
        rows.append({
            "sample": "in" if in_window(t.period, window) else "out", "layer": t.layer, "market": t.market, "metric": t.metric,
            "provider": t.provider or "(market)", "period": t.period, "qualifier": t.qualifier, "quality": t.quality,
            "observed": t.observed, **q, "mean": float(values.mean()),
            "error_pp": t.error(q["median"]), "abs_error_pp": abs(t.error(q["median"])),
            "in_90_band": bool(_in_band(t, q["p05"], q["p95"])), "in_50_band": bool(_in_band(t, q["p25"], q["p75"])),
            "row": t.row,
        })
    return pd.DataFrame(rows)


def _in_band(t: Target, low: float, high: float) -> bool:
    if t.qualifier == "lower_bound":
        return high >= t.observed
    if t.qualifier == "upper_bound":
        return low <= t.observed
    return low <= t.observed <= high


def layer_table(table: pd.DataFrame) -> pd.DataFrame:
    """RMSE and mean absolute error (pp or pp-equivalents, median run vs observed) per sample and
    layer (cloud: Canalys; tokens: IDC), and the share of figures inside the 90 % band."""
    if table.empty:
        return pd.DataFrame(columns=["sample", "layer", "n", "rmse_pp", "mae_pp", "in_90_band"])
    rows = []
    for (sample, layer), part in table.groupby(["sample", "layer"], sort=False):
        rows.append({"sample": sample, "layer": layer, "n": len(part),
                     "rmse_pp": float(np.sqrt(np.mean(part["error_pp"] ** 2))), "mae_pp": float(part["abs_error_pp"].mean()),
                     "in_90_band": float(part["in_90_band"].mean())})
    return pd.DataFrame(rows)


def error_table(table: pd.DataFrame) -> pd.DataFrame:
    """Mean absolute error (pp, median run vs observed) per sample, metric and provider."""
    if table.empty:
        return pd.DataFrame(columns=["sample", "metric", "provider", "n", "mae_pp", "bias_pp", "in_90_band"])
    grouped = table.groupby(["sample", "metric", "provider"], sort=False)
    out = grouped.agg(n=("observed", "size"), mae_pp=("abs_error_pp", "mean"), bias_pp=("error_pp", "mean"),
                      in_90_band=("in_90_band", "mean")).reset_index()
    return out.sort_values(["sample", "metric", "provider"], key=lambda s: s.map({"in": 0, "out": 1}) if s.name == "sample" else s,
                           kind="stable").reset_index(drop=True)


def bands(runs: list, fringe: list[str]) -> pd.DataFrame:
    """Quantiles over replications, per quarter, of each provider's revenue and token share and
    of the named top-3 and top-4 revenue shares and named HHI (long format)."""
    series = []
    for i, run in enumerate(runs):
        prov = run.providers
        for metric in ("revenue", "tokens"):
            part = prov[["quarter", "provider", f"share_{metric}"]].rename(columns={f"share_{metric}": "value"})
            part = part.assign(series=f"{metric}_share:" + part["provider"], value=100 * part["value"])
            series.append(part[["quarter", "series", "value"]].assign(rep=i))
        panel = Panel.from_frame(prov, fringe)
        for k in (3, 4):
            series.append(pd.DataFrame({"quarter": panel.quarters, "series": f"top{k}_share",
                                        "value": [100 * panel.top_k(k, q) for q in panel.quarters], "rep": i}))
        series.append(pd.DataFrame({"quarter": panel.quarters, "series": "named_hhi",
                                    "value": [panel.named_hhi(q) for q in panel.quarters], "rep": i}))
    long = pd.concat(series, ignore_index=True)
    order = {q: i for i, q in enumerate(dict.fromkeys(runs[0].providers["quarter"]))}
    grouped = long.groupby(["series", "quarter"])["value"]
    out = pd.concat({k: grouped.quantile(v) for k, v in QUANTILES.items()}, axis=1).reset_index()
    out["step"] = out["quarter"].map(order)
    return out.sort_values(["series", "step"]).reset_index(drop=True)


def market_size(runs: list, observations: pd.DataFrame) -> pd.DataFrame:
    """Simulated quarterly revenue (US$ bn, median over runs) beside Canalys's market size."""
    total = pd.concat([r.market.set_index("quarter")["total_revenue"] for r in runs], axis=1)
    sim = (total.median(axis=1) / 1000.0).rename("simulated_bn")
    obs = observations[(observations["market"] == "china_cloud") & (observations["metric"] == "market_size")
                       & (observations["unit"] == "US$ bn per quarter")]
    obs = obs.set_index("period")[["value", "qualifier"]].rename(columns={"value": "observed_bn"})
    out = pd.DataFrame(sim).join(obs, how="left").reset_index().rename(columns={"index": "quarter"})
    out["ratio"] = out["simulated_bn"] / out["observed_bn"]
    return out


def hhi_ranges(observations: pd.DataFrame) -> pd.DataFrame:
    rows = observations[(observations["market"] == "china_cloud") & (observations["metric"] == "hhi")]
    wide = rows.pivot(index="period", columns="qualifier", values="value")
    if not {"range_low", "range_high"} <= set(wide.columns):
        return pd.DataFrame(columns=["period", "low", "high"])
    return wide.rename(columns={"range_low": "low", "range_high": "high"})[["low", "high"]].reset_index()
