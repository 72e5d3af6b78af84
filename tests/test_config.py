"""Config validation: every bad file gives one clear line per problem naming file and key."""

from pathlib import Path

import pytest

from sim.config import ConfigError, load_config, parse_override, with_overrides

GOOD_PROVIDERS = '[[providers]]\nname = "A"\ninitial_share = 0.6\n[[providers]]\nname = "B"\ninitial_share = 0.4\n'

BAD_FILES = {
    "unknown top-level key": ('colour = "red"\n' + GOOD_PROVIDERS, ["colour: unknown key", "allowed keys here: name"]),
    "unknown section key": ('[finance]\ndeprecation = 0.1\n' + GOOD_PROVIDERS, ["finance.deprecation: unknown key", "depreciation"]),
    "unknown segment field": ('[demand.segments.internet]\ngrowht = 0.1\n' + GOOD_PROVIDERS, ["demand.segments.internet.growht: unknown key", "growth"]),
    "out of range": ('[demand]\nbass_p = 1.5\n' + GOOD_PROVIDERS, ["demand.bass_p", "<= 1", "1/quarter"]),
    "wrong type": ('[run]\nquarters = "many"\n' + GOOD_PROVIDERS, ["run.quarters", "integer"]),
    "bad provider field": (GOOD_PROVIDERS + 'lock_in = -1\n', ["providers[1] (B).lock_in", ">= 0"]),
    "provider without name": (GOOD_PROVIDERS + '[[providers]]\ncompute = 5.0\n', ["providers[2].name: required key is missing"]),
    "duplicate names": ('[[providers]]\nname = "A"\ninitial_share = 0.5\n[[providers]]\nname = "A"\ninitial_share = 0.5\n', ["provider names must be unique", "A"]),
    "unknown affinity segment": ('[[providers]]\nname = "A"\ninitial_share = 1.0\naffinity = { enterprize = 1.0 }\n', ["enterprize", "allowed: enterprise"]),
    "shares do not sum to 1": ('[[providers]]\nname = "A"\ninitial_share = 0.3\n', ["initial_share must sum to 1", "0.300"]),
    "surge names unknown provider": ('[service]\nsurges = [{ quarter = "2025Q2", provider = "Z" }]\n' + GOOD_PROVIDERS, ["provider 'Z' is not a provider", "A, B"]),
    "bad quarter label": ('[open_weights]\nrelease = "2025Q5"\n' + GOOD_PROVIDERS, ["open_weights.release", "quarter label like 2025Q1"]),
    "markup bounds crossed": ('[pricing]\nmin_markup = 2.0\nmax_markup = 1.0\n' + GOOD_PROVIDERS, ["min_markup", "must not exceed max_markup"]),
    "no providers": ('name = "empty"\n', ["providers: required key is missing"]),
    "TOML syntax": ('[run\nquarters = 3\n', ["TOML syntax error", "line 1"]),
    "negative parent budget": ('[[parents]]\nname = "G"\nbudget_per_quarter = -5.0\n' + GOOD_PROVIDERS,
                               ["parents[0] (G).budget_per_quarter", ">= 0", "US$ million per quarter"]),
    "negative credit line": ('[[parents]]\nname = "G"\ncredit_line = -1.0\n' + GOOD_PROVIDERS, ["parents[0] (G).credit_line", ">= 0"]),
    "unknown parent": (GOOD_PROVIDERS + 'parent = "Bytedance"\n[[parents]]\nname = "ByteDance"\n',
                       ["provider 'B': parent 'Bytedance' is not in [[parents]]", "allowed: ByteDance"]),
    "parent without any parents": (GOOD_PROVIDERS + 'parent = "G"\n', ["parent 'G' is not in [[parents]]", "add a [[parents]] entry"]),
    "two budgets": ('[[parents]]\nname = "G"\nbudget_per_quarter = 5.0\nbudget_total = 50.0\nbudget_quarters = 4\n' + GOOD_PROVIDERS,
                    ["parents[0] (G)", "either budget_per_quarter or budget_total"]),
    "total budget without a window": ('[[parents]]\nname = "G"\nbudget_total = 50.0\n' + GOOD_PROVIDERS, ["budget_total needs budget_quarters"]),
    "unknown transfer price": ('[[parents]]\nname = "G"\ntransfer_price = "free"\n' + GOOD_PROVIDERS, ["parents[0] (G).transfer_price", "'cost' or 'market'"]),
    "removed captive_billing": ('[finance]\ncaptive_billing = 2.0\n' + GOOD_PROVIDERS, ["finance.captive_billing: no longer a key", "transfer_price"]),
    "unknown rationing rule": ('[service]\nrationing = "random"\n' + GOOD_PROVIDERS, ["service.rationing", "own_apps_first"]),
}


