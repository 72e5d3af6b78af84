"""Submodel 4, service: providers serve their customers' compute, the model tokens bought
from them and their own captive demand from finite serving capacity.  Demand beyond capacity
is not served; who bears the shortfall follows the rationing rule (``ration``), and the
share of customers' demand served sets reliability, which customers weigh when they choose.

Compute demand sits where the customer's workload is (primary and second cloud, submodel
multi-homing); token demand sits with the model provider the customer buys from (submodel
model choice): tokens are served on the model owner's GPUs.  Token volume responds to the
model provider's token price with constant elasticity:
    tokens_i = token_need_i * uses_model_i * (token_price_m / reference_token_price) ** -elasticity
Shares and revenue count what is served; what is not served is ``unserved_tokens``.
Article: "Only cloud services that can withstand the triple tests of traffic,
stability, and security at the scale of the Spring Festival Gala are qualified to
compete"; "when price falls to one tenth, volume may rise tenfold".
"""

from __future__ import annotations

from types import SimpleNamespace

import numpy as np

from sim.batch import over_runs
from sim.provider_table import INDEX
from sim.submodels import parents

# Rationing rules, in the order of their codes (``rationing_codes``).
RULES = ("proportional", "own_apps_first", "customers_first")


def surge_multipliers(batch, holder: np.ndarray | None = None) -> tuple[np.ndarray | None, np.ndarray]:
    """Per-customer (float32, shape (runs * customers,)) and per-slot (float64, shape (runs,
    slots)) demand multipliers for this quarter's surges of each run (per-customer None = no
    run has a surge this quarter).  ``holder`` (shape (runs * customers,)) is the slot each
    customer's demand sits on (default: its primary cloud; the second cloud or the model
    provider for those parts of its demand).  A loop over runs, only over those with a surge
    this quarter (rare)."""
    people = batch.customers
    holder = people.provider if holder is None else holder
    n = batch.n
    per_customer = None
    per_slot = np.ones((batch.size, batch.n_slots))
    by_quarter = batch.memo("service.surges", _surges_by_quarter)
    for r, market in enumerate(batch.markets):
        surges = by_quarter[r].get(market.t) if by_quarter[r] else None
        if not surges:
            continue
        rows = slice(r * n, (r + 1) * n)
        segment, held = people.segment[rows], holder[rows]
        if per_customer is None:
            per_customer = np.ones(people.n, dtype=np.float32)
        mine = per_customer[rows]
        for surge in surges:
            mask = np.ones(n, dtype=bool)
            if surge.segments:
                seg_ids = [people.segment_names.index(s) for s in surge.segments]
                mask &= np.isin(segment, seg_ids)
            if surge.provider is not None:
                slot = market.slot_of(surge.provider)
                mask &= held == slot
                per_slot[r, slot] *= surge.multiplier
            else:
                per_slot[r] *= surge.multiplier
            mine[mask] *= surge.multiplier
    return per_customer, per_slot


def _surges_by_quarter(batch) -> list[dict[int, list]]:
    """Each run's surges by the quarter (offset from ``run.start``) they fall in, in config order."""
    out = []
    for market in batch.markets:
        quarters: dict[int, list] = {}
        for surge in market.config.service.surges:
            quarters.setdefault(market.config.quarter_offset(surge.quarter), []).append(surge)
        out.append(quarters)
    return out


