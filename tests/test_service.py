"""Service: finite capacity, reliability, surges, and price-elastic token volume."""

import numpy as np
import pytest

from sim.model import Market
from sim.simulate import simulate
from sim.submodels import finance, multihoming, service
from tests.conftest import make_config, provider

NO_BUILD = {"capacity_response": 0.0}


def test_capacity_shortfall_lowers_reliability_and_share():
    providers = [provider("Ample", initial_share=0.5, compute=1e6, capex_share=0.0),
                 provider("Short", initial_share=0.5, compute=4e4, capex_share=0.0)]
    result = simulate(make_config(providers, customers=4000, quarters=12, finance=NO_BUILD))
    last = result.providers.query("step == 11").set_index("provider")
    assert last.loc["Short", "reliability"] < 0.6 < last.loc["Ample", "reliability"]
    first = result.providers.query("step == 0").set_index("provider")
    assert last.loc["Short", "share_customers"] < first.loc["Short", "share_customers"] - 0.05


def test_surge_hits_only_the_named_provider_in_its_quarter():
    providers = [provider("Gala", initial_share=0.5, compute=4e5), provider("Other", initial_share=0.5, compute=4e5)]
    config = make_config(providers, customers=3000, quarters=6, finance=NO_BUILD,
                         service={"reliability_memory": 0.0, "surges": [{"quarter": 3, "multiplier": 5.0, "provider": "Gala"}]})
    rows = simulate(config).providers.set_index(["provider", "step"])
    gala = rows.loc[("Gala", 3), "utilisation"] / rows.loc[("Gala", 2), "utilisation"]
    other = rows.loc[("Other", 3), "utilisation"] / rows.loc[("Other", 2), "utilisation"]
    assert gala > 3.0 and gala > 2.5 * other  # x5 surge; the other's demand moves only with growth and churn
    assert rows.loc[("Gala", 3), "reliability"] < rows.loc[("Gala", 2), "reliability"]


def test_lower_token_price_raises_token_volume():
    config = make_config(n_identical=2, customers=3000, demand={"token_elasticity": 1.0, "market_compute": 3e5})
    market = Market(config=config)
    people = market.customers
    people.uses_model[:] = people.provider >= 0
    people.model_provider[:] = people.provider  # each buys its cloud's model
    a, b = market.slots
    a.price = b.price = 4000.0
    service.step(market._batch)
    equal = (a.tokens_demanded / max(a.customers, 1), b.tokens_demanded / max(b.customers, 1))
    a.price = 400.0  # a tenth of the price
    service.step(market._batch)
    assert a.tokens_demanded / a.customers > 8 * equal[0]
    assert np.isclose(b.tokens_demanded / b.customers, equal[1])


def test_captive_demand_uses_capacity():
    providers = [provider("Captive", initial_share=0.5, captive_compute=2e5), provider("Free", initial_share=0.5)]
    market = Market(config=make_config(providers, customers=2000))
    service.step(market._batch)
    captive, free = market.slots
    assert captive.demand_gpu > captive.customer_compute + captive.tokens * market.token_compute
    assert captive.utilisation > free.utilisation


def test_providers_do_not_build_for_a_one_quarter_surge():
    # capex_share 0: every GPU bought closes a capacity gap (more surge revenue would otherwise buy more).
    providers = [provider("Gala", initial_share=0.5, compute=1.2e5, capex_share=0.0),
                 provider("Other", initial_share=0.5, compute=1.2e5, capex_share=0.0)]

    def bought(surges):
        rows = simulate(make_config(providers, customers=3000, quarters=6, service={"surges": surges})).providers
        return rows.set_index(["provider", "step"])["gpus_bought"]

    calm, surged = bought([]), bought([{"quarter": 3, "multiplier": 5.0, "provider": "Gala"}])
    assert calm[("Gala", 3)] > 0, "demand growth alone makes it build"
    assert surged[("Gala", 3)] == pytest.approx(calm[("Gala", 3)], rel=1e-9)


