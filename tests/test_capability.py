"""Capability: cumulative learning from training compute and data (the flywheel) without a
ceiling; synergy; the endogenous frontier; open weights follow it with a lag and give a floor."""

import pytest

import numpy as np

from sim.config import CapabilityConfig
from sim.model import Market
from sim.simulate import simulate
from sim.submodels import capability
from tests.conftest import make_config, provider

NO_OPEN = {"enabled": False}
SEGMENTS = ("internet", "enterprise", "government", "startup", "overseas")


def capability_path(result, name):
    return result.providers.query("provider == @name")["capability"].to_numpy()


def test_provider_without_capex_falls_behind():
    providers = [provider("Investor", initial_share=0.5, capex_share=1.0),
                 provider("Miser", initial_share=0.5, capex_share=0.0)]
    result = simulate(make_config(providers, customers=2000, quarters=16, open_weights=NO_OPEN,
                                  finance={"capacity_response": 0.0}))
    assert capability_path(result, "Miser")[-1] < capability_path(result, "Investor")[-1] - 0.05


def data_lead(flywheel: float) -> np.ndarray:
    """Capability of a provider with large captive token volume over an identical one without:
    same fleet (no capex, no capacity building), so data is the only difference.  The fleet is
    large enough that demand never outgrows it: own apps' data counts only as far as they are served."""
    providers = [provider("Data", initial_share=0.5, captive_tokens=1e6, capex_share=0.0, compute=1e6),
                 provider("Plain", initial_share=0.5, capex_share=0.0, compute=1e6)]
    result = simulate(make_config(providers, customers=500, quarters=40, open_weights=NO_OPEN,
                                  finance={"capacity_response": 0.0}, capability={"flywheel": flywheel}))
    return capability_path(result, "Data") / capability_path(result, "Plain")


def test_a_lasting_data_lead_keeps_a_capability_lead():
    ratio = data_lead(1.0)
    assert ratio[-1] > 1.1, ratio[-1]
    assert ratio[-1] > 0.95 * ratio.max(), (ratio.max(), ratio[-1])  # the lead does not erode


def test_without_the_flywheel_data_gives_no_lead():
    assert np.allclose(data_lead(0.0), 1.0, rtol=1e-12, atol=0)


def test_synergy_multiplies_learning():
    providers = [provider("Integrated", initial_share=0.5, synergy=2.0), provider("Plain", initial_share=0.5)]
    result = simulate(make_config(providers, customers=500, quarters=12, open_weights=NO_OPEN,
                                  capability={"flywheel": 0.0, "compute_elasticity": 0.0}))
    # With learning independent of fleet and data, knowledge grows by synergy x learning_rate a quarter.
    cfg = CapabilityConfig(flywheel=0.0, compute_elasticity=0.0)
    start = capability.knowledge_for(0.8, cfg)
    for name, synergy in (("Integrated", 2.0), ("Plain", 1.0)):
        expected = capability.capability_of(start + 12 * synergy * cfg.learning_rate, cfg)
        assert capability_path(result, name)[-1] == pytest.approx(expected)


def test_frontier_is_the_best_provider_and_never_below_anyone():
    providers = [provider("Lead", initial_share=0.5, capability=0.9), provider("Lag", initial_share=0.5, capability=0.6)]
    result = simulate(make_config(providers, customers=500, quarters=8, open_weights=NO_OPEN))
    best = result.providers.groupby("step")["capability"].max().to_numpy()
    assert np.allclose(result.market["frontier"].to_numpy(), best)


def test_porter_stays_at_its_floor_without_open_weights():
    providers = [provider("Stack", initial_share=0.5), provider("Porter", initial_share=0.5, has_model=False, capability=0.4)]
    result = simulate(make_config(providers, customers=1000, quarters=10, open_weights=NO_OPEN))
    assert (capability_path(result, "Porter") == 0.4).all()
    assert capability_path(result, "Stack")[-1] > 0.8


def test_open_weights_lift_porters_from_their_release():
    providers = [provider("Stack", initial_share=0.5), provider("Porter", initial_share=0.5, has_model=False, capability=0.4)]
    result = simulate(make_config(providers, customers=1000, quarters=10,
                                  open_weights={"enabled": True, "release": 4, "capability": 0.7, "lag": 0}))
    porter = capability_path(result, "Porter")
    frontier = result.market["frontier"].to_numpy()
    assert (porter[:3] == 0.4).all()  # rows are end-of-quarter: quarter 3's row already sees the release at 4
    assert porter[-1] == pytest.approx(0.7 * frontier[-1])


def test_open_weights_follow_the_frontier_with_a_lag():
    providers = [provider("Stack", initial_share=0.5), provider("Porter", initial_share=0.5, has_model=False, capability=0.0)]
    result = simulate(make_config(providers, customers=500, quarters=10,
                                  open_weights={"enabled": True, "release": 0, "capability": 0.9, "lag": 3}))
    frontier = result.market["frontier"].to_numpy()
    open_ = result.market["open_capability"].to_numpy()
    # Row k holds the values for quarter k + 1, so the open model of row k is 0.9 x the frontier of row k - 3.
    assert open_[5:] == pytest.approx(0.9 * frontier[2:-3])
    assert (np.diff(frontier) > 0).all() and (open_ < frontier).all()


def test_stronger_flywheel_speeds_learning():
    def final(flywheel):
        providers = [provider("A", initial_share=1.0, captive_tokens=5e5)]
        result = simulate(make_config(providers, customers=500, quarters=8, open_weights=NO_OPEN,
                                      capability={"flywheel": flywheel}))
        return capability_path(result, "A")[-1]

    assert final(3.0) > final(0.0) + 0.02


