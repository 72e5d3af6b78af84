"""Generates docs/config-reference.md from the pydantic config models.

    python -m sim.reference > docs/config-reference.md

A test checks that the committed file is up to date, so every field's type,
unit, default, range and meaning stay documented.
"""

from __future__ import annotations

import math
import typing
from typing import Any

from pydantic import BaseModel
from pydantic_core import PydanticUndefined

from sim import config as c

SECTIONS: list[tuple[str, type[BaseModel], str]] = [
    ("(top level)", c.Config, "Scenario name and the sections below."),
    ("[run]", c.RunConfig, "Run length, seed and population size."),
    ("[demand]", c.DemandConfig, "Submodel 1: adoption and growth of demand."),
    ("[demand.segments.NAME]", c.SegmentConfig, "One customer segment. Defaults differ by segment (internet, enterprise, government, startup, overseas); the values below are the generic defaults of a new segment, which needs `new = true`."),
    ("[pricing]", c.PricingConfig, "Submodel 2: pricing."),
    ("[[pricing.token_price_cuts]]", getattr(c, "TokenPriceCut", None), "A cut of the price per token (below cost it relaxes back: pricing.token_relaxation)."),
    ("[choice]", c.ChoiceConfig, "Submodel 3: customers' choice and switching costs."),
    ("[multihoming]", c.MultihomingConfig, "Submodel 3b: multi-homing (part of the workload on a second cloud)."),
    ("[multihoming.segments.NAME]", c.MultihomingSegment, "Multi-homing share and split of one segment (unset = the [multihoming] value)."),
    ("[models]", c.ModelsConfig, "Submodel 3c: model choice, the MaaS layer apart from the cloud."),
    ("[installed_base]", c.InstalledBaseConfig, "Submodel 3d: the installed-base (bandwagon) term of choice; its weight is per segment (demand.segments.NAME.bandwagon)."),
    ("[service]", c.ServiceConfig, "Submodel 4: serving capacity and reliability."),
    ("[[service.surges]]", c.SurgeConfig, "A demand surge in one quarter."),
    ("[finance]", c.FinanceConfig, "Submodel 5: money and compute purchases."),
    ("[investment]", c.InvestmentConfig, "Submodel 5b: capex beyond demand, fixed share of revenue or strategic (answers rivals)."),
    ("[capability]", c.CapabilityConfig, "Submodel 6: model capability."),
    ("[open_weights]", c.OpenWeightsConfig, "Submodel 6: the open-weights model."),
    ("[entry]", c.EntryConfig, "Submodel 7: entry and exit."),
    ("[[providers]]", c.ProviderConfig, "A provider present at the start (address it in --set by name: providers.NAME.field)."),
    ("[providers.committed_capex]", c.CommittedCapex, "An optional committed capex budget of a provider."),
    ("[[entrants]]", c.EntrantConfig, "A potential entrant: every provider field, plus the ones below."),
    ("[[parents]]", c.ParentConfig, "A parent group: funds its providers (those with `parent = NAME`), owns their captive apps, sets their internal split (sim/submodels/parents.py)."),
    ("[showcase]", c.ShowcaseConfig, "A surge as a public test: standing with the watching segments (sim/submodels/showcase.py)."),
]


def _type_name(annotation: Any) -> str:
    origin = typing.get_origin(annotation)
    args = typing.get_args(annotation)
    if origin in (typing.Union, getattr(__import__("types"), "UnionType", None)):
        return " or ".join(_type_name(a) for a in args)
    if origin is list:
        return f"list of {_type_name(args[0])}"
    if origin is dict:
        return f"table of {_type_name(args[1])}"
    if origin is typing.Annotated:
        return _type_name(args[0])
    if annotation is type(None):
        return "none"
    if isinstance(annotation, type) and issubclass(annotation, BaseModel):
        return "table"
    return getattr(annotation, "__name__", str(annotation))


def _default(field: Any) -> str:
    if field.default is PydanticUndefined and field.default_factory is None:
        return "required"
    if field.default_factory is not None:
        value = field.default_factory()
        return "see section" if isinstance(value, (BaseModel, dict)) else f"`{value!r}`"
    return "none" if field.default is None else f"`{field.default!r}`"


def _range(field: Any) -> str:
    pretty = {">=": "≥", "<=": "≤"}
    bounds = [f"{pretty.get(sym, sym)} {value:g}" if isinstance(value, (int, float)) else f"{pretty.get(sym, sym)} {value}"
              for sym, value in c.field_bounds(field)]
    for meta in field.metadata:
        pattern = getattr(meta, "pattern", None)
        if pattern:
            bounds.append(f"matches `{pattern}`")
    return ", ".join(bounds)


def section_table(model: type[BaseModel], parent: type[BaseModel] | None = None) -> list[str]:
    rows = ["| key | type | unit | default | allowed | meaning |", "|---|---|---|---|---|---|"]
    inherited = set(parent.model_fields) if parent else set()
    for name, field in model.model_fields.items():
        if name in inherited and model.model_fields[name] == parent.model_fields[name]:
            continue
        extra = field.json_schema_extra if isinstance(field.json_schema_extra, dict) else {}
        rows.append(f"| `{name}` | {_type_name(field.annotation)} | {extra.get('unit', '')} | {_default(field)} "
                    f"| {_range(field)} | {field.description or ''} |")
    return rows


def render() -> str:
    out = ["# Configuration reference", "",
           "Generated from `sim/config.py` by `python -m sim.reference`; do not edit by hand.",
           "Unknown keys are errors. Quarters are labels like `2025Q1` or whole numbers of quarters after `run.start`.",
           "Override any field on the command line with `--set key.path=value` (values are read as TOML).",
           "Types are strict: `true` is not a number, `\"5\"` is not a number and `\"yes\"` is not a boolean; a whole "
           "number is accepted where a decimal is meant (`1` for `1.0`). Numbers must be finite (`inf` and `nan` are "
           "refused). A value that may be none is left out, or written as the word `\"none\"` (`--set finance.import_cap=none`).",
           f"Rates that compound every quarter (segment `growth` and `token_growth`, providers' `captive_growth`, "
           f"`training_cost_growth`, `gpu_cost_trend`) may multiply their level by at most "
           f"1e{math.log10(c.MAX_GROWTH_FACTOR):.0f} over `run.quarters`; the error names the largest rate allowed for the horizon.",
           "A segment name other than the five built-in ones must be declared with `new = true` in its table; "
           "a misspelt name is an error that suggests the closest existing one.",
           "A run that starts from a snapshot (`run.start_from`) takes its customers from the snapshot, so the keys "
           "that only shape a drawn population (" + ", ".join(f"`{k}`" for k in c.POPULATION_KEYS) + ") must keep "
           "their defaults there: another value, from a file, `--set`, a `Market(...)` keyword or a sweep "
           "parameter, is an error that names the keys.", ""]
    for title, model, text in SECTIONS:
        if model is None:
            continue
        parent = c.ProviderConfig if model is c.EntrantConfig else None
        out += [f"## {title}", "", text, "", *section_table(model, parent), ""]
    return "\n".join(out)


if __name__ == "__main__":
    print(render(), end="")