def test_only_served_demand_is_billed():
    """An overloaded provider serves (and bills) capacity / demand of each customer's compute and
    tokens; the rest is lost, not paid for.  Revenue = price x billed GPU-quarters."""
    providers = [provider("Short", initial_share=0.5, compute=3e4, capex_share=0.0),
                 provider("Ample", initial_share=0.5, compute=1e6, capex_share=0.0)]
    config = make_config(providers, customers=2000, finance=NO_BUILD, pricing={"token_efficiency_gain": 0.0})
    market = Market(config=config)
    people = market.customers
    people.uses_model[people.provider >= 0] = True
    people.model_provider[:] = people.provider  # each buys its cloud's model tokens
    service.step(market._batch)
    short, ample = market.slots
    intensity = market.token_compute
    for p in (short, ample):
        demand = p.customer_compute + p.tokens_demanded * intensity
        assert p.demand_gpu == pytest.approx(demand) and p.tokens > 0
        served = min(1.0, p.serving_capacity / demand)
        assert p.billed_gpu == pytest.approx(demand * served, rel=1e-9)
        assert p.served_gpu == pytest.approx(demand * served, rel=1e-9)
    assert short.utilisation > 2 and short.billed_gpu == pytest.approx(short.serving_capacity, rel=1e-9)
    assert ample.utilisation < 1 and ample.billed_gpu == pytest.approx(ample.demand_gpu)
    capacity = short.serving_capacity
    finance.step(market._batch)
    assert short.revenue == pytest.approx(short.price * capacity / finance.MILLION, rel=1e-9)


def test_rationing_rules_split_a_shortfall():
    # 100 GPU-equivalents of capacity for 120 of customers' demand and 40 of own apps'.
    assert service.ration(100.0, 120.0, 40.0, "proportional") == pytest.approx((0.625, 0.625))
    assert service.ration(100.0, 120.0, 40.0, "own_apps_first") == pytest.approx((0.5, 1.0))
    assert service.ration(100.0, 120.0, 40.0, "customers_first") == pytest.approx((100 / 120, 0.0))
    assert service.ration(30.0, 120.0, 40.0, "own_apps_first") == pytest.approx((0.0, 0.75))
    assert service.ration(200.0, 120.0, 40.0, "own_apps_first") == (1.0, 1.0)
    assert service.ration(100.0, 120.0, 0.0, "own_apps_first") == pytest.approx((100 / 120, 1.0))
    for rule in ("proportional", "own_apps_first", "customers_first"):
        customers, apps = service.ration(100.0, 120.0, 40.0, rule)
        assert customers * 120.0 + apps * 40.0 == pytest.approx(100.0), "no capacity idle while demand waits"


def test_own_apps_first_puts_the_shortfall_on_customers_reliability():
    providers = [provider("Group", initial_share=0.5, compute=1.5e5, captive_compute=6e4, capex_share=0.0),
                 provider("Other", initial_share=0.5, compute=4e5)]

    def group_rows(rule):
        config = make_config(providers, customers=3000, quarters=4, finance=NO_BUILD, service={"rationing": rule})
        return simulate(config).providers.query("provider == 'Group'").set_index("step")

    apps_first, customers_first, proportional = (group_rows(r) for r in ("own_apps_first", "customers_first", "proportional"))
    assert apps_first.loc[0, "utilisation"] > 1.2
    assert apps_first.loc[0, "reliability"] < proportional.loc[0, "reliability"] < customers_first.loc[0, "reliability"]
    # Own apps pay for what they are served: more internal revenue when they come first.
    assert apps_first.loc[0, "internal_revenue"] > proportional.loc[0, "internal_revenue"] > customers_first.loc[0, "internal_revenue"]


def test_served_tokens_never_exceed_demanded_and_a_shortfall_does_not_raise_token_share():
    """Shares count served tokens: a provider swamped by a surge serves fewer tokens than it is
    asked for, and its token share does not jump with the demand it could not serve."""
    providers = [provider("Gala", initial_share=0.5, compute=3e5, capex_share=0.0),
                 provider("Other", initial_share=0.5, compute=3e5, capex_share=0.0)]
    segments = {s: {"model_use_rate": 0.6} for s in ("internet", "enterprise", "government", "startup", "overseas")}

    def rows(surge):
        config = make_config(providers, customers=3000, quarters=6, finance=NO_BUILD, open_weights={"enabled": False},
                             demand={"segments": segments, "token_share": 1.0},
                             service={"surges": [{"quarter": 4, "multiplier": 8.0, "provider": "Gala"}] if surge else []})
        return simulate(config).providers.set_index(["provider", "step"])

    calm, surged = rows(False), rows(True)
    assert (surged["tokens"] <= surged["tokens_demanded"] * (1 + 1e-12)).all()
    gala, other = ("Gala", 4), ("Other", 4)
    assert surged.loc[gala, "tokens_demanded"] > 5 * calm.loc[gala, "tokens_demanded"]
    assert surged.loc[gala, "unserved_tokens"] > 0 and surged.loc[gala, "utilisation"] > 2
    # Served tokens are capacity-bound: far below the demanded eightfold.
    assert surged.loc[gala, "tokens"] < 0.5 * surged.loc[gala, "tokens_demanded"]
    # The share of served tokens moves little; a share of demanded tokens would jump (the old count).
    def demanded_share(t):
        return t.loc[gala, "tokens_demanded"] / (t.loc[gala, "tokens_demanded"] + t.loc[other, "tokens_demanded"])
    assert demanded_share(surged) > demanded_share(calm) + 0.3
    assert surged.loc[gala, "share_maas_tokens"] < calm.loc[gala, "share_maas_tokens"] + 0.12


