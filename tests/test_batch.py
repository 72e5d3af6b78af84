"""Runs as a leading axis (sim/batch.py): a run's outputs do not depend on its batch.

Each test compares every recorded column bit for bit.  The identity test fails if the
runs of a batch shared a random generator, or if a vectorised submodel let one run's
customers or providers reach another's results (checked by swapping the order of the
batch and by mixing parameters and seeds).
"""

from __future__ import annotations

import numpy as np
import pandas as pd
import pytest

from sim.api import load_config
from sim.batch import Batch, batch_key, join_populations, run_batch
from sim.config import with_overrides
from sim.simulate import simulate

CUSTOMERS = 1500


def _configs(preset: str, variants: list[dict]) -> list:
    base = load_config(preset)
    return [with_overrides(base, {"run.customers": CUSTOMERS, **v}, source="test") for v in variants]


def _frames(market) -> tuple[pd.DataFrame, pd.DataFrame, pd.DataFrame]:
    return market.recorder.frames()


def _alone_and_in_batch(configs: list) -> list[tuple]:
    """(run alone, same run in the batch) per config, once each run's tables are checked equal alone,
    in the batch and in the batch reversed."""
    batched = run_batch(configs)
    reordered = run_batch(configs[::-1])[::-1]
    pairs = []
    for config, in_batch, in_other in zip(configs, batched, reordered):
        alone = run_batch([config])[0]
        _assert_same(_frames(alone), _frames(in_batch))
        _assert_same(_frames(alone), _frames(in_other))
        pairs.append((alone, in_batch))
    return pairs


def _assert_same(alone, batched) -> None:
    for a, b in zip(alone, batched):
        pd.testing.assert_frame_equal(a, b, check_exact=True)


@pytest.mark.parametrize("preset", ["china_2025", "tipping", "global_2025"])
def test_a_run_in_a_batch_gives_what_it_gives_alone(preset):
    variants = [{"run.seed": 1}, {"run.seed": 2, "capability.flywheel": 2.0}, {"run.seed": 1, "choice.switching_base": 0.5},
                {"run.seed": 7, "demand.bass_q": 0.6}]
    configs = _configs(preset, variants)
    batched = run_batch(configs)
    reordered = run_batch(configs[::-1])[::-1]
    for config, in_batch, in_other in zip(configs, batched, reordered):
        result = simulate(config)
        alone = (result.providers, result.market, result.flows)
        _assert_same(alone, _frames(in_batch))
        _assert_same(alone, _frames(in_other))


def test_runs_of_a_batch_differ_where_their_seeds_or_parameters_do():
    """Guards the test above against a batch that ran one run R times."""
    a, b, c = run_batch(_configs("china_2025", [{"run.seed": 1}, {"run.seed": 2}, {"run.seed": 1, "capability.flywheel": 3.0}]))
    pa_, pb, pc = (_frames(m)[0]["share_revenue"].to_numpy() for m in (a, b, c))
    assert not np.array_equal(pa_, pb) and not np.array_equal(pa_, pc)


def test_providers_and_customers_of_a_run_are_views_of_the_batch():
    batch = Batch(_configs("minimal", [{"run.seed": 1}, {"run.seed": 2}]))
    batch.step()
    second = batch.markets[1]
    provider = second.slots[0]
    provider.cash = 123.0
    assert batch.table.cash[1, 0] == 123.0 and batch.table.cash[0, 0] != 123.0
    batch.table.price[1, 0] = 7.0
    assert provider.price == 7.0
    n = batch.n
    second.customers.tenure[:3] = 99
    assert (batch.customers.tenure[n:n + 3] == 99).all() and batch.customers.n == 2 * n


