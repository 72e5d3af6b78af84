"""The market: a Mesa model whose step is one quarter of the ODD schedule."""

from __future__ import annotations

from typing import Any

import mesa
import numpy as np

from sim import allocator, datacollection, guard, quarters
from sim.agents import Provider
from sim.config import Config, ConfigError, EntrantConfig, load_config
from sim.customers import CustomerPopulation, discard, multihoming_table
from sim.parameters import apply_keywords
from sim.provider_table import ProviderTable
from sim.submodels import (capability, choice, demand, entry_exit, finance, model_choice, multihoming, parents, pricing,
                           service, showcase)

PENDING, ACTIVE, EXITED = "pending", "active", "exited"

# One quarter, in the order of docs/model.md section 3: (module, function), looked up when the
# quarter runs (so a patched submodel is the one that runs).  A function marked by
# sim.batch.over_runs is vectorised over the runs of a batch and called once with the batch;
# the others are written for one run and called with each run's Market in turn.
SCHEDULE = (
    (demand, "step"),
    (parents, "step"),
    (pricing, "step"),
    (choice, "step"),
    (multihoming, "step"),
    (model_choice, "step"),
    (pricing, "settle"),  # who pays the new-customer and who the renewal price
    (service, "step"),
    (showcase, "step"),
    (finance, "step"),
    (capability, "step"),
    (entry_exit, "step"),
    (guard, "check"),  # stops the run with one clear error if any state turned non-finite
)
# Entries that change customers (and per-run flows, churn, movers) only, never the provider table,
# ``Batch.active`` or a run's frontier and open-weights capability: consecutive ones share one
# ``Batch.slot_table`` (built once, by the first that asks).  An entry added here must not write
# provider state; one that does belongs outside it.
CUSTOMERS_ONLY = frozenset({(choice, "step"), (multihoming, "step"), (model_choice, "step")})


class SlotStatus(tuple):
    """``Market.status``: each slot's status as a tuple of strings, read-only (it is worked out
    from ``Batch.active``; writing it would leave the submodels' record behind)."""

    __slots__ = ()
    READ_ONLY = ("Market.status is read-only: it is a view of Batch.active, the record the submodels read; "
                 "Market.enter and Market.retire change it")

    def __setitem__(self, index, value):
        raise TypeError(self.READ_ONLY)


class HorizonReached(RuntimeError):
    """``step()`` was called after the last configured quarter (``run.quarters``)."""


