"""Experiment specs: TOML files in ``experiments/`` -> validated pydantic models.

A spec names a base config, fixed overrides, the parameters to vary (any config
key path, ``*`` for every provider), a design, replicates per design point and a
master seed; plus the outcomes to compute from the stored per-quarter tables and
the figures to draw.  Like configs, unknown keys are errors, and every problem
is one line naming the spec file, the key path and what is allowed.
"""

from __future__ import annotations

import copy
import hashlib
import json
import math
import typing
from pathlib import Path
from typing import Any, Literal

from pydantic import BaseModel, ConfigDict, Field, PrivateAttr, ValidationError, field_validator, model_validator

from sim import resources
from sim.experiment.batching import DEFAULT_MEMORY_BUDGET, parse_size
from sim.config import (Config, ConfigError, _container, _plain, field_bounds, find_toml, load_config, read_toml, resolve_path,
                        with_overrides)

EXPERIMENT_DIR = resources.folder("experiments")  # the clone's experiments/, or the copy in the wheel
DESIGNS = ("grid", "zip", "random", "latin", "sobol", "morris")
METRIC_NAMES = ("revenue", "compute", "tokens", "customers", "cloud_revenue", "ai_cloud_revenue", "maas_tokens")
# Columns every results table has beside a run's parameters (sim.experiment.store, .results): a
# parameter or outcome of the same name could not be told apart from them.  (A parameter named like
# a market or provider column, e.g. capability, comes as ``param:capability`` in those tables.)
RESERVED_NAMES = frozenset(("run_id", "design_index", "replicate", "label", "seed", "status", "error", "wall_time",
                            "worker", "quarter", "step", "provider"))
GROUPS = ("porters", "model_owners", "entrants", "incumbents")
Scalar = float | int | str | bool


class Part(BaseModel):
    """Base of every spec table: strict and finite like the config's sections (``replicates = true``
    is not 1, ``"5"`` is not 5, ``inf`` is no bound); numpy scalars count as the numbers they are."""

    model_config = ConfigDict(extra="forbid", strict=True, allow_inf_nan=False)

    @model_validator(mode="before")
    @classmethod
    def _numpy_scalars(cls, data: Any) -> Any:
        return {k: _plain(v) for k, v in data.items()} if isinstance(data, dict) else data


class Param(Part):
    key: str | None = Field(None, description="config key path set by this parameter, e.g. choice.switching_base")
    keys: list[str] = Field([], description="several key paths set to the same value; '*' stands for every provider")
    type: Literal["float", "int", "categorical"] = Field("float", description="kind of values")
    low: float | None = Field(None, description="lowest value (float/int)")
    high: float | None = Field(None, description="highest value (float/int)")
    num: int | None = Field(None, ge=2, le=1000, description="grid: number of evenly spaced values from low to high")
    values: list[Scalar] | None = Field(None, description="explicit values (grid, zip, categorical, or a discrete set to sample)")
    log: bool = Field(False, description="space / sample low..high on a log scale")
    mode: Literal["set", "scale"] = Field("set", description="set the key to the value, or multiply the base value by it")
    label: str = Field("", description="axis label in figures")
    role: Literal["uncertainty", "lever"] = Field(
        "uncertainty", description="exploratory modelling (EMA Workbench): what the world may be (uncertainty) "
                                   "or what a provider or regulator chooses (lever)")

    @model_validator(mode="after")
    def _check(self) -> "Param":
        if self.key and self.keys:
            raise ValueError("give either key or keys, not both")
        if not self.key and not self.keys:
            raise ValueError("a parameter needs key = 'a.b.c' (or keys = [...])")
        if self.type == "categorical":
            if not self.values:
                raise ValueError("a categorical parameter needs values = [...]")
            if self.low is not None or self.high is not None:
                raise ValueError("a categorical parameter takes values, not low/high")
            if self.mode == "scale":
                raise ValueError("mode = 'scale' needs a numeric parameter")
            return self
        if self.values is not None:
            if not self.values:
                raise ValueError("values must not be empty")
            bad = [v for v in self.values if isinstance(v, (str, bool))]
            if bad:
                raise ValueError(f"a {self.type} parameter takes numbers; got {bad[0]!r} (use type = 'categorical')")
            if self.low is not None or self.high is not None:
                raise ValueError("give values or low/high, not both")
        elif self.low is None or self.high is None:
            raise ValueError("a numeric parameter needs low and high (or values = [...])")
        elif not self.low < self.high:
            raise ValueError(f"low ({self.low}) must be below high ({self.high})")
        elif self.log and self.low <= 0:
            raise ValueError(f"log = true needs low > 0 (got {self.low})")
        if self.type == "int":
            nums = self.values if self.values is not None else [self.low, self.high]
            if any(float(v) != int(v) for v in nums):
                raise ValueError("an int parameter needs whole-number low/high/values")
        return self

    @property
    def targets(self) -> list[str]:
        return [self.key] if self.key else list(self.keys)

    @property
    def discrete(self) -> bool:
        return self.values is not None