def test_market_status_is_a_read_only_view_of_the_batch_active_flags():
    """Market.status (and active_providers, pending_entrants) read Batch.active, the record the
    submodels read, so the two cannot disagree: a change to the flags shows in the status of that
    run only, and status cannot be written or rebound (fails while status is a list of its own)."""
    from tests.conftest import make_config, provider

    entrants = [{**provider("Startup", initial_share=0.0), "bankroll": 0.0, "funding": 0.0, "earliest": 2}]
    configs = [make_config([provider("A", initial_share=0.5), provider("B", initial_share=0.5)], customers=200,
                           quarters=2, seed=seed, entrants=entrants) for seed in (1, 2)]
    batch = Batch(configs)
    first, second = batch.markets
    assert tuple(second.status) == ("active", "active", "pending") and [s for s, _ in second.pending_entrants()] == [2]
    batch.active[1, 0] = False
    assert second.status[0] == "exited" and second.slots[0] not in second.active_providers()
    assert first.status[0] == "active" and first.slots[0] in first.active_providers()
    batch.active[1, 2] = True  # an entrant's slot flagged, never filled: not a provider to step
    assert second.status[2] == "active" and second.pending_entrants() == [] and len(second.active_providers()) == 1
    batch.active[1] = [True, True, False]
    with pytest.raises(TypeError, match="Market.status is read-only"):
        second.status[0] = "exited"
    with pytest.raises(AttributeError, match="Market.status is read-only"):
        second.status = ["exited", "active", "pending"]
    with pytest.raises(AttributeError):
        batch.active = np.zeros((2, 3), dtype=bool)
    second.retire(second.slots[1])
    assert not batch.active[1, 1] and tuple(second.status) == ("active", "exited", "pending") and batch.active[0].tolist() == [True, True, False]
    assert batch.active is batch.table.active
    batch.step()  # the batch steps with run 1's B gone
    assert second.recorder.latest("status", 1) == "exited" and first.recorder.latest("status", 1) == "active"


def test_a_run_of_a_larger_batch_cannot_be_stepped_alone():
    batch = Batch(_configs("minimal", [{"run.seed": 1}, {"run.seed": 2}]))
    with pytest.raises(RuntimeError, match="step the batch"):
        batch.markets[0].step()
    assert all(m.steps == 0 for m in batch.markets)


def test_configs_of_different_structure_are_refused():
    small, large = _configs("minimal", [{}, {}])
    large = with_overrides(large, {"run.customers": CUSTOMERS + 1}, source="test")
    assert batch_key(small) != batch_key(large)
    with pytest.raises(ValueError, match="does not share the batch's structure"):
        run_batch([small, large])


def test_a_market_on_its_own_is_a_batch_of_one_driven_by_mesa_too():
    """Mesa's own clock (run_for) steps a Market alone through the same batch code."""
    config = _configs("minimal", [{"run.seed": 3, "run.quarters": 6}])[0]
    from sim.model import Market

    market = Market(config=config)
    market.run_for(6)
    _assert_same(_frames(run_batch([config])[0]), _frames(market))


def test_joined_population_holds_each_run_end_to_end():
    configs = _configs("minimal", [{"run.seed": 1}, {"run.seed": 2}])
    from sim.model import Market

    pops = [Market(config=c).customers for c in configs]
    copies = [p.compute.copy() for p in pops]
    joined = join_populations(pops)
    assert np.array_equal(joined.compute, np.concatenate(copies))
    joined.compute[CUSTOMERS] = -1.0
    assert pops[1].compute[0] == -1.0


