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

from types import SimpleNamespace

import numpy as np

from sim.batch import Batch, over_runs
from sim.provider_table import INDEX


def knowledge_for(capability: float, cap_cfg) -> float:
    """Knowledge stock (units: knowledge behind capability 1) that gives ``capability``;
    the inverse of ``capability_of``."""
    return max(capability, 0.0) ** (1.0 / cap_cfg.knowledge_elasticity)


def capability_of(knowledge, cap_cfg):
    """Capability index of a knowledge stock: knowledge ** knowledge_elasticity (concave,
    unbounded); a number or an array (elementwise)."""
    return own_capability(knowledge, cap_cfg.knowledge_elasticity)


def own_capability(knowledge, elasticity):
    """``capability_of`` with the elasticity given (a number, or per element: each learner's run's
    ``capability.knowledge_elasticity``); a negative stock counts as 0."""
    return Batch.power(np.maximum(knowledge, 0.0), elasticity)


def progress(cap_cfg, training, data, t: int = 0, synergy=1.0):
    """Knowledge gained in quarter ``t`` (units: knowledge behind capability 1).

    ``training``: training compute, GPU-equivalents; ``data``: tokens served plus captive
    tokens, token units per quarter; ``synergy``: the provider's organisational efficiency
    (1 = reference); numbers or arrays of one shape (elementwise).  The training compute that
    counts as one unit grows every quarter (the compute arms race, Sutton's escalating sunk
    costs; Epoch AI arXiv:2405.21015)."""
    reference = cap_cfg.reference_training * (1.0 + cap_cfg.training_cost_growth) ** t
    return research(training, data, synergy, learning_rate=cap_cfg.learning_rate, reference=reference,
                    compute_elasticity=cap_cfg.compute_elasticity, flywheel=cap_cfg.flywheel,
                    reference_data=cap_cfg.reference_data, data_elasticity=cap_cfg.data_elasticity)


def research(training, data, synergy, *, learning_rate, reference, compute_elasticity, flywheel, reference_data,
             data_elasticity):
    """``progress`` with its settings given one by one, elementwise over arrays (runs, slots) and
    per-run settings (runs, 1): learning_rate * synergy * (training / reference) ** compute_elasticity
    * (1 + flywheel * (data / reference_data) ** data_elasticity), negative inputs counted as 0."""
    compute_term = Batch.power(np.maximum(training, 0.0) / reference, compute_elasticity)
    data_term = 1.0 + flywheel * Batch.power(np.maximum(data, 0.0) / reference_data, data_elasticity)
    return learning_rate * synergy * compute_term * data_term


def open_weights_capability(cfg, t: int, frontier_history: list[float], release: int | None = None) -> float:
    """Capability of the open-weights model in quarter ``t``: ``open_weights.capability``
    times the frontier ``open_weights.lag`` quarters earlier (the start's frontier before
    that), once released; else 0.  ``frontier_history[k]`` is the frontier in effect in
    quarter k.  ``release``: the release quarter as an offset (``cfg.quarter_offset(open_weights.release)``),
    if the caller has it."""
    ow = cfg.open_weights
    if not ow.enabled or t < (cfg.quarter_offset(ow.release) if release is None else release):
        return 0.0
    k = min(max(t - ow.lag, 0), len(frontier_history) - 1)
    return ow.capability * frontier_history[k]


LEARNING = ("learning_rate", "compute_elasticity", "flywheel", "reference_data", "data_elasticity",
            "knowledge_elasticity")


def _settings(batch) -> SimpleNamespace:
    """What ``step`` reads of every run's config, once per batch (``batch.memo``): the learning
    settings as rows of a (len(LEARNING), runs) array, each run's reference training and its
    growth factor (Python floats), and the open model's release quarter (an offset)."""
    configs = [m.config for m in batch.markets]
    return SimpleNamespace(
        learning=np.array([batch.param(f"capability.{name}") for name in LEARNING], dtype=np.float64),
        reference=[(c.capability.reference_training, 1.0 + c.capability.training_cost_growth) for c in configs],
        release=[c.quarter_offset(c.open_weights.release) if c.open_weights.enabled else None for c in configs])


@over_runs
def step(batch) -> None:
    """Capability of every run of ``batch`` (a ``sim.batch.Batch``): knowledge and own capability
    of active model owners, captive demand growth of active providers, then each run's next
    frontier and open-weights capability and the capability floor it gives."""
    table, active = batch.table, batch.active
    settings = batch.memo("capability.settings", _settings)
    # Training compute that counts as one unit this quarter: a Python float per run, as one run computes it.
    reference = np.array([base * growth ** m.t for (base, growth), m in zip(settings.reference, batch.markets)])
    # Model owners learn: knowledge and own capability, computed for them alone (elementwise).
    learners = np.nonzero(active & (table.has_model != 0))
    run = learners[0]
    learning = settings.learning.take(run, axis=1)  # (len(LEARNING), learners): each learner's run's settings
    rows = table.data[learners]  # (learners, columns): one gather for all the columns read below
    column = lambda name: rows[:, INDEX[name]]  # noqa: E731
    data = column("tokens") + column("captive_tokens") * column("apps_served_share")  # own apps' data as far as served
    gain = research(column("compute") * column("training_share"), data, column("synergy"),
                    learning_rate=learning[0], reference=reference[run], compute_elasticity=learning[1],
                    flywheel=learning[2], reference_data=learning[3], data_elasticity=learning[4])
    knowledge = column("knowledge") + gain
    table.knowledge[learners] = knowledge
    table.own_capability[learners] = own_capability(knowledge, learning[5])
    growth = 1.0 + table.captive_growth
    np.copyto(table.captive_compute, table.captive_compute * growth, where=active)
    np.copyto(table.captive_tokens, table.captive_tokens * growth, where=active)
    # The frontier of the next quarter is the best own model (or floor) now; the open model
    # follows it with its lag, and is a floor for everyone.
    leaders = np.where(active, table.own_capability, -np.inf).max(axis=1)
    anyone = active.any(axis=1)
    for r, market in enumerate(batch.markets):  # per-run scalars and the run's frontier history
        leader = leaders[r] if anyone[r] else 0.0
        frontier_next = leader if leader > 0 else market.frontier
        history = market.frontier_history
        history.append(frontier_next)  # the open model's lag may reach it
        market.open_capability = open_weights_capability(market.config, market.t + 1, history, settings.release[r])
        market.frontier = history[-1] = max(frontier_next, market.open_capability)
    floor = np.array([m.open_capability for m in batch.markets], dtype=float)[:, None]
    own = table.own_capability
    np.copyto(table.capability, np.where(floor > own, floor, own), where=active)  # max(own, floor)


def edge_over_open(own, open_capability, has_model):
    """How much a provider's own model leads the open-weights one (0..1); 0 for porters and
    for an own capability of 0.  A number (``own`` a number), or arrays that broadcast (e.g.
    (runs, slots) own and has_model with (runs, 1) open capability): the same value in each
    element, bit for bit, as the numbers give."""
    if np.ndim(own) == 0:
        if not has_model or own <= 0:
            return 0.0
        return max(0.0, own - open_capability) / own
    lead = own - open_capability
    lead = np.where(lead > 0.0, lead, 0.0)  # max(0, lead) as Python's max takes it (NaN -> 0)
    owner = (np.asarray(has_model) != 0) & ~(own <= 0)  # as "not own <= 0" (NaN counts)
    return np.divide(lead, own, out=np.zeros(np.shape(lead)), where=owner)
