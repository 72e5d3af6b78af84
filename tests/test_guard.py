"""Non-finite state (issue 13, case 1): a valid config cannot compound past what the state can hold,
and a quarter whose state turns NaN or infinite stops the run with one clear error."""

from __future__ import annotations

import math
import pickle

import numpy as np
import pytest

from sim import guard
from sim.cli import main
from sim.config import ConfigError, load_config
from sim.errors import NonFiniteState
from sim.model import Market


# ------------------------------------------------------------------ bounds in the config
def test_case_1_token_growth_that_overflows_the_horizon_is_a_config_error():
    """The issue's input ran to the end with NaN cash and every share at 0 %."""
    with pytest.raises(ConfigError) as err:
        load_config("china_2025", ["run.quarters=120", "run.customers=20000",
                                   "demand.segments.internet.token_growth=1.0"])
    (line,) = err.value.problems
    assert "demand.segments.internet.token_growth" in line and "run.quarters = 120" in line
    assert "token_growth <= 0.2589 for 120 quarters" in line  # the largest allowed rate, stated


def test_case_1_on_the_command_line_is_one_line_and_writes_nothing(tmp_path, capsys):
    out = tmp_path / "out"
    code = main(["run", "china_2025", "--quarters", "120", "--customers", "20000",
                 "--set", "demand.segments.internet.token_growth=1.0", "--out", str(out)])
    err = capsys.readouterr().err
    assert code == 2 and err.count("\n") == 1 and err.startswith("error: ") and "token_growth" in err
    assert not out.exists()


@pytest.mark.parametrize("override", ["providers.FullStack.captive_growth=2.0",    # 3^40: captive demand
                                      "capability.training_cost_growth=1.0",      # 2^40: the training arms race
                                      "finance.gpu_cost_trend=0.5"])              # 1.5^80: GPU prices
def test_every_compounding_rate_is_bounded_over_the_horizon(override):
    quarters = 80 if "gpu_cost" in override else 40
    with pytest.raises(ConfigError, match=override.split("=")[0].replace("providers.FullStack", "providers.FullStack")):
        load_config("minimal", [override, f"run.quarters={quarters}"])


def test_rates_within_the_bound_are_allowed_and_the_bound_follows_the_horizon():
    load_config("minimal", ["demand.segments.internet.token_growth=1.0", "run.quarters=30"])  # 2^30 ~ 1e9
    with pytest.raises(ConfigError):
        load_config("minimal", ["demand.segments.internet.token_growth=1.0", "run.quarters=40"])  # 2^40 ~ 1e12


# ------------------------------------------------------------------ the per-quarter guard
def _market(**overrides) -> Market:
    sets = [f"{k}={v}" for k, v in {"run.customers": 300, "run.quarters": 6, **overrides}.items()]
    return Market(config=load_config("minimal", sets))


def test_guard_stops_a_run_whose_customer_state_turns_infinite():
    market = _market()
    market.step()
    seg = int(market.customers.segment[7])
    market.customers.token_need[7] = np.inf
    with pytest.raises(NonFiniteState) as err:
        market.step()
    text = str(err.value)
    name = market.customers.segment_names[seg]
    assert text.startswith("quarter 2025Q2 (quarter 2 of 6): customers' token need of 1 customers")
    assert f"segment {name}" in text and "demand (growth of token need) mechanism" in text
    assert f"demand.segments.{name}.token_growth = " in text and "run.quarters = 6" in text
    assert "\n" not in text


def test_guard_names_the_provider_and_its_settings():
    market = _market()
    market.step()
    market.slots[1].cash = math.nan
    with pytest.raises(NonFiniteState, match=r"Porter's cash became NaN in the money \(cash\) mechanism; "
                                             r"settings involved: providers\.Porter\.cash = "):
        market.step()


