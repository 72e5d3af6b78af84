"""Validated configuration: TOML files -> pydantic models.

Every field carries a type, a unit, a default and an allowed range; unknown keys
are errors.  ``load_config`` turns any problem into a ``ConfigError`` whose
message has one line per problem naming the file, the key path and what is
allowed, so the CLI can print it without a traceback.
"""

from __future__ import annotations

import copy
import difflib
import hashlib
import math
import json
import tomllib
import typing
from pathlib import Path
from typing import Annotated, Any

from pydantic import BaseModel, ConfigDict, Field, ValidationError, field_validator, model_validator
from pydantic_core import PydanticCustomError

from sim import quarters, resources

CONFIG_DIR = resources.folder("configs")  # the clone's configs/, or the copy in the wheel
SEGMENTS = ("internet", "enterprise", "government", "startup", "overseas")

QuarterRef = Annotated[
    str | int,
    Field(description="a quarter label like 2025Q1, or a whole number of quarters after run.start"),
]


class ConfigError(Exception):
    """A configuration problem, already worded for the user (one line per problem)."""

    def __init__(self, problems: list[str]):
        self.problems = problems
        super().__init__("\n".join(problems))


def F(default: Any, description: str, unit: str = "", **kw: Any) -> Any:
    """A documented field: default, description, unit and range in one place.
    A callable default (a section class) becomes a default factory."""
    if callable(default):
        return Field(default_factory=default, description=description, json_schema_extra={"unit": unit}, **kw)
    return Field(default, description=description, json_schema_extra={"unit": unit}, **kw)


NONE_WORD = "none"
# Most a demand or cost level may grow over one run, as a factor (a trillion-fold).  Beyond it the
# customer arrays (float32) and the money flows lose meaning long before they overflow; the check
# keeps every valid config far from overflow (issue 13, case 1) and names the allowed growth.
MAX_GROWTH_FACTOR = 1e12
MIN_UNIT_COST = 1e-6  # US$ per GPU-quarter: the least a GPU-equivalent may cost to run at the start
# Keys that only shape the starting population a run draws (sim/customers.py, the initial
# assignment in sim/model.py, models.initial_use in sim/submodels/model_choice.py).  A run that starts
# from a snapshot (run.start_from) takes its customers from the snapshot instead, so these keys can
# have no effect there: a value other than the default is refused rather than silently ignored
# (Config.population_settings).  '*' stands for every segment or provider.
POPULATION_KEYS = (
    "demand.initial_adoption", "demand.size_tail", "demand.token_share", "demand.preference_spread",
    "demand.segments.*.compute_size", "demand.segments.*.token_intensity",
    "multihoming.share", "multihoming.segments.*.share", "models.initial_use", "providers.*.initial_share",
)


class Section(BaseModel):
    """Base of every config section: unknown keys are errors; types are strict (a boolean is not a
    number, a string is neither; a whole number is accepted where a decimal is meant, as TOML
    writes 1 for 1.0); numbers must be finite (``inf`` and ``nan`` are refused); an optional value
    is left out, or given as the word ``"none"``."""

    model_config = ConfigDict(extra="forbid", validate_assignment=True, strict=True, allow_inf_nan=False)

    @model_validator(mode="before")
    @classmethod
    def _none_word(cls, data: Any) -> Any:
        """``"none"`` (TOML has no null) stands for None in fields that may be none; numpy scalars
        (from ``mesa.batch_run`` ranges, design tables) count as the Python numbers they are."""
        if not isinstance(data, dict):
            return data
        optional = _optional_fields(cls)
        return {k: (None if k in optional and v == NONE_WORD else _plain(v)) for k, v in data.items()}


_OPTIONAL: dict[type, frozenset[str]] = {}


def _plain(value: Any) -> Any:
    """A numpy scalar as its Python value (np.int64 -> int, np.bool_ -> bool); lists and dicts of
    values likewise.  Not a coercion between kinds: a numpy bool stays a bool, and is still no number."""
    if type(value).__module__ == "numpy" and hasattr(value, "item") and getattr(value, "ndim", 1) == 0:
        return value.item()
    if isinstance(value, list):
        return [_plain(v) for v in value]
    if isinstance(value, dict):
        return {k: _plain(v) for k, v in value.items()}
    return value


def _optional_fields(model: type[BaseModel]) -> frozenset[str]:
    cached = _OPTIONAL.get(model)
    if cached is None:
        cached = _OPTIONAL[model] = frozenset(n for n, f in model.model_fields.items() if _allows_none(f.annotation))
    return cached


def _allows_none(annotation: Any) -> bool:
    return annotation is type(None) or any(_allows_none(a) for a in typing.get_args(annotation))


def suggest(name: str, choices: typing.Iterable[str]) -> str:
    """'; did you mean 'x'?' for the closest of ``choices`` to a mistyped ``name`` (difflib), else ''."""
    close = difflib.get_close_matches(str(name), [str(c) for c in choices], n=1, cutoff=0.6)
    return f" (did you mean {close[0]!r}?)" if close else ""


def _check_quarter(value: str | int) -> str | int:
    if isinstance(value, str):
        quarters.parse(value)
    elif value < 0:
        raise ValueError("a quarter offset must be >= 0")
    return value


# --------------------------------------------------------------------------- run
class RunConfig(Section):
    start: str = F("2025Q1", "label of the first simulated quarter", "quarter", pattern=quarters.QUARTER_PATTERN)
    quarters: int = F(40, "number of quarters simulated", "quarters", ge=1, le=400)
    seed: int = F(42, "seed of the model's random generator", "", ge=0, le=2**63 - 1)
    customers: int = F(100_000, "number of customer agents (potential adopters) simulated", "customers", ge=10, le=50_000_000)
    start_from: str | None = F(None, "state snapshot to start from (written by `aicloud run --snapshot-out`): a path, absolute or relative to the working directory, else to configs/; the customers' state replaces the drawn population; none = start fresh", "")
    start_from_names: dict[str, str] = F({}, "provider names that differ between this config and the snapshot: config name -> snapshot name", "")