class Design(Part):
    kind: Literal["grid", "zip", "random", "latin", "sobol", "morris"] = Field("grid", description="design")
    samples: int | None = Field(None, ge=1, le=1_000_000, description="random/latin: points; sobol: base samples N (a power of 2); morris: trajectories")
    second_order: bool = Field(False, description="sobol: also estimate second-order indices")
    levels: int = Field(4, ge=2, le=100, description="morris: grid levels (even)")
    labels: list[str] = Field([], description="zip: a name per scenario")

    @model_validator(mode="after")
    def _check(self) -> "Design":
        if self.kind in ("random", "latin", "sobol", "morris") and self.samples is None:
            raise ValueError(f"design kind {self.kind!r} needs samples = N")
        if self.kind in ("grid", "zip") and self.samples is not None:
            raise ValueError(f"design kind {self.kind!r} takes no samples (its size follows from the parameters)")
        if self.kind == "sobol" and self.samples & (self.samples - 1):
            raise ValueError(f"sobol samples must be a power of 2 (Sobol' sequences); got {self.samples}")
        if self.kind == "morris" and self.levels % 2:
            raise ValueError(f"morris levels must be even; got {self.levels}")
        if self.labels and self.kind != "zip":
            raise ValueError("labels are for zip designs")
        return self


class Outcome(Part):
    kind: Literal["final", "change", "share", "leader_share", "reaches_share", "quarters_to_share", "survives",
                  "entered", "provider"] = Field(..., description="how the outcome is computed from one run's "
                                                                  "per-quarter tables")
    column: str | None = Field(None, description="final: a market column, e.g. hhi_revenue; change: a market column's "
                                                 "final value minus its first quarter's; provider: a provider "
                                                 "column, e.g. markup, averaged over the providers named")
    metric: Literal["revenue", "compute", "tokens", "customers", "cloud_revenue", "ai_cloud_revenue", "maas_tokens"] = Field("revenue", description="share metric")
    providers: list[str] | Literal["porters", "model_owners", "entrants", "incumbents"] | None = Field(
        None, description="provider names, or a group: porters, model_owners, entrants, incumbents")
    threshold: float | None = Field(None, gt=0, le=1, description="share threshold (reaches_share, quarters_to_share; "
                                                                   "leader_share: 1 if the leader's final share is at "
                                                                   "least this, else 0)")
    at: Literal["final", "max", "mean", "first", "change"] = Field(
        "final", description="share, provider: which quarter(s); change = final minus first quarter")
    survive: bool = Field(False, description="reaches_share: also require being active at the end")
    sustained: int = Field(1, ge=1, le=400, description="reaches_share, quarters_to_share: the share must hold "
                                                         "for this many consecutive quarters (1 = any single quarter)")
    label: str = Field("", description="axis label in figures")

    @model_validator(mode="after")
    def _check(self) -> "Outcome":
        if self.kind == "final" and not self.column:
            raise ValueError("kind 'final' needs column = '<market column>', e.g. hhi_revenue")
        if self.kind == "change" and not self.column:
            raise ValueError("kind 'change' needs column = '<market column>', e.g. hhi_revenue")
        if self.kind == "provider" and not self.column:
            raise ValueError("kind 'provider' needs column = '<provider column>', e.g. markup")
        if self.kind not in ("final", "change", "provider") and self.column:
            raise ValueError(f"column is only for kinds 'final', 'change' and 'provider', not {self.kind!r}")
        needs_providers = ("share", "reaches_share", "quarters_to_share", "survives", "entered", "provider")
        if self.kind in needs_providers and self.providers is None:
            raise ValueError(f"kind {self.kind!r} needs providers = [names] or a group ({', '.join(GROUPS)})")
        if self.kind in ("reaches_share", "quarters_to_share") and self.threshold is None:
            raise ValueError(f"kind {self.kind!r} needs threshold (a share between 0 and 1)")
        return self


