"""The surge as a public test: standing with the watching segments rises when a surge is served,
falls when it is not, and fades."""

import numpy as np
import pytest

from sim.model import Market
from sim.submodels import showcase
from tests.conftest import make_config, provider


def internet_share_path(gala_compute: float, size: float, seed: int) -> tuple[np.ndarray, float]:
    """Gala's share of internet-segment customers after each quarter; a threefold surge on Gala in
    quarter 3.  Nobody builds (capacity_response 0), so Gala's fleet decides how the surge is served."""
    providers = [provider("Gala", initial_share=0.5, compute=gala_compute, capex_share=0.0),
                 provider("Other", initial_share=0.5, compute=4e5, capex_share=0.0)]
    config = make_config(providers, customers=4000, quarters=12, seed=seed, finance={"capacity_response": 0.0},
                         service={"surges": [{"quarter": 3, "multiplier": 3.0, "provider": "Gala"}]},
                         showcase={"size": size},
                         # Issue 9's levers off (one price, no bandwagon, capability frozen: without a ceiling the
                         # larger fleet pulls away and Gala's share erodes either way) and issue 12's scarcity
                         # pricing (the overloaded Gala would shed customers by price): the test isolates the showcase.
                         pricing={"renewal_harvest": 0.0, "new_customer_discount": 0.0, "scarcity_elasticity": 0.0},
                         capability={"learning_rate": 0.0},
                         demand={"segments": {s: {"bandwagon": 0.0} for s in
                                              ("internet", "enterprise", "government", "startup", "overseas")}})
    market = Market(config=config)
    internet = market.customers.segment == market.customers.segment_names.index("internet")
    path = []
    for _ in range(config.run.quarters):
        market.step()
        with_provider = internet & (market.customers.provider >= 0)
        path.append(np.mean(market.customers.provider[with_provider] == 0))
    return np.array(path), market.slots[0].standing


@pytest.mark.parametrize("seed", [7, 11])
def test_served_surge_raises_internet_share_and_unserved_lowers_it(seed):
    # Same seed with the showcase on and off: the random draws are the same, only utility differs.
    served_on, standing = internet_share_path(1.2e6, 0.5, seed)
    served_off, _ = internet_share_path(1.2e6, 0.0, seed)
    assert standing > 0
    assert np.allclose(served_on[:4], served_off[:4]), "nothing changes before the surge is seen"
    assert (served_on - served_off)[5:].mean() > 0.01

    failed_on, standing = internet_share_path(1.6e5, 0.5, seed)
    failed_off, _ = internet_share_path(1.6e5, 0.0, seed)
    assert standing < 0
    assert (failed_on - failed_off)[5:].mean() < -0.01


def test_standing_change_is_zero_at_the_pass_mark_and_bounded_by_size():
    assert showcase.standing_change(0.9, 0.5, 0.9) == 0.0
    assert showcase.standing_change(1.0, 0.5, 0.9) == pytest.approx(0.5)
    assert showcase.standing_change(0.0, 0.5, 0.9) == pytest.approx(-0.5)
    assert showcase.standing_change(0.45, 0.5, 0.9) == pytest.approx(-0.25)


def test_standing_fades_and_reaches_only_watching_segments():
    providers = [provider("Gala", initial_share=0.5), provider("Other", initial_share=0.5)]
    config = make_config(providers, customers=500, showcase={"decay": 0.25, "segments": ["internet", "startup"]})
    market = Market(config=config)
    market.slots[0].standing = 1.0
    showcase.step(market)  # no surge this quarter: only decay
    assert market.slots[0].standing == pytest.approx(0.75)
    names = market.customers.segment_names
    seg = np.array([names.index(s) for s in ("internet", "enterprise", "startup")])
    runs = np.zeros(seg.size, dtype=np.intp)  # a batch of one
    term = showcase.utility(market, runs, seg)
    assert term.shape == (2, 3)
    assert term[0].tolist() == pytest.approx([0.75, 0.0, 0.75]) and term[1].tolist() == [0.0, 0.0, 0.0]
    market.slots[0].standing = 0.0
    assert showcase.utility(market, runs, seg) is None

def test_tested_slots_are_this_quarters_real_surges():
    providers = [provider("A", initial_share=0.5), provider("B", initial_share=0.5)]

    def tested(surges):
        return showcase.tested_slots(Market(config=make_config(providers, customers=100, service={"surges": surges})))

    assert tested([{"quarter": 3, "multiplier": 5.0, "provider": "A"}, {"quarter": 0, "multiplier": 1.5, "provider": "B"}]) == {1}
    assert tested([{"quarter": 0, "multiplier": 2.0, "provider": "A"}, {"quarter": 0, "multiplier": 2.0, "provider": "B"}]) == {0, 1}
    assert tested([{"quarter": 0, "multiplier": 1.5}]) == {0, 1}
    assert tested([{"quarter": 0, "multiplier": 1.0}]) == set()  # no surge at all


def test_standing_decays_and_adds_up_over_surges():
    config = make_config([provider("A", initial_share=1.0)], customers=100,
                         showcase={"decay": 0.5, "size": 2.0, "pass_mark": 0.5},
                         service={"surges": [{"quarter": 0, "multiplier": 3.0}]})
    market = Market(config=config)
    (p,) = market.active_providers()
    p.standing, p.served_share = 1.0, 1.0
    showcase.step(market)
    assert p.standing == pytest.approx(0.5 + 2.0)