# ------------------------------------------------------------------------ demand
class SegmentConfig(Section):
    weight: float = F(0.2, "relative share of potential customers in this segment (0 leaves it out)", "", ge=0, le=1000)
    compute_size: float = F(1.0, "mean compute demand of a customer relative to the market mean; a drawn population's only: with run.start_from (the snapshot holds the customers) only the default is allowed", "ratio", gt=0, le=1000)
    token_intensity: float = F(1.0, "token need of a customer relative to its compute demand (relative to market mean); a drawn population's only: with run.start_from (the snapshot holds the customers) only the default is allowed", "ratio", ge=0, le=1000)
    growth: float = F(0.03, "growth of a customer's compute demand per quarter", "1/quarter", ge=-0.5, le=2)
    token_growth: float = F(0.08, "growth of a customer's token need per quarter", "1/quarter", ge=-0.5, le=5)
    renewal_hazard: float = F(0.06, "probability per quarter that a customer's contract comes up and it chooses again", "1/quarter", ge=0, le=1)
    w_capability: float = F(3.0, "weight of model capability (relative to the frontier) in utility", "utils", ge=0, le=100)
    w_price: float = F(2.0, "weight of -log(price relative to the reference price) in utility", "utils", ge=0, le=100)
    w_fit: float = F(1.0, "weight of the provider's ecosystem fit with this segment", "utils", ge=0, le=100)
    w_reliability: float = F(2.0, "weight of the provider's reliability (0..1) in utility", "utils", ge=0, le=100)
    model_use_rate: float = F(0.15, "hazard per quarter that a customer starts using its provider's model, at frontier capability", "1/quarter", ge=0, le=1)
    bandwagon: float = F(0.4, "weight of ln(installed-base share) in utility (the bandwagon exponent of the history-friendly model: 0.4 small users, 0.8 large organisations)", "utils per log share", ge=0, le=20)
    new: bool = F(False, "declares a segment name other than the five built-in ones (internet, enterprise, government, startup, overseas) on purpose; a new name without it is taken for a typo", "")


def _default_segments() -> dict[str, SegmentConfig]:
    return {
        "internet": SegmentConfig(weight=0.25, compute_size=2.0, token_intensity=2.0, growth=0.04, token_growth=0.10, renewal_hazard=0.08, w_price=2.5),
        "enterprise": SegmentConfig(weight=0.35, compute_size=0.8, token_intensity=0.8, growth=0.02, token_growth=0.08, renewal_hazard=0.05, w_fit=1.5, bandwagon=0.8),
        "government": SegmentConfig(weight=0.15, compute_size=1.0, token_intensity=0.5, growth=0.02, token_growth=0.06, renewal_hazard=0.04, w_fit=2.5, w_price=1.0, bandwagon=0.8),
        "startup": SegmentConfig(weight=0.15, compute_size=0.4, token_intensity=1.5, growth=0.05, token_growth=0.12, renewal_hazard=0.10, w_price=3.0, w_capability=3.5),
        "overseas": SegmentConfig(weight=0.10, compute_size=1.2, token_intensity=1.2, growth=0.04, token_growth=0.10, renewal_hazard=0.07),
    }


class DemandConfig(Section):
    initial_adoption: float = F(0.5, "share of potential customers already adopted at the start; a drawn population's only: with run.start_from (the snapshot holds the customers) only the default is allowed", "fraction", ge=0, le=1)
    bass_p: float = F(0.01, "Bass innovation coefficient: adoption hazard independent of others", "1/quarter", ge=0, le=1)
    bass_q: float = F(0.06, "Bass imitation coefficient: adoption hazard per unit of adopted share", "1/quarter", ge=0, le=2)
    market_compute: float = F(2.5e6, "compute demand of the customers adopted at the start (captive demand excluded)", "GPU-equivalents", gt=0, le=1e10)
    size_tail: float = F(1.5, "Pareto tail index of customer demand sizes (smaller = heavier tail); a drawn population's only: with run.start_from (the snapshot holds the customers) only the default is allowed", "", gt=1.05, le=10)
    token_share: float = F(0.10, "compute spent on model tokens per unit of a customer's own compute demand at the start (at token_intensity 1); a drawn population's only: with run.start_from (the snapshot holds the customers) only the default is allowed", "ratio", ge=0, le=100)
    token_elasticity: float = F(1.0, "price elasticity of token volume (1 = a price cut to 1/10 raises volume tenfold)", "", ge=0, le=3)
    preference_spread: float = F(0.3, "log-normal spread of individual preference weights around the segment's weights; a drawn population's only: with run.start_from (the snapshot holds the customers) only the default is allowed", "", ge=0, le=2)
    model_services_start: QuarterRef | None = F(None, "quarter from which customers can start using their provider's model (the LLM shock); before it nobody uses a model, so no tokens are bought; none = from the start", "quarter")

    _msq = field_validator("model_services_start")(classmethod(lambda cls, v: v if v is None else _check_quarter(v)))
    segments: dict[str, SegmentConfig] = F(_default_segments, "customer segments by name", "")

    @field_validator("segments", mode="before")
    @classmethod
    def _merge_segments(cls, value: Any) -> Any:
        """Segments named in a file update the default segments field by field; a new name adds
        a segment only when its table says ``new = true`` (a misspelt name must not add a segment
        silently); a segment is left out of the population by giving it weight 0."""
        if not isinstance(value, dict):
            return value
        merged: dict[str, Any] = {name: seg.model_dump() for name, seg in _default_segments().items()}
        problems = []
        for name, seg in value.items():
            if isinstance(seg, SegmentConfig):
                seg = seg.model_dump()
            declared = isinstance(seg, dict) and seg.get("new") is True
            if name in merged and declared:
                problems.append(f"{name!r} is a built-in segment; new = true is only for a segment of a new name")
            elif name not in merged and isinstance(seg, dict) and not declared:
                problems.append(f"{name!r} is not a segment{suggest(name, SEGMENTS)} (segments: {', '.join(merged)}); "
                                f"to add a segment of that name on purpose, put new = true in its table")
            merged[name] = {**merged[name], **seg} if name in merged and isinstance(seg, dict) else seg
        if problems:
            raise ValueError("; ".join(problems))
        return merged

    @field_validator("segments")
    @classmethod
    def _some_weight(cls, value: dict[str, SegmentConfig]) -> dict[str, SegmentConfig]:
        if not value or sum(s.weight for s in value.values()) <= 0:
            raise ValueError("at least one segment needs a weight above 0")
        return value


# ----------------------------------------------------------------------- pricing
class TokenPriceCut(Section):
    quarter: QuarterRef = F(..., "first quarter of the lower token price (label or offset); a cut dated before run.start is in force at the start; a token price below cost relaxes back (pricing.token_relaxation)", "quarter")
    cut: float = F(0.9, "fall of the price per token (0.9 = to one tenth); token volume responds with demand.token_elasticity", "fraction", ge=0, le=0.999)
    provider: str | None = F(None, "only this provider cuts; default: every provider", "")

    _q = field_validator("quarter")(classmethod(lambda cls, v: _check_quarter(v)))


