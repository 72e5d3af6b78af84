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

SEGMENTS = ("internet", "enterprise", "government", "startup", "overseas")


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


# ---------------------------------------------------------------- issue 12: promotions and scarcity
def test_a_below_cost_token_price_relaxes_toward_the_floor_and_an_above_cost_cut_lasts():
    # One quarter closes the share `relaxation` of the log gap; at or above the floor it stays.
    assert pricing.relax_token_factor(0.01, 0.4, 0.5) == pytest.approx(np.sqrt(0.01 * 0.4))
    assert pricing.relax_token_factor(0.01, 0.4, 0.0) == 0.01
    assert pricing.relax_token_factor(0.5, 0.4, 0.5) == 0.5
    assert pricing.relax_token_factor(0.5, 3.0, 1.0) == 1.0  # never above the compute price


def test_token_cut_applies_in_its_quarter_then_relaxes_in_the_model():
    cuts = [{"quarter": 2, "cut": 0.99}]

    def factors(relaxation: float) -> list[float]:
        market = Market(config=make_config(n_identical=2, customers=300, quarters=8,
                                           pricing={"token_price_cuts": cuts, "token_relaxation": relaxation}))
        out = []
        for _ in range(8):
            market.step()
            out.append(market.slots[0].token_factor)
        return out

    kept, relaxed = factors(0.0), factors(0.3)
    assert kept[:2] == [1.0, 1.0] and kept[2:] == [pytest.approx(0.01)] * 6
    assert relaxed[2] == pytest.approx(0.01)
    assert all(b > a for a, b in zip(relaxed[2:], relaxed[3:]))  # the promotion ends step by step


def test_scarcity_factor_rises_with_utilisation_above_the_target():
    cfg = PricingConfig(scarcity_target=1.0, scarcity_elasticity=2.0, scarcity_cap=4.0)
    assert pricing.scarcity_factor(0.8, cfg) == 1.0 == pricing.scarcity_factor(1.0, cfg)
    assert pricing.scarcity_factor(1.5, cfg) == pytest.approx(2.25)
    assert pricing.scarcity_factor(3.0, cfg) == pytest.approx(4.0) == pricing.scarcity_factor(float("inf"), cfg)  # the cap
    assert pricing.scarcity_factor(3.0, PricingConfig(scarcity_elasticity=0.0)) == 1.0


def overloaded_run(scarcity: float):
    """A provider with a tenth of its rivals' compute and a slow build-out: (its price / rivals'
    mean price, its utilisation), quarter by quarter."""
    providers = [provider("Small", initial_share=1 / 3, compute=4.0e4),
                 provider("A", initial_share=1 / 3, compute=1.5e5), provider("B", initial_share=1 / 3, compute=1.5e5)]
    cfg = make_config(providers, customers=3000, quarters=12, seed=3, pricing={"scarcity_elasticity": scarcity},
                      finance={"capacity_response": 0.05},
                      demand={"segments": {s: {"renewal_hazard": 0.25} for s in ("internet", "enterprise", "government", "startup", "overseas")}})
    rows = simulate(cfg).providers.pivot(index="step", columns="provider")
    return rows["price"]["Small"] / rows["price"][["A", "B"]].mean(axis=1), rows["utilisation"]["Small"]


def test_an_overloaded_provider_raises_its_price_and_demand_moves_to_rivals():
    rel_on, util_on = overloaded_run(2.0)
    rel_off, util_off = overloaded_run(0.0)
    assert util_on.iloc[0] > 2.5  # it starts overloaded
    assert rel_on.iloc[1:4].min() > 2.0 and rel_off.iloc[1:4].max() < 1.1  # it asks more than its rivals
    assert util_on.iloc[4] < util_on.iloc[0] - 1.5  # its customers leave for rivals with room
    assert util_on.mean() < util_off.mean() - 0.4


