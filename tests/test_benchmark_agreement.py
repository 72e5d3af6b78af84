"""The benchmark's versions of the choice rule agree, its agreement check catches a wrong
rule, and the sampling shortcuts the engine uses keep the textbook laws."""

import dataclasses
import warnings
from functools import partial

import numpy as np
import pytest
from scipy import stats

from benchmarks import agreement
from benchmarks.choice_rule import rule_of, start
from benchmarks.engine import run_market_step
from sim.customers import bernoulli_indices, thinned
from sim.submodels.choice import logit_draw

SMALL = {"customers": 1500, "quarters": 16, "seeds": (1, 2, 3)}


def test_kernel_engine_and_mesa_agree_in_distribution():
    versions = {name: agreement.VERSIONS[name] for name in
                ("bare kernel", "naive kernel (uniform per customer, Gumbel-max)", "engine (choice.step)", "mesa per-agent")}
    result = agreement.require(agreement.check(versions=versions, **SMALL))
    assert result.ok and set(result.shares) == set(versions)
    for shares in result.shares.values():
        assert shares.sum() == pytest.approx(1.0) and (shares > 0).all()


@pytest.mark.parametrize("edit", [
    lambda r: dataclasses.replace(r, lock_in=r.lock_in * 1.5),
    lambda r: dataclasses.replace(r, switching_tenure=0.0),
    lambda r: dataclasses.replace(r, renewal=r.renewal * 1.5),
], ids=["lock-in", "tenure term", "renewal hazard"])
def test_agreement_check_rejects_a_different_rule(edit):
    versions = {"kernel": agreement.run_kernel, "altered": partial(agreement.run_kernel, rule_edit=edit)}
    result = agreement.check(versions=versions, **SMALL)
    assert not result.ok
    with pytest.raises(agreement.AgreementError, match="do not agree"):
        agreement.require(result)


def test_neutral_config_holds_provider_attributes_still():
    market, before, _ = start(500, 7)
    run_market_step(market, 12)
    agreement.assert_rule_unchanged(before, rule_of(market))
    market.slots[0].price *= 1.1
    with pytest.raises(agreement.AgreementError, match="attraction"):
        agreement.assert_rule_unchanged(before, rule_of(market))


@pytest.mark.parametrize("p", [0.003, 0.07, 0.2, 0.6])
def test_bernoulli_indices_draws_each_index_independently_with_p(p):
    rng = np.random.default_rng(11)
    n, runs = 400, 4000
    hits = np.zeros(n)
    counts = np.empty(runs)
    for r in range(runs):
        idx = bernoulli_indices(rng, n, p)
        assert np.all(np.diff(idx) > 0) and (idx.size == 0 or (idx[0] >= 0 and idx[-1] < n))
        hits[idx] += 1
        counts[r] = idx.size
    # count per run is Binomial(n, p); every index is hit with probability p
    assert counts.mean() == pytest.approx(n * p, rel=0.03)
    assert counts.var() == pytest.approx(n * p * (1 - p), rel=0.1)
    assert stats.chisquare(hits.reshape(20, -1).sum(axis=1)).pvalue > 1e-3  # no position favoured


def test_bernoulli_indices_edges():
    rng = np.random.default_rng(0)
    assert bernoulli_indices(rng, 100, 0.0).size == 0
    assert bernoulli_indices(rng, 0, 0.5).size == 0
    assert np.array_equal(bernoulli_indices(rng, 50, 1.0), np.arange(50))
    with warnings.catch_warnings():
        warnings.simplefilter("error")  # a vanishing hazard must not overflow noisily
        for tiny in (5e-324, 1e-310, 1e-300):
            assert bernoulli_indices(rng, 10_000, tiny).size == 0


def test_thinning_gives_each_candidate_its_own_hazard():
    rng = np.random.default_rng(3)
    hazard = np.array([0.01, 0.05, 0.1])
    group = np.repeat([0, 1, 2], 100_000)
    top = hazard.max()
    drawn = bernoulli_indices(rng, group.size, top)
    picked = thinned(rng, drawn, hazard[group[drawn]], top)
    rates = np.bincount(group[picked], minlength=3) / 100_000
    assert np.allclose(rates, hazard, rtol=0.06), rates


def test_logit_draw_matches_multinomial_logit_probabilities():
    rng = np.random.default_rng(5)
    v = np.array([0.0, 1.0, -np.inf, 0.5, -np.inf])
    n = 60_000
    chosen = logit_draw(np.tile(v, (n, 1)), rng)
    expected = np.exp(np.where(np.isfinite(v), v, -np.inf))
    expected /= expected.sum()
    freq = np.bincount(chosen, minlength=5) / n
    assert freq[2] == 0 and freq[4] == 0, "unavailable providers are never chosen"
    assert np.allclose(freq, expected, atol=0.01), (freq, expected)


def test_logit_draw_rounding_guard_picks_the_last_available_provider():
    class TopOfRange:
        def random(self, size):
            return np.ones(size)  # u at the very top of the cumulative weights

    utility = np.array([[0.0, 1.0, -np.inf], [2.0, -np.inf, -np.inf]])
    assert logit_draw(utility, TopOfRange()).tolist() == [1, 0]