def demand_by_slot(batch, *, surges: bool = True) -> dict[str, np.ndarray]:
    """Per run and slot, this quarter: ``compute`` (customers' compute on it, primary and second
    clouds), ``ai_compute`` (the part of it from customers who use models), ``token_need``
    (token need of the customers buying its model, before the price response),
    ``customers`` (count by primary cloud) and ``model_users`` (count by model provider).
    With ``surges`` the quarter's surges are applied; without them it is the usual demand
    that capacity is planned for.  float64 arrays of shape (runs, slots).

    A customer's compute splits as in ``multihoming.workload_parts`` (second = compute x
    split, primary = compute - second, float64), so the slots' totals conserve workload.
    Each (run, slot) total adds its run's customers in index order (``np.bincount``), so a
    run's totals do not depend on its batch."""
    people = batch.customers
    runs, n = batch.size, batch.n_slots
    second = people.second_provider
    multi = bool(people.split.any())  # split is 0 exactly where there is no second cloud
    by_provider = by_second = by_model = None  # per-customer surge multipliers (None: no surge)
    if surges:
        by_provider = surge_multipliers(batch, people.provider)[0]
        if by_provider is not None:
            by_second = surge_multipliers(batch, second)[0]
            by_model = surge_multipliers(batch, people.model_provider)[0]
    primary = people.compute.astype(np.float64)
    if multi:
        part = primary * people.split  # exact: a product of two float32 in float64
        primary -= part
    if by_provider is not None:
        primary *= by_provider
    # One weighted pass for compute and AI compute: bins are (run, slot + 1, uses a model).
    uses = people.uses_model.view(np.int8)
    bins = 2 * (n + 1) * runs
    key = batch.bin_key(people.provider, 2, uses)
    sums = np.bincount(key, weights=primary, minlength=bins).reshape(runs, n + 1, 2)[:, 1:]
    compute, ai_compute = sums.sum(axis=2), sums[:, :, 1].copy()
    if multi:
        if by_second is not None:
            part *= by_second
        key = batch.bin_key(second, 2, uses)  # no second cloud: bin 0 (its part is 0 anyway), dropped
        extra = np.bincount(key, weights=part, minlength=bins).reshape(runs, n + 1, 2)[:, 1:]
        compute += extra.sum(axis=2)
        ai_compute += extra[:, :, 1]
    need = people.token_need if by_model is None else people.token_need * by_model
    model_key = batch.bin_key(people.model_provider)  # customers without a model provider: bin 0, nowhere
    token_need = np.bincount(model_key, weights=need, minlength=(n + 1) * runs).reshape(runs, n + 1)[:, 1:]
    # Both counts from one pass, bins (run, primary cloud + 1, model provider + 1): counts are exact
    # integers, so the two margins are the counts each key alone would give.
    both = batch.bin_key(people.provider, n + 1, np.add(people.model_provider, 1, dtype=np.int16))
    counts = np.bincount(both, minlength=(n + 1) * (n + 1) * runs).reshape(runs, n + 1, n + 1)
    return {"compute": compute, "ai_compute": ai_compute, "token_need": token_need,
            "customers": counts[:, 1:, :].sum(axis=2).astype(np.float64),
            "model_users": counts[:, :, 1:].sum(axis=1)}


def rationing_codes(batch) -> np.ndarray:
    """(runs, slots) int8: each active provider's rationing rule as an index of ``RULES``
    (``parents.rationing_rule``: its parent's rule, else ``service.rationing``).  Rules come
    from the config, so they are looked up once per provider (at the start and at entry)."""
    codes = getattr(batch, "_rationing_codes", None)
    if codes is None:
        codes = np.full((batch.size, batch.n_slots), -1, dtype=np.int8)
        batch._rationing_codes = codes
    missing = batch.active & (codes < 0)
    if missing.any():
        for r, s in zip(*np.nonzero(missing)):
            market = batch.markets[r]
            codes[r, s] = _rule_code(parents.rationing_rule(market, market.slots[s]))
    return codes


# The provider table's columns service writes (each active slot's; other slots keep their rows).
WRITES = ("customer_compute", "tokens_demanded", "customers", "model_users", "captive_tokens_quarter", "demand_gpu",
          "planned_gpu", "utilisation", "tokens", "unserved_tokens", "served_gpu", "captive_served", "served_share",
          "customer_served_share", "apps_served_share", "billed_compute_gpu", "billed_ai_gpu", "billed_token_gpu",
          "billed_gpu", "reliability")


