"""Multi-homing: a second cloud for part of the workload; switches that move workload gradually."""

import numpy as np
import pytest

from sim.config import ConfigError
from sim.customers import NO_PROVIDER
from sim.model import Market
from sim.submodels import multihoming, service
from tests.conftest import make_config, provider

ALL_SEGMENTS = ("internet", "enterprise", "government", "startup", "overseas")


def config(share=0.8, split=0.3, rate=1.0, **kw):
    return make_config(n_identical=3, customers=kw.pop("customers", 4000), quarters=kw.pop("quarters", 10),
                       multihoming={"share": share, "split": split, "migration_rate": rate}, **kw)


def placed_compute(market):
    """Compute demand per slot as service places it (primary and second clouds)."""
    return service.demand_by_slot(market._batch, surges=False)["compute"][0]


def test_multihoming_conserves_each_customers_workload():
    market = Market(config=config(share=0.8, split=0.3, rate=0.5, choice={"switching_base": 0.0}))
    for _ in range(10):
        market.step()
        people = market.customers
        primary, second = multihoming.workload_parts(people)
        held = people.provider != NO_PROVIDER
        assert np.all(primary + second == people.compute)  # exactly, per customer
        assert np.all((second >= 0) & (primary >= 0))
        assert np.all((people.split >= 0) & (people.split <= 1))
        assert np.all(people.second_provider[held] != people.provider[held])
        total = float(people.compute[held].sum(dtype=np.float64))
        assert placed_compute(market).sum() == pytest.approx(total, rel=1e-12)
        assert sum(p.customer_compute for p in market.active_providers()) == pytest.approx(total, rel=1e-12)
    assert (market.customers.second_provider != NO_PROVIDER).sum() > 1000


def test_share_of_multihomers_and_their_split_follow_the_config():
    market = Market(config=config(share=0.8, split=0.3, quarters=2))
    market.step()
    people = market.customers
    held = people.provider != NO_PROVIDER
    with_second = people.second_provider[held] != NO_PROVIDER
    assert with_second.mean() == pytest.approx(0.8, abs=0.03)
    assert np.allclose(people.split[held][with_second], 0.3)
    # Mechanism off: nobody has a second cloud, all compute sits with the primary.
    off = Market(config=config(share=0.0, quarters=2))
    off.step()
    assert (off.customers.second_provider == NO_PROVIDER).all()


def test_per_segment_share_overrides_the_default():
    market = Market(config=make_config(n_identical=3, customers=4000,
                                       multihoming={"share": 0.0, "segments": {"government": {"share": 1.0, "split": 0.5}}}))
    market.step()
    people = market.customers
    gov = people.segment == people.segment_names.index("government")
    held = people.provider != NO_PROVIDER
    assert (people.second_provider[gov & held] != NO_PROVIDER).all()
    assert (people.second_provider[~gov & held] == NO_PROVIDER).all()
    assert np.allclose(people.split[gov & held], 0.5)


def test_unknown_segment_in_multihoming_is_refused():
    with pytest.raises(ConfigError) as err:
        make_config(multihoming={"segments": {"martians": {"share": 0.5}}})
    assert "multihoming.segments" in str(err.value) and "internet" in str(err.value)


def forced_switch(rate):
    """Customer 0 moves from slot 0 to slot 1; the shares left on slot 0 in the quarters after."""
    market = Market(config=config(share=0.0, rate=rate))
    people = market.customers
    i = int(np.flatnonzero(people.provider == 0)[0])
    people.provider[i] = 1
    market.cloud_movers, market.cloud_moved_from = np.array([i]), np.array([0], dtype=np.int16)
    left = []
    for _ in range(8):
        multihoming.step(market)
        market.cloud_movers = np.empty(0, dtype=np.intp)
        left.append(float(people.split[i]) if people.second_provider[i] == 0 else 0.0)
    return left


def test_a_switch_moves_workload_gradually():
    left = forced_switch(0.5)
    assert left[:3] == pytest.approx([0.5, 0.25, 0.125])
    assert left[-1] == 0.0  # the last 1 % moves at once
    # Mechanism off (rate 1): everything moves in the quarter of the switch.
    assert forced_switch(1.0) == [0.0] * 8