@pytest.mark.parametrize("case", sorted(BAD_FILES))
def test_bad_file_message(tmp_path, case):
    text, fragments = BAD_FILES[case]
    path = tmp_path / "case.toml"
    path.write_text(text)
    with pytest.raises(ConfigError) as info:
        load_config(path)
    message = str(info.value)
    assert all(line.startswith(str(path)) for line in info.value.problems), message
    for fragment in fragments:
        assert fragment in message, f"{case}: {fragment!r} not in {message!r}"


def test_every_problem_is_reported_at_once(tmp_path):
    path = tmp_path / "many.toml"
    path.write_text('[run]\nquartrs = 3\nseed = -1\n[demand]\nbass_q = 9\n' + GOOD_PROVIDERS)
    with pytest.raises(ConfigError) as info:
        load_config(path)
    assert len(info.value.problems) == 3


def test_presets_load_and_are_consistent():
    for name in ("minimal", "china_2025", "global_2025"):
        config = load_config(name)
        if config.run.start_from is None:  # a snapshot start takes its shares from the snapshot
            assert abs(sum(p.initial_share for p in config.providers) - 1) < 0.02
        assert config.hash() == load_config(name).hash()


def test_override_by_provider_name_and_index():
    config = load_config("minimal", ["providers.Porter.lock_in=0.3", "providers.0.capability=0.95", "run.quarters=5"])
    assert config.providers[1].lock_in == 0.3 and config.providers[0].capability == 0.95 and config.run.quarters == 5


def test_override_errors_name_the_key():
    with pytest.raises(ConfigError, match="no item 'Nobody'.*FullStack, Porter"):
        load_config("minimal", ["providers.Nobody.lock_in=1"])
    with pytest.raises(ConfigError, match="run.quarters"):
        load_config("minimal", ["run.quarters=-4"])
    with pytest.raises(ConfigError, match="expected key.path=value"):
        parse_override("run.quarters")


def test_parent_on_a_provider_that_does_not_exist_is_one_clear_error():
    with pytest.raises(ConfigError) as info:
        load_config("china_2025", ["providers.Volcano.parent=ByteDance"])
    assert len(info.value.problems) == 1
    assert "no item 'Volcano'" in str(info.value) and "Volcano Engine" in str(info.value)


def test_override_values_are_read_as_toml():
    assert parse_override("a.b=3") == (["a", "b"], 3)
    assert parse_override("a=true") == (["a"], True)
    assert parse_override('a="2025Q3"') == (["a"], "2025Q3")
    assert parse_override("a=2025Q3") == (["a"], "2025Q3")  # bare words fall back to strings
    assert parse_override("a=[1, 2]") == (["a"], [1, 2])


def test_hash_changes_with_any_value(minimal):
    changed = with_overrides(minimal, {"choice.switching_base": minimal.choice.switching_base + 0.1})
    assert changed.hash() != minimal.hash()


def test_partial_segment_keeps_other_defaults(tmp_path):
    path = tmp_path / "seg.toml"
    path.write_text('[demand.segments.internet]\ngrowth = 0.2\n' + GOOD_PROVIDERS)
    config = load_config(path)
    internet = config.demand.segments["internet"]
    assert internet.growth == 0.2 and internet.compute_size == 2.0  # default of that segment kept
    assert set(config.demand.segments) == {"internet", "enterprise", "government", "startup", "overseas"}


def test_zero_weight_segment_gets_no_customers():
    from sim.model import Market

    config = load_config("minimal", ["demand.segments.startup.weight=0", "run.customers=2000"])
    people = Market(config=config).customers
    assert (people.segment != people.segment_names.index("startup")).all()


def test_config_reference_is_up_to_date():
    """docs/config-reference.md is generated from the models; regenerate with `python -m sim.reference`."""
    from pathlib import Path

    from sim.reference import render
    committed = (Path(__file__).resolve().parent.parent / "docs" / "config-reference.md").read_text()
    assert committed == render(), "run: python -m sim.reference > docs/config-reference.md"


# ----------------------------------------------------- issue 13, cases 2-4: finite, strict, declared names
@pytest.mark.parametrize("override", ["finance.import_cap=inf", "finance.import_cap=nan", "demand.bass_q=-inf",
                                      "providers.FullStack.cash=inf", "capability.flywheel=nan"])
def test_non_finite_numbers_are_refused(override):
    """Case 2 (import_cap = inf was written as Infinity into manifest.json) and further instances."""
    with pytest.raises(ConfigError, match="finite number"):
        load_config("minimal", [override])


def test_none_is_the_explicit_way_to_leave_an_optional_value_out():
    china = load_config("china_2025")
    assert china.finance.import_cap == 150000
    assert load_config("china_2025", ["finance.import_cap=none"]).finance.import_cap is None
    with pytest.raises(ConfigError, match='or "none"'):
        load_config("china_2025", ["finance.import_cap=-1"])