@over_runs
def step(batch) -> None:
    """Service for every run of ``batch``: demand on each active provider, what its capacity
    serves (``ration``), what it bills and its reliability; writes the provider table's
    columns of active slots (others keep their rows)."""
    table, active = batch.table, batch.active
    const = batch.memo("service.constants", _constants)
    out = np.empty((len(WRITES), batch.size, batch.n_slots))  # the columns of WRITES, written at the end
    col = dict(zip(WRITES, out))
    intensity = batch.market_values("token_compute")[:, None]
    cut = np.where(active, table.token_factor, 1.0)  # token price factors (1 where no active provider)
    # Token price / (reference price x token_compute at the start), as model_choice.token_price_ratio.
    price = np.where(active, table.price, 1.0)
    ratio = (price * cut / const.reference_price) * (intensity / const.start_token_compute)
    ratio = np.maximum(ratio, 1e-9)
    if const.volume_exponent is None:  # runs differ in their elasticity
        volume_factor = batch.numpy_power(ratio, const.volume_exponents)
    else:
        volume_factor = np.power(ratio, const.volume_exponent)

    usual = demand_by_slot(batch, surges=False)
    planned = usual["compute"] + usual["token_need"] * volume_factor * intensity
    if batch.markets[0].t in const.surge_quarters:  # runs of a batch share their quarter
        per_customer, per_slot = surge_multipliers(batch)
        now = demand_by_slot(batch) if per_customer is not None else usual
        captive = table.captive_compute * per_slot
    else:  # no run has a surge this quarter (multipliers 1)
        now, captive = usual, table.captive_compute
    token_volume = np.multiply(now["token_need"], volume_factor, out=col["tokens_demanded"])

    col["customer_compute"][...] = now["compute"]
    col["customers"][...] = now["customers"]
    col["model_users"][...] = now["model_users"]
    col["captive_tokens_quarter"][...] = table.captive_tokens
    customer_gpu = now["compute"] + token_volume * intensity
    demand = np.add(customer_gpu, captive, out=col["demand_gpu"])
    np.add(planned, table.captive_compute, out=col["planned_gpu"])
    capacity = table.compute * (1.0 - table.training_share)
    utilisation = col["utilisation"]
    utilisation[...] = np.inf  # no serving capacity
    np.divide(demand, capacity, out=utilisation, where=capacity > 0)
    enough = (demand <= capacity)[active].all()  # every active provider serves all its demand
    if enough:  # what ration_shares gives them
        served = captive_share = np.ones(demand.shape)
    else:
        served, captive_share = ration_shares(capacity, customer_gpu, captive, rationing_codes(batch))
    tokens = np.multiply(token_volume, served, out=col["tokens"])
    np.subtract(token_volume, tokens, out=col["unserved_tokens"])
    served_gpu = np.multiply(customer_gpu, served, out=col["served_gpu"])
    captive_served = np.multiply(captive, captive_share, out=col["captive_served"])
    served_share = col["served_share"]
    served_share[...] = 1.0  # no demand: all of it served
    np.divide(served_gpu + captive_served, demand, out=served_share, where=demand > 0)
    col["customer_served_share"][...] = served
    col["apps_served_share"][...] = captive_share
    billed_compute = np.multiply(now["compute"], served, out=col["billed_compute_gpu"])
    billed_token = np.multiply(tokens * intensity, cut, out=col["billed_token_gpu"])
    np.multiply(now["ai_compute"], served, out=col["billed_ai_gpu"])
    np.add(billed_compute, billed_token, out=col["billed_gpu"])
    # served ** overload_penalty by C's pow, as the per-provider code computed it; served is 1
    # (target 1) unless the provider is short of capacity (rare), so only those are raised.
    target = np.ones(served.shape)
    if not enough:
        short = active & (served != 1.0)
        if short.any():
            target[short] = batch.power(served[short], const.overload_penalty[np.nonzero(short)[0]])
    np.add(const.reliability_memory * table.reliability, const.reliability_news * target, out=col["reliability"])
    # Active slots take the new columns, the others keep theirs: one masked write.
    columns = out.transpose(1, 2, 0)
    if not active.all():
        columns = np.where(active[:, :, None], columns, table.data[:, :, const.columns])
    table.data[:, :, const.columns] = columns


