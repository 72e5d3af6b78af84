"""A per-quarter check that the model's state is finite.

Config validation keeps every valid config far from overflow (``Config._growth_problems``),
but a model must never finish a run with NaN or infinite numbers and report them as
results.  ``check(batch)`` runs once a quarter for every run of a batch, after the submodels
and before the quarter is recorded: if any state variable of a run is not finite it raises
``NonFiniteState``, whose message is one line naming the quarter, the mechanism that owns the
variable and the settings involved, with their values (and, in a batch of several runs, which
run: its place, config name and seed).  The CLI prints that line and exits non-zero; a sweep
records it as the run's error.

The check is a handful of whole-batch tests: each float array of the joined customers is
summed once (a NaN or an infinity makes the sum non-finite; a sum that overflows on finite
values is told apart by a second, element-wise look, taken only then), the provider table's
float columns are tested once over the active slots of every run, and each run's market and
parent numbers by one exact sum.  Only when one of these fails does ``check_run`` look at the
runs one by one, in order, for the first non-finite variable and its wording.
"""

from __future__ import annotations

import math
import operator
from typing import Any

import numpy as np

from sim.batch import over_runs
from sim.errors import NonFiniteState
from sim.provider_table import FLOAT_COLUMNS, INDEX

# State variable -> (mechanism that updates it, settings that drive it).  "{segment}" and
# "{provider}" are filled in with the segment or provider whose value is not finite.
CUSTOMER_STATE = {
    "compute": ("customers' compute demand", "demand (growth of existing demand)",
                ["demand.segments.{segment}.growth", "demand.segments.{segment}.compute_size", "demand.market_compute",
                 "demand.size_tail", "run.quarters"]),
    "token_need": ("customers' token need", "demand (growth of token need)",
                   ["demand.segments.{segment}.token_growth", "demand.segments.{segment}.token_intensity",
                    "demand.token_share", "pricing.token_compute", "run.quarters"]),
}
PROVIDER_STATE = {
    "price": ("pricing", ["pricing.base_markup", "pricing.max_markup", "finance.gpu_cost_trend", "finance.opex_per_gpu"]),
    "markup": ("pricing", ["pricing.base_markup", "pricing.harvest_slope", "pricing.max_markup"]),
    "price_new": ("pricing (new-customer price)", ["pricing.new_customer_discount", "providers.{provider}.lock_in"]),
    "price_renewal": ("pricing (renewal price)", ["pricing.renewal_harvest", "providers.{provider}.lock_in",
                                                  "choice.switching_base", "choice.switching_tenure"]),
    "tokens": ("service (token volume)", ["demand.token_elasticity", "pricing.token_efficiency_gain", "pricing.token_compute"]),
    "customer_compute": ("service", ["demand.segments.*.growth", "demand.market_compute"]),
    "demand_gpu": ("service", ["providers.{provider}.captive_compute", "providers.{provider}.captive_growth"]),
    "served_gpu": ("service", ["service.overload_penalty"]),
    "billed_gpu": ("service", ["pricing.token_price_cuts"]),
    "reliability": ("service (reliability)", ["service.reliability_memory", "service.overload_penalty"]),
    "revenue": ("money (revenue)", ["providers.{provider}.price", "pricing.max_markup"]),
    "internal_revenue": ("money (captive billing)", ["finance.captive_billing", "providers.{provider}.captive_growth"]),
    "opex": ("money (operating cost)", ["finance.opex_per_gpu"]),
    "capex": ("money (capex)", ["providers.{provider}.capex_share", "finance.gpu_cost_trend"]),
    "gpus_bought": ("money (compute purchases)", ["finance.gpu_cost_own", "finance.gpu_cost_import",
                                                  "finance.gpu_cost_trend", "finance.domestic_chip_cost"]),
    "cash": ("money (cash)", ["providers.{provider}.cash", "providers.{provider}.capex_share", "finance.opex_per_gpu"]),
    "compute": ("money (compute stock)", ["finance.capacity_response", "finance.headroom", "finance.depreciation"]),
    "own_capability": ("capability", ["capability.learning_rate", "capability.knowledge_elasticity",
                                      "capability.reference_training", "capability.reference_data",
                                      "capability.data_elasticity", "providers.{provider}.synergy"]),
    "knowledge": ("capability (knowledge)", ["capability.learning_rate", "capability.flywheel",
                                             "providers.{provider}.synergy"]),
    "capability": ("capability", ["capability.knowledge_elasticity", "open_weights.capability"]),
    "captive_compute": ("capability (captive demand growth)", ["providers.{provider}.captive_growth", "run.quarters"]),
    "captive_tokens": ("capability (captive demand growth)", ["providers.{provider}.captive_growth", "run.quarters"]),
}
MARKET_STATE = {
    "frontier": ("capability (frontier: the best provider)", ["capability.learning_rate", "capability.knowledge_elasticity",
                                                             "capability.flywheel", "run.quarters"]),
    "open_capability": ("capability (open weights)", ["open_weights.capability", "open_weights.lag"]),
    "token_compute": ("pricing (compute per token)", ["pricing.token_compute", "pricing.token_efficiency_gain"]),
    "gpu_cost_factor": ("money (GPU cost trend)", ["finance.gpu_cost_trend", "run.quarters"]),
}


