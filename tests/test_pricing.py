"""Pricing: cost plus a markup that invests below the fair share and harvests above it; a
new-customer price below and a renewal price above it (Klemperer's invest and harvest)."""

import numpy as np
import pytest

from sim.customers import W_PRICE

from sim.config import PricingConfig
from sim.model import Market
from sim.simulate import simulate
from sim.submodels import choice, pricing
from tests.conftest import make_config, provider


def test_markup_rises_with_installed_share_and_is_clipped():
    cfg = PricingConfig(base_markup=0.5, harvest_slope=2.0, min_markup=0.1, max_markup=1.0)
    assert pricing.markup(0.1, 0.25, cfg) < pricing.markup(0.25, 0.25, cfg) == 0.5 < pricing.markup(0.4, 0.25, cfg)
    assert pricing.markup(0.0, 0.5, cfg) == 0.1
    assert pricing.markup(1.0, 0.2, cfg) == 1.0


def test_own_chips_lower_unit_cost():
    providers = [provider("Imports", initial_share=0.5, own_chip_share=0.0),
                 provider("OwnChips", initial_share=0.5, own_chip_share=1.0)]
    market = Market(config=make_config(providers, customers=200))
    imports, own = market.slots
    assert pricing.unit_cost(market, own) < pricing.unit_cost(market, imports)


def test_large_incumbent_harvests_small_rival_invests():
    providers = [provider("Big", initial_share=0.8), provider("Small", initial_share=0.2)]
    result = simulate(make_config(providers, customers=3000, quarters=6))
    last = result.providers.query("step == 5").set_index("provider")
    assert last.loc["Big", "markup"] > last.loc["Small", "markup"]
    assert last.loc["Big", "price"] > last.loc["Small", "price"]


def test_price_moves_part_way_to_target():
    market = Market(config=make_config(n_identical=2, customers=500, pricing={"adjustment": 0.5}))
    p = market.slots[0]
    p.list_price = 1.0
    target = pricing.unit_cost(market, p) * (1 + pricing.markup(market.installed_compute_shares()[0], 0.5, market.config.pricing))
    pricing.step(market)
    assert p.list_price == pytest.approx(1.0 + 0.5 * (target - 1.0))


def renewal_gap(lock_in: float, **pricing_cfg):
    """(renewal / new-customer price) of the provider with the largest locked-in base, and of the
    smaller one, at the end of a short run."""
    providers = [provider("Big", initial_share=0.7, lock_in=lock_in), provider("Small", initial_share=0.3, lock_in=lock_in)]
    last = simulate(make_config(providers, customers=2000, quarters=6, pricing=pricing_cfg)).providers.query("step == 5")
    last = last.set_index("provider")
    return last["price_renewal"] / last["price_new"]


def test_locked_in_base_pays_more_at_renewal_and_the_gap_grows_with_lock_in():
    low, high = renewal_gap(1.0), renewal_gap(3.0)
    assert low["Big"] > 1.05
    assert high["Big"] > low["Big"] * 1.2


def test_one_price_without_invest_and_harvest():
    gap = renewal_gap(3.0, renewal_harvest=0.0, new_customer_discount=0.0)
    assert (gap == 1.0).all()


def test_average_price_weighs_first_contracts_at_the_new_price():
    market = Market(config=make_config(n_identical=2, customers=2000))
    market.step()
    people = market.customers
    for p in market.active_providers():
        mine = people.provider == p.slot
        first = people.compute[mine & people.first_contract].sum(dtype=float)
        renewed = people.compute[mine & ~people.first_contract].sum(dtype=float)
        assert first > 0 and renewed > 0
        assert p.price == pytest.approx((first * p.price_new + renewed * p.price_renewal) / (first + renewed))
        assert p.price_new < p.price < p.price_renewal


def test_renewing_customers_weigh_their_incumbents_renewal_price():
    market = Market(config=make_config(n_identical=2, customers=500, open_weights={"enabled": False}))
    pricing.step(market)
    people = market.customers
    idx = np.flatnonzero(people.provider == 0)[:50]
    base = choice.utilities(market, idx)
    market.slots[0].price_renewal *= 1.5
    dearer = choice.utilities(market, idx)
    w_price = people.weights[idx, W_PRICE]
    assert np.allclose(base[:, 0] - dearer[:, 0], w_price * np.log(1.5), rtol=1e-5)
    assert np.array_equal(base[:, 1], dearer[:, 1])