def exits(preset: str, quarters: int, seed: int, **changes) -> list[str]:
    """Providers that exit in a run of ``preset`` (2,000 customers) for ``quarters`` quarters."""
    from sim.config import load_config, with_overrides

    cfg = with_overrides(load_config(preset), {"run.quarters": quarters, "run.customers": 2000, "run.seed": seed,
                                               **changes}, source="test")
    return [name for names in simulate(cfg).market["exited"] for name in names.split("|") if name]


@pytest.mark.slow
@pytest.mark.parametrize("seed", [1, 2])
def test_the_history_run_on_for_ten_years_keeps_every_provider(seed):
    # Before issue 12 the 2024 token cuts lasted for ever, below cost: Volcano Engine (at a
    # hundredth of the compute price) and then Tencent exited by 2029-2030.
    assert exits("china_history_2020", 40, seed) == []
    assert "Volcano Engine" in exits("china_history_2020", 40, seed, **{"pricing.token_relaxation": 0.0})
    assert "Volcano Engine" in exits("china_history_2020", 40, seed, **{"pricing.scarcity_elasticity": 0.0})


def doubled_growth() -> dict[str, float]:
    from sim.calibration import params as fp
    from sim.config import load_config

    cfg = load_config("china_2025")
    return {path: 2 * getattr(cfg.demand.segments[path.split(".")[2]], key)
            for key in ("growth", "token_growth") for path in fp.expand(cfg, f"demand.segments.*.{key}")}


@pytest.mark.slow
def test_at_twice_the_growth_the_market_keeps_its_providers():
    # Without scarcity pricing capex outran cost-plus revenue and every provider exited by 2035.
    g = doubled_growth()
    assert len(exits("china_2025", 40, 5, **g)) <= 2
    assert len(exits("china_2025", 40, 5, **g, **{"pricing.scarcity_elasticity": 0.0})) == 6


def test_token_price_cuts_by_provider_and_quarter():
    """A cut applies to its provider (or every provider) from its quarter on; cuts multiply; an
    entrant's first quarter starts with the cuts dated before it in force."""
    cuts = [{"quarter": 1, "cut": 0.5}, {"quarter": 2, "cut": 0.8, "provider": "A"}, {"quarter": 3, "cut": 0.5}]
    config = make_config([provider("A", initial_share=0.5), provider("B", initial_share=0.5)],
                         pricing={"token_price_cuts": cuts})
    assert [pricing.token_price_factor(config, "A", t) for t in range(5)] == pytest.approx([1, 0.5, 0.1, 0.05, 0.05])
    assert [pricing.token_price_factor(config, "B", t) for t in range(5)] == pytest.approx([1, 0.5, 0.5, 0.25, 0.25])
    assert pricing.cuts_between(config, "A", 2, 2) == pytest.approx(0.2) and pricing.cuts_between(config, "B", 2, 2) == 1.0
    assert pricing.initial_token_factor(config, "A", 3) == pytest.approx(0.1)  # quarters 1 and 2, not 3
    assert pricing.initial_token_factor(config, "B", 2) == pytest.approx(0.5)


def test_at_the_floor_a_token_factor_stays_exactly():
    for floor in (0.4, 0.3, 0.7, 0.123):
        assert pricing.relax_token_factor(floor, floor, 0.5) == floor


def test_scarcity_factor_below_unit_elasticity_and_a_target_below_one():
    cfg = PricingConfig(scarcity_target=0.8, scarcity_elasticity=0.5, scarcity_cap=4.0)
    assert pricing.scarcity_factor(0.8, cfg) == 1.0
    assert pricing.scarcity_factor(1.6, cfg) == pytest.approx(np.sqrt(2.0))
    assert pricing.scarcity_factor(0.4, cfg) == 1.0
    low = PricingConfig(scarcity_elasticity=0.25, scarcity_cap=100.0)  # no capacity: the ratio stops at 1e6
    assert pricing.scarcity_factor(float("inf"), low) == pytest.approx(1e6 ** 0.25, rel=1e-12)