class PricingConfig(Section):
    reference_price: float = F(4000.0, "reference price of one GPU-equivalent for a quarter (about US$1.8 per GPU-hour)", "US$ per GPU-quarter", gt=0, le=1e6)
    base_markup: float = F(0.8, "markup over unit cost at a fair share (1 / number of active providers)", "fraction", ge=-0.9, le=5)
    harvest_slope: float = F(0.8, "extra markup per unit of share above the fair share (harvest a locked-in base; invest below it)", "fraction per share", ge=0, le=10)
    min_markup: float = F(-0.3, "lowest markup (negative = below-cost pricing to buy share)", "fraction", ge=-0.9, le=5)
    max_markup: float = F(1.5, "highest markup", "fraction", ge=0, le=10)
    adjustment: float = F(0.5, "share of the gap to the target price closed each quarter", "fraction", gt=0, le=1)
    token_efficiency_gain: float = F(0.10, "fall per quarter in compute needed per token (cheaper inference)", "fraction per quarter", ge=0, le=0.9)
    token_compute: float = F(1.0, "compute needed per unit of token need at the start", "GPU-quarter per token unit", gt=0, le=1e6)
    renewal_harvest: float = F(0.25, "share of a locked-in customer's switching cost (in price terms) added to the renewal price (Klemperer's harvest)", "fraction", ge=0, le=2)
    new_customer_discount: float = F(0.15, "share of that switching cost taken off the price offered to new customers (Klemperer's invest)", "fraction", ge=0, le=2)
    token_price_cuts: list[TokenPriceCut] = F([], "one-off cuts of the price per token below the compute price (e.g. the 2024 model price war); cuts that apply multiply; a cut below cost is a promotion that relaxes back (token_relaxation)", "")
    token_relaxation: float = F(0.15, "share of the log gap between a token price below the floor (unit cost x (1 + min_markup) per GPU-quarter of tokens) and that floor closed each quarter: a price cut is a promotion that cannot keep tokens below cost for ever (0 = cuts last for ever, the rule before issue 12)", "fraction per quarter", ge=0, le=1)
    scarcity_target: float = F(1.0, "utilisation (demand / serving capacity, last quarter) above which a provider's target price rises (scarcity pricing)", "ratio", gt=0, le=10)
    scarcity_elasticity: float = F(2.0, "scarcity pricing: the target price is multiplied by (utilisation / scarcity_target) ** this above the target (0 = no scarcity pricing, the rule before issue 12)", "", ge=0, le=10)
    scarcity_cap: float = F(4.0, "highest scarcity multiplier on the target price (H100 rental: > US$8 an hour in the 2023 shortage, about US$2 in 2026)", "ratio", ge=1, le=100)

    @model_validator(mode="after")
    def _markup_bounds(self) -> "PricingConfig":
        if self.min_markup > self.max_markup:
            raise ValueError(f"min_markup ({self.min_markup}) must not exceed max_markup ({self.max_markup})")
        return self


# ------------------------------------------------------------------------ choice
class ChoiceConfig(Section):
    switching_base: float = F(0.5, "switching cost at tenure 0 and lock-in 1", "utils", ge=0, le=100)
    switching_tenure: float = F(1.0, "extra switching cost reached with long tenure (saturating)", "utils", ge=0, le=100)
    tenure_scale: float = F(8.0, "tenure at which the tenure term reaches 63 % of its maximum", "quarters", gt=0, le=400)
    model_lock: float = F(1.5, "multiplier added to the switching cost for customers using the provider's own model, times its edge over open weights", "", ge=0, le=100)


class InstalledBaseConfig(Section):
    floor: float = F(0.05, "share below which a provider's installed base counts as this floor in ln(share) (a newcomer is not infinitely unattractive)", "fraction", gt=0, le=1)


# -------------------------------------------------------------------- investment
class InvestmentConfig(Section):
    policy: typing.Literal["fixed_share", "strategic"] = F("fixed_share", "capex beyond what demand needs: 'fixed_share' = capex_share x revenue; 'strategic' = that plus a response to the largest rival's fleet (Sutton's escalation)", "")
    escalation: float = F(0.10, "lead over the largest rival's installed compute that a contender aims for", "fraction", ge=0, le=5)
    response: float = F(0.25, "share of the gap to that target bought per quarter", "fraction", ge=0, le=1)
    give_up_gap: float = F(0.3, "capability gap to the frontier (1 - capability / frontier) at which a provider stops racing; racing effort falls linearly to 0 there", "fraction", gt=0, le=1)
    cash_draw: float = F(0.05, "share of cash on hand that racing may draw each quarter, on top of the operating cash flow", "fraction per quarter", ge=0, le=1)


# ------------------------------------------------------------------------ models
class ModelsConfig(Section):
    choose_apart: bool = F(True, "customers choose a model provider apart from their cloud (any model owner's tokens, a porter's open weights); false = a model user uses its own cloud's model and loses it when it changes cloud (the model layer tied to the cloud)", "")
    model_renewal_hazard: float = F(0.10, "probability per quarter that a model user's model contract comes up and it chooses a model again", "1/quarter", ge=0, le=1)
    same_cloud_bonus: float = F(1.0, "utility of buying the model of one's own (primary) cloud: the closed loop ('if a customer uses Alibaba Cloud's services, they are more inclined to use Tongyi Qianwen')", "utils", ge=0, le=100)
    capability_weight: float = F(1.0, "multiplier on the customer's w_capability for model capability / frontier in model choice", "", ge=0, le=100)
    price_weight: float = F(0.5, "multiplier on the customer's w_price for -log(token price / reference token price) in model choice", "", ge=0, le=100)
    reliability_weight: float = F(1.0, "multiplier on the customer's w_reliability for the serving provider's reliability in model choice", "", ge=0, le=100)
    fit_weight: float = F(1.0, "multiplier on the customer's w_fit for the model owner's segment fit (affinity) in model choice", "", ge=0, le=100)
    model_switching_base: float = F(0.3, "model switching cost at model tenure 0 (prompts and integrations to redo)", "utils", ge=0, le=100)
    model_switching_use: float = F(1.5, "extra model switching cost reached with long use (fine-tunes, evaluations, prompts built up; saturating)", "utils", ge=0, le=100)
    model_tenure_scale: float = F(6.0, "model tenure at which the use term reaches 63 % of its maximum", "quarters", gt=0, le=400)
    initial_use: float = F(0.0, "share of customers adopted at the start who already use a model (they choose one in the first quarter); 0 = nobody, as before the LLM shock; a drawn population's only: with run.start_from (the snapshot holds the customers) only the default is allowed", "fraction", ge=0, le=1)
    token_unit: float = F(1.0e9, "physical tokens per token unit, for reporting maas_tokens_trillion (fitted per preset to the IDC 2024 volume)", "tokens per token unit", gt=0, le=1e18)


# ------------------------------------------------------------------- multihoming
class MultihomingSegment(Section):
    share: float | None = F(None, "share of this segment's customers that use a second cloud; none = multihoming.share; a drawn population's only: with run.start_from (the snapshot holds the customers) only the default is allowed", "fraction", ge=0, le=1)
    split: float | None = F(None, "share of a multi-homer's workload on its second cloud; none = multihoming.split", "fraction", ge=0, le=0.5)


