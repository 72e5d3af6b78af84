"""Market as Mesa users drive it: keyword parameters, the horizon, one clock, the DataCollector
and ``mesa.batch_run``."""

from __future__ import annotations

import multiprocessing

import mesa
import numpy as np
import pandas as pd
import pytest

from sim.agents import Provider
from sim.config import ConfigError, load_config, with_overrides
from sim.model import HorizonReached, Market
from sim.parameters import flat_names
from sim.simulate import simulate


@pytest.fixture
def keep_start_method():
    """mesa.batch_run forces the process-wide start method to spawn; put it back afterwards."""
    before = multiprocessing.get_start_method(allow_none=True)
    yield
    multiprocessing.set_start_method(before, force=True)


# ------------------------------------------------------------------ keywords
def test_keywords_give_the_same_config_as_overrides():
    by_keywords = Market(preset="minimal", customers=300, flywheel=2.5, **{"providers.*.lock_in": 3.0})
    expected = with_overrides(load_config("minimal"), {"run.customers": 300, "capability.flywheel": 2.5,
                                                       "providers.0.lock_in": 3.0, "providers.1.lock_in": 3.0})
    assert by_keywords.config == expected
    assert [p.lock_in for p in by_keywords.active_providers()] == [3.0, 3.0]
    by_dict = Market(preset="minimal", overrides={"run.customers": 300, "capability.flywheel": 2.5,
                                                  "providers.FullStack.lock_in": 3.0, "providers.Porter.lock_in": 3.0})
    assert by_dict.config == expected


def test_config_keyword_still_works_and_keywords_apply_on_top(minimal):
    assert Market(config=minimal).config == minimal
    assert Market(config=minimal, quarters=5).config.run.quarters == 5
    assert Market().config == minimal  # Mesa harnesses call Model() with no arguments


@pytest.mark.parametrize("kwargs, words", [
    ({"lock_in": 2.0}, ["Market(lock_in=...)", "unknown parameter", "providers.*.FIELD"]),
    ({"flywhel": 2.0}, ["unknown parameter", "did you mean flywheel"]),
    ({"capability": 0.5}, ["ambiguous", "open_weights.capability"]),
    ({"flywheel": -1.0}, ["capability.flywheel", "allowed: >= 0"]),
    ({"providers.Nobody.lock_in": 1.0}, ["no item 'Nobody'", "FullStack, Porter"]),
])
def test_bad_keywords_give_one_line_naming_the_key(kwargs, words):
    with pytest.raises(ConfigError) as err:
        Market(preset="minimal", **kwargs)
    assert len(err.value.problems) == 1
    assert all(w in err.value.problems[0] for w in words), err.value.problems[0]


def test_flat_names_are_unique_section_fields():
    names = flat_names()
    assert names["flywheel"] == "capability.flywheel" and names["customers"] == "run.customers"
    assert "capability" not in names and "lock_in" not in names
    assert len(set(names.values())) == len(names)


# ------------------------------------------------------------------ horizon and clock
def test_running_stops_at_the_horizon_and_run_respects_it():
    market = Market(preset="minimal", customers=200, quarters=6)
    market.step()
    assert market.running and market.t == market.steps == 1
    market.run()  # the rest, not the full horizon again
    assert market.steps == market.t == 6 and not market.running
    assert [row["step"] for row in market.recorder.market_rows] == list(range(6))
    with pytest.raises(HorizonReached, match="run.quarters"):
        market.step()
    assert market.steps == 6 and market.time == 6 and len(market.recorder.market_rows) == 6


def test_run_with_a_count_stops_at_the_count_or_the_horizon():
    market = Market(preset="minimal", customers=200, quarters=6)
    market.run(4)
    assert market.steps == 4 and market.running
    market.run(10)
    assert market.steps == 6
    other = Market(preset="minimal", customers=200, quarters=6)
    other.run_model()  # Mesa's own loop ends because running turns False
    assert other.steps == 6


def test_t_is_derived_from_steps_and_read_only():
    market = Market(preset="minimal", customers=200, quarters=3)
    seen = []
    recorder = market._batch.recorder  # records every run of the batch (here one) once a quarter
    original = recorder.record
    recorder.record = lambda *args: (seen.append((market.t, market.steps)), original(*args))[1]
    market.run()
    assert seen == [(0, 1), (1, 2), (2, 3)]  # during a step: the quarter simulated
    with pytest.raises(AttributeError):
        market.t = 5


