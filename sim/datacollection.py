"""The Mesa ``DataCollector`` of ``Market``, beside the fast recorder (``sim.metrics``).

Mesa's tools (``mesa.batch_run``, SolaraViz, user notebooks) read
``model.datacollector``.  It is collected once per quarter, after the
recorder, and its values are the recorder's rows of that quarter, so the
two never disagree and nothing is computed twice or per customer.  A collect
notes only which record and which provider agents it stands for; the values
are read from the recorder's arrays when ``model_vars``, the DataFrames or
``mesa.batch_run`` ask for them (``RecorderCollector``): a run's quarter in a
batch costs a microsecond, not Mesa's call of every reporter for every agent.

Model reporters (one value per quarter): ``hhi_<metric>`` (0-10,000) and
``cr3_<metric>`` (0-1) for each share metric of ``sim.metrics.METRICS`` (revenue,
compute, tokens, customers, and per layer: cloud revenue, AI-cloud revenue,
MaaS tokens), and ``churn`` (share of customers with a cloud who switched it this
quarter; the recorder has no model-layer churn to report).  Agent reporters (one row per active
provider and quarter): ``provider`` (name), ``share_revenue``,
``share_compute``, ``share_tokens``, ``price`` (US$ per GPU-quarter), ``cash``
(US$ million) and ``capability`` (index, frontier at start = 1).  A provider
that exits in a quarter is removed from Mesa's agents in that quarter, so it
has no agent row for it (the recorder keeps it).
"""

from __future__ import annotations

from typing import TYPE_CHECKING, Any, Callable

import mesa

from sim.agents import Provider
from sim.metrics import METRICS

if TYPE_CHECKING:
    from sim.model import Market

AGENT_COLUMNS = ("share_revenue", "share_compute", "share_tokens", "price", "cash", "capability")


def _market_value(column: str) -> Callable[["Market"], Any]:
    def report(market: "Market") -> Any:
        return market.recorder.latest(column)
    report.__name__ = column
    return report


def _provider_value(column: str) -> Callable[[Provider], Any]:
    def report(agent: Provider) -> Any:
        return agent.model.recorder.latest(column, agent.slot)
    report.__name__ = column
    return report


def model_columns() -> list[str]:
    """Names of the model reporters (see the module docstring)."""
    return [*(f"{k}_{m}" for m in METRICS for k in ("hhi", "cr3")), "churn"]


def reporters() -> dict:
    """The DataCollector's reporters (keyword arguments of ``mesa.DataCollector``): each reads
    ``market.recorder``'s latest row (what a collect right after the record gives)."""
    return dict(model_reporters={name: _market_value(name) for name in model_columns()},
                agenttype_reporters={Provider: {"provider": "name", **{c: _provider_value(c) for c in AGENT_COLUMNS}}})


def build(market: "Market") -> mesa.DataCollector:
    """The DataCollector of ``market`` (``RecorderCollector``)."""
    return RecorderCollector(market)


class RecorderCollector(mesa.DataCollector):
    """A Mesa ``DataCollector`` with ``reporters()``, whose ``collect`` keeps only the step, the
    recorder's latest record of the run and the provider agents alive; ``model_vars`` and the
    agent-type records (what ``get_model_vars_dataframe``, ``get_agenttype_vars_dataframe`` and
    ``mesa.batch_run`` read) are built from the recorder when read: the values Mesa's own
    collect would have stored (tests/test_mesa_model.py compares the two)."""

    def __init__(self, market: "Market"):
        self._collected: list[tuple[int, int, list]] = []  # (time, record, provider agents)
        self._market = market
        super().__init__(**reporters())

    def collect(self, model) -> None:
        recorder = model.recorder
        self._collection_steps.append(model.time)
        self._collected.append((model.time, recorder.batch_recorder.last[recorder.run], list(model.agents_by_type[Provider])
                                if Provider in model.agent_types else []))

    @property
    def model_vars(self) -> dict[str, list]:
        recorder = self._market.recorder
        return {name: [recorder.at(record, name) for _, record, _ in self._collected] for name in self.model_reporters}

    @model_vars.setter
    def model_vars(self, value) -> None:  # Mesa's __init__ sets it empty: the collected records are the state
        pass

    @property
    def _agenttype_records(self) -> dict:
        recorder = self._market.recorder
        out = {}
        for time, record, agents in self._collected:
            rows = [(time, a.unique_id, a.name, *(recorder.at(record, c, a.slot) for c in AGENT_COLUMNS)) for a in agents]
            out[time] = {Provider: rows}
        return out

    @_agenttype_records.setter
    def _agenttype_records(self, value) -> None:
        pass