class MultihomingConfig(Section):
    share: float = F(0.0, "share of customers that put part of their workload on a second cloud (Gartner: 81 % of public-cloud users use two or more providers [M]), drawn once for the population; a drawn population's only: with run.start_from (the snapshot holds the customers) only the default is allowed", "fraction", ge=0, le=1)
    split: float = F(0.3, "share of a multi-homer's compute workload on its second cloud", "fraction", ge=0, le=0.5)
    migration_rate: float = F(1.0, "share of the workload still on the old cloud moved to the new primary each quarter after a switch (1 = all at once)", "fraction per quarter", gt=0, le=1)
    segments: dict[str, MultihomingSegment] = F({}, "per-segment share and split (segment name -> {share, split})", "")


# ----------------------------------------------------------------------- service
class SurgeConfig(Section):
    quarter: QuarterRef = F(..., "quarter of the surge (label or offset)", "quarter")
    multiplier: float = F(3.0, "demand multiplier during the surge", "ratio", gt=0, le=1000)
    provider: str | None = F(None, "only this provider's demand surges (captive and customers); default: every provider", "")
    segments: list[str] = F([], "only these segments surge; empty = all segments", "")

    _q = field_validator("quarter")(classmethod(lambda cls, v: _check_quarter(v)))


Rationing = typing.Literal["own_apps_first", "customers_first", "proportional"]


class ServiceConfig(Section):
    reliability_memory: float = F(0.5, "weight of last quarter's reliability in this quarter's (0 = reacts at once)", "fraction", ge=0, le=0.99)
    overload_penalty: float = F(1.0, "exponent on capacity/demand when demand exceeds capacity (reliability target = (capacity/demand)^penalty)", "", ge=0, le=10)
    surges: list[SurgeConfig] = F([], "demand surges (e.g. the Spring Festival Gala test)", "")
    rationing: Rationing = F("proportional", "who bears a capacity shortfall: 'own_apps_first' (captive demand is served first), 'customers_first', or 'proportional' (both get the same share); a parent may set its own", "")


# ----------------------------------------------------------------------- finance
class FinanceConfig(Section):
    gpu_cost_import: float = F(20000.0, "purchase cost of an imported GPU-equivalent", "US$", gt=0, le=1e7)
    gpu_cost_own: float = F(12000.0, "purchase cost of a GPU-equivalent of own chips", "US$", gt=0, le=1e7)
    gpu_cost_trend: float = F(-0.02, "change per quarter of GPU purchase costs", "fraction per quarter", ge=-0.5, le=0.5)
    opex_per_gpu: float = F(500.0, "operating cost of one GPU-equivalent for a quarter (power, sites, staff)", "US$ per GPU-quarter", ge=0, le=1e6)
    depreciation: float = F(0.0625, "share of compute stock retired each quarter", "fraction per quarter", ge=0, le=1)
    capacity_response: float = F(0.8, "share of the gap between needed and installed compute (in service or on order) bought each quarter", "fraction", ge=0, le=1)
    headroom: float = F(0.15, "spare serving capacity providers plan for above this quarter's demand", "fraction", ge=0, le=5)
    import_cap: float | None = F(None, "most imported GPU-equivalents all providers together may buy in a quarter (export controls); none = no cap", "GPU-equivalents per quarter", ge=0)
    domestic_chip_cost: float | None = F(None, "cost of a GPU-equivalent of third-party domestic chips, bought with the import budget that the cap refuses; none = no substitute (that money stays in cash)", "US$", gt=0, le=1e7)
    capex_lag: int = F(1, "quarters between paying for compute and using it", "quarters", ge=0, le=8)


# -------------------------------------------------------------------- capability
class CapabilityConfig(Section):
    learning_rate: float = F(0.05, "knowledge gained per quarter at reference training compute, no data and synergy 1 (unit: the knowledge behind capability 1)", "knowledge per quarter", ge=0, le=10)
    knowledge_elasticity: float = F(0.5, "elasticity of capability to the knowledge stock (capability = knowledge ** elasticity): below 1, diminishing returns without a ceiling", "", ge=0.1, le=2)
    reference_training: float = F(1.0e5, "training compute that counts as one unit of research input at the start", "GPU-equivalents", gt=0, le=1e10)
    training_cost_growth: float = F(0.10, "growth per quarter of the training compute that counts as one unit of research input (0.10 = x1.46 a year; Epoch AI measured x2.4 a year at the frontier, 0.245)", "fraction per quarter", ge=0, le=1)
    compute_elasticity: float = F(0.65, "elasticity of progress to training compute (diminishing returns; 0 = the size of the fleet does not matter)", "", ge=0, le=2)
    flywheel: float = F(1.0, "strength of the data flywheel: progress multiplier per unit of data (0 = data gives nothing)", "", ge=0, le=100)
    reference_data: float = F(2.0e5, "token volume (served + captive) that counts as one unit of data", "token units per quarter", gt=0, le=1e15)
    data_elasticity: float = F(0.5, "elasticity of the flywheel term to data", "", ge=0, le=2)


class OpenWeightsConfig(Section):
    enabled: bool = F(True, "an open-weights model is released", "")
    release: QuarterRef = F("2025Q1", "quarter of release (label or offset)", "quarter")
    capability: float = F(1.0, "its capability as a share of the frontier `lag` quarters earlier (1 - the gap)", "fraction of frontier", ge=0, le=1)
    lag: int = F(4, "quarters by which the open-weights model trails the frontier (Epoch AI 2024: open models match closed ones 5-22 months later)", "quarters", ge=0, le=40)

    _q = field_validator("release")(classmethod(lambda cls, v: _check_quarter(v)))


# ------------------------------------------------------------------ entry / exit
class EntryConfig(Section):
    entry_compute: float = F(1.0e5, "compute an entrant must buy to enter (the article's 100,000 cards)", "GPU-equivalents", ge=0, le=1e9)
    scales_with_frontier: bool = F(True, "the entry compute grows with the frontier (the compute arms race)", "")
    exit_after: int = F(4, "quarters of distress in a row after which a provider exits (distress: negative cash, or overloaded beyond overload_limit without the money to buy the capacity its demand needs)", "quarters", ge=1, le=400)
    overload_limit: float = F(1.5, "utilisation (demand / serving capacity) above which a provider that cannot fund the capacity it needs is in distress", "ratio", gt=1, le=100)


# --------------------------------------------------------------------- providers
class CommittedCapex(Section):
    total: float = F(0.0, "committed capex budget", "US$ million", ge=0, le=1e8)
    start: QuarterRef = F(0, "first quarter of spending (label or offset)", "quarter")
    quarters: int = F(12, "quarters over which the budget is spread evenly", "quarters", ge=1, le=400)

    _q = field_validator("start")(classmethod(lambda cls, v: _check_quarter(v)))


