"""Demand: Bass diffusion of adoption and segment growth of existing demand."""

import numpy as np
import pytest

from sim.model import Market
from sim.submodels import demand
from tests.conftest import make_config


def test_bass_hazard_is_p_plus_q_times_adopted_share():
    assert demand.adoption_hazard(0.0, 0.01, 0.3) == pytest.approx(0.01)
    assert demand.adoption_hazard(0.5, 0.01, 0.3) == pytest.approx(0.16)
    assert demand.adoption_hazard(1.0, 0.9, 0.9) == 1.0


def test_adoption_follows_the_hazard():
    market = Market(config=make_config(customers=200_000, demand={"bass_p": 0.02, "bass_q": 0.2}))
    adopted = market.customers.adopted
    adopted[:] = False
    adopted[:100_000] = True
    demand.step(market)
    assert market.new_adopters == pytest.approx(100_000 * 0.12, rel=0.03)
    assert adopted.sum() == 100_000 + market.new_adopters
    assert adopted[:100_000].all()


def test_no_diffusion_means_no_new_customers():
    config = make_config(customers=2000, quarters=6, demand={"bass_p": 0.0, "bass_q": 0.0, "market_compute": 3e5})
    market = Market(config=config)
    before = market.customers.adopted.sum()
    market.run()
    assert market.customers.adopted.sum() == before


def test_adoption_spreads_faster_with_imitation():
    def adopted_after(q):
        market = Market(config=make_config(customers=4000, quarters=8, demand={"bass_q": q, "initial_adoption": 0.2}))
        market.run()
        return market.customers.adopted.mean()

    assert adopted_after(0.5) > adopted_after(0.05) + 0.1


def test_demand_grows_at_the_segment_rate():
    config = make_config(customers=3000, quarters=3)
    market = Market(config=config)
    people = market.customers
    start = people.compute.copy()
    for _ in range(3):
        market.step()
    rate = people.segment_table("growth", config)[people.segment]
    assert np.allclose(people.compute, start * (1 + rate) ** 2, rtol=1e-5)  # the first quarter does not grow


def test_initial_assignment_matches_configured_shares():
    from tests.conftest import provider
    providers = [provider("A", initial_share=0.6, affinity={"enterprise": 1.0}), provider("B", initial_share=0.3),
                 provider("C", initial_share=0.1, affinity={"government": 2.0})]
    from sim.model import initial_assignment

    market = Market(config=make_config(providers, customers=60_000))
    people = market.customers
    probs = initial_assignment(people, market.config)  # P(provider | segment)
    segment_demand = np.bincount(people.segment[people.adopted], weights=people.compute[people.adopted])
    expected = segment_demand @ probs / segment_demand.sum()
    assert np.allclose(expected, [0.6, 0.3, 0.1], atol=1e-6)
    # Realised shares carry sampling noise, large with the default infinite-variance tail; thin tail here.
    thin = Market(config=make_config(providers, customers=60_000, demand={"size_tail": 6.0}))
    assert np.allclose(thin.installed_compute_shares(), [0.6, 0.3, 0.1], atol=0.02)
    gov = people.segment == people.segment_names.index("government")
    assert (people.provider[gov] == 2).mean() > 0.1 + 0.05, "C leans towards the segment it fits"
