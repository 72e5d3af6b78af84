"""Submodel 6, capability: model capability grows with training compute and with data
from usage (the data flywheel), with diminishing returns toward a moving frontier;
an open-weights model gives every provider a floor.

    frontier_t = frontier_start * (1 + frontier_growth) ** t
    data_j     = tokens served_j + captive_tokens_j * share of own apps' demand served_j
    progress_j = learning_rate * (training_j / (reference_training * (1 + training_cost_growth) ** t)) ** compute_elasticity
                 * (1 + flywheel * (data_j / reference_data) ** data_elasticity)
    own_j     += (frontier_t - own_j) * (1 - exp(-progress_j))          (model owners only)
    open_t     = open_weights.capability * frontier_t   once released, else 0
    capability_j = max(own_j, open_t)
Article: "the upper limit of a large model's capabilities depends ... on underlying
computing power"; data "is the core fuel for training large models"; "Alibaba
Cloud's Tongyi Qianwen and Baidu's Wenxin large models have both open-sourced
their core versions ... lowering the barrier".  History-friendly model: step =
b (frontier - Z)^bL x R&D^0.65 x experience^0.5.
"""

from __future__ import annotations

import math


def frontier(cfg, t: int) -> float:
    return cfg.capability.frontier_start * (1.0 + cfg.capability.frontier_growth) ** t


def open_weights_capability(cfg, t: int, frontier_now: float) -> float:
    ow = cfg.open_weights
    if not ow.enabled or t < cfg.quarter_offset(ow.release):
        return 0.0
    return ow.capability * frontier_now


def progress(cap_cfg, training: float, data: float, t: int = 0) -> float:
    """Research input in quarter ``t``; the training compute that counts as one unit
    grows every quarter (the compute arms race, Sutton's escalating sunk costs)."""
    reference = cap_cfg.reference_training * (1.0 + cap_cfg.training_cost_growth) ** t
    compute_term = (training / reference) ** cap_cfg.compute_elasticity
    data_term = 1.0 + cap_cfg.flywheel * (data / cap_cfg.reference_data) ** cap_cfg.data_elasticity
    return cap_cfg.learning_rate * compute_term * data_term


def step(market) -> None:
    cfg = market.config
    market.frontier = frontier(cfg, market.t + 1)
    market.open_capability = open_weights_capability(cfg, market.t + 1, market.frontier)
    for p in market.active_providers():
        if p.has_model:
            data = p.tokens + p.captive_tokens * p.apps_served_share  # own apps' data only as far as they were served
            gain = 1.0 - math.exp(-progress(cfg.capability, p.training_compute, data, market.t))
            p.own_capability += (market.frontier - p.own_capability) * gain
        p.capability = max(p.own_capability, market.open_capability)
        p.captive_compute *= 1.0 + p.captive_growth
        p.captive_tokens *= 1.0 + p.captive_growth


def edge_over_open(own: float, open_capability: float, has_model: bool) -> float:
    """How much a provider's own model leads the open-weights one (0..1); 0 for porters."""
    if not has_model or own <= 0:
        return 0.0
    return max(0.0, own - open_capability) / own