def test_progress_has_diminishing_returns_and_escalating_cost():
    cfg = CapabilityConfig()
    one, two, four = (capability.progress(cfg, x * cfg.reference_training, 0.0) for x in (1, 2, 4))
    assert one < two < four and (four - two) < 2 * (two - one)
    assert capability.progress(cfg, cfg.reference_training, 0.0, t=8) < one


def test_edge_over_open_weights():
    assert capability.edge_over_open(1.0, 0.5, True) == 0.5
    assert capability.edge_over_open(0.5, 0.7, True) == 0.0
    assert capability.edge_over_open(1.0, 0.0, False) == 0.0
    # Elementwise over arrays, as over numbers: (runs, slots) own capabilities, each run's open model.
    rng = np.random.default_rng(5)
    own = rng.uniform(0.0, 2.0, (7, 4))
    own[0, 0], own[1, 1] = 0.0, np.nan
    open_ = rng.uniform(0.0, 1.5, (7, 1))
    owner = rng.random((7, 4)) < 0.7
    arrays = capability.edge_over_open(own, open_, owner)
    numbers = [[capability.edge_over_open(own[r, s], open_[r, 0], owner[r, s]) for s in range(4)] for r in range(7)]
    np.testing.assert_array_equal(arrays, np.array(numbers))
    assert not isinstance(capability.edge_over_open(1.0, 0.5, True), np.ndarray)  # numbers give a number


def material_providers(scale: float, seed: int, capability_cfg: dict) -> int:
    """Providers holding >= 5 % of revenue after 12 years in a market ``scale`` times the base one,
    with free entry: six entrants funded in proportion to the market (investors back a bigger
    market more), a fixed entry cost (100,000 GPU-equivalents), everything else scaled too.
    Switched off (compute_elasticity 0, flywheel 0: every model learns at one pace) the count
    grows from 3 to 5-7 (seeds 0, 1), as with exogenous sunk costs."""
    incumbents = [provider(f"I{i}", initial_share=1 / 3, compute=1.5e5 * scale, cash=2e4 * scale, lock_in=0.5)
                  for i in range(3)]
    entrants = [provider(f"E{i}", compute=5e4 * scale, cash=0.0, lock_in=0.5, bankroll=700.0 * scale * (1 + i), earliest=2)
                for i in range(6)]
    config = make_config(incumbents, entrants=entrants, customers=3000, quarters=48, seed=seed,
                         demand={"market_compute": 1e5 * scale, "initial_adoption": 0.1, "bass_p": 0.02, "bass_q": 0.15,
                                 "size_tail": 4.0, "segments": {s: {"bandwagon": 0.0} for s in SEGMENTS}},
                         open_weights=NO_OPEN, capability=capability_cfg, investment={"policy": "strategic"})
    last = simulate(config).providers.query("step == step.max()")
    return int((last["share_revenue"] >= 0.05).sum())


def test_endogenous_sunk_costs_bound_the_number_of_firms_as_the_market_grows():
    """Sutton (1991): capability is learnt from the absolute training fleet, whose cost escalates,
    so in a 16x larger market the incumbents pull further ahead and the extra entrants that the
    fixed entry cost lets in do not add material providers."""
    for seed in (0, 1):
        small, large = material_providers(1, seed, {}), material_providers(16, seed, {})
        assert large <= small, (seed, small, large)


def test_progress_by_its_equation_at_zero_and_scaled_inputs():
    cfg = CapabilityConfig(learning_rate=0.1, reference_training=100.0, compute_elasticity=0.5, flywheel=2.0,
                           reference_data=10.0, data_elasticity=0.5, training_cost_growth=0.1)
    assert capability.progress(cfg, 400.0, 90.0) == pytest.approx(0.1 * 2.0 * (1 + 2.0 * 3.0))  # t 0, synergy 1
    assert capability.progress(cfg, 400.0, 90.0) == capability.progress(cfg, 400.0, 90.0, t=0, synergy=1.0)
    assert capability.progress(cfg, 484.0, 90.0, t=2, synergy=1.5) == pytest.approx(0.1 * 1.5 * 2.0 * 7.0)  # 484 / 1.21
    assert capability.progress(cfg, 0.0, 40.0) == 0.0  # no training, no progress
    assert capability.progress(cfg, 400.0, 0.0) == pytest.approx(0.1 * 2.0)  # no data: the flywheel adds nothing


def test_the_open_model_follows_the_last_frontier_known_and_a_zero_own_model_has_no_edge():
    config = make_config(n_identical=2, open_weights={"enabled": True, "release": 0, "lag": 0, "capability": 0.5})
    assert capability.open_weights_capability(config, 5, [1.0, 1.2]) == pytest.approx(0.6)
    assert capability.edge_over_open(0.0, 0.5, True) == 0.0


@pytest.mark.parametrize("case", ["porters only", "none active"])
def test_the_frontier_stays_where_it_was_without_an_own_model(case):
    providers = [provider("A", initial_share=0.5, has_model=False, capability=0.0),
                 provider("B", initial_share=0.5, has_model=False, capability=0.0)]
    market = Market(config=make_config(providers, customers=100, open_weights={"enabled": False}))
    market.frontier = 1.7
    if case == "none active":
        for p in market.active_providers():
            market.retire(p)
    capability.step(market)
    assert market.frontier == 1.7 and market.frontier_history[-1] == 1.7
