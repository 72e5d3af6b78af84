"""Customers: the vectorised population (sizes, adoption, preference weights), per-provider
totals, the per-segment cache, and the read-only views for inspection."""

import numpy as np
import pytest

from sim.customers import (DISCARD_CHUNK, NO_PROVIDER, W_CAPABILITY, W_FIT, W_PRICE, W_RELIABILITY, CustomerPopulation,
                           bernoulli_indices, discard)
from sim.model import Market
from tests.conftest import make_config

SEGMENTS = ("internet", "enterprise", "government", "startup", "overseas")


def population(customers=20_000, seed=3, pricing=None, **demand):
    config = make_config(customers=customers, seed=seed, demand=demand, pricing=pricing or {})
    return CustomerPopulation(config, np.random.default_rng(seed)), config


def test_adopted_customers_hold_the_market_compute_and_sizes_are_heavy_tailed():
    people, config = population(initial_adoption=0.4, market_compute=5e5, size_tail=1.5)
    assert people.adopted.mean() == pytest.approx(0.4, abs=0.02)
    assert people.compute[people.adopted].sum() == pytest.approx(5e5, rel=1e-4)
    assert people.compute.dtype == np.float32 and (people.compute > 0).all()
    sizes = np.sort(people.compute)[::-1]
    assert sizes[: people.n // 100].sum() > 0.15 * sizes.sum(), "the top 1 % hold a large share (Pareto 1.5)"
    thin, _ = population(initial_adoption=0.4, market_compute=5e5, size_tail=8.0)
    thin_sizes = np.sort(thin.compute)[::-1]
    assert thin_sizes[: thin.n // 100].sum() < 0.05 * thin_sizes.sum()


def test_nobody_adopted_scales_by_everyone():
    people, _ = population(initial_adoption=0.0, market_compute=1e5)
    assert not people.adopted.any()
    assert people.compute.sum() == pytest.approx(1e5, rel=1e-4)


def test_segments_follow_their_weights_and_sizes():
    weights = {"internet": 4.0, "enterprise": 1.0, "government": 0.0, "startup": 2.0, "overseas": 1.0}
    sizes = {"internet": 3.0, "enterprise": 1.0, "government": 1.0, "startup": 0.5, "overseas": 1.0}
    segs = {s: {"weight": weights[s], "compute_size": sizes[s]} for s in SEGMENTS}
    people, _ = population(segments=segs, size_tail=4.0)
    counts = np.bincount(people.segment, minlength=5) / people.n
    assert counts == pytest.approx([4 / 8, 1 / 8, 0.0, 2 / 8, 1 / 8], abs=0.015)
    mean = [people.compute[people.segment == people.segment_names.index(s)].mean() for s in ("internet", "startup")]
    assert mean[0] / mean[1] == pytest.approx(6.0, rel=0.1)
    assert people.segment_names == list(SEGMENTS)


def test_token_need_follows_compute_intensity_and_token_share():
    segs = {s: {"token_intensity": 2.0 if s == "internet" else 1.0} for s in SEGMENTS}
    people, config = population(segments=segs, token_share=0.25, pricing={"token_compute": 4.0})
    ratio = people.token_need / people.compute
    internet = people.segment == 0
    per_token = config.pricing.token_compute
    assert ratio[internet] == pytest.approx(2.0 * 0.25 / per_token, rel=1e-5)
    assert ratio[~internet] == pytest.approx(1.0 * 0.25 / per_token, rel=1e-5)


def test_preference_weights_spread_around_the_segment_weights():
    segs = {s: {"w_capability": 3.0, "w_price": 2.0, "w_fit": 1.0, "w_reliability": 0.5} for s in SEGMENTS}
    people, _ = population(segments=segs, preference_spread=0.3)
    medians = np.median(people.weights, axis=0)
    assert medians[[W_CAPABILITY, W_PRICE, W_FIT, W_RELIABILITY]] == pytest.approx([3.0, 2.0, 1.0, 0.5], rel=0.03)
    assert np.log(people.weights).std(axis=0) == pytest.approx([0.3] * 4, rel=0.05)
    exact, _ = population(segments=segs, preference_spread=0.0)
    assert (exact.weights == np.array([3.0, 2.0, 1.0, 0.5], dtype=np.float32)).all()


def test_a_new_population_has_no_provider_tenure_or_model_use():
    people, _ = population(customers=500)
    assert (people.provider == NO_PROVIDER).all() and people.provider.dtype == np.int16
    assert (people.tenure == 0).all() and not people.uses_model.any()


def test_spread_gives_each_customer_its_segments_value_and_is_read_only():
    people, _ = population(customers=1000)
    table = np.array([1.0, 2.0, 3.0, 4.0, 5.0])
    values = people.spread(table)
    assert values.dtype == np.float32 and (values == table[people.segment]).all()
    assert people.spread(table.copy()) is values, "cached by the table's values"
    with pytest.raises(ValueError):
        values[0] = 9.0
    sizes = []
    for k in range(1, 8):  # more tables than the cache keeps: still right, and at most 4 kept
        assert (people.spread(table + k) == (table + k)[people.segment]).all()
        sizes.append(len(people._spread))
    assert max(sizes) == 4


def test_segment_table_lists_one_value_per_segment():
    segs = {s: {"growth": 0.01 * i} for i, s in enumerate(SEGMENTS)}
    people, config = population(customers=100, segments=segs)
    assert people.segment_table("growth", config) == pytest.approx([0.0, 0.01, 0.02, 0.03, 0.04])


def test_view_and_frame_show_one_customer_as_stored():
    market = Market(config=make_config(customers=400))
    people = market.customers
    i = int(np.flatnonzero(people.provider != NO_PROVIDER)[0])
    j = int(np.flatnonzero(people.provider == NO_PROVIDER)[0])
    people.uses_model[i], people.tenure[i] = True, 5
    v = people.view(i, market.names)
    w = people.weights[i]
    assert v.index == i and v.segment == people.segment_names[people.segment[i]] and v.adopted is True
    assert v.provider == market.names[people.provider[i]] and v.tenure == 5 and v.uses_model is True
    assert v.compute_demand == pytest.approx(float(people.compute[i]))
    assert v.token_need == pytest.approx(float(people.token_need[i]))
    assert (v.w_capability, v.w_price, v.w_fit, v.w_reliability) == pytest.approx(
        [float(w[W_CAPABILITY]), float(w[W_PRICE]), float(w[W_FIT]), float(w[W_RELIABILITY])])
    assert people.view(i).provider == str(people.provider[i]), "without names: the slot number"
    people.model_provider[i], people.model_tenure[i] = 2, 3
    people.second_provider[i], people.split[i], people.multihomer[i] = 1, 0.25, True
    layered = people.view(i, market.names)
    assert (layered.model_provider, layered.model_tenure) == (market.names[2], 3)
    assert (layered.second_provider, layered.split, layered.multihomer) == (market.names[1], 0.25, True)
    none = people.view(j, market.names)
    assert none.provider is None and none.uses_model is False and isinstance(none.tenure, int)
    assert none.adopted is bool(people.adopted[j])

    frame = people.frame()
    assert {"segment", "adopted", "provider", "tenure", "uses_model", "compute_demand", "token_need",
            "w_capability", "w_price", "w_fit", "w_reliability"} <= set(frame.columns)
    row = frame.iloc[i]
    assert row["segment"] == v.segment and row["provider"] == people.provider[i] and row["tenure"] == 5
    assert bool(row["adopted"]) and bool(row["uses_model"])
    assert (row["model_provider"], row["model_tenure"], row["second_provider"], row["split"], row["multihomer"]) == \
        (2, 3, 1, 0.25, True)
    assert (row["compute_demand"], row["token_need"]) == pytest.approx((v.compute_demand, v.token_need))
    assert (row["w_capability"], row["w_price"], row["w_fit"], row["w_reliability"]) == pytest.approx(
        (v.w_capability, v.w_price, v.w_fit, v.w_reliability))


def test_population_memory_grows_with_customers_only():
    small, big = population(customers=1000)[0], population(customers=3000)[0]
    assert big.nbytes == 3 * small.nbytes
    assert small.nbytes >= small.compute.nbytes + small.weights.nbytes + small.provider.nbytes + small.adopted.nbytes


def test_a_tail_index_of_two_still_gives_finite_sizes():
    people, _ = population(customers=2000, size_tail=2.0, market_compute=1e5)
    assert np.isfinite(people.compute).all() and people.compute[people.adopted].sum() == pytest.approx(1e5, rel=1e-4)


class AllGapsOne:
    """A stand-in generator whose exponential draws are all 0: every gap is 1, so every index is drawn."""

    def standard_exponential(self, size):
        return np.zeros(size)


def test_bernoulli_gaps_refill_until_past_n():
    """With a small p the successes are drawn in chunks of about n p + 4 sd + 16 gaps; when a chunk
    ends before n the next one goes on from its last position (here: every gap 1, so all of 0..n-1)."""
    for n in (1, 16, 17, 18, 40, 200):  # chunks of 16-18 gaps: a chunk may end just before, at or past n
        assert np.array_equal(bernoulli_indices(AllGapsOne(), n, 0.01), np.arange(n)), n


def test_bernoulli_indices_of_one_customer():
    draws = [bernoulli_indices(np.random.default_rng(s), 1, 0.9).tolist() for s in range(40)]
    assert draws.count([0]) > 30 and set(map(tuple, draws)) <= {(0,), ()}


@pytest.mark.parametrize("preset, overrides", [
    ("minimal", {"multihoming.share": 0.6}),                             # multi-homing on, preference noise
    ("minimal", {"multihoming.share": 0.0, "demand.preference_spread": 0.0}),  # neither
])
def test_a_population_replaced_by_a_snapshot_draws_the_same_numbers_without_computing(preset, overrides):
    # A snapshot start only needs the generator to go on as after a drawn population: the
    # draw-only path must take exactly the same numbers from the stream (one missing draw fails).
    from sim.config import load_config, with_overrides

    config = with_overrides(load_config(preset), {"run.customers": 3000, **overrides})
    drawn, replaced = np.random.default_rng(5), np.random.default_rng(5)
    CustomerPopulation(config, drawn)
    people = CustomerPopulation(config, replaced, replaced=True)
    assert drawn.bit_generator.state == replaced.bit_generator.state
    assert people.n == 3000 and not people.first_contract.any() and people.segment_names == list(config.demand.segments)


def test_population_arrays_have_their_documented_dtypes():
    """The memory budget (43 bytes per customer) rests on these dtypes (CustomerPopulation's docstring)."""
    from sim.model import Market
    from tests.conftest import make_config

    people = Market(config=make_config(n_identical=2, customers=300, multihoming={"share": 0.5})).customers
    expected = {"segment": np.int8, "compute": np.float32, "token_need": np.float32, "weights": np.float32,
                "provider": np.int16, "tenure": np.int16, "uses_model": np.bool_, "first_contract": np.bool_,
                "adopted": np.bool_, "model_provider": np.int16, "model_tenure": np.int16,
                "second_provider": np.int16, "split": np.float32, "multihomer": np.bool_}
    for name, dtype in expected.items():
        assert getattr(people, name).dtype == dtype, name


@pytest.mark.parametrize("method, shape", [("random", (2 * DISCARD_CHUNK + 1,)), ("standard_exponential", (DISCARD_CHUNK,)),
                                           ("standard_normal", (DISCARD_CHUNK // 4 + 3, 4)), ("random", (0,))])
def test_discard_leaves_the_generator_where_the_whole_draw_leaves_it(method, shape):
    """A snapshot start draws the numbers a drawn population would and throws them away, in chunks
    (one reused buffer): the stream must go on exactly as after the whole draw."""
    whole, chunked = np.random.default_rng(11), np.random.default_rng(11)
    getattr(whole, method)(shape)
    discard(chunked, method, int(np.prod(shape)))
    assert whole.bit_generator.state == chunked.bit_generator.state
    assert whole.standard_normal(3).tolist() == chunked.standard_normal(3).tolist()