class Figure(Part):
    kind: Literal["shares", "timeseries", "heatmap", "curve", "sensitivity", "prim", "feature_scoring",
                  "parcoords", "winners", "verdicts"] = Field(
        ..., description="figure type (prim, feature_scoring and parcoords use EMA Workbench: the ema extra; winners: "
                         "which provider leads at the end, share of runs per value of x; verdicts: each verdict's "
                         "difference with its 95 % interval)")
    name: str | None = Field(None, pattern=r"^[A-Za-z0-9_.-]+$", description="file name stem (default: kind and number)")
    title: str = Field("", description="figure title")
    metric: Literal["revenue", "compute", "tokens", "customers", "cloud_revenue", "ai_cloud_revenue", "maas_tokens"] = Field("revenue", description="share metric")
    points: list[int] | Literal["all", "corners", "first"] | None = Field(None, description="design points to show")
    column: str | None = Field(None, description="timeseries: a market column (default hhi_<metric>)")
    providers: list[str] | Literal["porters", "model_owners", "entrants", "incumbents"] | None = Field(
        None, description="timeseries: plot the summed share of these providers instead of a column")
    x: str | None = Field(None, description="heatmap/curve/winners: parameter on the x axis")
    y: str | None = Field(None, description="heatmap: parameter on the y axis")
    hue: str | None = Field(None, description="curve: one line per value of this parameter")
    outcome: str | list[str] | None = Field(None, description="outcome name(s) (heatmap, curve, sensitivity, prim, "
                                                              "feature_scoring, parcoords)")
    stat: Literal["mean", "median"] = Field("mean", description="heatmap: statistic across replicates")
    where: dict[str, Scalar] = Field({}, description="only design points where these parameters have these values")
    threshold: float | None = Field(None, description="prim, parcoords: runs whose outcome is above (or, with "
                                                      "below = true, below) this value are the cases of interest")
    below: bool = Field(False, description="prim, parcoords: cases of interest are below the threshold")
    min_density: float = Field(0.8, gt=0, le=1, description="prim: the box reported is the one with the highest "
                                                           "coverage whose density reaches this")

    @model_validator(mode="after")
    def _check(self) -> "Figure":
        need = {"heatmap": ("x", "y", "outcome"), "curve": ("x", "outcome"), "winners": ("x",), "sensitivity": ("outcome",),
                "prim": ("outcome", "threshold"), "feature_scoring": ("outcome",), "parcoords": ("outcome",)}
        missing = [k for k in need.get(self.kind, ()) if getattr(self, k) is None]
        if missing:
            raise ValueError(f"a {self.kind} figure needs {', '.join(missing)}")
        if self.kind != "timeseries" and (self.column or self.providers):
            raise ValueError("column/providers are for timeseries figures")
        return self

    @property
    def outcomes(self) -> list[str]:
        if self.outcome is None:
            return []
        return [self.outcome] if isinstance(self.outcome, str) else list(self.outcome)


