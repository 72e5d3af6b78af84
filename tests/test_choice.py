"""Choice: logit over capability, price, fit and reliability; switching costs from lock-in,
tenure and model use (the closed loop); open weights loosen it."""

import numpy as np
import pytest

from sim.model import Market
from sim.simulate import simulate
from sim.submodels import choice, demand
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
    market.slots[1].capability = 0.9
    market.slots[1].reliability = base_reliability = market.slots[1].reliability - 0.3
    flaky = choice.utilities(market, idx)
    assert (dearer[:, 1] < base[:, 1]).all()
    assert (better[:, 1] > base[:, 1]).all()
    assert (flaky[:, 1] < base[:, 1]).all(), "utility rises with reliability"
    assert base_reliability >= 0
    assert np.array_equal(base[:, 0], dearer[:, 0]), "another provider's price does not move my utility"


def test_switching_cost_grows_with_tenure_and_lock_in():
    market = Market(config=make_config(n_identical=2, customers=200))
    people = market.customers
    idx = np.flatnonzero(people.provider >= 0)[:50]
    table = market._batch.slot_table()  # (runs, slots): a batch of one
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


SEGMENTS = ("internet", "enterprise", "government", "startup", "overseas")


def test_utility_terms_have_their_documented_sizes():
    """U_ij = w_cap * capability / frontier - w_price * log(price / reference) + w_fit * affinity
    + w_rel * reliability (switching cost aside): each term moves utility by weight x change."""
    providers = [provider("A", initial_share=0.5), provider("B", initial_share=0.5, affinity={"internet": 0.5})]
    market = Market(config=make_config(providers, customers=300, open_weights=NO_OPEN))
    people = market.customers
    idx = np.flatnonzero(people.provider == -1)
    assert idx.size > 20
    w = people.weights[idx].astype(float)
    b = market.slots[1]
    base = choice.utilities(market, idx)[:, 1]
    b.capability += 0.2
    assert choice.utilities(market, idx)[:, 1] - base == pytest.approx(w[:, 0] * 0.2 / market.frontier)
    b.capability -= 0.2
    b.price_new *= 2  # what a customer without a provider is offered (pricing: invest and harvest)
    assert choice.utilities(market, idx)[:, 1] - base == pytest.approx(-w[:, 1] * np.log(2))
    b.price_new /= 2
    b.reliability -= 0.25
    assert choice.utilities(market, idx)[:, 1] - base == pytest.approx(-w[:, 3] * 0.25)
    b.reliability += 0.25
    internet = people.segment[idx] == people.segment_names.index("internet")
    b.affinity[people.segment_names.index("internet")] = 0.0  # B loses its fit with internet customers
    fit = base - choice.utilities(market, idx)[:, 1]
    assert fit[internet] == pytest.approx(w[internet, 2] * 0.5) and fit[~internet] == pytest.approx(0.0)


def test_churn_counts_incumbents_who_switch_never_new_adopters():
    """No contract ever comes up (renewal hazard 0) while many customers adopt: nobody churns."""
    still = {s: {"renewal_hazard": 0.0} for s in SEGMENTS}
    config = make_config(n_identical=3, customers=3000, quarters=6,
                         demand={"bass_p": 0.2, "initial_adoption": 0.3, "segments": still})
    market = simulate(config).market
    assert (market["new_adopters"] > 50).all()
    assert (market["churn"] == 0.0).all()


def test_churn_is_the_share_of_incumbents_that_switched():
    config = make_config(n_identical=3, customers=3000, quarters=6, choice={"switching_base": 0, "switching_tenure": 0},
                         demand={"bass_p": 0.1, "segments": {s: {"renewal_hazard": 0.5} for s in SEGMENTS}})
    result = simulate(config)
    flows = result.flows[result.flows["from"] != "(none)"]
    switched = flows[flows["from"] != flows["to"]].groupby("step")["customers"].sum()
    had = result.providers.groupby("step")["customers"].sum()  # with a provider after each quarter
    for step in range(1, 6):
        assert result.market.loc[step, "churn"] == pytest.approx(switched.get(step, 0) / had[step - 1])
    assert (result.market["churn"].iloc[1:] > 0.1).all()


def test_tenure_counts_quarters_with_a_provider_and_resets_on_a_switch():
    no_new_model_use = {s: {"renewal_hazard": 0.5, "model_use_rate": 0.0} for s in SEGMENTS}
    config = make_config(n_identical=3, customers=3000, choice={"switching_base": 0, "switching_tenure": 0},
                         demand={"bass_p": 0.1, "segments": no_new_model_use})
    market = Market(config=config)
    people = market.customers
    demand.step(market)  # new adopters, who choose below
    before_provider, before_tenure = people.provider.copy(), people.tenure.copy()
    choice.step(market)
    had = before_provider != -1
    stayed = had & (people.provider == before_provider)
    switched = had & (people.provider != before_provider)
    joined = ~had & (people.provider != -1)
    assert switched.sum() > 100 and joined.sum() > 50 and stayed.sum() > 100
    assert (people.tenure[stayed] == before_tenure[stayed] + 1).all()
    assert (people.tenure[switched] == 0).all() and (people.tenure[joined] == 0).all()
    assert (people.tenure[people.provider == -1] == 0).all()


