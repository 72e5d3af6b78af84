"""The customer-choice rule of ``sim/submodels/choice.py`` with every other mechanism
held still, shared by the three versions that are benchmarked against each other:

- ``mesa_reference``: one ``mesa.Agent`` per customer, each with its own ``step()``;
- ``engine``: the project's ``Market`` driving ``sim.submodels.choice``;
- ``kernel``: a bare numpy kernel of just the rule (the lower bound).

All three start from the same kind of population (drawn by the engine's own
``CustomerPopulation`` and initial assignment) and face the same fixed provider
attributes, so their final states must agree in distribution.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np

from sim.config import Config, load_config, with_overrides
from sim.model import Market

PRESET = "china_2025"
QUARTERS = 40

# Everything outside the choice step is neutralised, so that prices, capability,
# reliability, lock-in and the model edge stay exactly where they start.
NEUTRAL = {
    "demand.initial_adoption": 1.0,   # everyone has a provider; no Bass adoption afterwards
    "demand.bass_p": 0.0,
    "demand.bass_q": 0.0,
    "pricing.min_markup": 0.8,        # markup pinned to base_markup: price stays at its start
    "pricing.max_markup": 0.8,
    "pricing.base_markup": 0.8,
    "finance.gpu_cost_trend": 0.0,    # unit cost (and so price) constant
    "service.overload_penalty": 0.0,  # reliability target is 1 whatever the load
    "service.surges": [],
    "capability.learning_rate": 0.0,  # own capability never moves: nor do the frontier and open weights
    "pricing.renewal_harvest": 0.0,   # one price for new and renewing customers
    "pricing.new_customer_discount": 0.0,
    "pricing.scarcity_elasticity": 0.0,  # no scarcity premium (issue 12): price stays put under load
    **{f"demand.segments.{s}.bandwagon": 0.0 for s in ("internet", "enterprise", "government", "startup", "overseas")},
    "entry.exit_after": 400,          # nobody exits within the run
    "entry.overload_limit": 100.0,
    # Parents' internal split held still: the training share (and so unit cost and price) stays put.
    **{f"parents.{name}.priority": 0.0 for name in ("Alibaba Group", "ByteDance", "Tencent", "Baidu", "Huawei")},
    "models.choose_apart": False,     # the model layer tied to the cloud: the rule the kernels implement
    "multihoming.share": 0.0,         # one cloud per customer, as in the kernels
    "run.start_from": None,           # a drawn population, not the history's snapshot
    # ... which needs the providers' shares at the start (the preset takes them from its snapshot);
    # the approximate 2023Q3-2024 Canalys shares the preset gave before it started from the snapshot.
    **{f"providers.{name}.initial_share": share for name, share in (
        ("Alibaba Cloud", 0.36), ("Huawei Cloud", 0.18), ("Tencent Cloud", 0.14), ("Baidu AI Cloud", 0.08),
        ("Volcano Engine", 0.05), ("Telecom & others", 0.19))},
}


def choice_config(customers: int, seed: int = 1, quarters: int = QUARTERS) -> Config:
    """The preset with only the choice rule (renewal, logit choice, switching cost,
    deepening model use) left moving."""
    base = load_config(PRESET)
    return with_overrides(base, {**NEUTRAL, "run.customers": customers, "run.seed": seed,
                                 "run.quarters": quarters}, source="benchmarks.choice_rule")


def full_config(customers: int, seed: int | None = None, quarters: int = QUARTERS) -> Config:
    """The preset with every mechanism on (the full model)."""
    overrides = {"run.customers": customers, "run.quarters": quarters}
    if seed is not None:
        overrides["run.seed"] = seed
    return with_overrides(load_config(PRESET), overrides, source="benchmarks.full")


@dataclass(frozen=True)
class Rule:
    """Everything the rule needs about providers and segments, as plain arrays (fixed)."""

    attraction: np.ndarray    # (4, slots): per-weight term of utility: capability/frontier, -log price, -, reliability
    affinity: np.ndarray      # (segments, slots)
    active: np.ndarray        # (slots,) bool
    lock_in: np.ndarray       # (slots,)
    edge: np.ndarray          # (slots,) own model's lead over open weights
    appeal: np.ndarray        # (slots,) min(capability / frontier, 1): scales the model-use hazard
    renewal: np.ndarray       # (segments,) renewal hazard
    model_use_rate: np.ndarray  # (segments,)
    switching_base: float
    switching_tenure: float
    tenure_scale: float
    model_lock: float


def rule_of(market: Market) -> Rule:
    cfg = market.config
    slots = market.slot_table()
    people = market.customers
    cap = slots["capability"] / market.frontier
    log_price = np.log(slots["price"] / cfg.pricing.reference_price)
    attraction = np.vstack([cap, -log_price, np.zeros_like(cap), slots["reliability"]])
    return Rule(
        attraction=attraction, affinity=slots["affinity"], active=slots["active"],
        lock_in=slots["lock_in"], edge=slots["edge"], appeal=np.minimum(cap, 1.0),
        renewal=people.segment_table("renewal_hazard", cfg),
        model_use_rate=people.segment_table("model_use_rate", cfg),
        switching_base=cfg.choice.switching_base, switching_tenure=cfg.choice.switching_tenure,
        tenure_scale=cfg.choice.tenure_scale, model_lock=cfg.choice.model_lock,
    )


@dataclass
class Population:
    """The customer state the rule reads and writes (copies of a Market's arrays)."""

    segment: np.ndarray   # int8
    weights: np.ndarray   # float32 (n, 4)
    provider: np.ndarray  # int16, -1 = none
    tenure: np.ndarray    # int16
    uses_model: np.ndarray  # bool

    @property
    def n(self) -> int:
        return self.segment.size


def population_of(market: Market) -> Population:
    c = market.customers
    return Population(c.segment.copy(), c.weights.copy(), c.provider.copy(), c.tenure.copy(), c.uses_model.copy())


def start(customers: int, seed: int) -> tuple[Market, Rule, Population]:
    """A market in its starting state, its fixed rule and a copy of its customers."""
    market = Market(config=choice_config(customers, seed))
    return market, rule_of(market), population_of(market)


def final_state(provider: np.ndarray, tenure: np.ndarray, uses_model: np.ndarray) -> dict[str, np.ndarray]:
    return {"provider": np.asarray(provider, dtype=np.int16), "tenure": np.asarray(tenure, dtype=np.int16),
            "uses_model": np.asarray(uses_model, dtype=bool)}