class Replication(Part):
    """The rule that chooses how many replicates a design point gets: blocks of runs until the 95 %
    interval of the headline outcome's mean at that point is narrower than ``width``, or the spec's
    ``replicates`` (the cap) are used up.  The decision for a point after a block depends only on that
    point's runs so far, so it is the same whatever the number of workers, and on --resume."""

    outcome: str = Field(..., description="the headline outcome whose interval decides (an outcome name)")
    width: float = Field(..., gt=0, description="stop when the 95 % interval of the mean (Student t; Wilson for "
                                                "a yes/no outcome) is narrower than this, in the outcome's units "
                                                "(a share: a fraction, 0.05 = 5 points)")
    first: int = Field(8, ge=2, le=100_000, description="replicates in the first block")
    block: int = Field(8, ge=1, le=100_000, description="replicates added per block while the interval is too wide")


class Verdict(Part):
    """A claim checked with its interval: the mean of an outcome at some design points against its mean
    at others (or against a value).  'supported' when the 95 % interval of the difference lies wholly
    on the expected side of 0, 'contradicted' when wholly on the other side, else 'not resolved'."""

    name: str = Field(..., pattern=r"^[A-Za-z0-9_.-]+$", description="short name")
    claim: str = Field("", description="what the verdict checks, in words")
    outcome: str = Field(..., description="an outcome name")
    at: dict[str, Scalar] = Field({}, description="design points where parameters take these values (empty: all)")
    against: dict[str, Scalar] | None = Field(None, description="compared with these design points ...")
    value: float | None = Field(None, description="... or with this value")
    expect: Literal["higher", "lower"] = Field(..., description="the claim holds if the outcome at `at` is higher "
                                                               "(or lower) than at `against` (or than `value`)")

    @model_validator(mode="after")
    def _check(self) -> "Verdict":
        if (self.against is None) == (self.value is None):
            raise ValueError("a verdict needs either against = { ... } or value = number")
        return self


class Spec(Part):
    name: str = Field("", description="experiment name (default: the file name)")
    description: str = Field("", description="what the experiment is for")
    claim: str = Field("", description="the article's claim it tests")
    base: str = Field(..., description="base config: a preset name in configs/ or a path")
    fixed: dict[str, Any] = Field({}, description="overrides applied to every run, 'key.path' = value")
    params: dict[str, Param] = Field({}, description="parameters to vary, by name")
    design: Design = Field(default_factory=Design, description="the design")
    replicates: int = Field(1, ge=1, le=100_000, description="runs per design point, each with its own seed (with "
                                                             "[replication]: the most a point may get)")
    replication: Replication | None = Field(None, description="a rule that chooses the replicates per point "
                                                              "(default: every point gets `replicates`)")
    seed: int = Field(0, ge=0, le=2**63 - 1, description="master seed; every run's seed derives from it")
    seeds: list[int] = Field([], description="sobol/morris: run the whole design once per master seed (each its "
                                             "own sample and runs) to check that the indices agree; replaces seed")
    common_random_numbers: bool = Field(False, description="replicate r uses the same seed at every design point")
    max_runs: int = Field(5000, ge=1, description="refuse larger sweeps unless confirmed (--yes)")
    batch_size: int | None = Field(None, ge=1, le=100_000, description="runs a worker steps together in one batch "
                                   "(1 = every run alone; default: chosen from memory_budget, at most 100); "
                                   "results do not depend on it (--batch-size)")
    memory_budget: str = Field(DEFAULT_MEMORY_BUDGET, description="memory the batches running at once may take "
                               "together, e.g. 4GB, 512MB, 2GiB; the batch size adapts to it (--memory-budget)")
    outcomes: dict[str, Outcome] = Field({}, description="outcomes computed per run, by name")
    figures: list[Figure] = Field([], description="figures drawn after the sweep")
    verdicts: list[Verdict] = Field([], description="claims checked with the 95 % interval of a difference")

    # set by validate_spec: where the spec came from
    _source: str = PrivateAttr("")

    @field_validator("memory_budget")
    @classmethod
    def _size(cls, value: str) -> str:
        parse_size(value)  # ValueError names the value and what is allowed
        return value

    @property
    def source(self) -> str:
        return self._source

    @property
    def masters(self) -> list[int]:
        """The master seeds: ``seeds`` if given, else ``[seed]``."""
        return list(self.seeds) or [self.seed]

    @property
    def base_path(self) -> str:
        """The base config file: beside the spec, else a path or a preset in configs/."""
        return str(_base_file(self, self._source))

    def all_outcomes(self) -> dict[str, Outcome]:
        """Built-in outcomes (final HHI and leader share per metric) plus the spec's own."""
        built = {}
        for m in METRIC_NAMES:
            built[f"final_hhi_{m}"] = Outcome(kind="final", column=f"hhi_{m}", label=f"final HHI ({m})")
            built[f"leader_share_{m}"] = Outcome(kind="leader_share", metric=m, label=f"leader's final share of {m}")
        return {**built, **self.outcomes}

    def resolved(self) -> dict[str, Any]:
        return self.model_dump(mode="json")

    def hash(self) -> str:
        return _hash(self.resolved())