class ProviderConfig(Section):
    name: str = F(..., "provider name", "", min_length=1, max_length=60)
    has_model: bool = F(True, "owns a large model; false = compute-only 'porter' serving the best open-weights model", "")
    capability: float = F(0.8, "own model capability (or the floor of a porter); the best at the start is the first frontier", "index", ge=0, le=1e6)
    synergy: float = F(1.0, "organisational synergy: multiplies the rate at which training compute and data turn into capability (model, cloud and chip teams under one roof)", "ratio", ge=0, le=10)
    compute: float = F(1.0e5, "compute stock at the start", "GPU-equivalents", ge=0, le=1e10)
    training_share: float = F(0.15, "share of compute used for training (rest serves demand)", "fraction", ge=0, le=0.95)
    own_chip_share: float = F(0.0, "share of new compute bought as own chips (cheaper, not import-capped)", "fraction", ge=0, le=1)
    lock_in: float = F(1.0, "lock-in strength of its ecosystem: multiplies customers' switching cost", "", ge=0, le=20)
    price: float | None = F(None, "starting price; none = unit cost x (1 + base markup)", "US$ per GPU-quarter", gt=0, le=1e7)
    cash: float = F(10000.0, "cash (and parent backing) at the start", "US$ million", ge=-1e9, le=1e9)
    capex_share: float = F(0.2, "share of revenue spent on compute beyond what demand needs (the arms race)", "fraction", ge=0, le=5)
    committed_capex: CommittedCapex = F(CommittedCapex, "an optional committed capex budget", "")
    captive_compute: float = F(0.0, "compute demand of the provider's own apps at the start", "GPU-equivalents", ge=0, le=1e10)
    captive_growth: float = F(0.05, "growth of captive demand per quarter", "fraction per quarter", ge=-0.5, le=2)
    captive_tokens: float = F(0.0, "token volume of the provider's own apps at the start (data for the flywheel)", "token units per quarter", ge=0, le=1e15)
    initial_share: float = F(0.0, "share of adopted customers' compute demand held at the start; a drawn population's only: with run.start_from (the snapshot holds the customers) only the default is allowed", "fraction", ge=0, le=1)
    affinity: dict[str, float] = F({}, "ecosystem fit per segment (utility units, 0 = neutral)", "utils")
    reliability: float = F(1.0, "reliability at the start", "0..1", ge=0, le=1)
    parent: str | None = F(None, "name of the parent group (a [[parents]] entry) that funds it and owns its captive apps; none = standalone", "", min_length=1, max_length=60)


class EntrantConfig(ProviderConfig):
    bankroll: float = F(1000.0, "funds available at the start of the run", "US$ million", ge=0, le=1e9)
    funding: float = F(0.0, "funds raised per quarter before entry", "US$ million per quarter", ge=0, le=1e8)
    earliest: QuarterRef = F(0, "earliest quarter of entry (label or offset)", "quarter")
    cash: float = F(0.0, "unused: an entrant's cash is its bankroll minus the entry cost", "US$ million", ge=-1e9, le=1e9)
    initial_share: float = F(0.0, "not for entrants: an entrant holds no customers when it enters (only 0 is allowed)", "fraction", ge=0, le=1)

    _q = field_validator("earliest")(classmethod(lambda cls, v: _check_quarter(v)))

    @field_validator("initial_share")
    @classmethod
    def _no_initial_share(cls, value: float) -> float:
        if value != 0:
            raise ValueError("an entrant holds no customers when it enters, so initial_share has no effect; allowed: 0 (remove it)")
        return value


# ----------------------------------------------------------------------- parents
class ParentConfig(Section):
    name: str = F(..., "name of the group (providers name it in their `parent` key)", "", min_length=1, max_length=60)
    budget_per_quarter: float = F(0.0, "strategic budget allotted each quarter of the window: pays for its providers' capex beyond their own cash; unspent allotments carry over", "US$ million per quarter", ge=0, le=1e7)
    budget_total: float | None = F(None, "alternative to budget_per_quarter: a total spread evenly over budget_quarters (e.g. Alibaba's 380 bn yuan over three years)", "US$ million", ge=0, le=1e9)
    budget_start: QuarterRef = F(0, "first quarter of the budget window (label or offset)", "quarter")
    budget_quarters: int | None = F(None, "length of the budget window; none = to the end of the run (required with budget_total)", "quarters", ge=1, le=400)
    credit_line: float = F(0.0, "operating losses the parent will carry over the whole run: it tops negative cash back up to zero until this is used", "US$ million", ge=0, le=1e9)
    priority: float = F(0.5, "weight the group gives its models over serving: how far its providers' training share moves from their own training_share toward max_training_share as their model falls behind the frontier", "fraction", ge=0, le=1)
    max_training_share: float = F(0.4, "highest training share the group allows (reached at priority 1 with a model at 0 % of the frontier)", "fraction", ge=0, le=0.95)
    transfer_price: typing.Literal["cost", "market"] = F("cost", "what its apps pay per GPU-quarter of compute they use: 'cost' (the provider's unit cost) or 'market' (its price to customers); internal revenue, not in market shares", "")
    rationing: Rationing | None = F(None, "who bears a shortfall at its providers (as service.rationing); none = service.rationing", "")

    _q = field_validator("budget_start")(classmethod(lambda cls, v: _check_quarter(v)))

    @model_validator(mode="after")
    def _one_budget(self) -> "ParentConfig":
        if self.budget_total is not None:
            if self.budget_per_quarter > 0:
                raise ValueError("give either budget_per_quarter or budget_total, not both")
            if self.budget_quarters is None:
                raise ValueError("budget_total needs budget_quarters (the quarters it is spread over)")
        return self

    def allotment(self) -> float:
        """US$ million allotted in each quarter of the window."""
        if self.budget_total is not None:
            return self.budget_total / (self.budget_quarters or 1)
        return self.budget_per_quarter


# ---------------------------------------------------------------------- showcase
class ShowcaseConfig(Section):
    segments: list[str] = F(["internet"], "segments that watch a surge (the Spring Festival Gala) and remember how it was served", "")
    size: float = F(0.5, "standing gained by serving a surge in full (lost by serving none of it), in utility with the watching segments", "utils", ge=0, le=10)
    pass_mark: float = F(0.9, "served share of surge demand at which a surge leaves standing unchanged; above it standing rises, below it falls", "fraction", gt=0, lt=1)
    decay: float = F(0.1, "share of standing forgotten each quarter", "fraction per quarter", ge=0, le=1)


