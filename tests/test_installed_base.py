"""Installed base in choice: deciders weigh a provider's share of customers through the
bandwagon term bandwagon[s] * ln(max(floor, share)) (history-friendly model, Eq. 9)."""

from sim.submodels import installed_base
import numpy as np
import pytest

from sim.model import Market
from sim.simulate import simulate
from sim.submodels import choice, installed_base
from tests.conftest import make_config, provider

SEGMENTS = ("internet", "enterprise", "government", "startup", "overseas")


def bandwagon(weight: float) -> dict:
    return {"segments": {s: {"bandwagon": weight} for s in SEGMENTS}}


def test_bandwagon_term_is_weight_times_log_share_with_a_floor():
    providers = [provider("Big", initial_share=0.7), provider("Small", initial_share=0.28), provider("Tiny", initial_share=0.02)]
    market = Market(config=make_config(providers, customers=4000, demand=bandwagon(0.8),
                                       installed_base={"floor": 0.1}))
    (shares,) = installed_base.shares(market)  # (runs, slots): a batch of one
    counts = np.bincount(market.customers.provider[market.customers.provider >= 0], minlength=3)
    assert shares == pytest.approx(counts / counts.sum())
    idx = np.flatnonzero(market.customers.provider < 0)[:100]  # not yet adopted: no switching cost
    with_term = choice.utilities(market, idx)
    # The same market (same seed, the same customers) without the term.
    same = Market(config=make_config(providers, customers=4000, demand=bandwagon(0.0), installed_base={"floor": 0.1}))
    assert np.array_equal(same.customers.provider, market.customers.provider)
    without = choice.utilities(same, idx)
    expected = 0.8 * np.log(np.maximum(shares, 0.1))
    assert np.allclose(with_term - without, expected)
    assert shares[2] < 0.1  # the tiny provider is held at the floor


def test_larger_installed_base_wins_more_new_adopters():
    """Identical providers but for their base at the start (ample fleets, one flat price): with the
    bandwagon term the larger one gains share as the market grows; without it, adopters split
    evenly and its share falls."""
    def big_share_gain(weight):
        providers = [provider(name, initial_share=share, compute=2e6) for name, share in (("Big", 0.5), ("P1", 0.25), ("P2", 0.25))]
        gains = []
        for seed in (1, 2, 3):
            config = make_config(providers, customers=4000, quarters=16, seed=seed, open_weights={"enabled": False},
                                 pricing={"harvest_slope": 0.0, "renewal_harvest": 0.0, "new_customer_discount": 0.0},
                                 demand={"initial_adoption": 0.2, "bass_p": 0.05, "bass_q": 0.2, "size_tail": 6.0,
                                         **bandwagon(weight)})
            share = simulate(config).providers.query("provider == 'Big'")["share_customers"].to_numpy()
            gains.append(share[-1] - share[0])
        return float(np.mean(gains))

    assert big_share_gain(1.0) > 0.03
    assert big_share_gain(0.0) < 0.0

def test_installed_base_shares_at_the_start_leave_entrants_and_an_empty_market_at_zero():
    entrants = [provider("New", initial_share=0.0)]
    market = Market(config=make_config(n_identical=2, customers=500, entrants=entrants))
    (shares,) = installed_base.shares(market)
    assert shares[2] == 0.0 and shares[:2].sum() == pytest.approx(1.0) and (shares[:2] > 0.3).all()
    empty = Market(config=make_config(n_identical=2, customers=100, demand={"initial_adoption": 0.0}))
    assert installed_base.shares(empty).tolist() == [[0.0, 0.0]]
