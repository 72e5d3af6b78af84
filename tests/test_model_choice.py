"""Model choice: the model layer (MaaS) as a market apart from the cloud layer."""

import numpy as np
import pytest

from sim.customers import NO_PROVIDER
from sim.model import Market
from sim.simulate import simulate
from tests.conftest import make_config, provider

NO_OPEN = {"enabled": False}
ALL_SEGMENTS = ("internet", "enterprise", "government", "startup", "overseas")
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
