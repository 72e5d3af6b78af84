"""Parents: a group's budget and credit line keep its provider going; the transfer price for its
apps' compute; the internal split between training and serving; pro rata sharing of a pot."""

import numpy as np
import pytest

from sim.model import Market
from sim.simulate import simulate
from sim.submodels import parents
from tests.conftest import make_config, provider


def group_provider(**fields):
    """A provider with no cash whose own apps grow 12 % a quarter: it cannot pay for the
    capacity its demand needs out of its own revenue."""
    return provider("Group", initial_share=0.5, cash=0.0, compute=1.5e5, captive_compute=1.0e5,
                    captive_growth=0.12, capex_share=0.0, **fields)


def run_group(parent: dict | None, quarters: int):
    providers = [group_provider(**({"parent": parent["name"]} if parent else {})),
                 provider("Rival", initial_share=0.5, compute=2e5)]
    # Scarcity pricing off (issue 12): its higher price would shed customers and fund capacity, and
    # this test is about the parent's money.
    config = make_config(providers, customers=2000, quarters=quarters, parents=[parent] if parent else [],
                         pricing={"scarcity_elasticity": 0.0})
    return simulate(config).providers.query("provider == 'Group'").set_index("step")


def exit_step(rows):
    exited = rows.index[rows["status"] == "exited"]
    return int(exited[0]) if len(exited) else None


def test_funded_provider_survives_while_the_budget_lasts_and_unfunded_exits():
    unfunded = run_group(None, quarters=12)
    assert exit_step(unfunded) is not None and exit_step(unfunded) <= 4, "without a parent it cannot fund its capacity"

    whole_run = run_group({"name": "G", "budget_per_quarter": 1500.0}, quarters=12)
    assert exit_step(whole_run) is None
    assert (whole_run["parent_funding"] > 0).all()
    assert whole_run["utilisation"].iloc[-4:].max() < 1.5, "the parent's money bought the capacity"

    # A budget for three quarters: it survives them and some quarters after (the pot carries over),
    # then it is on its own again and goes the way of the unfunded provider.
    short = run_group({"name": "G", "budget_per_quarter": 1500.0, "budget_quarters": 3}, quarters=24)
    assert exit_step(short) is not None and exit_step(short) > 6
    assert short.loc[: exit_step(short), "parent_funding"].iloc[-4:].sum() == 0, "exits only once the budget is spent"


def test_credit_line_carries_losses_up_to_its_limit():
    providers = [provider("Loss", initial_share=0.5, cash=-1000.0, capex_share=0.0, parent="G"),
                 provider("Other", initial_share=0.5)]
    config = make_config(providers, customers=1000, quarters=6, finance={"capacity_response": 0.0},
                         parents=[{"name": "G", "credit_line": 300.0}], entry={"exit_after": 3})
    rows = simulate(config).providers.query("provider == 'Loss'").set_index("step")
    # Quarter 0 ends several hundred million in debt (it started 1,000 down): the cover stops at 300.
    assert rows.loc[0, "parent_funding"] == pytest.approx(300.0)
    assert rows["parent_funding"].sum() == pytest.approx(300.0)
    assert rows.loc[0, "cash"] < 0, "the rest of the debt stays"

    unlimited = make_config(providers, customers=1000, quarters=6, finance={"capacity_response": 0.0},
                            parents=[{"name": "G", "credit_line": 1e6}], entry={"exit_after": 3})
    rows = simulate(unlimited).providers.query("provider == 'Loss'")
    assert (rows["cash"] >= -1e-6).all() and (rows["status"] == "active").all()