# Ratios whose infinity has a meaning: utilisation = demand / serving capacity is infinite when a
# provider has demand and no serving capacity (served share 0), not a numerical fault.
NOT_CHECKED = {"utilisation"}
FLOAT_COLUMNS_CHECKED = tuple(name for name in FLOAT_COLUMNS if name not in NOT_CHECKED)


@over_runs
def check(batch) -> None:
    """Raise ``NonFiniteState`` if any customer, provider, parent or market state of a run of
    ``batch`` (a ``sim.batch.Batch``) is not finite: the first such run in run order, worded by
    ``check_run``.  Every float array of the customers, every float column of the provider table
    (active slots) and every float attribute of a run's market and parents' accounts is checked,
    so state that a new submodel adds there is covered without listing it; the tables above only
    name the mechanism and settings of known variables."""
    if _finite(batch):
        return
    for market in batch.markets:  # something is not finite (or a sum overflowed): find the run, in order
        check_run(market)


def _finite(batch) -> bool:
    """Whether a whole-batch look finds every number finite (False: look run by run)."""
    people = batch.customers
    # Arrays that cannot change (read-only and owning their memory, as the customers' preference
    # weights) are summed once, the first time the guard sees them, and again only if made writeable.
    unchanging = batch._memo.setdefault("guard.unchanging", {})  # id -> the array (kept: its id stays its own)
    with np.errstate(over="ignore", invalid="ignore"):
        for values in vars(people).values():
            if not _float_array(values, people.n):
                continue
            if unchanging.get(id(values)) is values and not values.flags.writeable:
                continue
            if not math.isfinite(float(values.sum())):  # one pass, no temporary; NaN and inf propagate
                return False
            if _read_only(values):
                unchanging[id(values)] = values
        if batch.size > 1:  # an array added to one run's customers only (the joined population lacks it)
            keys = len(vars(people))
            if any(len(vars(m.customers)) != keys for m in batch.markets):
                return False
        # Provider columns (checked ones, active slots) and GPUs on order (Provider.pipeline views them).
        # Most quarters every number of the table is finite: one sum of all of it says so; only when
        # it does not (an infinite utilisation, a stale number in a slot not active, a sum that
        # overflows) are the checked columns of the active slots looked at.
        table = batch.table
        if not math.isfinite(float(table.data.sum())):
            if not np.isfinite(table.data[:, :, _CHECKED_COLUMNS][batch.active]).all():
                return False
        if not math.isfinite(float(table.pipeline.sum())) and not np.isfinite(table.pipeline[batch.active]).all():
            return False
    if not np.isfinite(batch.parents.cells).all():  # parents' accounts (sim.submodels.parents.Parents)
        return False
    for market in batch.markets:  # per-run scalars (frontier, open capability, ...)
        if next(_floats(market), None) is not None:
            return False
    return True


def check_run(market) -> None:
    """Raise ``NonFiniteState`` for the first non-finite customer, provider, parent or market
    variable of one run (``market``), with its mechanism and settings; nothing if all are finite."""
    people = market.customers
    for attr, values in vars(people).items():
        if not _float_array(values, people.n):
            continue
        with np.errstate(over="ignore"):
            if math.isfinite(float(values.sum())):  # one pass, no temporary array; NaN and inf propagate
                continue
        bad = ~np.isfinite(values)
        if not bad.any():  # finite values whose sum overflowed: not a state problem
            continue
        what, mechanism, keys = CUSTOMER_STATE.get(attr, (f"customers' {attr}", "customer", ["run.quarters"]))
        rows = np.flatnonzero(bad.reshape(bad.shape[0], -1).any(axis=1))
        segment = people.segment_names[int(np.bincount(people.segment[rows], minlength=len(people.segment_names)).argmax())]
        _raise(market, what, float(values[bad][0]), mechanism, keys, segment=segment,
               where=f" of {rows.size:,} customers (segment {segment})")
    for p in market.active_providers():
        for attr, value in _columns(p):
            mechanism, keys = PROVIDER_STATE.get(attr, ("provider", []))
            _raise(market, f"{p.name}'s {attr}", value, mechanism, keys, provider=p.name)
        for attr, value in _floats(p):
            mechanism, keys = PROVIDER_STATE.get(attr, ("provider", []))
            _raise(market, f"{p.name}'s {attr}", value, mechanism, keys, provider=p.name)
        if not all(math.isfinite(x) for x in getattr(p, "pipeline", ())):
            _raise(market, f"{p.name}'s compute on order", float("nan"), "money (compute purchases)",
                   PROVIDER_STATE["gpus_bought"][1], provider=p.name)
    for name, account in getattr(market, "parent_accounts", {}).items():
        for attr, value in account.non_finite():
            _raise(market, f"parent {name}'s {attr}", value, "parents (group funding)", [f"parents.{name}"])
    for attr, value in _floats(market):
        mechanism, keys = MARKET_STATE.get(attr, ("market", []))
        _raise(market, f"the market's {attr}", value, mechanism, keys)