def _customer_side_configs() -> list:
    """Runs of one structure whose customer-side submodels (choice, installed base, multi-homing,
    model choice) take different paths: an exit and an entry in some runs only, the model layer
    apart or tied to the cloud, multi-homing on or off, bandwagon on or off, surges and the
    showcase segments watching them, initial model users, model services opening later."""
    from tests.conftest import make_config, provider

    segments = ("internet", "enterprise", "government", "startup", "overseas")

    def config(seed, *, doomed_cash=-1.0e4, bankroll=1.0e5, bandwagon=0.5, models=None, multihoming=None,
               showcase=None, surges=None, demand=None, renewal=None, **sections):
        providers = [provider("Doomed", initial_share=0.3, cash=doomed_cash), provider("A", initial_share=0.4),
                     provider("B", initial_share=0.3, has_model=False, affinity={"government": 1.0})]
        entrant = {**provider("Startup", capability=0.9), "bankroll": bankroll, "funding": 0.0, "earliest": 2}
        segs = {s: {"bandwagon": bandwagon if s != "overseas" else 0.0, "model_use_rate": 0.3} for s in segments}
        for s, hazard in (renewal or {}).items():
            segs[s]["renewal_hazard"] = hazard
        return make_config(providers, customers=1200, quarters=8, seed=seed, entrants=[entrant],
                           entry={"entry_compute": 1e4, "exit_after": 2},
                           demand={"bass_p": 0.05, "segments": segs, **(demand or {})},
                           models={"initial_use": 0.3, **(models or {})},
                           multihoming={"share": 0.6, "split": 0.3, "migration_rate": 0.5, **(multihoming or {})},
                           showcase=showcase or {}, service={"surges": surges or []}, **sections)

    return [
        config(1, surges=[{"quarter": 2, "multiplier": 3.0, "provider": "A"}]),
        config(2, doomed_cash=1.0e5, bankroll=0.0, bandwagon=0.0, models={"choose_apart": False, "initial_use": 0.0},
               multihoming={"share": 0.0}, demand={"model_services_start": 3}),
        config(3, bandwagon=0.9, multihoming={"share": 1.0, "split": 0.5, "migration_rate": 1.0},
               showcase={"segments": ["enterprise", "startup"], "decay": 0.3},
               surges=[{"quarter": 1, "multiplier": 4.0}], models={"same_cloud_bonus": 2.5, "model_renewal_hazard": 0.3},
               renewal={"internet": 0.5, "startup": 0.05}),
        config(1, surges=[{"quarter": 2, "multiplier": 3.0, "provider": "A"}], choice={"switching_base": 0.2, "model_lock": 3.0},
               installed_base={"floor": 0.2}, open_weights={"enabled": False}),
    ]


def test_customer_side_submodels_in_a_batch_give_what_each_run_gives_alone():
    """Choice, installed base, multi-homing and model choice over the runs axis: bit for bit the
    run alone, in a batch and in the batch reversed, with the runs taking different rare paths."""
    configs = _customer_side_configs()
    pairs = _alone_and_in_batch(configs)
    batched = [in_batch for _, in_batch in pairs]
    for alone, in_batch in pairs:
        for name in ("provider", "second_provider", "split", "model_provider", "uses_model", "tenure", "model_tenure"):
            assert np.array_equal(getattr(alone.customers, name), getattr(in_batch.customers, name)), name
    # The rare paths were taken, and only where they should be.
    markets = [m.recorder.frames()[1] for m in batched]
    assert markets[0]["exits"].sum() == 1 and markets[0]["entries"].sum() == 1
    assert markets[1]["exits"].sum() == 0 and markets[1]["entries"].sum() == 0
    first, second = batched[0].customers, batched[1].customers
    assert (first.second_provider[first.multihomer] != -1).any() and not second.multihomer.any()
    tied = batched[1].customers
    assert tied.uses_model.any() and (tied.model_provider[tied.uses_model] == tied.provider[tied.uses_model]).all()
    apart = batched[0].customers
    assert (apart.model_provider[apart.uses_model] != apart.provider[apart.uses_model]).any()
    assert any(p.standing != 0 for p in batched[2].active_providers())
def test_entries_exits_capability_and_the_record_of_runs_that_differ_in_a_batch():
    """Capability, entry and exit, the guard and the recorder (helper HD's part of issue 15) over a
    batch whose runs differ in seed, exit rule, entrants' money and learning: providers exit and
    entrants enter in different quarters in different runs, and each run's tables equal those it
    gives alone, bit for bit.  Fails if a run's setting reaches another (checked with every run
    given run 0's exit_after, flywheel or models.token_unit) or the runs' bankrolls are shared."""
    from tests.conftest import make_config, provider

    def config(seed, exit_after, bankroll, funding, flywheel, token_unit):
        providers = [provider("Doomed", initial_share=0.4, cash=-1e6, capex_share=0.0), provider("Sound", initial_share=0.4),
                     provider("Mid", initial_share=0.2, cash=-3e5 * seed, capex_share=0.0)]
        entrants = [{**provider("Startup", initial_share=0.0), "bankroll": bankroll, "funding": 0.0, "earliest": 2},
                    {**provider("Late", initial_share=0.0), "bankroll": 0.0, "funding": funding, "earliest": 4}]
        return make_config(providers, customers=1000, quarters=10, seed=seed, entrants=entrants,
                           entry={"exit_after": exit_after, "entry_compute": 1e4}, capability={"flywheel": flywheel},
                           models={"token_unit": token_unit})

    configs = [config(1, 2, 0.0, 2e3, 1.0, 1e6), config(2, 3, 1e5, 0.0, 2.5, 2e6), config(3, 4, 1e5, 1e3, 0.5, 1e6)]
    batched = [_frames(m) for m in run_batch(configs)]
    events = []
    for config, frames in zip(configs, batched):
        result = simulate(config)
        _assert_same((result.providers, result.market, result.flows), frames)
        market = frames[1]
        events.append((tuple(market.query("exits > 0")["step"]), tuple(market.query("entries > 0")["step"])))
    assert all(exits and entries for exits, entries in events), events  # every run has both
    assert len(set(events)) == len(events), events  # in different quarters