# ------------------------------------------------------------------ DataCollector
def test_datacollector_matches_the_recorder():
    cfg = with_overrides(load_config("minimal"), {"run.customers": 400, "run.quarters": 8})
    market = Market(config=cfg)
    market.run()
    reference = simulate(cfg)
    model_vars = market.datacollector.get_model_vars_dataframe()
    assert len(model_vars) == 8
    for column in ("hhi_revenue", "cr3_compute", "hhi_tokens", "churn"):
        np.testing.assert_allclose(model_vars[column].to_numpy(), reference.market[column].to_numpy())
    agents = market.datacollector.get_agenttype_vars_dataframe(Provider).reset_index()
    last = agents[agents["Step"] == agents["Step"].max()].set_index("provider")
    final = reference.providers[reference.providers["step"] == 7].set_index("provider")
    for column in ("share_revenue", "share_tokens", "price", "cash", "capability"):
        np.testing.assert_allclose(last[column], final.loc[last.index, column])



def test_datacollector_gives_what_mesas_own_collect_gives_with_entries_and_exits():
    """The DataCollector reads its values from the recorder when asked (a collect notes the record
    and the agents); Mesa's own DataCollector with the same reporters, collected after every quarter,
    must hold the same model values and agent rows, through an exit (its agent leaves) and an entry."""
    from sim import datacollection
    from tests.conftest import make_config, provider

    providers = [provider("Doomed", initial_share=0.4, cash=-1e6, capex_share=0.0), provider("Sound", initial_share=0.6)]
    entrants = [{**provider("Startup", initial_share=0.0), "bankroll": 1e5, "funding": 0.0, "earliest": 3}]
    market = Market(config=make_config(providers, customers=600, quarters=7, entrants=entrants,
                                       entry={"exit_after": 2, "entry_compute": 1e4}))
    eager = mesa.DataCollector(**datacollection.reporters())
    for _ in range(7):
        market.step()
        eager.collect(market)
    lazy = market.datacollector
    _, quarters, _ = market.recorder.frames()
    assert quarters["exits"].sum() == 1 and quarters["entries"].sum() == 1
    assert lazy._collection_steps == eager._collection_steps == list(range(1, 8))
    assert lazy.model_vars == eager.model_vars and len(eager.model_vars["churn"]) == 7
    assert lazy._agenttype_records == eager._agenttype_records
    pd.testing.assert_frame_equal(lazy.get_model_vars_dataframe(), eager.get_model_vars_dataframe(), check_exact=True)
    agents = lazy.get_agenttype_vars_dataframe(Provider)
    pd.testing.assert_frame_equal(agents, eager.get_agenttype_vars_dataframe(Provider), check_exact=True)
    assert set(agents["provider"]) == {"Doomed", "Sound", "Startup"} and len(agents) < 3 * 7


# ------------------------------------------------------------------ batch_run
def test_batch_run_with_keyword_parameters_and_seeds(keep_start_method):
    rows = mesa.batch_run(Market, parameters={"preset": "minimal", "customers": 300, "quarters": 5,
                                              "flywheel": [0.0, 3.0]},
                          rng=[1, 2], number_processes=1, data_collection_period=1, display_progress=False)
    table = pd.DataFrame(rows)
    assert set(table["flywheel"]) == {0.0, 3.0} and set(table["rng"]) == {1, 2}
    # 2 values x 2 seeds x 5 quarters x 2 providers (agent rows carry the model reporters)
    assert len(table) == 2 * 2 * 5 * 2
    assert {"hhi_revenue", "cr3_tokens", "churn", "share_revenue", "price", "cash", "capability"} <= set(table.columns)
    final = table[table["Step"] == table["Step"].max()]
    for (flywheel, seed), group in final.groupby(["flywheel", "rng"]):
        cfg = with_overrides(load_config("minimal"), {"run.customers": 300, "run.quarters": 5,
                                                      "capability.flywheel": flywheel, "run.seed": seed})
        expected = simulate(cfg).market["hhi_revenue"].iloc[-1]
        assert group["hhi_revenue"].iloc[0] == pytest.approx(expected)
    # the parameter reaches the model: the flywheel raises the full-stack provider's capability
    full = final[final["provider"] == "FullStack"].groupby("flywheel")["capability"].mean()
    assert full[3.0] > full[0.0]


def test_batch_run_with_configs(keep_start_method, minimal):
    configs = [with_overrides(minimal, {"run.customers": 300, "run.quarters": 4, "name": n}) for n in ("a", "b")]
    rows = mesa.batch_run(Market, parameters={"config": configs}, rng=[5], number_processes=1,
                          display_progress=False)
    table = pd.DataFrame(rows)
    assert sorted({c.name for c in table["config"]}) == ["a", "b"]
    assert set(table["Step"]) == {4.0}