def test_a_new_provider_starts_a_first_contract_and_a_renewal_ends_it():
    """After a choice: customers who switched or joined are in their first contract (they pay
    the new-customer price); deciders who renewed with their incumbent are not."""
    config = make_config(n_identical=3, customers=3000, choice={"switching_base": 0, "switching_tenure": 0},
                         demand={"bass_p": 0.1, "segments": {s: {"renewal_hazard": 0.5} for s in SEGMENTS}})
    market = Market(config=config)
    people = market.customers
    people.first_contract[:] = people.provider != -1  # everyone with a provider in a first contract
    demand.step(market)
    before = people.provider.copy()
    choice.step(market)
    had, now = before != -1, people.provider != -1
    moved = now & (people.provider != before)
    renewed = had & (people.provider == before) & ~people.first_contract
    assert moved.sum() > 300 and (people.first_contract[moved]).all()
    assert renewed.sum() > 150  # about a third of the customers whose contract came up stay
    assert not people.first_contract[~now].any()


def test_churn_is_zero_without_incumbents_and_nobody_picks_a_provider_when_none_is_active():
    nobody = make_config(n_identical=3, customers=2000, demand={"bass_p": 0.2, "initial_adoption": 0.0})
    market = Market(config=nobody)
    assert (market.customers.provider == -1).all()
    demand.step(market)
    choice.step(market)
    assert market.churn == 0.0 and (market.customers.provider != -1).sum() > 200
    closed = Market(config=make_config(n_identical=3, customers=2000, demand={"bass_p": 0.2}))
    for p in closed.active_providers():
        closed.retire(p)
    closed.customers.provider[:] = -1
    demand.step(closed)
    choice.step(closed)
    assert (closed.customers.provider == -1).all() and closed.churn == 0.0


def test_model_lock_holds_only_customers_who_buy_their_clouds_model():
    """S_i = lock_in_c * (switching_base + switching_tenure * (1 - exp(-tenure / scale)))
    * (1 + model_lock * [model_provider_i = c] * edge_c)."""
    config = make_config(n_identical=3, customers=600, open_weights={"enabled": False},
                         choice={"model_lock": 2.0, "switching_base": 1.0, "switching_tenure": 0.5, "tenure_scale": 4.0})
    market = Market(config=config)
    people = market.customers
    idx = np.flatnonzero(people.provider >= 0)[:300]
    current = people.provider[idx]
    people.tenure[idx] = np.arange(idx.size) % 9
    people.model_provider[idx] = np.where(np.arange(idx.size) % 2 == 0, current, (current + 1) % 3)
    slots = market._batch.slot_table()
    assert (slots["edge"][0, :3] > 0.1).all()
    cost = choice.switching_cost(market, idx, current, slots)
    edge, lock_in = market.slot_table()["edge"], market.slot_table()["lock_in"]
    base = lock_in[current] * (1.0 + 0.5 * (1.0 - np.exp(-people.tenure[idx] / 4.0)))
    own = people.model_provider[idx] == current
    np.testing.assert_allclose(cost, base * np.where(own, 1.0 + 2.0 * edge[current], 1.0), rtol=1e-12)


def test_logit_draw_follows_the_logit_probabilities_at_any_utility_level():
    """exp(U_j) / sum_k exp(U_k) per row, whatever the rows' levels (no overflow at 1,000 utils,
    no underflow of a row far below another); -inf is never drawn."""
    rng = np.random.default_rng(5)
    n = 40_000
    base = np.array([0.0, np.log(3.0), -np.inf])
    level = np.where(np.arange(n) % 2 == 0, 1000.0, -1000.0)[:, None]
    chosen = choice.logit_draw(base + level, rng)
    for rows in (slice(0, None, 2), slice(1, None, 2)):
        counts = np.bincount(chosen[rows], minlength=3) / (n / 2)
        assert counts == pytest.approx([0.25, 0.75, 0.0], abs=0.01)


def test_logit_draw_stops_on_utilities_that_give_no_probabilities():
    """A NaN utility (inf - inf, inf * 0) or a row with nothing available has no logit law:
    drawing anyway would hand the customer to slot 0, available or not.  It stops with one line."""
    from sim.errors import NonFiniteState
    rng = np.random.default_rng(1)
    fine = np.array([[0.0, 1.0, -np.inf]] * 3)
    assert set(choice.logit_draw(fine.copy(), rng)) <= {0, 1}
    for bad in ([np.nan, 1.0, 0.0], [np.inf, np.inf, 0.0], [-np.inf, -np.inf, -np.inf]):
        rows = np.vstack([fine, [bad]])
        with pytest.raises(NonFiniteState, match="row 3 give no choice probabilities"):
            choice.logit_draw(rows, rng)


def test_logit_draw_in_a_batch_names_the_run_and_the_state_that_is_not_finite():
    """In a batch the refusal names the run whose decider has no law (its place, config and seed,
    and details['run'] so that a sweep reruns the others); a non-finite state variable, if there
    is one, is named first, as the guard names it."""
    from sim.batch import Batch
    from sim.errors import NonFiniteState

    configs = [make_config(customers=50, quarters=4, seed=s) for s in (3, 4)]
    batch = Batch(configs)
    batch.step()
    fine = [0.0, 1.0, 2.0]
    rows = np.array([fine, fine, [np.nan, 1.0, 2.0], fine])  # run 1: two deciders, run 2: two (its first NaN)
    with pytest.raises(NonFiniteState) as caught:
        choice.logit_draw(rows.copy(), batch, np.array([2, 2]))
    text = str(caught.value)
    assert "in run 2 of a batch of 2" in text and "run.seed = 4" in text and "choice utilities" in text
    assert text.startswith(f"quarter {batch.markets[1].quarter_label} (quarter 2 of 4)")
    assert caught.value.details["run"] == 1 and caught.value.details["seed"] == 4
    batch.markets[0].slots[0].cash = np.nan  # a state variable gone NaN: the guard's line comes first
    with pytest.raises(NonFiniteState, match="cash") as caught:
        choice.logit_draw(rows.copy(), batch, np.array([2, 2]))
    assert "choice utilities" not in str(caught.value)
