"""Spec validation: bad specs give one clear line per problem (file, key, what is allowed)."""

import pytest
from experiment_support import GRID, write_spec

from sim.cli import main
from sim.config import ConfigError
from sim.experiment.runner import Plan
from sim.experiment.spec import load_spec


def problems(tmp_path, body, name="bad"):
    path = write_spec(tmp_path, body, name)
    with pytest.raises(ConfigError) as info:
        Plan.make(load_spec(path))
    return path, info.value.problems


def test_good_spec_loads_with_defaults(tmp_path):
    spec = load_spec(write_spec(tmp_path, GRID, "good"))
    assert spec.name == "good"
    assert spec.design.kind == "grid" and spec.replicates == 2
    assert spec.fixed == {"run.customers": 150, "run.quarters": 6}  # TOML dotted keys flattened
    plan = Plan.make(spec)
    assert plan.runs == 2 * 3 * 2
    assert plan.base.run.customers == 150


def test_unknown_top_level_key_names_file_key_and_allowed(tmp_path):
    path, probs = problems(tmp_path, "replicats = 3\n" + GRID)
    assert len(probs) == 1
    assert str(path) in probs[0] and "replicats: unknown key" in probs[0]
    assert "replicates" in probs[0] and "allowed keys here" in probs[0]


def test_unknown_key_inside_a_parameter(tmp_path):
    _, probs = problems(tmp_path, GRID + "\n[params.extra]\nkey = 'choice.model_lock'\nvalues = [1.0]\nlow_ = 1\n")
    assert any("params.extra.low_: unknown key" in p and "mode" in p for p in probs)


def test_several_problems_reported_together(tmp_path):
    body = """
    replicates = 0
    seed = -1
    [design]
    kind = "factorial"
    """
    _, probs = problems(tmp_path, body)
    text = "\n".join(probs)
    assert "replicates" in text and ">= 1" in text
    assert "seed" in text and ">= 0" in text
    assert "design.kind" in text and "grid, zip, random, latin, sobol, morris" in text
    assert len(probs) == 3


@pytest.mark.parametrize("body, expected", [
    ("[design]\nkind='sobol'\nsamples=6\n[params.a]\nkey='capability.flywheel'\nlow=0\nhigh=1\n",
     "power of 2"),
    ("[design]\nkind='zip'\n[params.a]\nkey='capability.flywheel'\nvalues=[0,1]\n"
     "[params.b]\nkey='choice.model_lock'\nvalues=[1,2,3]\n", "same number of values"),
    ("[params.a]\nkey='capability.flywheel'\nlow=2\nhigh=1\nnum=3\n", "low (2.0) must be below high (1.0)"),
    ("[params.a]\ntype='categorical'\nkey='capability.flywheel'\nlow=0\nhigh=1\nvalues=[1]\n", "takes values, not low/high"),
    ("[params.a]\nkey='capability.flywheel'\nlow=0\nhigh=1\n", "a grid needs values"),
    ("[params.a]\nkey='run.seed'\nvalues=[1, 2]\n", "run.seed cannot be swept"),
    ("[params.a]\nkey='capability.flywheel'\nvalues=[1]\n[[figures]]\nkind='heatmap'\nx='a'\ny='zz'\n"
     "outcome='final_hhi_revenue'\n", "'zz' is not a parameter"),
    ("[params.a]\nkey='capability.flywheel'\nvalues=[1]\n[[figures]]\nkind='sensitivity'\noutcome='final_hhi_revenue'\n",
     "needs a sobol or morris design"),
    ("[outcomes.x]\nkind='reaches_share'\nproviders='porters'\n", "needs threshold"),
    ("[design]\nkind='random'\n[params.a]\nkey='capability.flywheel'\nlow=0\nhigh=1\n", "needs samples"),
])
def test_bad_specs(tmp_path, body, expected):
    path, probs = problems(tmp_path, body)
    assert any(expected in p for p in probs), probs
    assert all(p.startswith(str(path)) for p in probs)


def test_unknown_config_key_in_a_parameter_is_caught_before_running(tmp_path):
    path, probs = problems(tmp_path, "[params.a]\nkey='capability.flywheeel'\nvalues=[1.0]\n")
    assert any("params.a" in p and "flywheeel" in p and "unknown key" in p for p in probs), probs


def test_unknown_provider_and_wildcard_on_a_non_list(tmp_path):
    _, probs = problems(tmp_path, "[params.a]\nkey='providers.Nobody.lock_in'\nvalues=[1.0]\n")
    assert any("Nobody" in p and "FullStack" in p for p in probs), probs  # names the allowed providers
    _, probs = problems(tmp_path, "[params.a]\nkey='capability.*'\nvalues=[1.0]\n")
    assert any("params.a" in p and "neither a list nor a table of tables" in p for p in probs), probs


def test_bad_fixed_override_names_fixed(tmp_path):
    path = write_spec(tmp_path, GRID, "bad", fixed="[fixed]\nrun.customers = 3\n")
    with pytest.raises(ConfigError) as info:
        Plan.make(load_spec(path))
    assert any("fixed" in p and "run.customers" in p and ">= 10" in p for p in info.value.problems)


def test_missing_base_config(tmp_path):
    path = write_spec(tmp_path, 'base = "no_such_preset"\n' + GRID)
    with pytest.raises(ConfigError) as info:
        Plan.make(load_spec(path))
    assert "base" in info.value.problems[0] and "no_such_preset" in info.value.problems[0]


def test_cli_prints_errors_without_traceback(tmp_path, capsys):
    path = write_spec(tmp_path, "bogus = 1\n" + GRID, "bad")
    assert main(["sweep", str(path), "--dry-run"]) == 2
    err = capsys.readouterr().err
    assert "error:" in err and "bogus: unknown key" in err and "Traceback" not in err
    assert main(["sweep", str(tmp_path / "missing.toml")]) == 2
    assert "no such file, and no experiment of that name" in capsys.readouterr().err


@pytest.mark.parametrize("body, expected", [
    ("replicates = true\n[params.a]\nkey='capability.flywheel'\nvalues=[1]\n", "replicates"),
    ("replicates = '3'\n[params.a]\nkey='capability.flywheel'\nvalues=[1]\n", "replicates"),
    ("[params.a]\nkey='capability.flywheel'\nlow=0\nhigh=inf\nnum=3\n", "params.a.high"),
    ("[params.a]\nkey='capability.flywheel'\nlog='yes'\nvalues=[1]\n", "params.a.log"),
])
def test_spec_tables_are_strict_and_finite_like_the_config(tmp_path, body, expected):
    """Issue 13, case 3's kind in specs: ``replicates = true`` ran 1 replicate, ``"3"`` ran 3,
    ``high = inf`` was a bound and ``log = "yes"`` was true."""
    path, probs = problems(tmp_path, body)
    assert any(expected in p for p in probs), probs