def test_a_capacity_shortfall_lowers_served_tokens_and_does_not_raise_share():
    def last(compute):
        providers = [provider("A", initial_share=0.5, compute=compute, capex_share=0.0),
                     provider("B", initial_share=0.5, compute=4e5, capex_share=0.0)]
        config = make_config(providers, customers=3000, quarters=4, finance=NO_BUILD, open_weights={"enabled": False},
                             demand={"token_share": 1.0}, service={"overload_penalty": 0.0},
                             pricing={"scarcity_elasticity": 0.0})  # its price, and so token demand, held (issue 12)
        return simulate(config).providers.query("step == 3").set_index("provider")

    ample, short = last(4e5), last(1e5)
    assert short.loc["A", "utilisation"] > 1.5 > ample.loc["A", "utilisation"]
    assert short.loc["A", "tokens"] < 0.8 * ample.loc["A", "tokens"]
    assert short.loc["A", "share_maas_tokens"] < ample.loc["A", "share_maas_tokens"]
    assert short.loc["A", "tokens_demanded"] == pytest.approx(ample.loc["A", "tokens_demanded"], rel=0.2)


def test_rationed_own_apps_yield_less_data_for_the_model():
    """Own apps' tokens feed the flywheel only as far as their compute is served: under a shortfall,
    serving them first trains the model faster than serving customers first."""
    providers = [provider("Group", initial_share=0.5, compute=1.5e5, captive_compute=8e4, captive_tokens=4e5,
                          capex_share=0.0, capability=0.5),
                 provider("Other", initial_share=0.5, compute=4e5, capability=0.5)]

    def capability(rule):
        config = make_config(providers, customers=2000, quarters=6, finance=NO_BUILD, service={"rationing": rule},
                             demand={"token_share": 0.0}, open_weights={"enabled": False})
        rows = simulate(config).providers.query("provider == 'Group'")
        assert rows["utilisation"].min() > 1.2
        return rows["capability"].iloc[-1]

    assert capability("own_apps_first") > capability("proportional") > capability("customers_first")


def test_rationing_never_gives_a_negative_share():
    # capacity / customers * customers rounds above capacity here: 216600.18... - 2.9e-11 left over.
    capacity, first_claim = 216600.18053121626, 399461.233484087
    assert service.ration(capacity, first_claim, 5.0, "customers_first")[1] == 0.0
    assert service.ration(capacity, 5.0, first_claim, "own_apps_first")[0] == 0.0


def test_surge_multipliers_per_customer_and_per_slot():
    """Surges of this quarter multiply: the named provider's customers (by the slot their demand
    sits on) in the named segments, or everyone; other quarters' surges do not count."""
    providers = [provider("Gala", initial_share=0.5), provider("Other", initial_share=0.5)]
    surges = [{"quarter": 5, "multiplier": 7.0},  # another quarter: ignored (and listed first)
              {"quarter": 0, "multiplier": 2.0},  # everyone, every slot
              {"quarter": 0, "multiplier": 3.0, "provider": "Gala", "segments": ["internet", "startup"]}]
    market = Market(config=make_config(providers, customers=2000, service={"surges": surges}))
    people = market.customers
    per_customer, per_slot = service.surge_multipliers(market._batch)
    assert per_slot.tolist() == [[6.0, 2.0]]  # (runs, slots): a batch of one
    watching = np.isin(people.segment, [people.segment_names.index(s) for s in ("internet", "startup")])
    gala = people.provider == market.slot_of("Gala")
    assert (watching & gala).any() and (~watching & gala).any() and (watching & ~gala).any()
    expected = np.where(watching & gala, 6.0, 2.0)
    np.testing.assert_array_equal(per_customer, expected)
    assert per_customer.dtype == np.float32  # one float32 per customer, like the population's arrays
    # The part of demand held elsewhere (e.g. the second cloud) surges with the slot that holds it.
    holder = np.where(gala, market.slot_of("Other"), market.slot_of("Gala")).astype(np.int16)
    np.testing.assert_array_equal(service.surge_multipliers(market._batch, holder)[0], np.where(watching & ~gala, 6.0, 2.0))
    calm = Market(config=make_config(providers, customers=200, service={"surges": surges[:1]}))
    assert service.surge_multipliers(calm._batch)[0] is None and service.surge_multipliers(calm._batch)[1].tolist() == [[1.0, 1.0]]


