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
    wanted = investment.race_capex(market, poor, gpu_cost=0.02)
    assert 0 < wanted <= funds + 1e-9