# Which fields each kind uses; a field set to something else than its default for another kind
# would silently do nothing, so it is an error (issue 13, case 9).
OUTCOME_FIELDS = {
    "column": ("final", "change", "provider"),
    "metric": ("share", "leader_share", "reaches_share", "quarters_to_share"),
    "providers": ("share", "reaches_share", "quarters_to_share", "survives", "entered", "provider"),
    "threshold": ("reaches_share", "quarters_to_share", "leader_share"),
    "at": ("share", "provider"),
    "survive": ("reaches_share",),
    "sustained": ("reaches_share", "quarters_to_share"),
}
FIGURE_FIELDS = {
    "metric": ("shares", "timeseries", "winners"),
    "points": ("shares", "timeseries"),
    "x": ("heatmap", "curve", "winners"),
    "y": ("heatmap",),
    "hue": ("curve",),
    "outcome": ("heatmap", "curve", "sensitivity", "prim", "feature_scoring", "parcoords"),
    "stat": ("heatmap",),
    "threshold": ("prim", "parcoords"),
    "below": ("prim", "parcoords"),
    "min_density": ("prim",),
}
DESIGN_FIELDS = {"second_order": ("sobol",), "levels": ("morris",)}


def _unused(model: BaseModel, kind: str, fields: dict[str, tuple[str, ...]], where: str):
    for name, kinds in fields.items():
        default = type(model).model_fields[name].get_default(call_default_factory=True)
        if kind not in kinds and getattr(model, name) != default:
            yield f"{where}.{name}: has no effect for kind {kind!r} (only for {', '.join(kinds)}); remove it"


def _matches(pattern: str, key: str) -> bool:
    """Whether a parameter's key path (``*`` for any item) sets ``key``."""
    a, b = pattern.split("."), key.split(".")
    return len(a) == len(b) and all(x == y or "*" in (x, y) for x, y in zip(a, b))


