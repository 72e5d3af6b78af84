"""Model choice: the model layer (MaaS) as a market apart from the cloud layer."""

import numpy as np
import pytest

from sim.customers import NO_PROVIDER, W_CAPABILITY, W_FIT, W_PRICE, W_RELIABILITY
from sim.model import Market
from sim.simulate import simulate
from sim.submodels import model_choice
from tests.conftest import make_config, provider

SEGMENTS = ALL_SEGMENTS = ("internet", "enterprise", "government", "startup", "overseas")

NO_OPEN = {"enabled": False}
FAST_USE = {"segments": {s: {"model_use_rate": 0.6} for s in ALL_SEGMENTS}}
FIXED_PRICES = {"min_markup": 0.8, "max_markup": 0.8, "base_markup": 0.8,  # prices stay where they start
                "renewal_harvest": 0.0, "new_customer_discount": 0.0,  # one price (issue 9): no mix of new and renewal prices
                "scarcity_elasticity": 0.0, "token_relaxation": 0.0}  # no scarcity premium; a cut lasts (issue 12)
AMPLE = dict(compute=2e6, capex_share=0.0)  # no rationing: choice alone decides


def run(config, quarters=None):
    market = Market(config=config)
    for _ in range(quarters or config.run.quarters):
        market.step()
    return market


def test_porters_customers_buy_tokens_from_model_owners():
    providers = [provider("Owner", initial_share=0.5, capability=0.9, **AMPLE),
                 provider("Porter", has_model=False, initial_share=0.5, capability=0.3, **AMPLE)]

    def owner_share_among_porter_customers(enabled):
        market = run(make_config(providers, customers=4000, quarters=8, open_weights=NO_OPEN, demand=FAST_USE,
                                 models={"choose_apart": enabled, "same_cloud_bonus": 0.0}))
        people = market.customers
        users = (people.provider == 1) & people.uses_model
        assert users.sum() > 300
        return float((people.model_provider[users] == 0).mean())

    assert owner_share_among_porter_customers(True) > 0.8
    assert owner_share_among_porter_customers(False) == 0.0  # tied to the cloud: the porter's own offer


def token_user_shares(bonus, enabled=True):
    """Share of model users per model provider: a big cloud with a weak model, a small cloud
    with a strong one, the same prices."""
    providers = [provider("BigCloud", initial_share=0.75, capability=0.5, **AMPLE),
                 provider("SmallCloud", initial_share=0.25, capability=1.0, **AMPLE)]
    market = run(make_config(providers, customers=6000, quarters=8, open_weights=NO_OPEN,
                             demand={**FAST_USE, "bass_p": 0.0, "bass_q": 0.0}, choice={"switching_base": 50.0}, capability={"learning_rate": 0.0},
                             pricing={"harvest_slope": 0.0},
                             models={"choose_apart": enabled, "same_cloud_bonus": bonus, "price_weight": 0.0}))
    people = market.customers
    users = people.model_provider[people.model_provider != NO_PROVIDER]
    cloud = people.provider[people.provider != NO_PROVIDER]
    return np.bincount(users, minlength=2) / users.size, np.bincount(cloud, minlength=2) / cloud.size


def test_without_same_cloud_bonus_token_shares_follow_capability_not_cloud_shares():
    tokens, clouds = token_user_shares(0.0)
    assert clouds[1] < 0.35
    assert tokens[1] > 0.6, (tokens, clouds)  # the better model wins the model layer


def test_with_a_large_same_cloud_bonus_token_shares_follow_cloud_shares():
    tokens, clouds = token_user_shares(30.0)
    assert np.allclose(tokens, clouds, atol=0.03), (tokens, clouds)


def test_tied_model_layer_follows_cloud_shares_whatever_the_capability():
    # The mechanism switched off: the first test's outcome disappears.
    tokens, clouds = token_user_shares(0.0, enabled=False)
    assert np.allclose(tokens, clouds, atol=0.03), (tokens, clouds)


