"""Money: revenue, opex, capex, the compute it buys (own chips vs capped imports), depreciation."""

import numpy as np
import pytest

from sim.model import Market
from sim.simulate import simulate
from sim.submodels import finance
from tests.conftest import make_config, provider


def test_cash_identity_holds_every_quarter():
    result = simulate(make_config(n_identical=2, customers=2000, quarters=8))
    for name, rows in result.providers.groupby("provider"):
        cash = rows["cash"].to_numpy()
        flow = (rows["revenue"] + rows["internal_revenue"] - rows["opex"] - rows["capex"]).to_numpy()
        assert np.allclose(cash[1:], cash[:-1] + flow[1:]), name


def test_compute_depreciates_without_capex():
    config = make_config(n_identical=2, customers=500, quarters=5, finance={"capacity_response": 0.0, "depreciation": 0.1},
                         providers=None)
    config = config.model_copy(update={"providers": [p.model_copy(update={"capex_share": 0.0}) for p in config.providers]})
    market = Market(config=config)
    start = market.slots[0].compute
    market.run()
    assert market.slots[0].compute == pytest.approx(start * 0.9 ** 5)


def test_import_cap_binds_on_imports_only():
    providers = [provider("Importer", initial_share=0.5, own_chip_share=0.0, capex_share=1.0),
                 provider("OwnChips", initial_share=0.5, own_chip_share=1.0, capex_share=1.0)]

    def bought(cap):
        result = simulate(make_config(providers, customers=2000, quarters=4, finance={"import_cap": cap}))
        return result.providers.groupby("provider")["gpus_bought"].sum()

    free, capped = bought(None), bought(100.0)
    assert capped["Importer"] <= 4 * 100.0 + 1e-6 < free["Importer"]
    assert capped["OwnChips"] >= 0.95 * free["OwnChips"]  # not capped (it may even gain the importer's customers)


def test_import_scale_is_pro_rata():
    assert finance.import_scale(50.0, None) == 1.0
    assert finance.import_scale(50.0, 100.0) == 1.0
    assert finance.import_scale(400.0, 100.0) == 0.25


def test_capex_cannot_spend_money_that_is_not_there():
    providers = [provider("Broke", initial_share=0.5, cash=0.0, capex_share=5.0), provider("Rich", initial_share=0.5)]
    result = simulate(make_config(providers, customers=2000, quarters=6))
    broke = result.providers.query("provider == 'Broke'")
    cash_before = broke["cash"].shift(fill_value=0.0).to_numpy()
    funds = cash_before + (broke["revenue"] + broke["internal_revenue"] - broke["opex"]).to_numpy()
    capex = broke["capex"].to_numpy()
    assert (capex <= np.maximum(funds, 0.0) + 1e-6).all()
    assert (capex < 5.0 * broke["revenue"].to_numpy()).any(), "the cap on spending actually bound"


def test_committed_budget_is_spent_in_its_window():
    providers = [provider("Committed", initial_share=0.5, capex_share=0.0,
                          committed_capex={"total": 4000.0, "start": 2, "quarters": 2}),
                 provider("Plain", initial_share=0.5, capex_share=0.0)]
    config = make_config(providers, customers=1000, quarters=6, finance={"capacity_response": 0.0})
    capex = simulate(config).providers.query("provider == 'Committed'")["capex"].to_numpy()
    assert capex[2] == pytest.approx(2000.0) and capex[3] == pytest.approx(2000.0)
    assert capex[0] == capex[1] == capex[4] == capex[5] == 0.0


def test_domestic_chips_replace_refused_imports_at_their_cost():
    providers = [provider("Importer", initial_share=1.0, own_chip_share=0.0, capex_share=1.0)]

    def bought(domestic_cost):
        finance_cfg = {"import_cap": 100.0, "domestic_chip_cost": domestic_cost}
        return simulate(make_config(providers, customers=1000, quarters=3, finance=finance_cfg)).providers

    none, domestic = bought(None), bought(40000.0)
    assert (none["gpus_bought"] <= 100.0 + 1e-6).all()
    assert (domestic["gpus_bought"] > none["gpus_bought"] + 1).all()
    assert (domestic["capex"] > none["capex"]).all()


SEGMENTS = ("internet", "enterprise", "government", "startup", "overseas")
STILL_DEMAND = {"bass_p": 0.0, "bass_q": 0.0,
                "segments": {s: {"growth": 0.0, "token_growth": 0.0, "model_use_rate": 0.0} for s in SEGMENTS}}