def test_without_the_guard_nan_is_recorded_until_the_logit_draw_refuses_it(monkeypatch):
    """The guard is what stops it in the quarter it happens: switched off, the same corrupted state
    is recorded as results, quarters long, until the NaN reaches the customers' utilities and the
    logit draw refuses it."""
    monkeypatch.setattr(guard, "check", lambda market: None)
    market = _market()
    market.step()
    market.slots[0].cash = math.nan
    with pytest.raises(NonFiniteState, match="choice utilities"):
        market.run_for(5)
    providers, _, _ = market.recorder.frames()
    assert providers["cash"].isna().any()


def test_guard_error_survives_pickling_for_sweep_workers():
    exc = NonFiniteState.at(quarter="2025Q3", step=2, quarters=8, variable="x", value=math.inf, mechanism="demand",
                            settings=["a = 1"])
    again = pickle.loads(pickle.dumps(exc))
    assert str(again) == str(exc) and again.details["quarter"] == "2025Q3"


def test_cli_prints_the_guard_error_as_one_line_and_writes_nothing(tmp_path, capsys, monkeypatch):
    from sim.submodels import demand

    real = demand.step

    def poisoned(market):
        real(market)
        if market.t == 2:
            market.customers.compute[:] = np.inf

    monkeypatch.setattr(demand, "step", poisoned)
    out = tmp_path / "run"
    code = main(["run", "minimal", "--quarters", "5", "--out", str(out)])
    err = capsys.readouterr().err
    assert code == 2 and err.count("\n") == 1 and "quarter 2025Q3" in err and "compute demand" in err
    assert "Traceback" not in err and not out.exists()


def test_free_compute_is_refused_since_every_price_would_be_zero():
    """Found by tests/test_extremes.py: depreciation = 0 and opex_per_gpu = 0 (each allowed) made the
    unit cost and so every price 0, and log-price utility -inf."""
    with pytest.raises(ConfigError, match="would cost 0 US\\$ a quarter to run"):
        load_config("minimal", ["finance.depreciation=0", "finance.opex_per_gpu=0"])
    load_config("minimal", ["finance.depreciation=0"])  # either alone is fine


def test_almost_free_compute_is_refused_too():
    """Found by tests/test_extremes.py after the rule above: 1e-9 US$ chips retired at 1e-305 a quarter
    (each allowed) made a unit cost that underflowed to a price of 0.  The rule is on the cost to run a
    GPU-equivalent, not on the two settings being exactly 0."""
    tiny = ["finance.opex_per_gpu=0", "finance.depreciation=1e-305", "finance.gpu_cost_import=1e-9", "finance.gpu_cost_own=1e-9"]
    with pytest.raises(ConfigError, match=r"finance: .*allowed: at least 1e-06 US\$ per GPU-quarter"):
        load_config("minimal", tiny)
    market = Market(config=load_config("minimal", [*tiny[:1], "finance.depreciation=0.0625", "finance.gpu_cost_own=1e-3",
                                                   "finance.gpu_cost_import=1e-3"]))
    market.run()  # just above the floor: prices stay positive and finite
    assert all(0 < p.price < float("inf") for p in market.active_providers())


def test_guard_passes_numbers_that_are_not_state_and_stops_at_the_first_that_is():
    """The whole-table sum is not finite here (an infinite utilisation, a NaN left in the row of a
    provider that exited, a sum of finite cash that overflows): the guard then looks at the checked
    columns of active slots, passes, and still stops the run at a NaN in one of them."""
    market = _market(**{"run.quarters": 8})
    market.step()
    batch, gone, kept = market._batch, market.slots[1], market.slots[0]
    market.retire(gone)
    gone.cash = math.nan  # a stale number of a slot not active
    kept.utilisation = math.inf  # demand without serving capacity: a meaning, not a fault
    kept.cash, kept.revenue = 1e308, 1e308
    guard.check(batch)
    market.step()
    kept.captive_served = math.nan
    with pytest.raises(NonFiniteState, match="FullStack's captive_served became NaN"):
        guard.check(batch)


