"""Pricing: cost plus a markup that invests below the fair share and harvests above it."""

import pytest

from sim.config import PricingConfig
from sim.model import Market
from sim.simulate import simulate
from sim.submodels import pricing
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
    p.price = 1.0
    target = pricing.unit_cost(market, p) * (1 + pricing.markup(market.installed_compute_shares()[0], 0.5, market.config.pricing))
    pricing.step(market)
    assert p.price == pytest.approx(1.0 + 0.5 * (target - 1.0))