def cut_run(cut, elasticity=1.0, enabled=True):
    providers = [provider("Cutter", initial_share=0.5, **AMPLE), provider("Other", initial_share=0.5, **AMPLE)]
    cuts = [{"quarter": 2, "cut": cut, "provider": "Cutter"}] if cut else []
    config = make_config(providers, customers=5000, quarters=8, open_weights=NO_OPEN, demand={**FAST_USE, "token_elasticity": elasticity},
                         capability={"learning_rate": 0.0},
                         pricing={"token_price_cuts": cuts, **FIXED_PRICES}, finance={"gpu_cost_trend": 0.0},
                         models={"choose_apart": enabled})
    market = Market(config=config)
    rows = []
    for _ in range(8):
        market.step()
        people = market.customers
        need = np.bincount(people.model_provider[people.model_provider >= 0], weights=people.token_need[people.model_provider >= 0], minlength=2)
        rows.append({p.name: dict(demanded=p.tokens_demanded, served=p.tokens, need=need[p.slot], users=p.model_users)
                     for p in market.active_providers()})
    return rows


@pytest.mark.parametrize("elasticity", [0.5, 1.0])
def test_token_price_cut_raises_volume_per_unit_of_need_with_the_configured_elasticity(elasticity):
    plain, cut = cut_run(0.0, elasticity), cut_run(0.9, elasticity)
    for q in (2, 5):
        per_need = {run: rows[q]["Cutter"]["demanded"] / rows[q]["Cutter"]["need"] for run, rows in (("plain", plain), ("cut", cut))}
        assert per_need["cut"] / per_need["plain"] == pytest.approx(0.1 ** -elasticity, rel=1e-6)


def test_token_price_cut_raises_the_cutters_token_share_and_total_tokens():
    plain, cut = cut_run(0.0), cut_run(0.9)
    last = 7
    share = {name: rows[last]["Cutter"]["served"] / sum(r["served"] for r in rows[last].values())
             for name, rows in (("plain", plain), ("cut", cut))}
    users = {name: rows[last]["Cutter"]["users"] / sum(r["users"] for r in rows[last].values())
             for name, rows in (("plain", plain), ("cut", cut))}
    assert share["cut"] > share["plain"] + 0.2
    assert users["cut"] > users["plain"] + 0.1, users  # buyers move, not only volume
    total = {name: sum(r["served"] for r in rows[last].values()) for name, rows in (("plain", plain), ("cut", cut))}
    assert total["cut"] > 3 * total["plain"]


def test_token_price_cut_does_not_move_buyers_when_models_are_tied_to_the_cloud():
    # Mechanism off: users follow their cloud, so the buyers' share does not move with the cut.
    plain, cut = cut_run(0.0, enabled=False), cut_run(0.9, enabled=False)
    users = [rows[7]["Cutter"]["users"] / sum(r["users"] for r in rows[7].values()) for rows in (plain, cut)]
    assert abs(users[1] - users[0]) < 0.05, users


def test_model_switching_cost_grows_with_use():
    def model_churn(switching_use):
        market = Market(config=make_config(n_identical=3, customers=5000, quarters=14, open_weights=NO_OPEN, demand=FAST_USE,
                                           models={"model_switching_use": switching_use, "model_renewal_hazard": 0.5, "same_cloud_bonus": 0.0}))
        moves = 0
        for q in range(14):
            before = market.customers.model_provider.copy()
            market.step()
            if q >= 8:
                after = market.customers.model_provider
                moves += int(((before != after) & (before >= 0) & (after >= 0)).sum())
        return moves

    assert model_churn(4.0) < 0.6 * model_churn(0.0)


