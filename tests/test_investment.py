"""Strategic investment: capex that answers the largest rival's fleet among contenders near
the frontier, within the funds at hand (Sutton 1991); 'fixed_share' keeps the old rule."""

import numpy as np
import pytest

from sim.model import Market
from sim.simulate import simulate
from sim.submodels import investment
from tests.conftest import make_config, provider

NO_BUILD = {"capacity_response": 0.0}


def run(policy, providers, quarters=8, **investment_cfg):
    return simulate(make_config(providers, customers=1000, quarters=quarters, open_weights={"enabled": False},
                                investment={"policy": policy, **investment_cfg}, finance=NO_BUILD)).providers


def test_fixed_share_spends_the_share_of_revenue():
    rows = run("fixed_share", [provider("A", initial_share=0.5, capex_share=0.3), provider("B", initial_share=0.5, capex_share=0.3)])
    assert np.allclose(rows["capex"], 0.3 * rows["revenue"])


def test_provider_behind_a_bigger_rival_races_to_lead_it():
    providers = [provider("Big", initial_share=0.5, compute=4e5, capex_share=0.0),
                 provider("Behind", initial_share=0.5, compute=1e5, capex_share=0.0)]
    fixed = run("fixed_share", providers).set_index(["provider", "step"])
    strategic = run("strategic", providers).set_index(["provider", "step"])
    assert (fixed["capex"] == 0).all()
    assert strategic.loc["Behind", "capex"].sum() > 0
    stock = strategic.loc["Behind", "compute_stock"].to_numpy()
    assert stock[-1] > 2 * fixed.loc["Behind", "compute_stock"].to_numpy()[-1]


def test_provider_far_behind_in_capability_gives_up():
    providers = [provider("Big", initial_share=0.5, compute=4e5, capex_share=0.0, capability=1.0),
                 provider("Far", initial_share=0.5, compute=1e5, capex_share=0.0, capability=0.6)]
    rows = run("strategic", providers, quarters=4, give_up_gap=0.3)
    assert (rows.query("provider == 'Far'")["capex"] == 0).all()
    assert investment.racing_effort(0.6, 1.0, 0.3) == 0.0
    assert investment.racing_effort(0.85, 1.0, 0.3) == pytest.approx(0.5)
    assert investment.racing_effort(1.0, 1.0, 0.3) == 1.0


def test_racing_never_spends_more_than_cash_flow_and_the_cash_draw():
    providers = [provider("Big", initial_share=0.5, compute=1e6, capex_share=0.0),
                 provider("Poor", initial_share=0.5, compute=1e5, capex_share=0.0, cash=100.0)]
    market = Market(config=make_config(providers, customers=1000, open_weights={"enabled": False},
                                       investment={"policy": "strategic", "response": 1.0, "cash_draw": 0.1}))
    for _ in range(3):
        market.step()
    poor = market.slots[1]
    funds = max(0.0, poor.revenue + poor.internal_revenue - poor.opex) + 0.1 * max(0.0, poor.cash)
    wanted = investment.race_capex(market._batch, gpu_cost=0.02)[0, poor.slot]
    assert 0 < wanted <= funds + 1e-9


def test_racing_effort_falls_linearly_from_the_frontier_to_the_give_up_gap():
    assert investment.racing_effort(1.0, 1.0, 0.3) == 1.0
    assert investment.racing_effort(1.2, 1.0, 0.3) == 1.0, "ahead of the frontier: still 1"
    assert investment.racing_effort(0.85, 1.0, 0.3) == pytest.approx(0.5)
    assert investment.racing_effort(0.6, 1.0, 0.3) == 0.0
    assert investment.racing_effort(0.5, 0.0, 0.3) == 1.0, "no frontier yet: no gap"


def test_installed_fleet_counts_gpus_on_order():
    market = Market(config=make_config(n_identical=2, customers=100, finance={"capex_lag": 2}))
    p = market.slots[0]
    p.compute = 1000.0
    market.provider_table.pipeline[0, 0] = [200.0, 300.0]
    assert investment.installed(market.provider_table)[0, 0] == 1500.0