@pytest.mark.parametrize("own_chip_share", [0.0, 0.5, 1.0])
def test_each_dollar_buys_own_chips_and_imports_at_their_own_prices(own_chip_share):
    """Finance computes its chip cost itself (not through the pricing formula): the capex budget
    (capex_share x revenue, no gap to close) buys own chips at gpu_cost_own and imports at gpu_cost_import."""
    providers = [provider("Buyer", initial_share=1.0, own_chip_share=own_chip_share, capex_share=0.5)]
    fin = {"capacity_response": 0.0, "gpu_cost_trend": 0.0, "gpu_cost_own": 10000.0, "gpu_cost_import": 25000.0}
    rows = simulate(make_config(providers, customers=1000, quarters=3, finance=fin)).providers
    capex, revenue, bought = (rows[c].to_numpy() for c in ("capex", "revenue", "gpus_bought"))
    assert capex == pytest.approx(0.5 * revenue, rel=1e-9), "the whole budget is spent, at the chips' own prices"
    per_dollar = own_chip_share / 10000.0 + (1 - own_chip_share) / 25000.0
    assert bought == pytest.approx(capex * finance.MILLION * per_dollar, rel=1e-9)
    assert (bought > 0).all()


def test_orders_already_in_the_pipeline_are_not_ordered_again():
    """Demand held still and a fleet far too small: the gap is ordered once; while it is on
    order (capex_lag quarters) the provider does not order it again."""
    providers = [provider("Short", initial_share=1.0, compute=5e4, capex_share=0.0, cash=1e7)]
    fin = {"capacity_response": 1.0, "capex_lag": 3, "depreciation": 0.0, "gpu_cost_trend": 0.0}
    config = make_config(providers, customers=2000, quarters=5, finance=fin, demand=STILL_DEMAND,
                         pricing={"token_efficiency_gain": 0.0})
    rows = simulate(config).providers
    bought, compute = rows["gpus_bought"].to_numpy(), rows["compute_stock"].to_numpy()
    assert bought[0] > 5e4, "a real gap was ordered"
    assert bought[1:].sum() < 1e-6 * bought[0], bought
    assert compute[2] == pytest.approx(5e4) and compute[3] == pytest.approx(5e4 + bought[0], rel=1e-9)


def test_capacity_gap_counts_installed_and_ordered_compute():
    providers = [provider("Fleet", initial_share=1.0, training_share=0.5, captive_compute=0.0)]
    config = make_config(providers, customers=100, finance={"headroom": 0.2, "capacity_response": 0.5, "capex_lag": 2,
                                                    "depreciation": 0.0})
    market = Market(config=config)
    fleet = market.slots[0]
    fleet.planned_gpu, fleet.compute = 100.0, 150.0
    market.provider_table.pipeline[0, 0] = [20.0, 10.0]  # on order (Provider.pipeline is a read-only view)
    assert fleet.pipeline.tolist() == [20.0, 10.0]
    assert finance.capacity_gap(market._batch)[0, 0] == pytest.approx(0.5 * (100 * 1.2 / 0.5 - 150 - 30))
    fleet.compute = 300.0
    assert finance.capacity_gap(market._batch)[0, 0] == 0.0, "never a negative order"


def test_capacity_plan_covers_own_apps_growth_until_the_order_arrives():
    """GPUs ordered now serve from capex_lag + 1 quarters on: the plan takes own apps' demand at
    its level then (captive_compute x (1 + captive_growth) ** (capex_lag + 1)), not at today's."""
    def gap(growth):
        providers = [provider("Group", initial_share=1.0, training_share=0.0, captive_compute=1000.0,
                              captive_growth=growth)]
        config = make_config(providers, customers=100, finance={"headroom": 0.0, "capacity_response": 1.0, "capex_lag": 2,
                                                        "depreciation": 0.0})
        market = Market(config=config)
        fleet = market.slots[0]
        fleet.planned_gpu, fleet.compute = 5000.0, 0.0  # planned_gpu holds today's own-app demand (1000)
        return finance.capacity_gap(market._batch)[0, 0]

    assert gap(0.0) == pytest.approx(5000.0)
    assert gap(0.1) == pytest.approx(5000.0 + 1000.0 * (1.1**3 - 1))


def test_installed_at_lead_counts_depreciation_until_new_orders_serve():
    assert finance.installed_at_lead(100.0, [], 0.1) == pytest.approx(90.0)  # capex_lag 0: serves next quarter
    # capex_lag 2: the stock depreciates three times (this quarter's too); the older order, arriving
    # at the end of this quarter, twice; the newer, arriving next quarter, once.
    assert finance.installed_at_lead(100.0, [10.0, 20.0], 0.1) == pytest.approx(100 * 0.729 + 10 * 0.81 + 20 * 0.9)