def test_exited_model_provider_users_choose_another_model():
    providers = [provider("Doomed", initial_share=0.5, cash=-1e4, capability=1.0, **AMPLE),
                 provider("Stays", initial_share=0.5, **AMPLE)]
    config = make_config(providers, customers=2000, quarters=8, open_weights=NO_OPEN, demand=FAST_USE,
                         entry={"exit_after": 3}, models={"same_cloud_bonus": 0.0})
    market = Market(config=config)
    for _ in range(8):
        market.step()
        people = market.customers
        active = {p.slot for p in market.active_providers()}
        held = set(np.unique(people.model_provider[people.model_provider >= 0]).tolist())
        assert held <= active
    assert market.status[0] == "exited"
    assert (market.customers.model_provider == 1).sum() > 100


def test_model_users_are_recorded_by_model_provider():
    result = simulate(make_config(n_identical=2, customers=2000, quarters=4, demand=FAST_USE))
    last = result.providers.query("step == 3")
    assert last["model_users"].sum() == result.market.iloc[-1]["total_model_users"] > 0


def test_run_metric_choices_are_the_recorded_share_metrics():
    from sim.commands.run import METRIC_CHOICES
    from sim.metrics import METRICS

    assert tuple(METRIC_CHOICES) == tuple(METRICS)
    assert {"cloud_revenue", "ai_cloud_revenue", "maas_tokens"} <= set(METRICS)


def test_every_layer_share_sums_to_one_each_quarter():
    result = simulate(make_config(n_identical=3, customers=2000, quarters=5, demand=FAST_USE,
                                  multihoming={"share": 0.5, "split": 0.3}))
    for metric in ("cloud_revenue", "ai_cloud_revenue", "maas_tokens"):
        totals = result.providers.groupby("step")[f"share_{metric}"].sum()
        assert np.allclose(totals, 1.0), metric
        assert (result.market[f"hhi_{metric}"] > 0).all() and (result.market[f"cr3_{metric}"] <= 1 + 1e-12).all()


def test_captive_tokens_are_recorded_apart_from_maas_tokens():
    providers = [provider("Apps", initial_share=0.5, captive_tokens=5e4, captive_growth=0.1), provider("Plain", initial_share=0.5)]
    rows = simulate(make_config(providers, customers=1000, quarters=3, demand=FAST_USE)).providers.set_index(["provider", "step"])
    assert rows.loc[("Apps", 0), "captive_tokens"] == pytest.approx(5e4)  # this quarter's, before it grows
    assert rows.loc[("Apps", 2), "captive_tokens"] == pytest.approx(5e4 * 1.1 ** 2)
    assert rows.loc[("Plain", 2), "captive_tokens"] == 0.0
    # Own apps' tokens are not MaaS: the two providers' MaaS tokens come from customers alone.
    assert rows.xs(2, level="step")["maas_tokens"].sum() == pytest.approx(rows.xs(2, level="step")["tokens"].sum())


MODELS = {"capability_weight": 1.5, "price_weight": 0.7, "reliability_weight": 1.3, "fit_weight": 0.6,
          "same_cloud_bonus": 0.9, "model_switching_base": 0.4, "model_switching_use": 1.1, "model_tenure_scale": 3.0}