def _constants(batch) -> SimpleNamespace:
    """What service reads of the configs each quarter, per run, in the shapes it uses them."""
    exponents = -batch.param("demand.token_elasticity")
    memory = batch.param("service.reliability_memory")[:, None]
    return SimpleNamespace(
        reference_price=batch.param("pricing.reference_price")[:, None],
        start_token_compute=np.array([m.config.pricing.token_compute for m in batch.markets], dtype=np.float64)[:, None],
        volume_exponents=exponents,
        volume_exponent=float(exponents[0]) if (exponents == exponents[0]).all() else None,  # one call of np.power
        overload_penalty=batch.param("service.overload_penalty"),
        reliability_memory=memory, reliability_news=1.0 - memory,
        surge_quarters=frozenset(q for run in _surges_by_quarter(batch) for q in run),
        columns=np.array([INDEX[name] for name in WRITES]))


def ration(capacity: float, customers: float, own_apps: float, rule: str) -> tuple[float, float]:
    """Shares (0..1) of customers' and of own apps' demand served from ``capacity`` (all in
    GPU-equivalents).  With enough capacity both are 1; otherwise ``rule`` decides:
    'proportional' serves both the same share, 'own_apps_first' serves the group's apps in
    full before customers, 'customers_first' the reverse.  Capacity is never left idle while
    demand goes unserved.  One provider's shares by ``ration_shares``.

    Raises:
        ValueError: an unknown rule."""
    served, apps = ration_shares(np.float64(capacity), np.float64(customers), np.float64(own_apps), _rule_code(rule))
    return float(served), float(apps)


def ration_shares(capacity, customers, own_apps, rule) -> tuple[np.ndarray, np.ndarray]:
    """``ration`` elementwise over arrays of one shape (or broadcastable), e.g. (runs, slots):
    ``rule`` holds codes, indices of ``RULES``.  Returns (customers' share, own apps' share),
    float64 arrays."""
    with np.errstate(divide="ignore", invalid="ignore"):
        total = customers + own_apps
        proportional = capacity / total
        enough, none = total <= capacity, capacity <= 0
        if not np.any(rule > 0):  # every provider rations proportionally (the default): one share for both
            served = np.where(enough, 1.0, np.where(none, 0.0, proportional))
            return served, served.copy()
        apps_first = np.where(own_apps > 0, np.minimum(1.0, capacity / own_apps), 1.0)
        customers_after = _rest(capacity - apps_first * own_apps, customers)
        customers_first = np.where(customers > 0, np.minimum(1.0, capacity / customers), 1.0)
        apps_after = _rest(capacity - customers_first * customers, own_apps)
    own_first, cust_first = rule == 1, rule == 2
    served = np.where(own_first, customers_after, np.where(cust_first, customers_first, proportional))
    apps = np.where(own_first, apps_first, np.where(cust_first, apps_after, proportional))
    served = np.where(enough, 1.0, np.where(none, 0.0, served))
    apps = np.where(enough, 1.0, np.where(none, 0.0, apps))
    return served, apps


def _rule_code(rule: str) -> int:
    if rule not in RULES:
        raise ValueError(f"unknown rationing rule {rule!r}; allowed: own_apps_first, customers_first, proportional")
    return RULES.index(rule)


def _rest(left, demand):
    """Share of ``demand`` served from the capacity ``left`` after the first claim (0..1; the
    subtraction may round a hair below zero)."""
    return np.where(demand > 0, np.minimum(1.0, np.maximum(0.0, left / demand)), 1.0)
