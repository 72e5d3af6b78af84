"""The Mesa ``DataCollector`` of ``Market``, beside the fast recorder (``sim.metrics``).

Mesa's tools (``mesa.batch_run``, SolaraViz, user notebooks) read
``model.datacollector``.  It is collected once per quarter, after the
recorder, and its reporters read the recorder's rows of that quarter, so the
two never disagree and nothing is computed twice or per customer.

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


def build(market: "Market") -> mesa.DataCollector:
    """A DataCollector whose reporters read ``market.recorder``'s latest rows."""
    return mesa.DataCollector(
        model_reporters={name: _market_value(name) for name in model_columns()},
        agenttype_reporters={Provider: {"provider": "name", **{c: _provider_value(c) for c in AGENT_COLUMNS}}},
    )