def test_guard_sums_arrays_that_cannot_change_once_and_sees_them_when_they_can():
    """Preference weights are read-only (summed by the guard once); a read-only array is still
    checked the first time it is seen, and again once it is made writeable (fails if the guard
    skipped an array it once found finite whatever became of it)."""
    market = _market()
    people = market.customers
    with pytest.raises(ValueError, match="read-only"):
        people.weights[0, 0] = 1.0
    market.step()
    frozen = np.zeros(people.n, dtype=np.float32)
    frozen[4] = np.inf
    frozen.flags.writeable = False
    people.frozen = frozen  # a read-only array, not finite from the start
    with pytest.raises(NonFiniteState, match="customers' frozen of 1 customers"):
        market.step()
    market = _market()
    market.step()
    market.customers.weights.flags.writeable = True
    market.customers.weights[3, 1] = np.nan
    with pytest.raises(NonFiniteState, match="customers' weights of 1 customers"):
        market.step()


def test_guard_covers_state_it_does_not_list(monkeypatch):
    """Every float attribute is checked: state another submodel adds (a provider's showcase standing,
    a new per-customer array) is covered without being listed."""
    market = _market()
    market.step()
    market.slots[0].standing = math.inf
    with pytest.raises(NonFiniteState, match="FullStack's standing became infinite in the provider mechanism"):
        market.step()
    market = _market()
    market.step()
    market.customers.new_array = np.zeros(market.customers.n, dtype=np.float32)
    market.customers.new_array[3] = np.nan
    with pytest.raises(NonFiniteState, match="customers' new_array of 1 customers"):
        market.step()


def test_guard_fast_path_misses_no_non_finite_number():
    # The check sums each object's numbers once (a getter cached per attribute layout); a value that
    # turns from None into NaN, infinities that cancel and finite values whose sum overflows must
    # still be told apart from a finite state.
    from sim.guard import _floats

    class State:
        pass

    s = State()
    s.x, s.y, s.utilisation, s._private = None, 1.0, math.inf, math.nan
    assert list(_floats(s)) == []
    s.x = math.nan
    assert [a for a, _ in _floats(s)] == ["x"]
    s.x, s.y, s.z = math.inf, -math.inf, 2
    assert [a for a, _ in _floats(s)] == ["x", "y"]
    s.x, s.y = 1e308, 1e308
    assert list(_floats(s)) == []


# ------------------------------------------------------------------ the guard over a batch of runs
def _batch(seeds=(1, 2, 3)):
    from sim.batch import Batch

    return Batch([load_config("minimal", ["run.customers=300", "run.quarters=6", f"run.seed={s}"]) for s in seeds])


@pytest.mark.parametrize("where", ["provider", "customers", "market"])
def test_guard_names_the_failing_run_of_a_batch(where):
    """One whole-batch test finds a non-finite number in any run; the error names that run (its place,
    config and seed) with the wording a run alone gets.  A check of the first run only would pass."""
    batch = _batch()
    batch.step()
    run = batch.markets[2]
    if where == "provider":
        run.slots[1].cash = math.nan
    elif where == "customers":
        run.customers.token_need[5] = np.inf
    else:
        run.new_scalar = math.inf  # state a new submodel adds is covered too
    with pytest.raises(NonFiniteState) as err:
        batch.step()
    text = str(err.value)
    assert "in run 3 of a batch of 3 (config 'minimal', run.seed = 3); the batch was stopped" in text
    assert err.value.details["run"] == 2 and err.value.details["seed"] == 3 and "\n" not in text
    alone = {"provider": "Porter's cash became NaN in the money (cash) mechanism; settings involved: providers.Porter.cash = ",
             "customers": "customers' token need of 1 customers",
             "market": "the market's new_scalar became infinite in the market mechanism"}
    assert text.startswith("quarter 2025Q2 (quarter 2 of 6): ") and alone[where] in text


def test_guard_reports_the_first_failing_run_of_a_batch_and_passes_a_finite_one():
    batch = _batch()
    batch.step()
    batch.step()  # every run finite: nothing raised
    batch.markets[2].slots[0].cash = math.nan
    batch.markets[1].slots[0].standing = math.inf
    with pytest.raises(NonFiniteState, match=r"FullStack's standing became infinite .* in run 2 of a batch of 3"):
        batch.step()