def test_expected_utilisation_is_last_demand_over_serving_capacity():
    market = Market(config=make_config(n_identical=1, customers=100))
    p = market.active_providers()[0]
    p.training_share = 0.5
    for compute, demand, expected in ((2.0, 0.5, 0.5), (2.0, 0.0, 0.0), (0.0, 0.0, 0.0), (0.0, 3.0, np.inf), (1.0, 3.0, 6.0)):
        p.compute, p.demand_gpu = compute, demand
        assert pricing.expected_utilisation(p.demand_gpu, p.serving_capacity) == expected


def test_average_price_with_a_provider_without_customers_in_the_last_slot():
    providers = [provider("A", initial_share=1.0), provider("Empty", initial_share=0.0)]
    market = Market(config=make_config(providers, customers=300, demand={"bass_p": 0.0, "bass_q": 0.0}))
    pricing.step(market)
    market.customers.compute *= np.float32(1e-7)  # weights below one GPU-quarter average like any other
    a, empty = market.active_providers()
    assert empty.price_new < empty.price_renewal and (market.customers.provider != 1).all()
    pricing.settle(market)
    assert empty.price == empty.price_new and a.price_new < a.price < a.price_renewal


def test_unit_cost_and_the_floor_of_a_new_customer_discount():
    fin = {"gpu_cost_own": 10000.0, "gpu_cost_import": 25000.0, "depreciation": 0.05, "opex_per_gpu": 300.0}
    config = make_config([provider("A", initial_share=1.0, own_chip_share=0.4, training_share=0.2, lock_in=20.0)],
                         finance=fin, pricing={"min_markup": 0.05, "new_customer_discount": 1.0})
    market = Market(config=config)
    market.gpu_cost_factor = 0.8
    (p,) = market.active_providers()
    unit = pricing.unit_cost(market, p)
    assert unit == pytest.approx(((0.4 * 10000.0 + 0.6 * 25000.0) * 0.8 * 0.05 + 300.0) / 0.8)
    new, renewal = pricing.two_prices(1.1 * unit, unit, p.lock_in, config)
    assert new == pytest.approx(1.05 * unit) and renewal > 1.1 * unit  # the discount stops at min_markup
    assert pricing.two_prices(0.9 * unit, unit, p.lock_in, config)[0] == pytest.approx(0.9 * unit)  # never above list


def test_a_promotion_relaxes_toward_the_floor_at_this_quarters_list_price():
    config = make_config(n_identical=1, customers=100, pricing={"token_relaxation": 1.0, "min_markup": 0.1})
    market = Market(config=config)
    (p,) = market.active_providers()
    p.token_factor = 0.001
    pricing.step(market)
    floor = pricing.unit_cost(market, p) * 1.1 / p.list_price
    assert 0.001 < floor < 1 and p.token_factor == pytest.approx(floor, rel=1e-12)


def test_lock_in_premium_uses_the_weighted_mean_price_weight():
    """premium = lock_in * (switching_base + switching_tenure) / mean w_price (segment weights,
    which need not sum to 1; mean at least 0.1)."""
    w = {"internet": (2.0, 0.5), "enterprise": (1.0, 1.0), "government": (1.0, 0.2), "startup": (0.0, 9.0), "overseas": (0.0, 9.0)}
    config = make_config(n_identical=2, choice={"switching_base": 1.0, "switching_tenure": 0.5},
                         demand={"segments": {s: {"weight": a, "w_price": b} for s, (a, b) in w.items()}})
    mean = (2.0 * 0.5 + 1.0 * 1.0 + 1.0 * 0.2) / 4.0
    assert pricing.lock_in_premium(config, 2.0) == pytest.approx(2.0 * 1.5 / mean)
    low = make_config(n_identical=2, choice={"switching_base": 1.0, "switching_tenure": 0.5},
                      demand={"segments": {s: {"w_price": 0.01} for s in SEGMENTS}})
    assert pricing.lock_in_premium(low, 2.0) == pytest.approx(2.0 * 1.5 / 0.1)