# ------------------------------------------------------------ service and money (HC)
def _money_configs() -> list:
    """Runs that differ where service and money branch: surges (a provider's, a segment's,
    none), rationing rules (parent's and market's), exponents that take numpy's fast and
    general power paths, parents' budgets and credit lines, the import cap, capex lags and depreciation, investment policies, an entrant."""
    from tests.conftest import make_config, provider

    def config(seed, *, rationing, elasticity, penalty, surges, cap, budget, credit, lag, depreciation, cash, policy="strategic"):
        providers = [provider("Group", initial_share=0.4, compute=2e5, captive_compute=6e4, captive_growth=0.05,
                              capex_share=0.1, cash=cash, parent="G", own_chip_share=0.3),
                     provider("Other", initial_share=0.35, compute=2.5e5, cash=3000.0),
                     provider("Small", initial_share=0.25, compute=1e5, capex_share=0.3, cash=-20.0, parent="G")]
        entrant = {**provider("Startup", initial_share=0.0, compute=0.0), "bankroll": 2e4, "funding": 500.0, "earliest": 3}
        return make_config(providers, customers=CUSTOMERS, quarters=8, seed=seed, entrants=[entrant],
                           entry={"entry_compute": 2e4},
                           demand={"token_elasticity": elasticity, "token_share": 0.6},
                           service={"rationing": "proportional", "overload_penalty": penalty, "surges": surges},
                           finance={"import_cap": cap, "capex_lag": lag, "depreciation": depreciation,
                                    "domestic_chip_cost": 40000.0 if cap else None},
                           investment={"policy": policy},
                           parents=[{"name": "G", "budget_per_quarter": budget, "credit_line": credit, "rationing": rationing}])

    return [
        config(1, rationing="own_apps_first", elasticity=0.7, penalty=1.5, cap=3000.0, budget=200.0, credit=500.0, lag=2, depreciation=0.05, cash=50.0,
               surges=[{"quarter": 2, "multiplier": 4.0, "provider": "Group"}]),
        config(2, rationing="customers_first", elasticity=1.0, penalty=2.0, cap=None, budget=0.0, credit=0.0, lag=1, depreciation=0.08, cash=5e4, policy="fixed_share",
               surges=[{"quarter": 1, "multiplier": 2.5, "segments": ["internet"]}]),
        config(1, rationing=None, elasticity=1.3, penalty=1.0, cap=1500.0, budget=50.0, credit=1e4, lag=2, depreciation=0.05, cash=50.0, surges=[]),
    ]


def test_service_and_money_rare_paths_in_a_batch_give_what_each_run_gives_alone():
    configs = _money_configs()
    batched = run_batch(configs)
    for config, in_batch in zip(configs, batched):
        _assert_same((lambda r: (r.providers, r.market, r.flows))(simulate(config)), _frames(in_batch))
    providers = [_frames(m)[0].set_index(["provider", "step"]) for m in batched]
    # The rare paths ran: overload and rationing, a surge, parent funding, an entry.  (The import
    # cap is set in two runs; whether it binds is not checked here.)
    assert all((p["utilisation"] > 1).any() for p in providers)
    assert providers[0].loc[("Group", 2), "utilisation"] > 1.5 * providers[2].loc[("Group", 2), "utilisation"]
    assert any((p["parent_funding"] > 0).any() for p in providers)
    assert any((p.xs("Startup", level="provider")["status"] == "active").any() for p in providers)  # it entered