def test_market_transfer_price_buys_more_compute_and_capability_without_starving_customers():
    """The parent pays its apps' compute at the provider's price instead of its unit cost: the
    cash-bound provider buys more GPUs, trains on more compute, and serves customers no worse."""
    def run(rule):
        providers = [provider("Group", initial_share=0.5, cash=0.0, capex_share=2.0, capability=0.5, compute=4e5,
                              captive_compute=1.0e5, captive_growth=0.0, parent="G"),
                     provider("Rival", initial_share=0.5, capability=0.5, compute=2e5)]
        # Models tied to the cloud: with models chosen apart, the better-trained model also draws the
        # rival's customers' tokens onto the group's GPUs, a separate effect (tests/test_model_choice.py).
        config = make_config(providers, customers=2000, quarters=12, parents=[{"name": "G", "transfer_price": rule}],
                             open_weights={"enabled": False}, models={"choose_apart": False})
        return simulate(config).providers.query("provider == 'Group'").set_index("step")

    cost, market = run("cost"), run("market")
    assert (market["internal_revenue"] > 1.5 * cost["internal_revenue"]).all()
    assert market["compute_stock"].iloc[-1] > 1.08 * cost["compute_stock"].iloc[-1]
    assert market["capability"].iloc[-1] > cost["capability"].iloc[-1] + 0.01
    # External customers: served at least as well (lower utilisation, same reliability) and not driven away.
    assert (market["utilisation"].iloc[2:] <= cost["utilisation"].iloc[2:] + 1e-9).all()
    assert market["reliability"].iloc[-4:].mean() >= cost["reliability"].iloc[-4:].mean() - 1e-9
    assert market["share_customers"].iloc[-4:].mean() >= cost["share_customers"].iloc[-4:].mean() - 0.02


def test_training_share_rises_with_priority_and_the_capability_gap():
    assert parents.training_share(0.15, 0.4, 0.0, 0.5, 1.0) == 0.15
    assert parents.training_share(0.15, 0.4, 1.0, 1.0, 1.0) == 0.15  # at the frontier
    assert parents.training_share(0.15, 0.4, 1.0, 0.0, 1.0) == pytest.approx(0.4)
    half = parents.training_share(0.15, 0.4, 0.5, 0.5, 1.0)
    assert half == pytest.approx(0.15 + 0.25 * 0.25)
    assert parents.training_share(0.3, 0.2, 1.0, 0.0, 1.0) == 0.3  # never below the provider's own share

    # The frontier is the best provider's capability (issue 9): a leader at 1.0 sets it.
    providers = [provider("Behind", initial_share=0.5, capability=0.3, parent="G"),
                 provider("Leader", initial_share=0.5, capability=1.0)]
    for priority, expected in ((0.0, 0.15), (1.0, 0.15 + 0.25 * 0.7)):
        config = make_config(providers, customers=300, quarters=1, parents=[{"name": "G", "priority": priority}],
                             open_weights={"enabled": False})
        market = Market(config=config)
        market.step()
        assert market.slots[0].training_share == pytest.approx(expected)


def test_a_pot_is_shared_pro_rata_and_carries_over():
    providers = [provider("A", initial_share=0.5, parent="G"), provider("B", initial_share=0.5, parent="G"),
                 provider("C", initial_share=0.0)]
    config = make_config(providers, customers=300, quarters=3,
                         parents=[{"name": "G", "budget_total": 300.0, "budget_quarters": 3, "budget_start": 1}])
    market = Market(config=config)  # rich providers: nobody asks the parent for money
    market.step()
    assert market.parent_accounts["G"].pot == 0.0  # window not open yet
    market.step()
    market.step()
    assert market.parent_accounts["G"].pot == pytest.approx(200.0)
    grants = parents.grant_capex(market, {0: 300.0, 1: 100.0, 2: 50.0})
    assert grants == {0: pytest.approx(150.0), 1: pytest.approx(50.0), 2: 0.0}
    assert parents.grant_capex(market, {0: 20.0, 1: 0.0, 2: 0.0})[0] == pytest.approx(20.0)