def test_capacity_planning_reaches_its_headroom_with_constant_demand():
    """With demand held still, capacity converges to demand x (1 + headroom): planning that counted
    GPUs which wear out before new orders serve would settle about one quarter's depreciation short."""
    segments = {s: {"growth": 0.0, "token_growth": 0.0} for s in ("internet", "enterprise", "government", "startup", "overseas")}
    providers = [provider("Solo", initial_share=1.0, compute=1e5, capex_share=0.0)]
    config = make_config(providers, customers=2000, quarters=30, finance={"capacity_response": 1.0, "depreciation": 0.1},
                         demand={"bass_p": 0.0, "bass_q": 0.0, "token_share": 0.0, "segments": segments})
    rows = simulate(config).providers
    assert rows["utilisation"].iloc[-5:].to_numpy() == pytest.approx(1 / 1.15, rel=0.01)


def test_capacity_planning_builds_for_own_apps_growth_until_new_gpus_serve():
    """Own apps grow 10 % a quarter (a known plan): capacity keeps the headroom over their demand.
    Planning on this quarter's captive demand would fall (1.1)^2 short and run above capacity."""
    segments = {s: {"growth": 0.0, "token_growth": 0.0} for s in ("internet", "enterprise", "government", "startup", "overseas")}
    providers = [provider("Apps", initial_share=1.0, compute=3e5, capex_share=0.0, captive_compute=2e5, captive_growth=0.1)]
    config = make_config(providers, customers=1000, quarters=30, finance={"capacity_response": 1.0},
                         demand={"bass_p": 0.0, "bass_q": 0.0, "token_share": 0.0, "market_compute": 1e4, "segments": segments})
    util = simulate(config).providers["utilisation"].to_numpy()
    assert util[-5:] == pytest.approx(1 / 1.15, rel=0.02)


FIN = {"capacity_response": 1.0, "gpu_cost_own": 10000.0, "gpu_cost_import": 25000.0, "opex_per_gpu": 300.0,
       "headroom": 0.0, "capex_lag": 1}


def one_quarter(providers, **sections):
    """A fresh market, each provider's quarter so far set by hand; then the finance step."""
    market = Market(config=make_config(providers, customers=200, investment={"policy": "fixed_share"}, **sections))
    market.gpu_cost_factor = 0.8  # chips 20 % cheaper than at the start
    for p in market.active_providers():
        p.price, p.billed_gpu, p.captive_served = 5000.0, 1.0e4, 0.0
        p.planned_gpu = 4.0e5  # far above the fleet: a capacity gap to buy
    return market


def test_one_finance_step_by_its_equations():
    """revenue = price x billed GPU-quarters; opex = opex_per_gpu x compute; capex = the capacity
    gap at the blended chip cost (gpu_cost_factor applied), spent on own chips and imports at
    their own prices; no own funds (cash below zero), no capex."""
    providers = [provider("Gap", initial_share=0.5, compute=2.0e5, cash=1.0e5, capex_share=0.0, own_chip_share=0.4),
                 provider("Broke", initial_share=0.5, compute=2.0e5, cash=-1.0e3, capex_share=0.0, own_chip_share=0.4)]
    market = one_quarter(providers, finance=FIN)
    gap_gpus = {p.name: finance.capacity_gap(market._batch)[0, p.slot] for p in market.active_providers()}
    finance.step(market._batch)
    gap, broke = market.active_providers()
    own, imported = 10000.0 * 0.8 / 1e6, 25000.0 * 0.8 / 1e6  # US$ million per GPU
    assert gap.revenue == pytest.approx(5000.0 * 1.0e4 / 1e6) and gap.opex == pytest.approx(300.0 * 2.0e5 / 1e6)
    assert gap_gpus["Gap"] > 1e5
    assert gap.capex == pytest.approx(gap_gpus["Gap"] * (0.4 * own + 0.6 * imported), rel=1e-12)
    assert gap.gpus_bought == pytest.approx(gap.capex * 0.4 / own + gap.capex * 0.6 / imported, rel=1e-12)
    assert gap.cash == pytest.approx(1.0e5 + gap.revenue - gap.opex - gap.capex, rel=1e-12)
    assert broke.capex == 0.0 and broke.gpus_bought == 0.0 and broke.capacity_unfunded