def test_pricing_demand_parents_and_showcase_keep_each_runs_bits_in_a_batch():
    """HB's submodels over the runs axis, on their rare paths, with runs that differ in their
    settings: token price cuts and their relaxation, a market-wide surge scored by the showcase,
    scarcity pricing, parent grants, draws and credit-line cover, a budget window, segment growth
    and Bass imitation.  Each run alone == in the batch == in the reversed batch, bit for bit."""
    common = {"run.customers": CUSTOMERS, "run.quarters": 12}
    variants = [
        {"run.seed": 1},
        {"run.seed": 2, "pricing.token_price_cuts": [{"quarter": 3, "cut": 0.9, "provider": "Volcano Engine"},
                                                     {"quarter": 5, "cut": 0.5}],
         "service.surges": [{"quarter": 2, "multiplier": 6.0}], "showcase.size": 2.0, "pricing.scarcity_elasticity": 2.0},
        {"run.seed": 3, "parents.ByteDance.credit_line": 1.0, "providers.Volcano Engine.cash": 10.0, "demand.bass_q": 0.6,
         "demand.segments.internet.growth": 0.2, "pricing.adjustment": 0.9, "finance.opex_per_gpu": 6000.0,
         "pricing.max_markup": 0.2, "parents.Tencent.credit_line": 2000.0, "providers.Tencent Cloud.cash": 0.0,
         "providers.Tencent Cloud.committed_capex": {"start": 1, "quarters": 4, "total": 60000.0}},
        {"run.seed": 1, "parents.Tencent.budget_per_quarter": 50.0, "parents.Tencent.budget_start": 3,
         "parents.Tencent.budget_quarters": 4, "parents.Tencent.priority": 1.0, "pricing.renewal_harvest": 0.9,
         "showcase.decay": 0.05},
    ]
    base = load_config("china_2025")
    configs = [with_overrides(base, {**common, **v}, source="test") for v in variants]
    pairs = _alone_and_in_batch(configs)
    batched = [in_batch for _, in_batch in pairs]
    for alone, in_batch in pairs:
        assert alone.parent_accounts.keys() == in_batch.parent_accounts.keys()
        for name, account in alone.parent_accounts.items():
            mine = in_batch.parent_accounts[name]
            assert (account.pot, account.credit_left, account.funded) == (mine.pot, mine.credit_left, mine.funded)
    # The rare paths did happen (else the identity above would not test them).
    providers = [_frames(m)[0] for m in batched]
    assert (providers[1].token_factor < 0.2).any() and (providers[1].standing != 0).any()
    assert (providers[1].markup != providers[0].markup).any()
    assert (providers[2].parent_funding > 0).any() and batched[2].parent_accounts["Tencent"].credit_left < 2000.0
    assert batched[3].parent_accounts["Tencent"].funded >= 0 and batched[3].parent_accounts["Tencent"].pot != \
        batched[0].parent_accounts["Tencent"].pot


class _ShortFirstChunk:
    """A generator whose first chunk of standard exponentials is all zeros (gaps of 1: the chunk
    ends long before the population does), then the real stream: forces the rare continuation."""

    def __init__(self, seed):
        self.rng, self.first = np.random.default_rng(seed), True

    def standard_exponential(self, size):
        if self.first:
            self.first = False
            return np.zeros(size)
        return self.rng.standard_exponential(size)

    def random(self, size):
        return self.rng.random(size)


@pytest.mark.parametrize("probs", [[0.01, 0.03, 0.0, 0.2], [0.3, 0.01, 1e-320, 1.0], [0.0, 0.0, 0.0, 0.0], [0.05] * 4,
                                   [1e-308, 2e-5, 1e-308, 0.24]])