def test_model_utility_term_by_term():
    # The exited slot first: a customer without a cloud or model (-1) must not be credited to the last slot.
    providers = [provider("Gone"), provider("A", initial_share=0.5, affinity={"government": 1.0, "internet": -0.5}),
                 provider("B", initial_share=0.5)]
    market = Market(config=make_config(providers, customers=400, models=MODELS, pricing={"token_compute": 0.5},
                                       open_weights={"enabled": False}))
    market.retire(market.slots[0])
    market.frontier = 2.0
    people = market.customers
    idx = np.arange(0, 400, 3)
    people.model_provider[idx] = np.where(idx % 2 == 0, people.provider[idx], NO_PROVIDER)
    people.model_tenure[idx] = idx % 7
    u = model_choice.model_utilities(market, idx, market._batch.slot_table())
    slots = market.slot_table()
    w = people.weights[idx].astype(float)
    ratio = model_choice.token_price_ratio(market)
    assert (people.provider[idx] == NO_PROVIDER).any() and (people.model_provider[idx] == NO_PROVIDER).any()
    for m in (1, 2):
        expected = (1.5 * w[:, W_CAPABILITY] * slots["capability"][m] / 2.0 - 0.7 * w[:, W_PRICE] * np.log(ratio[m])
                    + 1.3 * w[:, W_RELIABILITY] * slots["reliability"][m]
                    + 0.6 * w[:, W_FIT] * slots["affinity"][people.segment[idx], m]
                    + 0.9 * (people.provider[idx] == m))
        mine = people.model_provider[idx] == m
        expected[mine] += 0.4 + 1.1 * (1 - np.exp(-people.model_tenure[idx][mine] / 3.0))
        np.testing.assert_allclose(u[:, m], expected, rtol=1e-9, atol=1e-12)
    assert (u[:, 0] == -np.inf).all()
    assert np.ptp(slots["affinity"][:, 1:]) > 0 and (people.model_tenure[idx] > 0).any()


def test_token_price_ratio_scales_with_cheaper_inference():
    market = Market(config=make_config(n_identical=2, pricing={"token_compute": 0.5, "reference_price": 4000.0}))
    market.token_compute = 0.2
    market.slots[0].token_factor = 0.25
    slots = market.slot_table()
    expected = slots["price"] * np.array([0.25, 1.0]) / 4000.0 * (0.2 / 0.5)
    np.testing.assert_allclose(model_choice.token_price_ratio(market), expected, rtol=1e-12)
    np.testing.assert_array_equal(model_choice.token_price_ratio(market._batch), [model_choice.token_price_ratio(market)])


def starts(capabilities, frontier, rate, choose_apart=True, n=20_000):
    """Share of each provider's customers who start using a model in one quarter (``rate``:
    one for every segment, or a dict by segment)."""
    providers = [provider(f"P{i}", initial_share=1.0 / len(capabilities), capability=c) for i, c in enumerate(capabilities)]
    config = make_config(providers, customers=n, open_weights={"enabled": False},
                         models={"choose_apart": choose_apart, "model_renewal_hazard": 0.0},
                         demand={"segments": {s: {"model_use_rate": rate[s] if isinstance(rate, dict) else rate} for s in SEGMENTS}})
    market = Market(config=config)
    market.frontier = frontier
    people = market.customers
    model_choice.step(market)
    return [people.uses_model[people.provider == j].mean() for j in range(len(capabilities))], people


@pytest.mark.parametrize("best, frontier", [(1.0, 0.8), (1.0, 2.0), (0.6, 1.0)])
def test_starters_follow_their_segments_rate_times_the_best_models_appeal(best, frontier):
    rates = {s: 0.6 if s == "internet" else 0.2 for s in SEGMENTS}
    _, people = starts([best, 0.5], frontier, rates)
    appeal = min(1.0, best / frontier)  # the best model on offer, whichever the cloud
    internet = people.segment == people.segment_names.index("internet")
    held = people.provider != NO_PROVIDER
    assert people.uses_model[held & internet].mean() == pytest.approx(0.6 * appeal, abs=0.03)
    assert people.uses_model[held & ~internet].mean() == pytest.approx(0.2 * appeal, abs=0.02)
    assert not people.uses_model[~held].any()


@pytest.mark.parametrize("caps, frontier, rate", [((1.0, 0.5), 0.8, 0.3), ((1.0, 0.5), 1.0, 0.3), ((0.5, 0.4), 1.0, 0.6)])
def test_tied_to_the_cloud_starters_follow_their_clouds_appeal(caps, frontier, rate):
    shares, people = starts(list(caps), frontier, rate, choose_apart=False)
    assert shares == pytest.approx([rate * min(1.0, c / frontier) for c in caps], abs=0.02)
    assert not people.uses_model[people.provider == NO_PROVIDER].any()
    assert (people.model_provider[people.uses_model] == people.provider[people.uses_model]).all()