def _ineffective(spec: Spec):
    """Settings that cannot take effect: each is an error rather than a silent no-op."""
    for key in spec.fixed:
        if key.split(".")[:2] == ["run", "seed"]:
            yield (f"fixed.{key}: has no effect: each run's seed derives from the spec's seed and the run's "
                   f"design point and replicate; set seed = {spec.fixed[key]!r} at the top of the spec instead")
            continue
        setters = [n for n, p in spec.params.items() if any(_matches(t, key) for t in p.targets)]
        if setters:
            yield f"fixed.{key}: has no effect: parameter {setters[0]!r} sets it in every run; remove one of them"
    seen: dict[str, str] = {}
    for name, p in spec.params.items():
        for t in p.targets:
            other = next((o for k, o in seen.items() if _matches(k, t)), None)
            if other is not None and other != name:
                yield f"params.{name}: {t} is also set by parameter {other!r}; only one of them could take effect"
            seen.setdefault(t, name)
        if p.values is not None and p.num is not None:
            yield f"params.{name}.num: has no effect when values are given; remove it"
        if p.log and (p.values is not None or p.type == "categorical"):
            yield f"params.{name}.log: has no effect when values are given; remove it"
        if p.num is not None and spec.design.kind != "grid":
            yield f"params.{name}.num: has no effect for a {spec.design.kind} design (only for grid); remove it"
    yield from _unused(spec.design, spec.design.kind, DESIGN_FIELDS, "design")
    for name, o in spec.outcomes.items():
        yield from _unused(o, o.kind, OUTCOME_FIELDS, f"outcomes.{name}")
    for i, f in enumerate(spec.figures):
        yield from _unused(f, f.kind, FIGURE_FIELDS, f"figures[{i}]")


def _reference_problems(spec: Spec):
    yield from _ineffective(spec)
    names = set(spec.params)
    outcomes = set(spec.all_outcomes())
    kind = spec.design.kind
    if spec.seeds:
        if kind not in ("sobol", "morris"):
            yield f"seeds: several master seeds are for sobol and morris designs (this one is {kind}); use seed"
        if spec.seed != 0:  # a stored spec carries seed = 0 beside its seeds
            yield "seeds: give seed or seeds, not both"
        if len(set(spec.seeds)) != len(spec.seeds) or len(spec.seeds) < 2:
            yield f"seeds: give two or more different master seeds; got {spec.seeds}"
        if any(not 0 <= s < 2**63 for s in spec.seeds):
            yield "seeds: each master seed must be between 0 and 2**63 - 1"
    rep = spec.replication
    if rep is not None:
        if rep.outcome not in outcomes:
            yield f"replication.outcome: {rep.outcome!r} is not an outcome; allowed: {', '.join(sorted(outcomes))}"
        if rep.first > spec.replicates:
            yield (f"replication.first: {rep.first} is more than replicates = {spec.replicates} (the cap); "
                   f"raise replicates or lower first")
    for i, v in enumerate(spec.verdicts):
        if v.outcome not in outcomes:
            yield f"verdicts[{i}].outcome: {v.outcome!r} is not an outcome; allowed: {', '.join(sorted(outcomes))}"
        for side in ("at", "against"):
            for key in (getattr(v, side) or {}):
                if key not in names:
                    yield f"verdicts[{i}].{side}: {key!r} is not a parameter; allowed: {', '.join(sorted(names)) or '(none)'}"
    verdict_names = [v.name for v in spec.verdicts]
    if len(set(verdict_names)) != len(verdict_names):
        yield "verdicts: names must be unique"
    if kind in ("sobol", "morris", "random", "latin") and not names:
        yield f"design: kind {kind!r} needs at least one parameter under [params]"
    for pname in spec.params:
        if pname in RESERVED_NAMES or pname.startswith(("unit:", "param:")):
            yield (f"params.{pname}: the name {pname!r} is taken by a column of the results tables "
                   f"({', '.join(sorted(RESERVED_NAMES))}); choose another name, e.g. {pname + '_value'!r}")
        elif pname in outcomes:
            yield f"params.{pname}: an outcome has the same name; the outcomes table needs both as columns, rename one"
    for oname in spec.outcomes:
        if oname in RESERVED_NAMES:
            yield (f"outcomes.{oname}: the name {oname!r} is taken by a column of the results tables "
                   f"({', '.join(sorted(RESERVED_NAMES))}); choose another name")
    for pname, p in spec.params.items():
        for t in p.targets:
            if t.split(".")[:2] == ["run", "seed"]:
                yield f"params.{pname}: run.seed cannot be swept; seeds come from 'seed' and the replicate"
        if kind == "grid" and not p.discrete and p.type == "float" and p.num is None:
            yield f"params.{pname}: a grid needs values = [...] or num = N points between low and high"
        if kind == "zip" and not p.discrete:
            yield f"params.{pname}: a zip design needs values = [...] (one per scenario)"
    if kind == "zip":
        lengths = {n: len(p.values or []) for n, p in spec.params.items()}
        if len(set(lengths.values())) > 1:
            yield "params: a zip design needs the same number of values for every parameter; got " + \
                  ", ".join(f"{n}={k}" for n, k in lengths.items())
        if spec.design.labels and lengths and len(spec.design.labels) != next(iter(lengths.values())):
            yield f"design.labels: {len(spec.design.labels)} labels for {next(iter(lengths.values()))} scenarios"
    for i, fig in enumerate(spec.figures):
        for axis in ("x", "y", "hue"):
            value = getattr(fig, axis)
            if value is not None and value not in names:
                yield f"figures[{i}].{axis}: {value!r} is not a parameter; allowed: {', '.join(sorted(names)) or '(none)'}"
        for key in fig.where:
            if key not in names:
                yield f"figures[{i}].where: {key!r} is not a parameter; allowed: {', '.join(sorted(names)) or '(none)'}"
        for o in fig.outcomes:
            if o not in outcomes:
                yield f"figures[{i}].outcome: {o!r} is not an outcome; allowed: {', '.join(sorted(outcomes))}"
        if fig.kind == "sensitivity" and fig.where:
            yield f"figures[{i}]: a sensitivity figure uses the whole design; where is not allowed"
        if fig.kind == "sensitivity" and kind not in ("sobol", "morris"):
            yield f"figures[{i}]: a sensitivity figure needs a sobol or morris design (this one is {kind})"
        if fig.kind == "prim" and len(fig.outcomes) != 1:
            yield f"figures[{i}]: a prim figure takes one outcome"
        if fig.kind in ("prim", "feature_scoring", "parcoords") and not names:
            yield f"figures[{i}]: a {fig.kind} figure needs parameters under [params]"
        if fig.kind == "verdicts" and not spec.verdicts:
            yield f"figures[{i}]: a verdicts figure needs [[verdicts]]"
        if fig.kind == "heatmap" and fig.x == fig.y:
            yield f"figures[{i}]: heatmap x and y must be different parameters"