def test_batch_bernoulli_draws_what_each_run_draws_alone(probs):
    """Batch.bernoulli (the gaps of all runs handled as one array) == customers.bernoulli_indices
    run by run from the same generators, with p = 0, p below ~1e-308, p = 1e-308 (gaps that
    overflow to inf), p >= GAPS_BELOW (one uniform per customer), runs sharing a p, and a first
    chunk of gaps that falls short of the population."""
    from sim.customers import bernoulli_indices

    n = 1000
    for short in (False, True):
        def generators():
            return [_ShortFirstChunk(s) if short and r % 2 else np.random.default_rng(s) for r, s in enumerate((3, 4, 5, 6))]

        batch = Batch.__new__(Batch)
        batch.size, batch.n = 4, n
        batch.markets = [type("M", (), {"rng": g})() for g in generators()]
        got = batch.bernoulli(np.array(probs))
        want = np.concatenate([bernoulli_indices(g, n, p) + r * n for r, (g, p) in enumerate(zip(generators(), probs))])
        assert got.dtype == want.dtype and np.array_equal(got, want), (short, probs)
        after = [m.rng.random(3) for m in batch.markets]  # the generators moved on alike
        assert all(np.array_equal(a, g.random(3)) for a, g in zip(after, [
            _consume(g, n, p) for g, p in zip(generators(), probs)]))


def _consume(rng, n, p):
    from sim.customers import bernoulli_indices

    bernoulli_indices(rng, n, p)
    return rng


def test_utilities_of_customers_in_any_order_are_those_of_each_run():
    """choice.utilities and model_choice.model_utilities over a batch: customers grouped by run
    (per-run values spread by np.repeat) and the same customers shuffled (by a gather) give the
    same rows, and each row is what its run alone gives."""
    from sim.submodels import choice, model_choice

    configs = _customer_side_configs()
    batch = Batch(configs)
    for _ in range(3):
        batch.step()
    alone = [Batch([c]) for c in configs]
    for b in alone:
        for _ in range(3):
            b.step()
    n = batch.n
    idx = np.flatnonzero(batch.customers.provider != -1)[::7]
    shuffled = np.random.default_rng(0).permutation(idx)
    back = np.argsort(shuffled)
    slots = batch.slot_table()
    for rows in (choice.utilities(batch, idx), model_choice.model_utilities(batch, idx, slots)):
        assert rows.shape == (idx.size, batch.n_slots)
    grouped = choice.utilities(batch, idx)
    assert np.array_equal(choice.utilities(batch, shuffled)[back], grouped)
    model = model_choice.model_utilities(batch, idx, slots)
    assert np.array_equal(model_choice.model_utilities(batch, shuffled, slots)[back], model)
    for r, b in enumerate(alone):
        mine = idx[(idx >= r * n) & (idx < (r + 1) * n)]
        at = np.flatnonzero((idx >= r * n) & (idx < (r + 1) * n))
        assert np.array_equal(choice.utilities(b, mine - r * n), grouped[at])
        assert np.array_equal(model_choice.model_utilities(b, mine - r * n, b.slot_table()), model[at])


def test_totals_count_and_sum_per_run_and_slot_and_skip_customers_without_one():
    """Batch.totals (the engine's per-slot totals; it replaced CustomerPopulation.provider_totals):
    counts, float64 sums and counts of a flag, per run, with an empty last slot."""
    batch = Batch(_configs("minimal", [{"run.seed": 1, "run.customers": 10}, {"run.seed": 2, "run.customers": 10}]))
    people = batch.customers
    people.provider[:] = [0, 1, -1, 1, 0, 0, -1, 0, -1, -1] + [1, 1, 0, -1, -1, -1, -1, -1, -1, 0]
    people.compute[:] = 2.0 ** np.arange(20)
    flags = np.zeros(20, dtype=bool)
    flags[[0, 1, 2, 5, 10, 12]] = True
    counts, sums, flagged = (batch.totals(people.provider, w) for w in (None, people.compute, flags))
    assert counts.tolist() == [[4, 2], [2, 2]]
    assert sums.dtype == np.float64 and sums.tolist() == [[1 + 16 + 32 + 128, 2 + 8], [2.0**12 + 2.0**19, 2.0**10 + 2.0**11]]
    assert flagged.tolist() == [[2, 1], [1, 1]]
    people.provider[people.provider == 1] = 0  # the last slot empty
    assert batch.totals(people.provider).tolist() == [[6, 0], [4, 0]]