def test_a_second_cloud_takes_over_when_the_primary_exits():
    providers = [provider("Doomed", initial_share=0.5, cash=-1e4), provider("A", initial_share=0.25), provider("B", initial_share=0.25)]
    market = Market(config=make_config(providers, customers=3000, quarters=6, entry={"exit_after": 2},
                                       multihoming={"share": 1.0, "split": 0.3}))
    people = market.customers
    market.step()
    while market.status[0] != "exited":
        doomed_multi = np.flatnonzero((people.provider == 0) & (people.second_provider > 0))
        seconds = people.second_provider[doomed_multi].copy()
        market.step()
    assert doomed_multi.size > 100
    now = people.provider[doomed_multi]
    assert (now > 0).all(), "none is left without a cloud"
    assert (now == seconds).mean() > 0.85  # the rest renewed and moved in the exit quarter's choice
    assert (people.second_provider != 0).all()


def test_on_exit_promotes_the_second_cloud_and_sends_second_cloud_workload_home():
    market = Market(config=config(share=0.0, customers=40))
    people = market.customers
    groups = {"primary_0_second_1": (0, 1), "primary_1_second_0": (1, 0), "primary_2_second_1": (2, 1),
              "primary_0_alone": (0, NO_PROVIDER)}
    for k, (first, second) in enumerate(groups.values()):
        rows = slice(10 * k, 10 * k + 10)
        people.provider[rows], people.second_provider[rows] = first, second
        people.split[rows] = 0.3 if second != NO_PROVIDER else 0.0
        people.tenure[rows] = 5
    multihoming.on_exit(people, 0)
    promoted, home, other, alone = (slice(10 * k, 10 * k + 10) for k in range(4))
    assert (people.provider[promoted] == 1).all() and (people.tenure[promoted] == 0).all()
    for rows in (promoted, home):
        assert (people.second_provider[rows] == NO_PROVIDER).all() and (people.split[rows] == 0).all()
    assert (people.provider[home] == 1).all() and (people.tenure[home] == 5).all()
    assert (people.provider[other] == 2).all() and (people.second_provider[other] == 1).all()
    assert (people.split[other] == np.float32(0.3)).all() and (people.tenure[other] == 5).all()
    assert (people.provider[alone] == 0).all() and (people.tenure[alone] == 5).all()  # choice re-places them


def test_settle_moves_only_the_excess_over_each_customers_target():
    """split <- tau + (split - tau) * (1 - rate) where split > tau (tau = the segment's split for a
    multi-homer, 0 otherwise); a non-multi-homer's last 1 % moves at once; a multi-homer at its
    target stays."""
    market = Market(config=config(share=0.0, customers=40))
    people = market.customers
    people.segment[:] = 0
    people.provider[:] = 0
    people.second_provider[:] = 1
    people.multihomer[:20] = True
    people.split[:] = np.repeat(np.float32([0.3, 0.8, 0.6, 0.015]), 10)  # at target, above it; switching, nearly done
    target = np.full(len(people.segment_names), 0.3, dtype=np.float32)
    multihoming.settle(people, target, 0.5)
    assert people.split[:10] == pytest.approx(0.3) and (people.second_provider[:10] == 1).all()
    assert people.split[10:20] == pytest.approx(0.3 + 0.5 * 0.5) and (people.second_provider[10:20] == 1).all()
    assert people.split[20:30] == pytest.approx(0.3) and (people.second_provider[20:30] == 1).all()
    assert (people.split[30:] == 0.0).all() and (people.second_provider[30:] == NO_PROVIDER).all()


@pytest.mark.parametrize("active, expected", [(2, True), (1, False)])
def test_second_clouds_need_another_active_provider(active, expected):
    providers = [provider(f"P{i}", initial_share=1.0 / active) for i in range(active)]
    market = Market(config=make_config(providers, customers=1000, multihoming={"share": 1.0, "split": 0.3}))
    market.step()
    people = market.customers
    held = people.provider != NO_PROVIDER
    has_second = people.second_provider[held] != NO_PROVIDER
    assert has_second.all() if expected else not has_second.any()
    assert (people.second_provider[held][has_second] != people.provider[held][has_second]).all()


def test_a_segment_with_split_zero_keeps_no_second_cloud():
    market = Market(config=make_config(n_identical=3, customers=3000, multihoming={
        "share": 1.0, "split": 0.3, "segments": {"government": {"split": 0.0}}}))
    market.step()
    people = market.customers
    gov = people.segment == people.segment_names.index("government")
    held = people.provider != NO_PROVIDER
    assert (gov & held).sum() > 100
    assert (people.second_provider[gov & held] == NO_PROVIDER).all() and (people.split[gov] == 0).all()
    assert (people.second_provider[~gov & held] != NO_PROVIDER).all()