def test_without_a_use_rate_or_active_provider_nobody_starts():
    for tied in (True, False):
        _, people = starts([1.0, 0.5], 1.0, 0.0, choose_apart=not tied, n=2000)
        assert not people.uses_model.any()
    providers = [provider("A", initial_share=1.0)]
    market = Market(config=make_config(providers, customers=500))
    market.retire(market.slots[0])
    model_choice.step(market)
    assert not market.customers.uses_model.any()


def test_tied_to_the_cloud_a_mover_loses_its_model_and_its_tenure():
    config = make_config(n_identical=2, customers=300, models={"choose_apart": False},
                         demand={"segments": {s: {"model_use_rate": 0.0} for s in SEGMENTS}})  # nobody starts anew
    market = Market(config=config)
    people = market.customers
    has = np.flatnonzero(people.provider != NO_PROVIDER)
    people.uses_model[has], people.model_provider[has], people.model_tenure[has] = True, people.provider[has], 5
    moved = has[:40]
    model_choice.tied_step(market, moved)
    assert not people.uses_model[moved].any() and (people.model_provider[moved] == NO_PROVIDER).all()
    assert (people.model_tenure[moved] == 0).all() and (people.model_tenure[has[40:]] == 5).all()


def test_model_services_open_in_their_quarter():
    market = Market(config=make_config(n_identical=2, customers=100, demand={"model_services_start": 2}))
    opened = []
    for t in range(4):
        market.steps = t
        opened.append(model_choice.services_open(market))
    assert opened == [False, False, True, True]


@pytest.mark.parametrize("t, snapshot, expected", [(0, False, 0.5), (1, False, 0.0), (0, True, 0.0)])
def test_initial_model_users_are_drawn_in_a_fresh_runs_first_quarter_only(t, snapshot, expected):
    config = make_config(n_identical=2, customers=6000, models={"initial_use": 0.5, "model_renewal_hazard": 0.0},
                         demand={"segments": {s: {"model_use_rate": 0.0} for s in SEGMENTS}})
    market = Market(config=config)
    market.steps, market.from_snapshot = t, snapshot
    model_choice.step(market)
    people = market.customers
    held = people.provider != NO_PROVIDER
    assert people.uses_model[held].mean() == pytest.approx(expected, abs=0.03)
    assert not people.uses_model[~held].any() and (people.model_provider[people.uses_model] != NO_PROVIDER).all()


def test_orphans_and_renewing_users_choose_and_a_change_of_model_resets_its_tenure():
    config = make_config(n_identical=3, customers=3000, models={"model_renewal_hazard": 1.0},
                         demand={"segments": {s: {"model_use_rate": 0.0} for s in SEGMENTS}})
    market = Market(config=config)
    people = market.customers
    users = np.flatnonzero(people.provider != NO_PROVIDER)
    people.uses_model[users] = True
    people.model_provider[users] = people.provider[users]
    people.model_tenure[users] = 5
    orphans = users[:100]
    people.model_provider[orphans] = NO_PROVIDER
    people.model_tenure[orphans] = 0
    before = people.model_provider.copy()
    model_choice.step(market)
    assert (people.model_provider[orphans] != NO_PROVIDER).all()
    changed = users[people.model_provider[users] != before[users]]
    stayed = np.setdiff1d(users[people.model_provider[users] == before[users]], orphans)
    assert changed.size > 200 and stayed.size > 200
    assert (people.model_tenure[changed] == 0).all() and (people.model_tenure[stayed] == 6).all()


def test_no_model_is_chosen_when_no_provider_is_active():
    market = Market(config=make_config([provider("A", initial_share=1.0)], customers=500))
    people = market.customers
    users = np.flatnonzero(people.provider != NO_PROVIDER)
    people.uses_model[users] = True  # users whose model provider is gone
    market.retire(market.slots[0])
    model_choice.step(market)
    assert (people.model_provider == NO_PROVIDER).all()