def test_manifest_json_is_strict(tmp_path):
    import json
    import math

    from sim.output import json_records, write_json

    with pytest.raises(ValueError, match=r"non-finite number at a\.b\[1\]"):
        write_json(tmp_path / "x.json", {"a": {"b": [1.0, math.inf]}})
    assert not (tmp_path / "x.json").exists()
    import pandas as pd

    write_json(tmp_path / "y.json", {"rows": json_records(pd.DataFrame({"v": [1.0, float("nan")]}))})
    assert json.loads((tmp_path / "y.json").read_text(), parse_constant=lambda c: pytest.fail(c)) == {
        "rows": [{"v": 1.0}, {"v": None}]}  # a missing value is null, not NaN


@pytest.mark.parametrize("override, fragment", [
    ("run.quarters=true", "run.quarters: Input should be a valid integer (got True)"),
    ("open_weights.release=true", "open_weights.release: Input should be a valid string or a valid integer (got True)"),
    ('open_weights.enabled="yes"', "open_weights.enabled: Input should be a valid boolean (got 'yes')"),
    ('run.quarters="5"', "run.quarters: Input should be a valid integer (got '5')"),
    # further instances of the kind
    ("providers.FullStack.has_model=1", "has_model: Input should be a valid boolean (got 1)"),
    ("run.seed=1.5", "run.seed: Input should be a valid integer (got 1.5)"),
    ('capability.flywheel="2"', "capability.flywheel: Input should be a valid number (got '2')"),
    ("demand.segments.internet.growth=false", "growth: Input should be a valid number (got False)"),
])
def test_case_3_no_lax_coercion(override, fragment):
    with pytest.raises(ConfigError) as err:
        load_config("minimal", [override])
    assert len(err.value.problems) == 1, err.value.problems  # a union's members are one problem
    assert fragment in err.value.problems[0]


def test_whole_numbers_are_still_decimals_and_set_values_still_read_as_toml():
    config = load_config("minimal", ["capability.flywheel=2", "run.quarters=5"])
    assert config.capability.flywheel == 2.0 and isinstance(config.capability.flywheel, float)
    assert config.run.quarters == 5


MARTIANS = '[demand.segments.martians]\nweight = 1\n'


def test_case_4_a_new_segment_name_must_be_declared(tmp_path):
    path = tmp_path / "m.toml"
    path.write_text((Path(__file__).resolve().parent.parent / "configs" / "minimal.toml").read_text() + MARTIANS)
    with pytest.raises(ConfigError) as err:
        load_config(path)
    (line,) = err.value.problems
    assert line.startswith(f"{path}: demand.segments: 'martians' is not a segment") and "new = true" in line
    path.write_text(path.read_text() + "new = true\n")
    assert set(load_config(path).demand.segments) >= {"martians", "internet"}


def test_a_misspelt_name_suggests_the_close_one():
    with pytest.raises(ConfigError, match="'intenet' is not a segment \\(did you mean 'internet'\\?\\)"):
        load_config("minimal", ["demand.segments.intenet.growth=0.2"])
    with pytest.raises(ConfigError, match="'internet' is a built-in segment"):
        load_config("minimal", ["demand.segments.internet.new=true"])


@pytest.mark.parametrize("override, fragment", [
    ("finance.deprecation=0.1", "unknown key (did you mean 'depreciation'?)"),
    ("providers.Portr.lock_in=1", "no item 'Portr' (did you mean 'Porter'?)"),
    ("providers.FullStack.affinity={intenet = 1.0}", "unknown segment(s) intenet (did you mean 'internet'?)"),
    ('service.surges=[{quarter = 1, provider = "FullStak"}]', "'FullStak' is not a provider (did you mean 'FullStack'?)"),
])
def test_names_a_typo_could_create_suggest_the_close_one(override, fragment):
    with pytest.raises(ConfigError) as err:
        load_config("minimal", [override])
    assert fragment in str(err.value)


def test_numpy_scalars_are_the_numbers_they_are():
    """mesa.batch_run ranges (np.arange) and design tables give numpy scalars: strict types must take
    them as Python numbers, and a numpy bool is still not a number."""
    import numpy as np

    from sim.model import Market

    market = Market(customers=np.int64(300), seed=np.int64(3), quarters=np.int64(2))
    assert market.config.run.customers == 300 and type(market.config.run.customers) is int
    config = with_overrides(load_config("minimal"), {"capability.flywheel": np.float32(1.5)})
    assert config.capability.flywheel == 1.5
    with pytest.raises(ConfigError, match="valid integer"):
        with_overrides(load_config("minimal"), {"run.quarters": np.bool_(True)})