def test_rationing_with_one_side_without_demand_or_below_one_gpu():
    """A side with no demand counts as fully served (a share of 1, not 0/0); shares are ratios, so
    demands below one GPU-equivalent ration like any other."""
    assert service.ration(30.0, 0.0, 40.0, "own_apps_first") == pytest.approx((1.0, 0.75))
    assert service.ration(30.0, 40.0, 0.0, "customers_first") == pytest.approx((0.75, 1.0))
    assert service.ration(0.3, 0.5, 0.2, "own_apps_first") == pytest.approx((0.2, 1.0))
    assert service.ration(0.3, 0.2, 0.5, "customers_first") == pytest.approx((1.0, 0.2))
    assert service.ration(0.0, 0.5, 0.2, "proportional") == (0.0, 0.0)


@pytest.mark.parametrize("surge", [False, True])
def test_demand_by_slot_puts_each_part_of_a_workload_on_the_cloud_that_holds_it(surge):
    """Compute sits where the workload is (primary: 1 - split, second cloud: split), token need
    with the model provider; a provider's surge multiplies the parts it holds, whichever role."""
    providers = [provider("Gala", initial_share=0.4), provider("Other", initial_share=0.3), provider("Third", initial_share=0.3)]
    surges = [{"quarter": 0, "multiplier": 4.0, "provider": "Gala"}] if surge else []
    market = Market(config=make_config(providers, customers=3000, service={"surges": surges}))
    people = market.customers
    has = np.flatnonzero(people.provider >= 0)
    second = has[::3][people.provider[has[::3]] < 2]  # part of the workload on the other of slots 0 and 1
    people.second_provider[second] = 1 - people.provider[second]  # (none on the last slot: bins end early)
    people.split[second] = np.float32(0.25)
    people.model_provider[has[::2]] = (people.provider[has[::2]] + 2) % 3
    people.uses_model[has[::2]] = True
    assert people.token_need[has[::2]].min() > 0
    m = np.array([4.0 if surge else 1.0, 1.0, 1.0])
    got = {k: v[0] for k, v in service.demand_by_slot(market._batch).items()}  # run 0 of a batch of one
    assert all(v.shape == (3,) for v in got.values())
    primary, on_second = multihoming.workload_parts(people)
    holds = people.provider >= 0
    sec = people.second_provider >= 0
    for j in range(3):
        mine, theirs = holds & (people.provider == j), sec & (people.second_provider == j)
        compute = (primary[mine].sum() + on_second[theirs].sum()) * m[j]
        ai = (primary[mine & people.uses_model].sum() + on_second[theirs & people.uses_model].sum()) * m[j]
        buyers = people.model_provider == j
        assert got["compute"][j] == pytest.approx(compute, rel=1e-9)
        assert got["ai_compute"][j] == pytest.approx(ai, rel=1e-9)
        assert got["token_need"][j] == pytest.approx(people.token_need[buyers].astype(float).sum() * m[j], rel=1e-5)
        assert got["customers"][j] == np.count_nonzero(mine)
        assert got["model_users"][j] == np.count_nonzero(buyers)
    assert on_second.sum() > 0 and on_second.sum() == pytest.approx(0.25 * people.compute[second].astype(float).sum(), rel=1e-6)
    usual = service.demand_by_slot(market._batch, surges=False)
    assert usual["compute"][0].sum() == pytest.approx(people.compute[holds].astype(float).sum(), rel=1e-9)  # workload conserved


