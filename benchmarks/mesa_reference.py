"""The choice rule written the usual Mesa way: one ``mesa.Agent`` per customer with
its own ``step()``, scheduled by ``model.agents.do("step")``.

Same utility, switching cost, renewal hazard, logit rule and model-use hazard as
``sim/submodels/choice.py``; provider attributes are fixed (``choice_rule.Rule``).
Agents draw from ``self.random`` (the model's stdlib generator), as Mesa models
usually do.  Order does not matter (customers do not interact here), so by
default the agents are stepped with ``do`` rather than the slower
``shuffle_do`` (Mesa's usual random activation): the reference is given every
advantage.  ``activation="shuffle_do"`` measures the usual idiom too.
"""

from __future__ import annotations

import math

import mesa

from benchmarks.choice_rule import Population, Rule


class Customer(mesa.Agent):
    def __init__(self, model: "ChoiceReference", segment: int, weights: tuple[float, ...],
                 provider: int, tenure: int, uses_model: bool):
        super().__init__(model)
        self.segment = segment
        self.w_capability, self.w_price, self.w_fit, self.w_reliability = weights
        self.provider = provider
        self.tenure = tenure
        self.uses_model = uses_model

    def step(self) -> None:
        m = self.model
        if self.provider < 0 or self.random.random() < m.renewal[self.segment]:
            chosen = self.choose(m)
        else:
            chosen = self.provider
        if chosen != self.provider:
            self.provider, self.tenure, self.uses_model = chosen, 0, False
        elif self.provider >= 0:
            self.tenure += 1
        if self.provider >= 0 and not self.uses_model:
            hazard = m.model_use_rate[self.segment] * m.appeal[self.provider]
            self.uses_model = self.random.random() < hazard

    def choose(self, m: "ChoiceReference") -> int:
        fit = m.affinity[self.segment]
        best, best_u = self.provider, -math.inf
        for j in m.active_slots:
            u = (self.w_capability * m.capability[j] - self.w_price * m.log_price[j]
                 + self.w_fit * fit[j] + self.w_reliability * m.reliability[j])
            if j == self.provider:
                u += self.switching_cost(m)
            u -= math.log(self.random.expovariate(1.0) or 1e-300)  # Gumbel noise
            if u > best_u:
                best, best_u = j, u
        return best

    def switching_cost(self, m: "ChoiceReference") -> float:
        tenure_term = 1.0 - math.exp(-self.tenure / m.tenure_scale)
        base = m.lock_in[self.provider] * (m.switching_base + m.switching_tenure * tenure_term)
        return base * (1.0 + m.model_lock * self.uses_model * m.edge[self.provider])


class ChoiceReference(mesa.Model):
    def __init__(self, *, population: Population | None = None, rule: Rule | None = None, rng: int | None = None,
                 activation: str = "do"):
        super().__init__(rng=rng)
        if activation not in ("do", "shuffle_do"):
            raise ValueError(f"activation must be 'do' or 'shuffle_do', not {activation!r}")
        self.activation = activation
        if rule is None or population is None:
            from benchmarks.choice_rule import population_of, start

            market, rule, _ = start(1000, 1 if rng is None else rng)
            population = population_of(market)
        self.capability, neg_log_price, _, self.reliability = (list(map(float, row)) for row in rule.attraction)
        self.log_price = [-x for x in neg_log_price]
        self.affinity = [list(map(float, row)) for row in rule.affinity]
        self.active_slots = [int(j) for j in range(rule.active.size) if rule.active[j]]
        self.lock_in, self.edge, self.appeal = (list(map(float, a)) for a in (rule.lock_in, rule.edge, rule.appeal))
        self.renewal = list(map(float, rule.renewal))
        self.model_use_rate = list(map(float, rule.model_use_rate))
        self.switching_base, self.switching_tenure = rule.switching_base, rule.switching_tenure
        self.tenure_scale, self.model_lock = rule.tenure_scale, rule.model_lock
        weights = population.weights.tolist()
        for i, (seg, prov, ten, uses) in enumerate(zip(population.segment.tolist(), population.provider.tolist(),
                                                       population.tenure.tolist(), population.uses_model.tolist())):
            Customer(self, seg, tuple(weights[i]), prov, ten, uses)

    def step(self) -> None:
        getattr(self.agents, self.activation)("step")

    def state(self) -> dict[str, list]:
        customers = list(self.agents)
        return {"provider": [a.provider for a in customers], "tenure": [a.tenure for a in customers],
                "uses_model": [a.uses_model for a in customers]}