def test_the_parent_pays_only_the_capex_beyond_own_funds_and_shares_its_pot_by_need():
    providers = [provider("Needy", initial_share=0.5, compute=2.0e5, cash=20.0, capex_share=0.0, own_chip_share=0.0, parent="G"),
                 provider("Rich", initial_share=0.5, compute=2.0e5, cash=1.0e6, capex_share=0.0, own_chip_share=0.0, parent="G")]
    market = one_quarter(providers, finance=FIN, parents=[{"name": "G", "budget_per_quarter": 10.0}])
    market.parent_accounts["G"].pot = 10.0
    finance.step(market._batch)
    needy, rich = market.active_providers()
    own_funds = 20.0 + needy.revenue - needy.opex
    assert own_funds == pytest.approx(10.0)
    assert rich.parent_funding == 0.0, "its own funds cover its capex"
    assert needy.parent_funding == pytest.approx(10.0), "the whole pot: the only one short of money"
    assert needy.capex == pytest.approx(own_funds + 10.0)
    assert market.parent_accounts["G"].pot == pytest.approx(0.0, abs=1e-12)


def test_refused_imports_buy_domestic_chips_with_the_same_money():
    providers = [provider("Importer", initial_share=1.0, compute=2.0e5, cash=1.0e6, capex_share=0.0, own_chip_share=0.0)]
    market = one_quarter(providers, finance=FIN | {"import_cap": 1000.0, "domestic_chip_cost": 40000.0})
    gap_gpus = finance.capacity_gap(market._batch)[0, 0]
    finance.step(market._batch)
    (p,) = market.active_providers()
    assert gap_gpus > 1e4
    assert p.gpus_bought == pytest.approx(1000.0 + (gap_gpus - 1000.0) * 25000.0 / 40000.0, rel=1e-12)
    assert p.capex == pytest.approx(gap_gpus * 25000.0 * 0.8 / 1e6, rel=1e-12), "all the budget is spent"


def test_the_parent_pays_nothing_when_capped_imports_leave_the_budget_unspent():
    """Capex beyond own funds is what the parent pays: an import cap that leaves most of the
    budget unspent (no domestic chips) keeps capex within own funds, so the pot is not drawn."""
    providers = [provider("Capped", initial_share=1.0, compute=2.0e5, cash=20.0, capex_share=0.0, own_chip_share=0.0, parent="G")]
    market = one_quarter(providers, finance=FIN | {"import_cap": 100.0}, parents=[{"name": "G", "budget_per_quarter": 10.0}])
    market.parent_accounts["G"].pot = 10.0
    finance.step(market._batch)
    (p,) = market.active_providers()
    assert p.gpus_bought == pytest.approx(100.0) and p.capex == pytest.approx(100 * 25000.0 * 0.8 / 1e6)
    assert p.parent_funding == 0.0 and market.parent_accounts["G"].pot == 10.0


def test_capacity_plan_follows_a_captive_growth_that_changes():
    """The plan's (1 + captive_growth) ** (capex_lag + 1) is kept from quarter to quarter (the
    rates are set when a provider starts); a rate that changes afterwards (a user's edit, an
    entrant's row) is planned at its new value, never at the kept one."""
    providers = [provider("Group", initial_share=1.0, training_share=0.0, captive_compute=1000.0, captive_growth=0.0)]
    config = make_config(providers, customers=100, finance={"headroom": 0.0, "capacity_response": 1.0, "capex_lag": 2,
                                                    "depreciation": 0.0})
    market = Market(config=config)
    fleet = market.slots[0]
    fleet.planned_gpu, fleet.compute = 5000.0, 0.0
    assert finance.capacity_gap(market._batch)[0, 0] == pytest.approx(5000.0)
    fleet.captive_growth = 0.1
    assert finance.capacity_gap(market._batch)[0, 0] == pytest.approx(5000.0 + 1000.0 * (1.1**3 - 1))


def test_the_guard_sees_compute_on_order_that_is_not_finite():
    """GPUs on order live in the batch's pipeline array (Provider.pipeline is a view of it): the
    guard's whole-batch look covers it, and names the provider's compute on order."""
    from sim import guard
    from sim.errors import NonFiniteState

    market = Market(config=make_config(n_identical=2, customers=200, finance={"capex_lag": 2}))
    guard.check(market)  # all finite
    market.provider_table.pipeline[0, 1, -1] = np.nan
    assert np.isnan(market.slots[1].pipeline[-1])
    with pytest.raises(NonFiniteState, match="P1's compute on order"):
        guard.check(market)