def test_service_step_bills_tokens_at_each_providers_cut_and_plans_for_demand_without_surges():
    """One service step: tokens are billed at the provider's own token price factor, a provider's
    surge multiplies its customers' and its own apps' demand but not the demand it plans
    capacity for, and a provider without serving capacity is infinitely loaded."""
    providers = [provider("Cut", initial_share=0.4, captive_compute=2e4, captive_growth=0.0),
                 provider("Full", initial_share=0.4), provider("Empty", initial_share=0.2, compute=0.0),
                 provider("Idle", compute=0.0), provider("Tiny", compute=1.0, training_share=0.5)]
    config = make_config(providers, customers=3000, pricing={"token_compute": 0.5},
                         service={"surges": [{"quarter": 0, "multiplier": 3.0, "provider": "Cut"}]})
    market = Market(config=config)
    people = market.customers
    buyers = np.flatnonzero(people.provider >= 0)[::2]
    people.uses_model[buyers] = True
    people.model_provider[buyers] = people.provider[buyers]
    cut, full, empty = (market.slots[market.slot_of(n)] for n in ("Cut", "Full", "Empty"))
    cut.token_factor = 0.25  # the token price factor pricing sets (here: the cut at once)
    service.step(market._batch)
    k = market.token_compute
    for p, factor, surge in ((cut, 0.25, 3.0), (full, 1.0, 1.0)):
        assert p.tokens > 0 and p.billed_token_gpu == pytest.approx(p.tokens * k * factor, rel=1e-12)
        assert p.unserved_tokens == pytest.approx(p.tokens_demanded - p.tokens, abs=1e-9)
        assert p.served_share == pytest.approx((p.served_gpu + p.captive_served) / p.demand_gpu, rel=1e-12)
        assert p.customer_served_share == pytest.approx(p.served_gpu / (p.customer_compute + p.tokens_demanded * k), rel=1e-12)
        customer_gpu = p.customer_compute + p.tokens_demanded * k
        assert p.demand_gpu == pytest.approx(customer_gpu + p.captive_compute * surge, rel=1e-12)
        assert p.planned_gpu == pytest.approx(customer_gpu / surge + p.captive_compute, rel=1e-6)  # float32 need x surge
    assert cut.captive_served == pytest.approx(3.0 * 2e4 * cut.apps_served_share)
    assert empty.customer_compute > 0 and empty.utilisation == np.inf and empty.served_gpu == 0.0
    idle, tiny = market.slots[market.slot_of("Idle")], market.slots[market.slot_of("Tiny")]
    assert idle.demand_gpu == 0 and idle.utilisation == np.inf  # no capacity: not 0 / 0
    assert idle.served_share == 1.0 and tiny.served_share == 1.0  # nothing asked, nothing short
    assert cut.served_share < 1.0 and cut.unserved_tokens > 0  # the surge leaves it short
    assert tiny.serving_capacity == 0.5 and tiny.utilisation == 0.0


def test_rationing_edges_no_capacity_tiny_sums_and_an_unknown_rule():
    assert service.ration(0.0, 10.0, 0.0, "own_apps_first") == (0.0, 0.0)  # no capacity: nothing served
    assert service.ration(0.5, 1.0, 0.0, "proportional") == pytest.approx((0.5, 0.5))
    assert service.ration(0.3, 1.0, 0.5, "own_apps_first") == pytest.approx((0.0, 0.6))
    assert service.ration(0.3, 0.5, 0.2, "customers_first") == pytest.approx((0.6, 0.0))
    assert service.ration(30.0, 0.0, 40.0, "customers_first") == pytest.approx((1.0, 0.75))
    assert service.ration(100.0, 50.0, 80.0, "customers_first") == pytest.approx((1.0, 0.625))
    with pytest.raises(ValueError, match="unknown rationing rule 'lottery'"):
        service.ration(1.0, 2.0, 2.0, "lottery")


def test_proportional_shares_are_the_same_beside_providers_with_other_rules():
    """ration_shares takes a shortcut when every rule is proportional; a proportional provider
    gets the same bits whether or not another slot has another rule (the full computation)."""
    rng = np.random.default_rng(3)
    capacity, customers, own_apps = rng.uniform(0.0, 10.0, (3, 60))
    capacity[:6], customers[6:12], own_apps[12:18] = 0.0, 0.0, 0.0  # no capacity, no demand on a side
    alone = np.zeros(60, dtype=np.int8)
    mixed = np.tile(np.array([0, 1, 2], dtype=np.int8), 20)
    short, apps = service.ration_shares(capacity, customers, own_apps, alone)
    short_mixed, apps_mixed = service.ration_shares(capacity, customers, own_apps, mixed)
    proportional = mixed == 0
    assert np.array_equal(short[proportional], short_mixed[proportional])
    assert np.array_equal(apps[proportional], apps_mixed[proportional])
    assert (short < 1).any() and (short == 1).any()  # both short and sufficient providers