def test_expected_growth_is_last_quarters_growth_of_planned_demand_remembered_per_quarter():
    market = Market(config=make_config(n_identical=2, customers=100))
    a, b = market.slots
    a.planned_gpu, b.planned_gpu = 600.0, 400.0
    assert investment.expected_growth(market._batch)[0] == 0.0, "no history: no growth"
    a.planned_gpu = 900.0
    assert investment.expected_growth(market._batch)[0] == 0.0, "remembered within the quarter"
    market.investment_memo = (market.t - 1, *market.investment_memo[1:])  # as if a quarter had passed
    assert investment.expected_growth(market._batch)[0] == pytest.approx(0.3)      # 1,000 -> 1,300
    market.investment_memo = (market.t - 1, *market.investment_memo[1:])
    a.planned_gpu = 100.0
    assert investment.expected_growth(market._batch)[0] == 0.0, "never negative"

def test_race_capex_by_its_equation():
    """min(response * effort * max(0, (1 + escalation)(1 + growth) max rival - installed) * gpu_cost,
    max(0, revenue + internal - opex) + cash_draw * max(0, cash))."""
    inv = {"escalation": 0.2, "response": 0.5, "give_up_gap": 0.5, "cash_draw": 0.1}
    providers = [provider("Me", initial_share=0.5, compute=1.0e5), provider("Rival", initial_share=0.5, compute=3.0e5)]
    market = Market(config=make_config(providers, customers=100, investment=inv))
    me, rival = market.active_providers()
    me.capability = market.frontier  # full effort
    market.investment_memo = (market.t, 1.0, 0.25)  # planned demand grew 25 %
    me.revenue, me.internal_revenue, me.opex, me.cash = 1.0e3, 2.0e2, 3.0e2, 5.0e3
    fleets = investment.installed(market.provider_table)[0]
    gap = 1.2 * 1.25 * fleets[rival.slot] - fleets[me.slot]
    batch = market._batch
    assert investment.race_capex(batch, 1e-3)[0, me.slot] == pytest.approx(0.5 * gap * 1e-3)  # below the funds
    assert investment.race_capex(batch, 1.0)[0, me.slot] == pytest.approx(1.0e3 + 2.0e2 - 3.0e2 + 0.1 * 5.0e3)
    me.opex = 5.0e3  # operating loss: only the cash draw
    assert investment.race_capex(batch, 1.0)[0, me.slot] == pytest.approx(0.1 * 5.0e3)
    assert investment.race_capex(batch, 1.0)[0, rival.slot] == 0.0  # it leads already
    alone = Market(config=make_config([provider("Me", initial_share=1.0)], customers=100))
    assert investment.race_capex(alone._batch, 1.0)[0, 0] == 0.0


def test_expected_growth_from_a_small_or_zero_base():
    market = Market(config=make_config(n_identical=2, customers=100))
    market.steps = 1
    for p in market.active_providers():
        p.planned_gpu = 0.5
    market.investment_memo = (0, 0.5, 0.0)
    assert investment.expected_growth(market._batch)[0] == pytest.approx(1.0)
    market.steps, market.investment_memo = 2, (1, 0.0, 0.0)
    assert investment.expected_growth(market._batch)[0] == 0.0


def test_largest_other_is_the_largest_rival_of_each_slot():
    """The race's target: for each slot, the largest fleet among the run's other slots (inactive
    slots enter as -inf; a slot with no other gets -inf)."""
    values = np.array([[3.0, 7.0, -np.inf, 7.0, 1.0], [5.0, -np.inf, -np.inf, -np.inf, -np.inf]])
    assert investment.largest_other(values).tolist() == [[7.0, 7.0, 7.0, 7.0, 7.0], [-np.inf, 5.0, 5.0, 5.0, 5.0]]
    assert investment.largest_other(np.array([[2.0]])).tolist() == [[-np.inf]]
    assert investment.largest_other(np.array([[1.0, 4.0, 2.0]])).tolist() == [[4.0, 2.0, 4.0]]