# -------------------------------------------------------------------------- root
class Config(Section):
    name: str = F("unnamed", "name of the scenario", "")
    description: str = F("", "what the scenario is for", "")
    run: RunConfig = F(RunConfig, "run length, seed and population size", "")
    demand: DemandConfig = F(DemandConfig, "submodel 1: demand", "")
    pricing: PricingConfig = F(PricingConfig, "submodel 2: pricing", "")
    choice: ChoiceConfig = F(ChoiceConfig, "submodel 3: choice", "")
    installed_base: InstalledBaseConfig = F(InstalledBaseConfig, "submodel 3: the installed-base (bandwagon) term of choice", "")
    investment: InvestmentConfig = F(InvestmentConfig, "submodel 5: strategic investment", "")
    multihoming: MultihomingConfig = F(MultihomingConfig, "submodel 3b: multi-homing (a second cloud)", "")
    models: ModelsConfig = F(ModelsConfig, "submodel 3c: model choice (the MaaS layer)", "")
    service: ServiceConfig = F(ServiceConfig, "submodel 4: service", "")
    finance: FinanceConfig = F(FinanceConfig, "submodel 5: money", "")
    capability: CapabilityConfig = F(CapabilityConfig, "submodel 6: capability", "")
    open_weights: OpenWeightsConfig = F(OpenWeightsConfig, "submodel 6: the open-weights model", "")
    entry: EntryConfig = F(EntryConfig, "submodel 7: entry and exit", "")
    providers: list[ProviderConfig] = F(..., "providers present at the start", "", min_length=1)
    entrants: list[EntrantConfig] = F([], "potential entrants", "")
    parents: list[ParentConfig] = F([], "parent groups that fund providers and own their captive apps", "")
    showcase: ShowcaseConfig = F(ShowcaseConfig, "the surge as a public test: standing with watching segments", "")

    @model_validator(mode="after")
    def _cross_checks(self) -> "Config":
        names = [p.name for p in self.all_providers]
        dupes = sorted({n for n in names if names.count(n) > 1})
        if dupes:
            raise ValueError(f"provider names must be unique; repeated: {', '.join(dupes)}")
        segs = set(self.demand.segments)
        for p in self.all_providers:
            unknown = sorted(set(p.affinity) - segs)
            if unknown:
                raise ValueError(f"provider {p.name!r}: affinity names unknown segment(s) {', '.join(unknown)}"
                                 f"{suggest(unknown[0], segs)}; allowed: {', '.join(sorted(segs))}")
        unknown = sorted(set(self.multihoming.segments) - segs)
        if unknown:
            raise ValueError(f"multihoming.segments: unknown segment(s) {', '.join(unknown)}"
                             f"{suggest(unknown[0], segs)}; allowed: {', '.join(sorted(segs))}")
        for c in self.pricing.token_price_cuts:
            if c.provider is not None and c.provider not in names:
                raise ValueError(f"pricing.token_price_cuts: provider {c.provider!r} is not a provider"
                                 f"{suggest(c.provider, names)}; allowed: {', '.join(names)}")
        for s in self.service.surges:
            if s.provider is not None and s.provider not in names:
                raise ValueError(f"service.surges: provider {s.provider!r} is not a provider"
                                 f"{suggest(s.provider, names)}; allowed: {', '.join(names)}")
            bad = sorted(set(s.segments) - segs)
            if bad:
                raise ValueError(f"service.surges: unknown segment(s) {', '.join(bad)}{suggest(bad[0], segs)}; "
                                 f"allowed: {', '.join(sorted(segs))}")
        parents = [g.name for g in self.parents]
        repeated = sorted({n for n in parents if parents.count(n) > 1})
        if repeated:
            raise ValueError(f"parents: names must be unique; repeated: {', '.join(repeated)}")
        for p in self.all_providers:
            if p.parent is not None and p.parent not in parents:
                allowed = ", ".join(parents) if parents else "none defined; add a [[parents]] entry"
                raise ValueError(f"provider {p.name!r}: parent {p.parent!r} is not in [[parents]]"
                                 f"{suggest(p.parent, parents)}; allowed: {allowed}")
        bad = sorted(set(self.showcase.segments) - segs)
        if bad:
            raise ValueError(f"showcase.segments: unknown segment(s) {', '.join(bad)}{suggest(bad[0], segs)}; "
                             f"allowed: {', '.join(sorted(segs))}")
        problems = self._growth_problems()
        if problems:  # one line per rate (``validate`` splits them)
            raise PydanticCustomError("unbounded_growth", "{text}", {"text": "; ".join(problems), "lines": problems})
        fin = self.finance
        # Prices are unit cost x (1 + markup); a unit cost of (almost) nothing underflows to a price of 0
        # (log-price utility undefined). Not only both terms at 0: 1e-9 US$ chips retired at 1e-305 a
        # quarter do the same (found by tests/test_extremes.py).
        start_unit = min(fin.gpu_cost_import, fin.gpu_cost_own) * fin.depreciation + fin.opex_per_gpu
        if start_unit < MIN_UNIT_COST:
            raise ValueError(f"finance: a GPU-equivalent would cost {start_unit:.3g} US$ a quarter to run "
                             f"(min(gpu_cost_import, gpu_cost_own) x depreciation + opex_per_gpu), so prices would be 0; "
                             f"allowed: at least {MIN_UNIT_COST:g} US$ per GPU-quarter")
        if self.run.start_from is not None:
            settings = self.population_settings()
            if settings:  # worded by ``validate`` (population_line)
                raise PydanticCustomError("start_from_population", "{text}", {
                    "text": f"{', '.join(k for k, _, _ in settings)}: no effect with run.start_from",
                    "settings": settings, "start_from": self.run.start_from})
            return self  # the snapshot holds the customers: no initial shares to check
        total = sum(p.initial_share for p in self.providers)
        if self.demand.initial_adoption > 0 and not 0.98 <= total <= 1.02:
            raise ValueError(f"providers' initial_share must sum to 1 (within 0.02) when demand.initial_adoption > 0; they sum to {total:.3f}")
        return self

    def compounding_rates(self) -> list[tuple[str, float]]:
        """(key path, rate per quarter) of every setting that compounds over the run: a level
        multiplied by (1 + rate) each quarter."""
        rates = []
        for name, seg in self.demand.segments.items():
            rates += [(f"demand.segments.{name}.growth", seg.growth), (f"demand.segments.{name}.token_growth", seg.token_growth)]
        for section, specs in (("providers", self.providers), ("entrants", self.entrants)):
            rates += [(f"{section}.{p.name}.captive_growth", p.captive_growth) for p in specs]
        rates += [("capability.training_cost_growth", self.capability.training_cost_growth),
                  ("finance.gpu_cost_trend", self.finance.gpu_cost_trend)]
        return rates

    def population_settings(self) -> list[tuple[str, Any, Any]]:
        """(key path, value, default) of every key of ``POPULATION_KEYS`` set to other than its
        default (a built-in segment's default is its own, from ``_default_segments``); providers
        and segments by name, in config order."""
        builtin = _default_segments()
        found = []
        for pattern in POPULATION_KEYS:
            for path, owner, field in _walk(self, pattern.split(".")):
                if path[:2] == ["demand", "segments"] and path[2] in builtin:
                    default = getattr(builtin[path[2]], field)
                else:
                    default = type(owner).model_fields[field].get_default(call_default_factory=True)
                value = getattr(owner, field)
                if value != default:
                    found.append((".".join(path), value, default))
        return found

    def _growth_problems(self) -> list[str]:
        """A rate allowed on its own can compound past any meaningful (or representable) level over a
        long run: 1.0 per quarter for 120 quarters is a factor of 1.3e36, beyond float32."""
        q = self.run.quarters
        limit = MAX_GROWTH_FACTOR ** (1.0 / q) - 1.0
        problems = []
        for key, rate in self.compounding_rates():
            if rate > limit:
                factor = q * math.log10(1.0 + rate)
                problems.append(f"{key}: {rate:g} per quarter over run.quarters = {q} multiplies its level by "
                                f"{10 ** factor:.2g}; allowed: at most a factor of 1e{math.log10(MAX_GROWTH_FACTOR):.0f} over the run, "
                                f"i.e. {key.rsplit('.', 1)[1]} <= {math.floor(limit * 1e4) / 1e4:g} for {q} quarters")
        return problems

    @property
    def all_providers(self) -> list[ProviderConfig]:
        return [*self.providers, *self.entrants]

    def quarter_offset(self, ref: str | int) -> int:
        return quarters.offset(self.run.start, ref)

    def resolved(self) -> dict[str, Any]:
        return self.model_dump(mode="json")

    def hash(self) -> str:
        canonical = json.dumps(self.resolved(), sort_keys=True, separators=(",", ":"), allow_nan=False)
        return hashlib.sha256(canonical.encode()).hexdigest()[:16]


