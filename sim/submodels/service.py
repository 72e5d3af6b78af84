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

import numpy as np

from sim.batch import over_runs
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
    mult = {"provider": None, "second": None, "model": None}
    if surges:
        mult["provider"] = surge_multipliers(batch, people.provider)[0]
        if mult["provider"] is not None:
            mult["second"] = surge_multipliers(batch, second)[0]
            mult["model"] = surge_multipliers(batch, people.model_provider)[0]
    primary = people.compute.astype(np.float64)
    if multi:
        part = primary * people.split  # exact: a product of two float32 in float64
        primary -= part
    if mult["provider"] is not None:
        primary *= mult["provider"]
    # One pass for compute, AI compute and counts: bins are (run, slot + 1, uses a model).
    uses = people.uses_model.view(np.int8)
    base = batch.run_base(2 * (n + 1)) if runs > 1 else None  # each run's offset (none for a batch of one)
    key = people.provider.astype(np.intp)
    key += 1
    key *= 2
    key += uses
    if base is not None:
        key += base
    bins = 2 * (n + 1) * runs
    sums = np.bincount(key, weights=primary, minlength=bins).reshape(runs, n + 1, 2)[:, 1:]
    counts = np.bincount(key, minlength=bins).reshape(runs, n + 1, 2)[:, 1:]
    out = {"compute": sums.sum(axis=2), "ai_compute": sums[:, :, 1].copy(), "customers": counts.sum(axis=2).astype(np.float64)}
    if multi:
        if mult["second"] is not None:
            part *= mult["second"]
        np.copyto(key, second)
        key += 1  # no second cloud: bin 0 (its part is 0 anyway), dropped
        key *= 2
        key += uses
        if base is not None:
            key += base
        extra = np.bincount(key, weights=part, minlength=bins).reshape(runs, n + 1, 2)[:, 1:]
        out["compute"] += extra.sum(axis=2)
        out["ai_compute"] += extra[:, :, 1]
    need = people.token_need if mult["model"] is None else people.token_need * mult["model"]
    model_key = batch.slot_key(people.model_provider)  # one key for both totals
    out["token_need"] = batch.totals(people.model_provider, need, key=model_key)  # customers without a model provider: nowhere
    out["model_users"] = batch.totals(people.model_provider, key=model_key)
    return out


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


@over_runs
def step(batch) -> None:
    """Service for every run of ``batch``: demand on each active provider, what its capacity
    serves (``ration``), what it bills and its reliability; writes the provider table's
    columns of active slots (others keep their rows)."""
    table, active = batch.table, batch.active
    markets = batch.markets
    intensity = np.array([m.token_compute for m in markets])[:, None]
    cut = np.where(active, table.token_factor, 1.0)  # token price factors (1 where no active provider)
    # Token price / (reference price x token_compute at the start), as model_choice.token_price_ratio.
    price = np.where(active, table.price, 1.0)
    compute_scale = np.array([m.token_compute / m.config.pricing.token_compute for m in markets])[:, None]
    ratio = (price * cut / batch.param("pricing.reference_price")[:, None]) * compute_scale
    volume_factor = batch.numpy_power(np.maximum(ratio, 1e-9), -batch.param("demand.token_elasticity"))

    usual = demand_by_slot(batch, surges=False)
    planned = usual["compute"] + usual["token_need"] * volume_factor * intensity
    per_customer, per_slot = surge_multipliers(batch)
    now = demand_by_slot(batch) if per_customer is not None else usual
    token_volume = now["token_need"] * volume_factor

    def put(column: np.ndarray, values) -> None:
        np.copyto(column, values, where=active)

    captive = table.captive_compute * per_slot
    put(table.customer_compute, now["compute"])
    put(table.tokens_demanded, token_volume)
    put(table.customers, now["customers"])
    put(table.model_users, now["model_users"])
    put(table.captive_tokens_quarter, table.captive_tokens)
    customer_gpu = now["compute"] + token_volume * intensity
    demand = customer_gpu + captive
    put(table.demand_gpu, demand)
    put(table.planned_gpu, planned + table.captive_compute)
    capacity = table.compute * (1.0 - table.training_share)
    with np.errstate(divide="ignore", invalid="ignore"):
        put(table.utilisation, np.where(capacity > 0, demand / capacity, np.inf))
        served, captive_share = ration_shares(capacity, customer_gpu, captive, rationing_codes(batch))
        tokens = token_volume * served
        served_gpu = customer_gpu * served
        captive_served = captive * captive_share
        put(table.tokens, tokens)
        put(table.unserved_tokens, token_volume - tokens)
        put(table.served_gpu, served_gpu)
        put(table.captive_served, captive_served)
        put(table.served_share, np.where(demand > 0, (served_gpu + captive_served) / demand, 1.0))
    put(table.customer_served_share, served)
    put(table.apps_served_share, captive_share)
    billed_compute = now["compute"] * served
    billed_token = tokens * intensity * cut
    put(table.billed_compute_gpu, billed_compute)
    put(table.billed_ai_gpu, now["ai_compute"] * served)
    put(table.billed_token_gpu, billed_token)
    put(table.billed_gpu, billed_compute + billed_token)
    # served ** overload_penalty by C's pow, as the per-provider code computed it; served is 1
    # (target 1) unless the provider is short of capacity (rare), so only those are raised.
    target = np.ones(served.shape)
    short = active & (served != 1.0)
    if short.any():
        target[short] = batch.power(served[short], batch.param("service.overload_penalty")[np.nonzero(short)[0]])
    mem = batch.param("service.reliability_memory")[:, None]
    put(table.reliability, mem * table.reliability + (1.0 - mem) * target)


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
        apps_first = np.where(own_apps > 0, np.minimum(1.0, capacity / own_apps), 1.0)
        customers_after = _rest(capacity - apps_first * own_apps, customers)
        customers_first = np.where(customers > 0, np.minimum(1.0, capacity / customers), 1.0)
        apps_after = _rest(capacity - customers_first * customers, own_apps)
    own_first, cust_first = rule == 1, rule == 2
    served = np.where(own_first, customers_after, np.where(cust_first, customers_first, proportional))
    apps = np.where(own_first, apps_first, np.where(cust_first, apps_after, proportional))
    enough, none = total <= capacity, capacity <= 0
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