_NUMBER_TYPES = frozenset({float, int, np.float64, np.float32, np.float16, np.int64, np.int32})
_GETTERS: dict[tuple, Any] = {}


def _floats(obj):
    """(name, value) of the non-finite float attributes of ``obj`` (public ones, not ``NOT_CHECKED``)."""
    state = vars(obj)
    # Most quarters everything is finite: one sum over the numbers says so (NaN and inf propagate),
    # and only a non-finite sum pays for the look at each attribute below.  The numbers are read
    # by a getter made once per set of attribute names and types, so none is missed.
    key = (type(obj), tuple(state), tuple(map(type, state.values())))
    getter = _GETTERS.get(key)
    if getter is None:
        if len(_GETTERS) > 256:
            _GETTERS.clear()
        names = [k for k, v in state.items() if type(v) in _NUMBER_TYPES and k[0] != "_" and k not in NOT_CHECKED]
        getter = _GETTERS[key] = operator.attrgetter(*names, "__class__") if names else None
    if getter is None:
        return
    try:
        total = math.fsum(getter(obj)[:-1])  # exact: no warning, no rounding to inf on the way
    except (OverflowError, ValueError):  # inf + -inf, finite values beyond the float range together,
        total = math.nan                  # or a huge int: look at each attribute
    if math.isfinite(total):
        return
    for attr, value in state.items():
        if attr.startswith("_") or attr in NOT_CHECKED or isinstance(value, bool):
            continue
        if isinstance(value, (float, np.floating)) and not math.isfinite(value):
            yield attr, float(value)


_CHECKED_COLUMNS = np.array([INDEX[name] for name in FLOAT_COLUMNS if name not in NOT_CHECKED])


def _columns(provider):
    """(name, value) of the non-finite float columns of ``provider``'s row of the provider table."""
    values = provider._row[_CHECKED_COLUMNS]
    try:
        if math.isfinite(math.fsum(values)):  # exact: finite values never round to inf on the way
            return
    except (OverflowError, ValueError):  # inf + -inf, or finite values beyond the float range together
        pass
    for i in np.flatnonzero(~np.isfinite(values)):
        name = FLOAT_COLUMNS_CHECKED[i]
        yield name, float(values[i])


def _read_only(values: np.ndarray) -> bool:
    """Whether nothing can write ``values``: it and every array it views are read-only."""
    while isinstance(values, np.ndarray):
        if values.flags.writeable:
            return False
        values = values.base
    return values is None  # owns its memory (a view of a buffer numpy does not own might change)


def _float_array(values, n: int) -> bool:
    return isinstance(values, np.ndarray) and values.dtype.kind == "f" and values.ndim >= 1 and values.shape[0] == n


def _raise(market, variable: str, value: float, mechanism: str, keys: list[str], *, segment: str = "",
           provider: str = "", where: str = "") -> None:
    config = market.config
    section = "entrants" if provider in {e.name for e in config.entrants} else "providers"
    settings = []
    for key in keys or ["run.quarters"]:
        key = key.format(segment=segment, provider=provider)
        if key.startswith("providers.") and section == "entrants":
            key = "entrants." + key.removeprefix("providers.")
        settings.append(f"{key} = {_fmt(setting_value(config, key))}")
    batch = getattr(market, "_batch", None)
    run = {}
    if batch is not None and batch.size > 1:
        run = dict(run=market.run_index, runs=batch.size, name=config.name, seed=config.run.seed)
    raise NonFiniteState.at(quarter=market.quarter_label, step=market.t, quarters=config.run.quarters, variable=variable,
                            value=value, mechanism=mechanism, settings=settings, where=where, **run)


def setting_value(config, key: str) -> Any:
    """The value at a key path of ``config`` (providers and entrants addressed by name; '*' gives
    every segment's value)."""
    node: Any = config.resolved()
    parts = key.split(".")
    for i, part in enumerate(parts):
        if part == "*" and isinstance(node, dict):
            rest = ".".join(parts[i + 1:])
            return {name: _walk(value, rest) for name, value in node.items()}
        node = _step(node, part, config)
        if node is None:
            return None
    return node


def _walk(node: Any, rest: str) -> Any:
    for part in rest.split(".") if rest else []:
        node = node.get(part) if isinstance(node, dict) else None
    return node


def _step(node: Any, part: str, config) -> Any:
    if isinstance(node, dict):
        if part in node:
            return node[part]
        return None
    if isinstance(node, list):
        for item in node:
            if isinstance(item, dict) and item.get("name") == part:
                return item
    return None


def _fmt(value: Any) -> str:
    if isinstance(value, dict):
        return "{" + ", ".join(f"{k}: {_fmt(v)}" for k, v in value.items()) + "}"
    if isinstance(value, float):
        return f"{value:g}"
    if value is None:
        return "none"
    return str(value)
