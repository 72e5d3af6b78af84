"""Everything a spec can get wrong is found before the first run, and nothing is written (issue 13,
cases 7-9): columns and names an outcome or figure refers to, every design point's values, and
settings that could not take effect."""

from __future__ import annotations

import pytest
from experiment_support import GRID, TINY_FIXED, write_spec

from sim.cli import main
from sim.config import ConfigError
from sim.experiment.runner import Plan
from sim.experiment.spec import load_spec


def problems(tmp_path, body: str) -> list[str]:
    with pytest.raises(ConfigError) as exc:
        Plan.make(load_spec(write_spec(tmp_path, body)))
    return exc.value.problems


def refused_before_running(tmp_path, capsys, body: str, fixed: str = "") -> str:
    """The sweep command refuses the spec with exit 2, writes nothing, and returns its error text."""
    spec = write_spec(tmp_path, body, fixed=TINY_FIXED + fixed)
    out = tmp_path / "out"
    assert main(["sweep", str(spec), "--out", str(out), "--workers", "0", "--no-plots"]) == 2
    assert not out.exists()
    err = capsys.readouterr().err
    assert "Traceback" not in err and "finished:" not in err  # no run started
    return err


# ---------------------------------------------------------------- case 7
def test_an_outcome_column_that_is_not_recorded_is_refused_before_any_run(tmp_path, capsys):
    err = refused_before_running(tmp_path, capsys, GRID + """
    [outcomes.x]
    kind = "final"
    column = "nosuchcol"
    """)
    assert "outcomes.x.column: 'nosuchcol' is not a market column" in err and "hhi_revenue" in err


@pytest.mark.parametrize("extra, expected", [
    # a provider column misspelt: with the close name
    ('[outcomes.m]\nkind = "provider"\ncolumn = "markups"\nproviders = ["Porter"]',
     "outcomes.m.column: 'markups' is not a provider column (did you mean 'markup'?)"),
    # a provider that is not in the base config
    ('[outcomes.s]\nkind = "share"\nproviders = ["FulStack"]',
     "outcomes.s.providers: 'FulStack' is not a provider of the base config (did you mean 'FullStack'?)"),
    # a share that must hold longer than the run lasts (6 quarters)
    ('[outcomes.q]\nkind = "quarters_to_share"\nproviders = ["Porter"]\nthreshold = 0.5\nsustained = 8',
     "outcomes.q.sustained: 8 quarters in a row cannot happen in a run of 6 quarters"),
    # a timeseries column, figure points and a where selection that the design does not have
    ('[[figures]]\nkind = "timeseries"\ncolumn = "hhi_revenu"',
     "figures[0].column: 'hhi_revenu' is not a market column (did you mean 'hhi_revenue'?)"),
    ('[[figures]]\nkind = "shares"\npoints = [0, 6]', "figures[0].points: design point(s) [6] do not exist; allowed: 0..5"),
    ('[[figures]]\nkind = "curve"\nx = "flywheel"\noutcome = "final_hhi_revenue"\nwhere = {lock = 3.0}',
     "figures[0].where: no design point has {'lock': 3.0}; values in the design: lock: 0.5, 2.0"),
])
def test_references_that_would_fail_after_the_sweep_are_refused_before_it(tmp_path, capsys, extra, expected):
    err = refused_before_running(tmp_path, capsys, GRID + extra)
    assert expected in err, err


# ---------------------------------------------------------------- case 8
def test_every_design_point_is_checked_and_each_bad_value_is_one_line(tmp_path, capsys):
    """30 sits in the middle of the grid, so checking the first and last points does not find it."""
    err = refused_before_running(tmp_path, capsys, """
    replicates = 2
    [params.lock_in]
    key = "providers.*.lock_in"
    values = [1.0, 30.0, 2.0]
    [params.flywheel]
    key = "capability.flywheel"
    values = [0.5, 1.0]
    """)
    lines = err.strip().splitlines()
    assert len(lines) == 1, lines
    assert "lock_in: Input should be less than or equal to 20" in lines[0]
    assert "(params.lock_in = 30.0, at 2 design points; and 1 more key like it)" in lines[0]


def test_values_valid_alone_but_not_together_name_the_design_points(tmp_path):
    """min_markup 1.2 is fine with the base max (1.5), max 1.0 with the base min (-0.3); together they are not."""
    found = problems(tmp_path, """
    [params.floor]
    key = "pricing.min_markup"
    values = [0.0, 1.2]
    [params.ceiling]
    key = "pricing.max_markup"
    values = [1.0, 2.0]
    """)
    assert len(found) == 1
    assert "min_markup (1.2) must not exceed max_markup (1.0)" in found[0]
    assert "(floor = 1.2, ceiling = 1): these values do not go together, at 1 design point: 2" in found[0]


def test_a_sampled_design_checks_every_sampled_point(tmp_path):
    found = problems(tmp_path, """
    seed = 2
    [design]
    kind = "latin"
    samples = 40
    [params.floor]
    key = "pricing.min_markup"
    low = 0.0
    high = 1.4
    [params.ceiling]
    key = "pricing.max_markup"
    low = 0.5
    high = 2.0
    """)
    assert len(found) == 1 and "these values do not go together, at" in found[0], found


# ---------------------------------------------------------------- case 9
@pytest.mark.parametrize("body, expected", [
    (GRID + "#fixed\nrun.seed = 99\n",
     "fixed.run.seed: has no effect: each run's seed derives from the spec's seed"),
    (GRID + "#fixed\ncapability.flywheel = 1.0\n",
     "fixed.capability.flywheel: has no effect: parameter 'flywheel' sets it in every run"),
    (GRID + '[params.again]\nkey = "providers.FullStack.lock_in"\nvalues = [1.0]\n',
     "params.again: providers.FullStack.lock_in is also set by parameter 'lock'"),
    (GRID.replace("num = 3", "num = 3\nlog = true\nvalues = [0.5, 1.0]").replace("low = 0.0\nhigh = 2.0\n", ""),
     "params.flywheel.num: has no effect when values are given"),
    ('[design]\nkind = "sobol"\nsamples = 8\nlevels = 6\n[params.f]\nkey = "capability.flywheel"\nlow = 0.0\nhigh = 1.0\n',
     "design.levels: has no effect for kind 'sobol' (only for morris)"),
    (GRID + '[outcomes.s]\nkind = "share"\nproviders = ["Porter"]\nthreshold = 0.5\n',
     "outcomes.s.threshold: has no effect for kind 'share'"),
    (GRID + '[[figures]]\nkind = "curve"\nx = "flywheel"\noutcome = "final_hhi_revenue"\nstat = "median"\n',
     "figures[0].stat: has no effect for kind 'curve' (only for heatmap)"),
])
def test_a_setting_that_cannot_take_effect_is_an_error(tmp_path, capsys, body, expected):
    body, _, fixed = body.partition("#fixed\n")  # lines after #fixed go under [fixed]
    err = refused_before_running(tmp_path, capsys, body, fixed)
    assert expected in err, err


def test_the_preset_experiments_pass_every_check():
    from sim.experiment.spec import EXPERIMENT_DIR

    for path in sorted(EXPERIMENT_DIR.glob("*.toml")):
        Plan.make(load_spec(path.stem))
