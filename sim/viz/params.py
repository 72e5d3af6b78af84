"""The dashboard's controls and how they turn a base config into the config of a run.

No UI here: ``controls(base)`` describes the inputs in the dict form of Mesa's
SolaraViz (which ``sim.viz.controls`` also reads), and ``config_for(base, **values)`` applies
their values as validated overrides, so a dashboard run is an ordinary ``Config`` (with a hash,
a seed and the same results as ``aicloud run`` on that config).
"""

from __future__ import annotations

from typing import Any

from sim import quarters
from sim.config import Config, with_overrides

ALL = "all providers"

# Keyword -> config path of the controls that set one value directly.
DIRECT = {
    "flywheel": "capability.flywheel",
    "open_capability": "open_weights.capability",
    "entry_compute": "entry.entry_compute",
    "customers": "run.customers",
    "seed": "run.seed",
}
LOCK_IN_MAX = 20.0  # ProviderConfig.lock_in allows up to 20
CAPEX_MAX = 5.0  # ProviderConfig.capex_share allows up to 5


def controls(base: Config) -> dict[str, dict[str, Any]]:
    """User inputs keyed by ``DashboardMarket`` keyword; each starts at the base config's value.

    Labels are short because a slider's track shares the sidebar's width with
    its label; ``settings_text`` spells out what the running model uses.
    (x) marks a multiplier of each provider's own value in the config."""
    q = base.run.quarters
    names = [p.name for p in base.all_providers]
    cap = base.finance.import_cap
    return {
        "lock_in": slider_float("Lock-in (x)", 1.0, 0.0, 4.0, 0.1),
        "lock_in_target": {"type": "Select", "label": "Lock-in (x) applies to", "value": ALL,
                           "values": [ALL, *names]},
        "flywheel": slider_float("Data flywheel", base.capability.flywheel, 0.0,
                                 max(5.0, 2 * base.capability.flywheel), 0.1),
        "open_release": {**slider_int("Open-weights quarter", release_offset(base), 0, q, 1),
                         "quarters_from": base.run.start},  # shown as a quarter label; the run length = never
        "open_capability": slider_float("Open-weights level", base.open_weights.capability, 0.0, 1.0, 0.05),
        "capex": slider_float("Capex rate (x)", 1.0, 0.0, 3.0, 0.1),
        "entry_compute": slider_int("Entry cost (GPUs)", int(base.entry.entry_compute), 0,
                                    max(500_000, 2 * int(base.entry.entry_compute)), 10_000),
        "import_cap_on": {"type": "Checkbox", "label": "Import cap on", "value": cap is not None},
        "import_cap": slider_int("Import cap (GPUs/q)", int(cap if cap is not None else 150_000),
                                 0, max(500_000, 2 * int(cap or 0)), 5_000),
        "customers": slider_int("Customers", base.run.customers, 100, max(200_000, base.run.customers), 100),
        # An integer slider, not Mesa's text box: a text seed crashes on Reset (mesa#3516).
        "seed": {**slider_int("Seed", base.run.seed, 0, max(10_000, base.run.seed), 1), "plain": True},
    }


def defaults(base: Config) -> dict[str, Any]:
    return {name: spec["value"] for name, spec in controls(base).items()}


def config_for(base: Config, *, lock_in: float = 1.0, lock_in_target: str = ALL, flywheel: float | None = None,
               open_release: int | None = None, open_capability: float | None = None, capex: float = 1.0,
               entry_compute: float | None = None, import_cap_on: bool | None = None,
               import_cap: float | None = None, customers: int | None = None, seed: int | None = None) -> Config:
    """The base config with the controls' values applied; ``None`` keeps the base value."""
    given = {"flywheel": flywheel, "open_capability": open_capability, "entry_compute": entry_compute,
             "customers": None if customers is None else int(customers), "seed": None if seed is None else int(seed)}
    overrides: dict[str, Any] = {DIRECT[k]: v for k, v in given.items() if v is not None}
    overrides.update(provider_overrides(base, lock_in=lock_in, target=lock_in_target, capex=capex))
    if open_release is not None and int(open_release) != release_offset(base):
        # Only a changed release is written, so the untouched controls reproduce the base config exactly.
        released = int(open_release) < base.run.quarters
        overrides["open_weights.enabled"] = released
        if released:
            overrides["open_weights.release"] = int(open_release)
    if import_cap_on is not None:
        cap = base.finance.import_cap if import_cap is None else float(import_cap)
        overrides["finance.import_cap"] = cap if import_cap_on else None
    return with_overrides(base, overrides, source="dashboard")


def provider_overrides(base: Config, *, lock_in: float, target: str, capex: float) -> dict[str, Any]:
    """Per-provider multipliers keep the differences between providers that the config sets."""
    names = [p.name for p in base.all_providers]
    if target != ALL and target not in names:
        raise ValueError(f"lock-in target {target!r} is not a provider; allowed: {ALL}, {', '.join(names)}")
    out: dict[str, Any] = {}
    for section, specs in (("providers", base.providers), ("entrants", base.entrants)):
        for i, spec in enumerate(specs):
            if target in (ALL, spec.name):
                out[f"{section}.{i}.lock_in"] = min(LOCK_IN_MAX, spec.lock_in * lock_in)
            out[f"{section}.{i}.capex_share"] = min(CAPEX_MAX, spec.capex_share * capex)
    return out


def settings_text(config: Config, controls: dict[str, Any]) -> str:
    """One line saying what a dashboard run uses, read from its config (the sliders show no numbers)."""
    ow, cap = config.open_weights, config.finance.import_cap
    release = config.quarter_offset(ow.release)
    if ow.enabled and release < config.run.quarters:
        when = quarters.label(quarters.parse(config.run.start) + release)
        open_text = f"open weights at {100 * ow.capability:.0f}% of frontier from {when} (quarter {release})"
    else:
        open_text = "no open weights in the run"
    parts = [
        f"lock-in x{float(controls.get('lock_in', 1.0)):.1f} ({controls.get('lock_in_target', ALL)})",
        f"capex x{float(controls.get('capex', 1.0)):.1f}",
        f"data flywheel {config.capability.flywheel:.1f}",
        open_text,
        f"entry {config.entry.entry_compute:,.0f} GPU-eq",
        f"import cap {cap:,.0f} GPU-eq/quarter" if cap is not None else "no import cap",
        f"{config.run.customers:,} customers",
        f"seed {config.run.seed}",
    ]
    return " · ".join(parts)


def release_offset(base: Config) -> int:
    """Quarters after the start at which open weights appear; the run length if never."""
    ow = base.open_weights
    if not ow.enabled:
        return base.run.quarters
    return min(base.quarter_offset(ow.release), base.run.quarters)


def slider_int(label: str, value: int, lo: int, hi: int, step: int) -> dict[str, Any]:
    return {"type": "SliderInt", "label": label, "value": int(value), "min": int(lo), "max": int(hi), "step": int(step)}


def slider_float(label: str, value: float, lo: float, hi: float, step: float) -> dict[str, Any]:
    return {"type": "SliderFloat", "label": label, "value": float(value), "min": float(lo), "max": float(hi),
            "step": float(step)}