class Market(mesa.Model):
    """Cloud providers (Mesa agents) competing for a vectorised customer population.

    Provider slots are fixed at the start: incumbents first, then potential
    entrants; a customer's ``provider`` is a slot number.

    Build it from a validated config, a preset, or keywords (``sim.parameters``)::

        Market(config=load_config("china_2025"))
        Market(preset="china_2025", customers=20_000, flywheel=2.0, rng=7)
        Market(preset="minimal", overrides={"providers.*.lock_in": 2.0, "choice.switching_base": 1.0})
        mesa.batch_run(Market, parameters={"preset": "minimal", "flywheel": [0.5, 2.0]}, rng=[1, 2])

    Args:
        config: a validated ``Config``; default: the preset (or ``minimal``).
        preset: a preset name in ``configs/`` or a TOML path (not together with ``config``).
        rng: seed of the model's random generator; default ``run.seed`` of the config.
        overrides: ``{"key.path": value}`` applied after ``config``/``preset``.
        **params: flat names (``customers``, ``quarters``, ``flywheel``, ...) or key paths.

    Raises:
        ConfigError: an unknown name, or a value the config does not allow (one line each).

    The run ends at its horizon: after ``run.quarters`` steps ``running`` is False,
    ``run()`` and ``run_model()`` stop there, and a further ``step()`` raises
    ``HorizonReached`` without changing anything.  ``datacollector`` (a Mesa
    ``DataCollector``, ``sim.datacollection``) is collected after every quarter.
    """

    def __init__(self, *, config: Config | None = None, preset: str | None = None, rng: Any = None,
                 overrides: dict[str, Any] | None = None, _table: tuple[ProviderTable, int] | None = None,
                 **params: Any):
        if config is not None and preset is not None:
            raise ConfigError(["Market(config=..., preset=...): give one of config and preset, not both"])
        if config is None:
            config = load_config(preset) if preset is not None else default_config()
        config = apply_keywords(config, {**(overrides or {}), **params})
        seed = config.run.seed if rng is None else rng
        super().__init__(rng=seed)
        allocator.keep_heap_for(config.run.customers)  # large populations: no page faults every quarter
        # Mesa's step wrapper advances its clock (steps, time) and then calls _user_step.  The
        # quarter itself is the batch's (sim.batch.Batch.step: every run of the batch at once),
        # which calls the wrapper of each run for its clock only.
        self._mesa_step = self.__dict__.pop("step")
        self._user_step = self._on_mesa_step
        self._in_quarter = False
        if _table is None:
            _table = (ProviderTable(1, len(config.all_providers), len(config.demand.segments),
                                    lags=[config.finance.capex_lag]), 0)
        self.provider_table, self.run_index = _table
        self.config = config
        self.seed = seed
        self.token_compute = config.pricing.token_compute
        self.gpu_cost_factor = 1.0
        self.from_snapshot = config.run.start_from is not None
        # A snapshot start replaces the drawn arrays: draw the numbers (the stream goes on the same), compute nothing.
        self.customers = CustomerPopulation(config, self.rng, replaced=self.from_snapshot)
        if self.from_snapshot and not multihoming_table(config, "share").max() > 0:
            # The multi-homer draw a drawn population makes only when multihoming.share > 0.  A snapshot
            # start may not set that share (it shapes a drawn population only: Config.population_settings),
            # so the draw is made once whatever the share: the stream of a snapshot start depends on no
            # population key, and china_2025 (which set share = 0.6 before) keeps its numbers.
            discard(self.rng, "random", config.run.customers)
        specs = config.all_providers
        self.names = [s.name for s in specs]
        self.n_slots = len(specs)
        self._active = self.provider_table.active[self.run_index]  # this run's row of Batch.active
        self._active[:len(config.providers)] = True  # incumbents; entrants are pending
        self.slots: list[Provider | None] = [None] * self.n_slots
        self.bankrolls = {len(config.providers) + i: e.bankroll for i, e in enumerate(config.entrants)}
        self.parent_accounts = parents.accounts(config)
        for slot, spec in enumerate(config.providers):
            self.slots[slot] = Provider(self, spec, slot)
        # The frontier is endogenous: the best incumbent's own capability at the start.
        self.frontier = max((p.own_capability for p in self.active_providers()), default=0.0) or 1.0
        self.frontier_history = [self.frontier]  # frontier in effect in quarter k, for the open model's lag
        self.open_capability = capability.open_weights_capability(config, 0, self.frontier_history)
        for p in self.active_providers():
            p.capability = max(p.own_capability, self.open_capability)
        if self.from_snapshot:  # customers as a history run left them (sim/snapshot.py)
            from sim.snapshot import load_state

            for name, values in load_state(config, self.names, self.rng).items():
                if name == "weights":
                    self.customers.set_weights(values)
                else:
                    setattr(self.customers, name, values)
        else:
            self._assign_initial_customers()
        self.new_adopters = 0
        self.churn = 0.0
        self.flows = np.zeros((self.n_slots + 1, self.n_slots + 1), dtype=np.int64)
        self.investment_memo: tuple[int, float, float] | None = None  # (quarter, planned demand, its growth)
        self.cloud_movers = np.empty(0, dtype=np.intp)  # customers who changed cloud this quarter (choice)
        self.cloud_moved_from = np.empty(0, dtype=np.int16)
        self.entries: list[str] = []
        self.exits: list[str] = []
        self.recorder = None  # the batch's recorder gives it its view (sim.batch.Batch)
        self.datacollector = datacollection.build(self)
        self._batch = None
        if self.run_index == 0 and self.provider_table.runs == 1:
            from sim.batch import Batch

            Batch.of_markets([self])  # a Market on its own is a batch of one

    # ------------------------------------------------------------------ schedule
    def step(self) -> None:
        """One quarter: ``SCHEDULE`` (docs/model.md section 3), then the check, the record and the clock.

        A Market on its own is a batch of one, and this steps it.  A Market built by
        ``sim.batch.Batch`` is one run of a batch that steps together (``Batch.step``).

        Raises:
            HorizonReached: all ``run.quarters`` are done (nothing changes).
            RuntimeError: this Market is one run of a larger batch: step the batch.
        """
        self._check_horizon()
        if self._batch.size > 1:
            raise RuntimeError(f"Market {self.config.name!r} is run {self.run_index} of a batch of {self._batch.size}: "
                               f"step the batch (Batch.step), which steps its runs together")
        self._batch.step()

    def run(self, quarters: int | None = None) -> None:
        """Step until the horizon (``run.quarters``), or for at most ``quarters`` more quarters.

        Stops early if ``running`` turns False; after one ``step()`` it runs the rest, never past the end.
        """
        if quarters is not None and quarters < 0:
            raise ValueError(f"quarters must be >= 0 (got {quarters})")
        todo = self.remaining_quarters if quarters is None else min(quarters, self.remaining_quarters)
        for _ in range(todo):
            if not self.running:
                break
            self.step()

    @property
    def t(self) -> int:
        """The current quarter, counted from ``run.start`` (0); derived from Mesa's ``steps``, the one clock.

        During ``step()`` it is the quarter being simulated (``steps - 1``: Mesa counts a step
        before running it); between steps it is the next quarter to simulate (``steps``), which
        is also the number of quarters done.  Read-only.
        """
        return self.steps - 1 if self._in_quarter else self.steps

    @property
    def remaining_quarters(self) -> int:
        """Quarters left before the horizon (``run.quarters``)."""
        return max(self.config.run.quarters - self.steps, 0)

    def _on_mesa_step(self) -> None:
        """Called by Mesa's clock once it has advanced (steps + 1).  When the batch steps, its
        runs' clocks are advanced this way and the batch then runs the quarter; when Mesa's own
        ``run_for``/``run_until`` drive a Market on its own, the quarter runs here."""
        if self._batch.stepping:
            return
        if self._batch.size > 1:
            raise RuntimeError(f"Market {self.config.name!r} is run {self.run_index} of a batch of {self._batch.size}: "
                               f"step the batch (Batch.step), which steps its runs together")
        self._batch.quarter()

    def _check_horizon(self) -> None:
        if self.steps >= self.config.run.quarters:
            self.running = False
            raise HorizonReached(f"Market {self.config.name!r}: all {self.config.run.quarters} quarters "
                                 f"(run.quarters) are done; step() refused. Build a new Market, "
                                 f"with a larger quarters=..., to simulate further")

    # --------------------------------------------------------------- providers
    @property
    def status(self) -> "SlotStatus":
        """Each slot's status, in slot order: ``"active"``, ``"pending"`` (an entrant not yet in)
        or ``"exited"``.  A read-only view of this run's row of ``Batch.active`` (the record the
        submodels read) and of which slots were ever filled: ``enter`` and ``retire`` change it."""
        return SlotStatus(ACTIVE if on else (PENDING if p is None else EXITED)
                          for on, p in zip(self._active.tolist(), self.slots))

    @status.setter
    def status(self, value) -> None:
        raise AttributeError(SlotStatus.READ_ONLY)

    def active_providers(self) -> list[Provider]:
        return [p for p, on in zip(self.slots, self._active.tolist()) if on and p is not None]

    def pending_entrants(self) -> list[tuple[int, EntrantConfig]]:
        offset = len(self.config.providers)
        return [(offset + i, e) for i, e in enumerate(self.config.entrants)
                if self.slots[offset + i] is None and not self._active[offset + i]]

    def slot_of(self, name: str) -> int:
        return self.names.index(name)

    def enter(self, slot: int, spec: EntrantConfig, *, cash: float, extra_compute: float) -> Provider:
        provider = Provider(self, spec, slot, cash=cash, extra_compute=extra_compute)
        provider.capability = max(provider.own_capability, self.open_capability)
        # The frontier is the best capability on offer (capability.step): an entrant above it
        # raises it now, for the quarters it is in effect, so no active provider is ever past it
        # (capability / frontier <= 1 in choice and model choice; above, it could overflow).
        if provider.capability > self.frontier:
            self.frontier = self.frontier_history[-1] = float(provider.capability)
        self.slots[slot] = provider
        self._active[slot] = True
        del self.bankrolls[slot]
        return provider

    def retire(self, provider: Provider) -> None:
        self._active[provider.slot] = False
        provider.remove()

    def slot_table(self) -> dict[str, np.ndarray]:
        """Provider attributes as arrays indexed by slot: this run's row of ``Batch.slot_table``
        (``affinity``: (segments, slots))."""
        return {name: values[self.run_index] for name, values in self._batch.slot_table().items()}

    def installed_compute_shares(self) -> np.ndarray:
        """Each slot's share of the compute demand of customers currently with a provider, shape
        (slots,): this run's row of ``Batch.installed_compute_shares`` (every run of the batch)."""
        return self._batch.installed_compute_shares()[self.run_index]

    def pricing_target(self, provider: Provider, *, markup: float) -> float:
        return pricing.unit_cost(self, provider) * (1.0 + markup)

    @property
    def quarter_label(self) -> str:
        return quarters.label(quarters.parse(self.config.run.start) + self.t)

    # ------------------------------------------------------------------ helpers
    def _advance_clock(self) -> None:
        """Prices that follow the calendar, for the quarter about to start (``t`` has moved on)."""
        fin, pr = self.config.finance, self.config.pricing
        self.gpu_cost_factor = (1.0 + fin.gpu_cost_trend) ** self.t
        self.token_compute = pr.token_compute * (1.0 - pr.token_efficiency_gain) ** self.t

    def _assign_initial_customers(self) -> None:
        """Adopted customers are dealt to incumbents so that each provider's share of compute
        demand matches ``initial_share`` in expectation, leaning towards segments it fits."""
        people = self.customers
        adopted = np.flatnonzero(people.adopted)
        if not adopted.size:
            return
        probs = initial_assignment(people, self.config)
        u = self.rng.random(adopted.size)
        # Provider-major (providers x customers): long vector compares instead of a short
        # reduction per customer.
        cum = probs.cumsum(axis=1).T[:, people.segment[adopted]]
        choice_ = (u > cum).sum(axis=0)
        people.provider[adopted] = np.minimum(choice_, len(self.config.providers) - 1).astype(np.int16)
        people.tenure[adopted] = self.rng.integers(0, 12, adopted.size).astype(np.int16)
        # Still in the first contract: tenure below the median contract length ln 0.5 / ln(1 - h).
        hazard = people.segment_table("renewal_hazard", self.config)[people.segment[adopted]]
        with np.errstate(divide="ignore"):
            median = np.log(0.5) / np.log1p(-np.minimum(hazard, 1.0))
        people.first_contract[adopted] = people.tenure[adopted] < median


