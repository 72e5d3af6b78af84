"""Cloud-provider agents.

A provider owns (or, as a compute-only "porter", lacks) a large model, a stock
of compute split between serving and training, a share of own chips, an
ecosystem that locks customers in, captive demand from its own apps, and cash.
Submodels in ``sim.submodels`` read and update these attributes; the provider
itself holds no behaviour beyond simple derived quantities.

Its numeric state lives in the batch's provider table (``sim.provider_table``): the
attributes named in ``COLUMNS`` read and write this provider's row there, so that
submodels vectorised over runs and code written per provider see the same numbers.
"""

from __future__ import annotations

import mesa
import numpy as np

from sim.config import ProviderConfig
from sim.provider_table import columns_of
from sim.submodels.capability import knowledge_for
from sim.submodels.pricing import initial_token_factor as token_price_start


@columns_of
class Provider(mesa.Agent):
    def __init__(self, model: mesa.Model, spec: ProviderConfig, slot: int, *, cash: float | None = None,
                 extra_compute: float = 0.0):
        super().__init__(model)
        self.slot = slot
        self._row = model.provider_table.row(model.run_index, slot)
        self._row[:] = 0.0  # a slot is filled once (entry); start from a clean row
        self.name = spec.name
        self.has_model = spec.has_model
        self.own_capability = spec.capability
        self.capability = spec.capability
        self.knowledge = knowledge_for(spec.capability, model.config.capability)
        self.synergy = spec.synergy
        self.compute = spec.compute + extra_compute
        self.training_share = spec.training_share
        self.base_training_share = spec.training_share  # the rule of sim.submodels.parents moves training_share from here
        self.parent = spec.parent
        self.own_chip_share = spec.own_chip_share
        self.lock_in = spec.lock_in
        self.cash = spec.cash if cash is None else cash
        self.capex_share = spec.capex_share
        self.captive_compute = spec.captive_compute
        self.captive_growth = spec.captive_growth
        self.captive_tokens = spec.captive_tokens
        self.reliability = spec.reliability
        self._affinity = model.provider_table.affinity[model.run_index, slot]
        self.affinity = [spec.affinity.get(s, 0.0) for s in model.customers.segment_names]
        self.committed_start = model.config.quarter_offset(spec.committed_capex.start)
        self.committed_quarters = spec.committed_capex.quarters
        self.committed_per_quarter = spec.committed_capex.total / spec.committed_capex.quarters
        self.price = spec.price if spec.price is not None else model.pricing_target(self, markup=model.config.pricing.base_markup)
        # List price, and the two prices around it (invest and harvest); set by pricing each quarter.
        self.list_price = self.price_new = self.price_renewal = self.price
        self.markup = model.config.pricing.base_markup
        # Price per token relative to the compute price (sim.submodels.pricing): the cuts dated
        # before the first quarter it prices in (Mesa's steps: the next quarter to price).
        self.token_factor = token_price_start(model.config, spec.name, model.steps)
        model.provider_table.pipeline[model.run_index, slot] = 0.0  # nothing on order (sim.submodels.finance)
        self.distress_quarters = 0
        self.standing = 0.0  # utility with the showcase segments, earned or lost in surges (sim.submodels.showcase)
        # Flows of the current quarter, set by the submodels.
        self.revenue = self.internal_revenue = self.opex = self.capex = self.parent_funding = 0.0
        self.captive_served = 0.0
        self.served_share = self.customer_served_share = self.apps_served_share = 1.0  # of all demand; customers'; own apps'
        self.capacity_unfunded = False  # wanted GPUs for its capacity gap that neither it nor its parent could pay for
        self.demand_gpu = self.planned_gpu = self.served_gpu = self.billed_gpu = self.utilisation = 0.0
        self.customer_compute = self.tokens = 0.0
        # tokens: external customers' tokens served from its GPUs (its model, or open weights it serves)
        self.tokens_demanded = self.unserved_tokens = 0.0
        self.captive_tokens_quarter = 0.0  # own apps' tokens this quarter (captive_tokens grows after it)
        self.billed_compute_gpu = self.billed_token_gpu = self.billed_ai_gpu = 0.0
        self.customers = self.model_users = 0
        self.gpus_bought = 0.0

    @property
    def affinity(self) -> np.ndarray:
        """Fit with each customer segment (utils, shape (segments,), segment order): a view of
        this provider's row of the table's ``affinity`` (write into it or assign to it)."""
        return self._affinity

    @affinity.setter
    def affinity(self, values) -> None:
        self._affinity[:] = values

    @property
    def pipeline(self) -> np.ndarray:
        """GPU-equivalents on order, oldest first (``finance.capex_lag`` of them; the oldest serves
        from the end of this quarter): a read-only view of the provider table's pipeline."""
        table = self.model.provider_table
        run = self.model.run_index
        view = table.pipeline[run, self.slot, table.pipeline.shape[2] - table.lags[run]:]
        view.flags.writeable = False
        return view

    @property
    def serving_capacity(self) -> float:
        return self.compute * (1.0 - self.training_share)

    @property
    def training_compute(self) -> float:
        return self.compute * self.training_share

    def committed_capex(self, t: int) -> float:
        active = self.committed_start <= t < self.committed_start + self.committed_quarters
        return self.committed_per_quarter if active else 0.0