def test_a_run_without_providers_moves_nobody_while_the_batchs_other_runs_choose_as_alone():
    """Choice, multi-homing and model choice in a batch where every provider of run 1 has exited:
    its customers get no provider and no model (its deciders are dropped before the logit, which
    would otherwise pick an inactive slot), and run 0 ends as it ends alone, bit for bit."""
    from sim.submodels import choice, demand, model_choice, multihoming
    from tests.conftest import make_config

    def closed(batch, runs):
        for r in runs:
            market = batch.markets[r]
            for p in list(market.active_providers()):
                market.retire(p)
            people = market.customers
            people.provider[:], people.second_provider[:], people.model_provider[:] = -1, -1, -1
            people.split[:] = 0.0
            people.uses_model[::3] = True  # model users whose model provider is gone: deciders of model choice
        return batch

    configs = [make_config(n_identical=3, customers=2000, seed=seed, demand={"bass_p": 0.2},
                           multihoming={"share": 0.5, "split": 0.3}) for seed in (1, 2)]
    batch, alone = closed(Batch(configs), [1]), Batch(configs[:1])
    for b in (batch, alone):
        for step in (demand.step, choice.step, multihoming.step, model_choice.step):
            step(b)
    n = batch.n
    for name in ("provider", "second_provider", "split", "model_provider", "uses_model", "tenure", "model_tenure"):
        assert np.array_equal(getattr(batch.customers, name)[:n], getattr(alone.customers, name)), name
    shut = batch.markets[1].customers
    assert shut.adopted.sum() > 200 and shut.uses_model.any()  # it had deciders of both kinds
    assert (shut.provider == -1).all() and (shut.model_provider == -1).all() and (shut.second_provider == -1).all()
    assert batch.markets[1].churn == 0.0 and (alone.customers.provider != -1).sum() > 1000


def test_sum_slots_adds_left_to_right_as_a_loop_over_providers_does():
    """Batch.sum_slots: per run, the slots in ``where`` added one after the other, left to right, as
    a loop over a run's providers adds them (another order gives other last bits: numpy's own sum
    adds pairwise from 8 values on)."""
    def left_to_right(row):
        total = 0.0
        for v in row:
            total += v
        return total

    batch = Batch(_configs("china_2025", [{"run.seed": 1, "run.customers": 10}, {"run.seed": 2, "run.customers": 10}]))
    values = np.array([[1e16, 1.0, 1.0, 1.0, 1.0, 1.0], [1.0, 1.0, 1e16, 1.0, 1.0, 1.0]])
    everywhere = np.ones(values.shape, dtype=bool)
    assert batch.sum_slots(values, where=everywhere).tolist() == [left_to_right(row) for row in values.tolist()]
    assert [left_to_right(row[::-1]) for row in values.tolist()] != [left_to_right(row) for row in values.tolist()]
    where = np.array([[True, False, True, True, False, True], [False, True, True, True, True, False]])
    assert batch.sum_slots(values, where=where).tolist() == [
        left_to_right(v for v, kept in zip(row, mask) if kept) for row, mask in zip(values.tolist(), where.tolist())]


@pytest.mark.parametrize("runs", [1, 2])
def test_bin_key_is_slot_key_with_bins_per_slot(runs):
    """Batch.bin_key (small integer keys) names the same bins as scale * slot_key + plus, for a
    flag (scale 2) and for a second slot (scale slots + 1), and beyond int16 (intp keys)."""
    batch = Batch(_configs("minimal", [{"run.seed": s, "run.customers": 10} for s in range(1, runs + 1)]))
    people = batch.customers
    people.provider[:] = np.tile([0, 1, -1, 1, 0, 0, -1, 0, -1, -1], runs)
    flag = (np.arange(10 * runs) % 3 == 0).view(np.int8)
    other = np.add(people.provider[::-1], 1, dtype=np.int16)
    slots = batch.n_slots
    for scale, plus in [(1, None), (2, flag), (slots + 1, other), (20000, flag)]:
        key = batch.bin_key(people.provider, scale, plus)
        expected = scale * batch.slot_key(people.provider) + (0 if plus is None else plus)
        assert np.array_equal(key, expected) and key.min() >= 0
        assert key.dtype == (np.int16 if scale < 20000 else np.int32)