def initial_assignment(people: CustomerPopulation, config: Config, iterations: int = 50) -> np.ndarray:
    """P(provider | segment) by iterative proportional fitting: segment totals of compute
    demand on one side, providers' initial shares on the other, seeded by exp(affinity)."""
    n_seg = len(people.segment_names)
    incumbents = config.providers
    seed = np.array([[np.exp(p.affinity.get(s, 0.0)) * max(p.initial_share, 0.0) for p in incumbents]
                     for s in people.segment_names])
    row_tot = np.bincount(people.segment[people.adopted], weights=people.compute[people.adopted], minlength=n_seg)
    col_tot = np.array([p.initial_share for p in incumbents]) * row_tot.sum()
    m = seed.copy()
    for _ in range(iterations):
        m *= (row_tot / np.maximum(m.sum(axis=1), 1e-300))[:, None]
        m *= col_tot / np.maximum(m.sum(axis=0), 1e-300)
    rows = m.sum(axis=1, keepdims=True)
    fallback = np.broadcast_to(col_tot / max(col_tot.sum(), 1e-300), m.shape)
    return np.where(rows > 0, m / np.where(rows > 0, rows, 1), fallback)


def default_config() -> Config:
    """The teaching case (configs/minimal.toml) when the model is built without a config."""
    return load_config("minimal")