def _walk(node: Any, parts: list[str], path: tuple[str, ...] = ()) -> typing.Iterator[tuple[list[str], BaseModel, str]]:
    """(key path, section, field name) for a key pattern (``*`` = every item of a list, named by
    its ``name``, or every entry of a table) in a validated config."""
    head, *rest = parts
    if not rest:
        yield [*path, head], node, head
    elif head == "*":
        items = node.items() if isinstance(node, dict) else ((item.name, item) for item in node)
        for name, item in items:
            yield from _walk(item, rest, (*path, name))
    else:
        yield from _walk(getattr(node, head), rest, (*path, head))


# ----------------------------------------------------------------- loading / errors
def resolve_path(name_or_path: str | Path) -> Path:
    """A config given as a path, or as a preset name looked up in ``configs/``."""
    return find_toml(name_or_path, CONFIG_DIR, "preset")


def find_toml(name_or_path: str | Path, folder: Path, kind: str) -> Path:
    """A TOML file given as a path, or by name (with or without .toml) in ``folder``."""
    path = Path(name_or_path)
    if path.is_file():
        return path
    for candidate in (folder / path, folder / f"{path}.toml"):
        if candidate.is_file():
            return candidate
    names = ", ".join(sorted(p.stem for p in folder.glob("*.toml")))
    raise ConfigError([f"{name_or_path}: no such file, and no {kind} of that name ({kind}s: {names})"])


def read_toml(path: Path) -> dict[str, Any]:
    try:
        with path.open("rb") as fh:
            return tomllib.load(fh)
    except tomllib.TOMLDecodeError as exc:
        raise ConfigError([f"{path}: TOML syntax error: {exc}"]) from None
    except UnicodeDecodeError as exc:
        raise ConfigError([f"{path}: not a TOML file: not UTF-8 text ({exc.reason} at byte {exc.start})"]) from None
    except OSError as exc:
        raise ConfigError([f"{path}: cannot read: {exc.strerror}"]) from None


def parse_override(text: str) -> tuple[list[str], Any]:
    """``key.path=value``; the value is read as TOML (numbers, booleans, strings, lists), else as a string."""
    if "=" not in text:
        raise ConfigError([f"--set {text}: expected key.path=value"])
    key, raw = text.split("=", 1)
    key = key.strip()
    if not key:
        raise ConfigError([f"--set {text}: empty key"])
    try:
        value = tomllib.loads(f"v = {raw}")["v"]
    except tomllib.TOMLDecodeError:
        value = raw  # a bare word; "none" among them clears an optional value
    return key.split("."), value


def set_path(raw: dict[str, Any], path: list[str], value: Any, source: str = "--set") -> None:
    """Set ``value`` at ``path`` in a raw config dict.  List items (providers, entrants,
    surges) are addressed by index or, for providers and entrants, by name."""
    node: Any = raw
    for i, part in enumerate(path):
        last = i == len(path) - 1
        where = ".".join(path[: i + 1])
        if isinstance(node, list):
            idx = _list_index(node, part)
            if idx is None:
                names = [str(item.get("name")) for item in node if isinstance(item, dict) and "name" in item]
                allowed = f"an index 0..{len(node) - 1}" + (f" or a name ({', '.join(names)})" if names else "")
                raise ConfigError([f"{source} {'.'.join(path)}: {where}: no item {part!r}{suggest(part, names)}; "
                                   f"allowed: {allowed}"])
            if last:
                node[idx] = value
            else:
                node = node[idx]
        elif isinstance(node, dict):
            if last:
                node[part] = value
            else:
                if part not in node or node[part] is None:
                    node[part] = {}
                node = node[part]
        else:
            raise ConfigError([f"{source} {'.'.join(path)}: {'.'.join(path[:i])} is a value, not a section"])


def _list_index(items: list[Any], part: str) -> int | None:
    if part.lstrip("-").isdigit():
        idx = int(part)
        return idx if -len(items) <= idx < len(items) else None
    for idx, item in enumerate(items):
        if isinstance(item, dict) and item.get("name") == part:
            return idx
    return None


def validate(raw: dict[str, Any], source: str = "<config>") -> Config:
    try:
        return Config.model_validate(raw)
    except ValidationError as exc:
        problems = []
        for err in merged_errors(exc.errors(), raw):
            if err["type"] == "unbounded_growth":
                problems += [f"{source}: {line}" for line in err["ctx"]["lines"]]
            elif err["type"] == "start_from_population":
                settings = [f"{key} = {_toml(value)} (default {_toml(default)})" for key, value, default in err["ctx"]["settings"]]
                problems.append(population_line(source, settings, err["ctx"]["start_from"]))
            else:
                problems.append(_describe(err, raw, source))
        raise ConfigError(problems) from None


