"""Submodel 6, capability: cumulative learning without a ceiling.  Each model owner
accumulates knowledge from effective training compute and from data (the data
flywheel); capability is a concave power of knowledge, so a lasting lead in inputs
keeps a lasting capability lead.  The frontier is the best active provider's
capability; the open-weights model follows it with a lag and a gap, and gives every
provider a floor.

    data_j       = tokens served_j + captive_tokens_j * share of own apps' demand served_j
    research_j   = learning_rate * synergy_j * (training_j / (reference_training * (1 + training_cost_growth) ** t)) ** compute_elasticity
                   * (1 + flywheel * (data_j / reference_data) ** data_elasticity)
    knowledge_j += research_j                                     (model owners only)
    own_j        = knowledge_j ** knowledge_elasticity
    capability_j = max(own_j, open_t)
    frontier_t   = max over active providers of capability_j
    open_t       = open_weights.capability * frontier_(t - lag)    once released, else 0

With constant inputs knowledge grows linearly, so two providers whose research inputs
stay in the ratio r end with capabilities in the ratio r ** knowledge_elasticity: the
lead does not erode (Arthur 1989: learning without a ceiling gives increasing
returns).  With flywheel 0 data adds nothing.  Article: "the upper limit of a large
model's capabilities depends ... on underlying computing power"; data "is the core
fuel for training large models"; "Alibaba Cloud's Tongyi Qianwen and Baidu's Wenxin
large models have both open-sourced their core versions ... lowering the barrier".
History-friendly model (Malerba et al. 1999, Eq. 1): step = b x R&D^0.65 x
experience^0.5, here without the distance-to-frontier factor.
"""

from __future__ import annotations


def knowledge_for(capability: float, cap_cfg) -> float:
    """Knowledge stock (units: knowledge behind capability 1) that gives ``capability``;
    the inverse of ``capability_of``."""
    return max(capability, 0.0) ** (1.0 / cap_cfg.knowledge_elasticity)


def capability_of(knowledge: float, cap_cfg) -> float:
    """Capability index of a knowledge stock: knowledge ** knowledge_elasticity (concave,
    unbounded)."""
    return max(knowledge, 0.0) ** cap_cfg.knowledge_elasticity


def progress(cap_cfg, training: float, data: float, t: int = 0, synergy: float = 1.0) -> float:
    """Knowledge gained in quarter ``t`` (units: knowledge behind capability 1).

    ``training``: training compute, GPU-equivalents; ``data``: tokens served plus captive
    tokens, token units per quarter; ``synergy``: the provider's organisational efficiency
    (1 = reference).  The training compute that counts as one unit grows every quarter (the
    compute arms race, Sutton's escalating sunk costs; Epoch AI arXiv:2405.21015)."""
    reference = cap_cfg.reference_training * (1.0 + cap_cfg.training_cost_growth) ** t
    compute_term = (max(training, 0.0) / reference) ** cap_cfg.compute_elasticity
    data_term = 1.0 + cap_cfg.flywheel * (max(data, 0.0) / cap_cfg.reference_data) ** cap_cfg.data_elasticity
    return cap_cfg.learning_rate * synergy * compute_term * data_term


def open_weights_capability(cfg, t: int, frontier_history: list[float]) -> float:
    """Capability of the open-weights model in quarter ``t``: ``open_weights.capability``
    times the frontier ``open_weights.lag`` quarters earlier (the start's frontier before
    that), once released; else 0.  ``frontier_history[k]`` is the frontier in effect in
    quarter k."""
    ow = cfg.open_weights
    if not ow.enabled or t < cfg.quarter_offset(ow.release):
        return 0.0
    k = min(max(t - ow.lag, 0), len(frontier_history) - 1)
    return ow.capability * frontier_history[k]


def step(market) -> None:
    cfg = market.config
    cap_cfg = cfg.capability
    active = market.active_providers()
    for p in active:
        if p.has_model:
            data = p.tokens + p.captive_tokens * p.apps_served_share  # own apps' data only as far as they were served
            p.knowledge += progress(cap_cfg, p.training_compute, data, market.t, p.synergy)
            p.own_capability = capability_of(p.knowledge, cap_cfg)
        p.captive_compute *= 1.0 + p.captive_growth
        p.captive_tokens *= 1.0 + p.captive_growth
    # The frontier of the next quarter is the best own model (or floor) now; the open model
    # follows it with its lag, and is a floor for everyone.
    leader = max((p.own_capability for p in active), default=0.0)
    frontier_next = leader if leader > 0 else market.frontier
    history = [*market.frontier_history, frontier_next]
    market.open_capability = open_weights_capability(cfg, market.t + 1, history)
    for p in active:
        p.capability = max(p.own_capability, market.open_capability)
    market.frontier = max(frontier_next, market.open_capability)
    market.frontier_history.append(market.frontier)


def edge_over_open(own: float, open_capability: float, has_model: bool) -> float:
    """How much a provider's own model leads the open-weights one (0..1); 0 for porters."""
    if not has_model or own <= 0:
        return 0.0
    return max(0.0, own - open_capability) / own
