"""Choice: logit over capability, price, fit and reliability; switching costs from lock-in,
tenure and model use (the closed loop); open weights loosen it."""

import numpy as np

from sim.model import Market
from sim.simulate import simulate
from sim.submodels import choice
from tests.conftest import make_config, provider

NO_OPEN = {"enabled": False}


def mean_churn(config) -> float:
    return float(simulate(config).market["churn"].mean())


def test_identical_providers_without_lock_in_stay_near_equal():
    # Truly identical: a thin size tail, so that no provider starts with the few giant customers
    # (with the default tail one of them can overload a provider, which then harvests and loses share).
    for seed in (1, 2, 3, 22):
        config = make_config(n_identical=3, customers=6000, quarters=16, seed=seed, demand={"size_tail": 6.0},
                             choice={"switching_base": 0, "switching_tenure": 0})
        last = simulate(config).providers.query("step == 15")["share_customers"]
        assert np.allclose(last, 1 / 3, atol=0.04), (seed, last.tolist())


def test_higher_lock_in_lowers_churn():
    def churn(lock_in):
        providers = [provider(f"P{i}", initial_share=1 / 3, lock_in=lock_in) for i in range(3)]
        # One price for all: with invest and harvest the incumbent prices part of the switching
        # cost away (tested in test_pricing.py); this test isolates the switching cost itself.
        return mean_churn(make_config(providers, customers=6000, quarters=12,
                                      pricing={"renewal_harvest": 0.0, "new_customer_discount": 0.0}))

    low, high = churn(0.2), churn(3.0)
    assert high < 0.5 * low, (low, high)


def test_model_use_raises_switching_cost():
    """The closed loop: customers using the provider's own model find it harder to leave."""
    def churn(model_lock):
        return mean_churn(make_config(n_identical=3, customers=6000, quarters=16, open_weights=NO_OPEN,
                                      choice={"model_lock": model_lock},
                                      demand={"segments": {s: {"model_use_rate": 0.5} for s in
                                                           ("internet", "enterprise", "government", "startup", "overseas")}}))

    assert churn(6.0) < 0.8 * churn(0.0)


def test_open_weights_close_to_own_models_loosen_the_loop():
    def churn(open_weights):
        return mean_churn(make_config(n_identical=3, customers=6000, quarters=16, open_weights=open_weights,
                                      choice={"model_lock": 6.0}))

    closed = churn(NO_OPEN)
    loosened = churn({"enabled": True, "release": 0, "capability": 1.0})
    assert loosened > 1.1 * closed, (closed, loosened)


def test_utility_rises_with_capability_and_falls_with_price():
    providers = [provider("Cheap", initial_share=0.5, capability=0.5), provider("Good", initial_share=0.5, capability=0.9)]
    market = Market(config=make_config(providers, customers=500, open_weights=NO_OPEN))
    idx = np.arange(500)
    base = choice.utilities(market, idx)
    good = market.slots[1]
    good.price_new *= 2  # both prices: its own customers see the renewal price, others the new one
    good.price_renewal *= 2
    dearer = choice.utilities(market, idx)
    good.price_new /= 2
    good.price_renewal /= 2
    market.slots[1].capability = 0.95
    better = choice.utilities(market, idx)
    assert (dearer[:, 1] < base[:, 1]).all()
    assert (better[:, 1] > base[:, 1]).all()
    assert np.array_equal(base[:, 0], dearer[:, 0]), "another provider's price does not move my utility"


def test_switching_cost_grows_with_tenure_and_lock_in():
    market = Market(config=make_config(n_identical=2, customers=200))
    people = market.customers
    idx = np.flatnonzero(people.provider >= 0)[:50]
    table = market.slot_table()
    people.tenure[idx] = 0
    short = choice.switching_cost(market, idx, people.provider[idx], table)
    people.tenure[idx] = 20
    long = choice.switching_cost(market, idx, people.provider[idx], table)
    table["lock_in"] = table["lock_in"] * 2
    locked = choice.switching_cost(market, idx, people.provider[idx], table)
    assert (long > short).all() and np.allclose(locked, 2 * long)


def test_customers_follow_a_better_provider_over_time():
    providers = [provider("Weak", initial_share=0.5, capability=0.4), provider("Strong", initial_share=0.5, capability=0.95)]
    result = simulate(make_config(providers, customers=4000, quarters=16, open_weights=NO_OPEN))
    strong = result.providers.query("provider == 'Strong'")["share_customers"]
    assert strong.iloc[-1] > strong.iloc[0] + 0.05


def test_exited_provider_is_never_chosen():
    market = Market(config=make_config(n_identical=3, customers=1000))
    market.retire(market.slots[2])
    people = market.customers
    people.provider[people.provider == 2] = -1
    market.step()
    assert not (market.customers.provider == 2).any()