# ------------------------------------------------------------------ loading
def resolve_spec(name_or_path: str | Path) -> Path:
    """A spec given as a path, or as a name looked up in ``experiments/``."""
    return find_toml(name_or_path, EXPERIMENT_DIR, "experiment")


def load_spec(name_or_path: str | Path) -> Spec:
    file = resolve_spec(name_or_path)
    raw = read_toml(file)
    return validate_spec(raw, str(file))


def validate_spec(raw: dict[str, Any], source: str) -> Spec:
    raw = copy.deepcopy(raw)
    if isinstance(raw.get("fixed"), dict):
        raw["fixed"] = flatten(raw["fixed"])
    try:
        spec = Spec.model_validate(raw)
    except ValidationError as exc:
        raise ConfigError([describe(err, raw, source) for err in exc.errors()]) from None
    problems = [f"{source}: {p}" for p in _reference_problems(spec)]
    if problems:
        raise ConfigError(problems)
    spec._source = source
    if not spec.name:
        spec.name = Path(source).stem
    return spec


def flatten(tree: dict[str, Any], prefix: str = "") -> dict[str, Any]:
    """``{"run": {"customers": 10}}`` -> ``{"run.customers": 10}`` (TOML's dotted keys nest)."""
    flat: dict[str, Any] = {}
    for key, value in tree.items():
        path = f"{prefix}{key}"
        if isinstance(value, dict) and value:
            flat.update(flatten(value, f"{path}."))
        else:
            flat[path] = value
    return flat


