"""Capability: training compute and data flywheel toward a moving frontier; open weights as a floor."""

import pytest

from sim.config import CapabilityConfig
from sim.simulate import simulate
from sim.submodels import capability
from tests.conftest import make_config, provider

NO_OPEN = {"enabled": False}


def capability_path(result, name):
    return result.providers.query("provider == @name")["capability"].to_numpy()


def test_provider_without_capex_falls_behind():
    providers = [provider("Investor", initial_share=0.5, capex_share=1.0),
                 provider("Miser", initial_share=0.5, capex_share=0.0)]
    result = simulate(make_config(providers, customers=2000, quarters=16, open_weights=NO_OPEN,
                                  finance={"capacity_response": 0.0}))
    assert capability_path(result, "Miser")[-1] < capability_path(result, "Investor")[-1] - 0.05


def test_porter_stays_at_its_floor_without_open_weights():
    providers = [provider("Stack", initial_share=0.5), provider("Porter", initial_share=0.5, has_model=False, capability=0.4)]
    result = simulate(make_config(providers, customers=1000, quarters=10, open_weights=NO_OPEN))
    assert (capability_path(result, "Porter") == 0.4).all()
    assert capability_path(result, "Stack")[-1] > 0.8


def test_open_weights_lift_porters_from_their_release():
    providers = [provider("Stack", initial_share=0.5), provider("Porter", initial_share=0.5, has_model=False, capability=0.4)]
    result = simulate(make_config(providers, customers=1000, quarters=10,
                                  open_weights={"enabled": True, "release": 4, "capability": 0.7}))
    porter = capability_path(result, "Porter")
    frontier = result.market["frontier"].to_numpy()
    assert (porter[:3] == 0.4).all()  # rows are end-of-quarter: quarter 3's row already sees the release at 4
    assert porter[-1] == pytest.approx(0.7 * frontier[-1])


def test_stronger_flywheel_speeds_learning():
    def final(flywheel):
        providers = [provider("A", initial_share=1.0, captive_tokens=5e5)]
        result = simulate(make_config(providers, customers=500, quarters=8, open_weights=NO_OPEN,
                                      capability={"flywheel": flywheel}))
        return capability_path(result, "A")[-1] / result.market["frontier"].iloc[-1]

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