def test_budget_window_small_sums_and_what_the_parent_has_paid():
    """The window is budget_quarters long; sums below one US$ million are granted and drawn
    like any other; ``funded`` adds up every draw and loss cover; only negative cash is covered."""
    providers = [provider("A", initial_share=0.5, parent="G"), provider("B", initial_share=0.5, parent="G")]
    config = make_config(providers, customers=200, parents=[
        {"name": "G", "budget_per_quarter": 1.0, "budget_start": 1, "budget_quarters": 2, "credit_line": 5.0}])
    market = Market(config=config)
    account = market.parent_accounts["G"]
    assert [account.in_window(t) for t in range(5)] == [False, True, True, False, False]
    account.pot = 1.0
    assert parents.grant_capex(market, {0: 0.5, 1: 0.0}) == {0: pytest.approx(0.5), 1: 0.0}
    a, b = market.slots[0], market.slots[1]
    assert parents.draw(market, a, 0.5) == 0.5 and account.pot == pytest.approx(0.5)
    assert parents.draw(market, a, 0.25) == 0.25 and account.funded == pytest.approx(0.75)
    a.cash, b.cash, a.parent_funding, b.parent_funding = -2.0, 0.5, 0.0, 0.0
    parents.cover_losses(market, [a, b])
    assert a.cash == 0.0 and a.parent_funding == 2.0 and b.cash == 0.5 and b.parent_funding == 0.0
    assert account.credit_left == pytest.approx(3.0) and account.funded == pytest.approx(2.75)


def test_providers_of_one_parent_draw_its_pot_in_slot_order():
    """Draws come out of the pot one provider after the other, in slot order: a pot drawn dry
    gives the later provider only what is left (and nothing once it is empty); a provider of
    another parent draws from its own pot."""
    providers = [provider("A", initial_share=0.4, parent="G"), provider("H1", initial_share=0.2, parent="H"),
                 provider("B", initial_share=0.2, parent="G"), provider("C", initial_share=0.2, parent="G")]
    config = make_config(providers, customers=200, parents=[{"name": "G", "budget_per_quarter": 1.0},
                                                            {"name": "H", "budget_per_quarter": 1.0}])
    market = Market(config=config)
    g, h = market.parent_accounts["G"], market.parent_accounts["H"]
    g.pot, h.pot = 100.0, 10.0
    batch = market._batch
    amounts = np.array([[80.0, 4.0, 50.0, 30.0]])
    assert parents.draw_runs(batch, amounts).tolist() == [[80.0, 4.0, 20.0, 0.0]]
    assert (g.pot, g.funded, h.pot, h.funded) == (0.0, 100.0, 6.0, 4.0)
    assert parents.draw_runs(batch, np.array([[0.0, 7.0, 0.0, 0.0]])).tolist() == [[0.0, 6.0, 0.0, 0.0]]
    assert h.pot == 0.0


def test_training_share_follows_the_relative_gap_and_a_zero_frontier_leaves_it_at_base():
    # own 1 against a frontier of 2: half of the way from base to the top, at priority 1.
    assert parents.training_share(0.15, 0.4, 1.0, 1.0, 2.0) == pytest.approx(0.15 + 0.25 * 0.5)
    assert parents.training_share(0.15, 0.4, 1.0, 0.0, 0.0) == 0.15


def test_a_small_loss_is_covered_and_the_parent_sets_its_providers_rationing():
    providers = [provider("A", initial_share=0.5, parent="G"), provider("B", initial_share=0.5)]
    market = Market(config=make_config(providers, customers=200, service={"rationing": "proportional"}, parents=[
        {"name": "G", "credit_line": 5.0, "rationing": "own_apps_first"}]))
    a, b = market.slots[0], market.slots[1]
    a.cash, a.parent_funding = -0.5, 0.0
    parents.cover_losses(market, [a, b])
    assert a.cash == 0.0 and a.parent_funding == 0.5 and market.parent_accounts["G"].credit_left == 4.5
    assert parents.rationing_rule(market, a) == "own_apps_first" and parents.rationing_rule(market, b) == "proportional"


def test_a_parent_account_that_turns_non_finite_stops_the_run_with_its_name():
    """The accounts' numbers live in the batch's Parents arrays; the guard checks them there."""
    from sim.errors import NonFiniteState

    providers = [provider("A", initial_share=0.5, parent="G"), provider("B", initial_share=0.5)]
    market = Market(config=make_config(providers, customers=200, parents=[{"name": "G", "credit_line": 5.0}]))
    market.step()
    market.parent_accounts["G"].funded = float("nan")
    assert market._batch.parents.funded[0, 0] != market._batch.parents.funded[0, 0]  # a view of the batch's row
    with pytest.raises(NonFiniteState, match="parent G's funded"):
        market.step()
