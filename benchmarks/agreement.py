"""Do the versions of the choice rule agree in distribution?

Every version starts from the same populations (the same seeds through the
engine's own population and initial assignment) and runs the rule for the same
quarters with its own random stream.  With provider attributes fixed, customers
are independent of each other, so each customer's final state is an independent
draw: the pooled counts of final (provider, uses its model) cells and of tenure
classes form contingency tables (version x cell) for a chi-square test of
homogeneity.  A p-value below ``ALPHA`` means the versions implement different
rules, and the benchmark stops before it reports any speed.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Callable

import numpy as np
from scipy.stats import chi2_contingency

from benchmarks import engine, kernel
from benchmarks.choice_rule import Rule, population_of, rule_of, start
from benchmarks.mesa_reference import ChoiceReference

ALPHA = 1e-3
TENURE_BINS = np.array([0, 1, 2, 4, 8, 16, 32, 10_000])

Runner = Callable[[int, int, int], dict]


def run_kernel(customers: int, quarters: int, seed: int, rule_edit: Callable[[Rule], Rule] | None = None,
               naive: bool = False) -> dict:
    market, rule, pop = start(customers, seed)
    rule = rule_edit(rule) if rule_edit else rule
    kernel.run(pop, rule, quarters, seed + 10_000, naive=naive)
    return {"provider": pop.provider, "tenure": pop.tenure, "uses_model": pop.uses_model}


def run_kernel_naive(customers: int, quarters: int, seed: int) -> dict:
    return run_kernel(customers, quarters, seed, naive=True)


def run_engine_choice(customers: int, quarters: int, seed: int) -> dict:
    market, _, _ = start(customers, seed)
    return engine.state(engine.run_choice_step(market, quarters))


def run_engine_market(customers: int, quarters: int, seed: int) -> dict:
    market, rule, _ = start(customers, seed)
    engine.run_market_step(market, quarters)
    assert_rule_unchanged(rule, rule_of(market))
    return engine.state(market)


def run_mesa(customers: int, quarters: int, seed: int) -> dict:
    market, rule, pop = start(customers, seed)
    model = ChoiceReference(population=pop, rule=rule, rng=seed + 20_000)
    for _ in range(quarters):
        model.step()
    return {k: np.asarray(v) for k, v in model.state().items()}


VERSIONS: dict[str, Runner] = {
    "bare kernel": run_kernel,
    "naive kernel (uniform per customer, Gumbel-max)": run_kernel_naive,
    "engine (choice.step)": run_engine_choice,
    "engine (Market.step, others neutral)": run_engine_market,
    "mesa per-agent": run_mesa,
}


def assert_rule_unchanged(before: Rule, after: Rule) -> None:
    """The neutral config must really hold every provider attribute still."""
    for field in ("attraction", "affinity", "active", "lock_in", "edge", "appeal"):
        a, b = getattr(before, field), getattr(after, field)
        if not np.allclose(a, b, rtol=1e-12, atol=1e-12):
            raise AgreementError(f"provider attribute {field!r} moved during the neutral run: {a} -> {b}")


class AgreementError(AssertionError):
    pass


@dataclass
class Agreement:
    customers: int
    quarters: int
    seeds: list[int]
    tables: dict[str, np.ndarray]   # statistic -> (versions, cells) counts
    p_values: dict[str, float]
    shares: dict[str, np.ndarray]   # version -> final share of customers per slot
    versions: list[str]

    @property
    def ok(self) -> bool:
        return all(p >= ALPHA for p in self.p_values.values())

    def markdown(self) -> str:
        slots = len(next(iter(self.shares.values())))
        lines = [f"Agreement check: {len(self.seeds)} populations x {self.customers:,} customers x "
                 f"{self.quarters} quarters per version; chi-square test of homogeneity, fail below p = {ALPHA:g}.",
                 "", "| version | " + " | ".join(f"slot {j}" for j in range(slots)) + " |",
                 "|---|" + "---:|" * slots]
        for name in self.versions:
            lines.append(f"| {name} | " + " | ".join(f"{s:.4f}" for s in self.shares[name]) + " |")
        lines.append("")
        lines.append("p-values: " + ", ".join(f"{k} {v:.3g}" for k, v in self.p_values.items())
                     + (" — agree" if self.ok else " — DISAGREE"))
        return "\n".join(lines)


def cells(state: dict, slots: int) -> dict[str, np.ndarray]:
    provider = np.asarray(state["provider"]).astype(np.int64)
    uses = np.asarray(state["uses_model"]).astype(np.int64)
    tenure = np.asarray(state["tenure"]).astype(np.int64)
    return {
        "provider x model use": np.bincount((provider + 1) * 2 + uses, minlength=(slots + 1) * 2),
        "tenure": np.histogram(tenure, bins=TENURE_BINS)[0],
    }


def check(customers: int = 4000, quarters: int = 40, seeds: tuple[int, ...] = (1, 2, 3, 4),
          versions: dict[str, Runner] | None = None) -> Agreement:
    versions = versions or VERSIONS
    slots = start(10, seeds[0])[1].active.size
    counts: dict[str, dict[str, np.ndarray]] = {}
    for name, runner in versions.items():
        total: dict[str, np.ndarray] = {}
        for seed in seeds:
            for stat, c in cells(runner(customers, quarters, seed), slots).items():
                total[stat] = total.get(stat, 0) + c
        counts[name] = total
    names = list(versions)
    tables, p_values = {}, {}
    for stat in counts[names[0]]:
        table = np.array([counts[n][stat] for n in names])
        table = table[:, table.sum(axis=0) > 0]  # cells no version reaches carry no information
        tables[stat] = table
        p_values[stat] = float(chi2_contingency(table)[1])
    shares = {}
    for n in names:
        by_cell = counts[n]["provider x model use"].reshape(slots + 1, 2).sum(axis=1)[1:]
        shares[n] = by_cell / by_cell.sum()
    return Agreement(customers, quarters, list(seeds), tables, p_values, shares, names)


def require(agreement: Agreement) -> Agreement:
    if not agreement.ok:
        raise AgreementError("the versions of the choice rule do not agree in distribution:\n" + agreement.markdown())
    return agreement