def _base_file(spec: Spec, source: str) -> Path:
    beside = Path(source).parent / spec.base
    for candidate in (beside, beside.with_suffix(".toml")):
        # a spec named like its base preset (experiments/tipping.toml on configs/tipping.toml) is not its own base
        if candidate.is_file() and not (Path(source).is_file() and candidate.resolve() == Path(source).resolve()):
            return candidate
    try:
        return resolve_path(spec.base)
    except ConfigError as exc:
        raise ConfigError([f"{source}: base: {exc.problems[0]}"]) from None


def base_config(spec: Spec) -> Config:
    """The base config with the spec's fixed overrides applied (what every run starts from)."""
    config = load_config(spec.base_path)
    if not spec.fixed:
        return config
    try:
        return with_overrides(config, spec.fixed, source=f"{spec.source}: fixed")
    except ConfigError as exc:
        raise ConfigError([_reword(p, f"{spec.source}: fixed") for p in exc.problems]) from None


def _reword(problem: str, prefix: str) -> str:
    """Config errors raised while applying spec overrides start with the source; keep it once."""
    return problem if problem.startswith(prefix) else f"{prefix}: {problem}"


def _hash(data: Any) -> str:
    canonical = json.dumps(data, sort_keys=True, separators=(",", ":"), default=str)
    return hashlib.sha256(canonical.encode()).hexdigest()[:16]


# ------------------------------------------------------------------- errors
def describe(err: dict[str, Any], raw: dict[str, Any], source: str) -> str:
    loc = [p for p in err["loc"] if not (isinstance(p, str) and _is_union_tag(p))]
    key = _key_path(loc)
    kind = err["type"]
    if kind == "extra_forbidden":
        model = _model_at(loc[:-1])
        allowed = ", ".join(model.model_fields) if model else "?"
        return f"{source}: {key}: unknown key; allowed keys here: {allowed}"
    if kind == "missing":
        return f"{source}: {key}: required key is missing"
    msg = err["msg"].removeprefix("Value error, ")
    got = f" (got {err['input']!r})" if "input" in err and not isinstance(err["input"], (dict, list)) else ""
    where = f"{key}: " if key else ""
    if kind in ("value_error", "assertion_error"):
        got = ""
    return f"{source}: {where}{msg}{got}{_allowed(loc)}"


def _is_union_tag(part: str) -> bool:
    # pydantic inserts the union member it tried ("list[str]", "literal['a','b']", "float") into loc.
    return "[" in part or part in ("float", "int", "str", "bool") or part.startswith("function-")


def _key_path(loc: list[Any]) -> str:
    parts: list[str] = []
    for part in loc:
        if isinstance(part, int) and parts:
            parts[-1] += f"[{part}]"
        else:
            parts.append(str(part))
    return ".".join(parts)


def _model_at(loc: list[Any]) -> type[BaseModel] | None:
    """The model holding the key after ``loc`` (the config's walker, rooted at Spec)."""
    return _container([*loc, "_"], root=Spec)


def _allowed(loc: list[Any]) -> str:
    if not loc or isinstance(loc[-1], int):
        return ""
    model = _model_at(loc[:-1])
    field = model.model_fields.get(loc[-1]) if model else None
    if field is None:
        return ""
    args = typing.get_args(field.annotation)
    literals = [a for a in args if typing.get_origin(a) is Literal] or (
        [field.annotation] if typing.get_origin(field.annotation) is Literal else [])
    if literals:
        return "; allowed: " + ", ".join(str(v) for lit in literals for v in typing.get_args(lit))
    bounds = [f"{sym} {value:g}" if isinstance(value, float) and not math.isinf(value) else f"{sym} {value}"
              for sym, value in field_bounds(field)]
    return f"; allowed: {' and '.join(bounds)}" if bounds else ""