def merged_errors(errors: list[dict[str, Any]], raw: Any) -> list[dict[str, Any]]:
    """One error per key: pydantic reports a value that fits no member of a union (``str | int``)
    once per member, with the member's tag appended to the location; those become one error
    whose message lists what each member expects."""
    merged: dict[tuple, dict[str, Any]] = {}
    for err in errors:
        loc = _data_loc(list(err["loc"]), raw)
        key = tuple(loc)
        if key in merged and err["type"] not in ("value_error", "assertion_error"):
            first = merged[key]
            extra = err["msg"].removeprefix("Input should be ")
            if extra not in first["msg"]:
                first["msg"] = f"{first['msg']} or {extra}"
            continue
        merged.setdefault(key, {**err, "loc": tuple(loc)})
    return list(merged.values())


def _data_loc(loc: list[Any], raw: Any) -> list[Any]:
    """``loc`` without the union-member tags pydantic appends after a value (e.g. 'str', 'int')."""
    out, node = [], raw
    for part in loc:
        if not isinstance(node, (dict, list)) and node is not None:
            break  # below a plain value: the rest are tags
        out.append(part)
        try:
            node = node[part] if node is not None else None
        except (KeyError, IndexError, TypeError):
            node = None
    return out


def load_config(path: str | Path, overrides: list[str] | None = None) -> Config:
    """Read, override and validate a config file (or a preset name)."""
    file = resolve_path(path)
    raw = read_toml(file)
    for text in overrides or []:
        keys, value = parse_override(text)
        set_path(raw, keys, value)
    return validate(raw, str(file))


def with_overrides(config: Config, overrides: dict[str, Any], source: str = "overrides") -> Config:
    """A new validated config with ``{"a.b.c": value}`` overrides applied."""
    raw = copy.deepcopy(config.resolved())
    for key, value in overrides.items():
        set_path(raw, key.split("."), value, source)
    return validate(raw, source)


def _describe(err: dict[str, Any], raw: dict[str, Any], source: str) -> str:
    loc = list(err["loc"])
    key = _key_path(loc, raw)
    kind = err["type"]
    if kind == "extra_forbidden":
        allowed = _allowed_keys(loc[:-1])
        moved = MOVED_KEYS.get(".".join(str(part) for part in loc))
        if moved:
            return f"{source}: {key}: no longer a key: {moved}"
        return f"{source}: {key}: unknown key{suggest(loc[-1], allowed)}; allowed keys here: {', '.join(allowed)}"
    if kind == "missing":
        return f"{source}: {key}: required key is missing"
    msg = err["msg"].removeprefix("Value error, ")
    where = f"{key}: " if key else ""
    field = _field_for(loc)
    detail = ""
    if field is not None and kind not in ("value_error", "assertion_error"):
        detail = _allowed_text(field)
    got = f" (got {err['input']!r})" if "input" in err and not isinstance(err["input"], (dict, list)) else ""
    return f"{source}: {where}{msg}{got}{detail}"


def population_line(source: str, settings: list[str], start_from: str) -> str:
    """The one line refusing keys that shape a drawn population (``POPULATION_KEYS``) in a run
    that starts from the snapshot ``start_from``; ``settings`` describe each key as set."""
    them = "it" if len(settings) == 1 else "them"
    return (f"{source}: {', '.join(settings)}: no effect with run.start_from = \"{start_from}\", whose snapshot's "
            f"customers replace the drawn population; remove {them}, or set run.start_from = \"{NONE_WORD}\" "
            f"to draw a fresh population")


def _toml(value: Any) -> str:
    """A value as TOML (and --set) writes it: none, 0.5, 2."""
    if value is None:
        return NONE_WORD
    return repr(int(value)) if isinstance(value, float) and value.is_integer() else repr(value)


# Keys that were replaced by another mechanism: the error says where the setting went.
MOVED_KEYS = {
    "finance.captive_billing": "what a provider's own apps pay for their compute is its parent's "
                               "transfer_price ('cost' or 'market') in [[parents]]; without a parent they pay unit cost",
}


def _key_path(loc: list[Any], raw: dict[str, Any]) -> str:
    parts: list[str] = []
    node: Any = raw
    for part in loc:
        if isinstance(part, int):
            name = node[part].get("name") if isinstance(node, list) and part < len(node) and isinstance(node[part], dict) else None
            parts[-1] += f"[{part}]" + (f" ({name})" if name else "")
        else:
            parts.append(str(part))
        try:
            node = node[part]
        except (KeyError, IndexError, TypeError):
            node = None
    return ".".join(parts)


def _container(loc: list[Any], root: type[BaseModel] | None = None) -> type[BaseModel] | None:
    """The pydantic model holding the last key of ``loc`` (list indices and dict keys skipped),
    starting from ``root`` (default: Config; experiment specs pass theirs)."""
    model: type[BaseModel] | None = root or Config
    skip_key = False
    for part in loc[:-1]:
        if isinstance(part, int):
            continue
        if skip_key:
            skip_key = False
            continue
        field = model.model_fields.get(part) if model else None
        if field is None:
            return None
        model = _inner_model(field.annotation)
        skip_key = typing.get_origin(field.annotation) is dict
    return None if skip_key else model


def _inner_model(annotation: Any) -> type[BaseModel] | None:
    if isinstance(annotation, type) and issubclass(annotation, BaseModel):
        return annotation
    for arg in typing.get_args(annotation):
        found = _inner_model(arg)
        if found is not None:
            return found
    return None


def _allowed_keys(loc: list[Any]) -> list[str]:
    if loc and loc[-1] == "affinity":
        return ["any segment name from demand.segments"]
    model = _container([*loc, "_"])
    return list(model.model_fields) if model else []


def _field_for(loc: list[Any]) -> Any:
    if not loc or isinstance(loc[-1], int):
        return None
    model = _container(loc)
    return model.model_fields.get(loc[-1]) if model else None


def field_bounds(field: Any) -> list[tuple[str, Any]]:
    """A field's numeric bounds as (operator, value) pairs, e.g. [(">=", 0), ("<=", 1)]."""
    return [(sym, getattr(meta, attr)) for meta in field.metadata
            for attr, sym in (("ge", ">="), ("gt", ">"), ("le", "<="), ("lt", "<"))
            if getattr(meta, attr, None) is not None]


def _allowed_text(field: Any) -> str:
    bounds = [f"{sym} {value}" for sym, value in field_bounds(field)]
    unit = (field.json_schema_extra or {}).get("unit") if isinstance(field.json_schema_extra, dict) else None
    parts = []
    if bounds:
        parts.append("allowed: " + " and ".join(bounds) + (f', or "{NONE_WORD}"' if _allows_none(field.annotation) else ""))
    if unit:
        parts.append(f"unit: {unit}")
    return f"; {'; '.join(parts)}" if parts else ""
