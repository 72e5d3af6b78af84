"""The sweep / experiment / plot commands: dry run, the size guard, progress lines, figures and re-drawing."""

import json
import shutil

import pandas as pd
import pytest
from experiment_support import GRID, write_spec

from sim.cli import main
from sim.experiment.spec import EXPERIMENT_DIR, load_spec

FIGURES = """
[outcomes.porter_share]
kind = "share"
providers = "porters"
label = "porter's final share"

[[figures]]
kind = "heatmap"
x = "lock"
y = "flywheel"
outcome = "final_hhi_revenue"

[[figures]]
kind = "shares"
name = "corners"

[[figures]]
kind = "timeseries"
providers = "porters"

[[figures]]
kind = "curve"
x = "flywheel"
hue = "lock"
outcome = "porter_share"
"""


def test_dry_run_prints_size_and_estimate_and_writes_nothing(tmp_path, capsys):
    spec = write_spec(tmp_path, GRID)
    assert main(["sweep", str(spec), "--dry-run", "--out", str(tmp_path / "out"), "--workers", "2"]) == 0
    text = capsys.readouterr().out
    assert "6 points x 2 replicates = 12 runs" in text and "150 customers x 6 quarters" in text
    assert "one run takes about" in text and "on 2 workers: about" in text
    assert not (tmp_path / "out").exists()


def test_guard_refuses_large_sweeps_unless_confirmed(tmp_path, capsys):
    spec = write_spec(tmp_path, "max_runs = 5\n" + GRID)
    out = tmp_path / "out"
    assert main(["sweep", str(spec), "--out", str(out), "--workers", "0"]) == 2
    err = capsys.readouterr().err
    assert "12 runs exceed the limit of 5" in err and "--yes" in err
    assert not out.exists()
    assert main(["sweep", str(spec), "--out", str(out), "--workers", "0", "--max-runs", "11"]) == 2
    assert main(["sweep", str(spec), "--out", str(out), "--workers", "0", "--yes", "--no-plots"]) == 0
    assert (pd.read_parquet(out / "runs.parquet")["status"] == "ok").sum() == 12


def test_progress_lines_when_not_a_terminal_and_summary(tmp_path, capsys):
    spec = write_spec(tmp_path, GRID)
    assert main(["sweep", str(spec), "--out", str(tmp_path / "out"), "--workers", "0", "--no-plots",
                 "--log-every", "0"]) == 0
    err = capsys.readouterr().err
    lines = [line for line in err.splitlines() if "runs/s, ETA" in line]
    assert len(lines) == 12 and lines[-1].startswith("spec: 12/12 runs (100%), 0 failed")
    assert "spec finished: 12 runs in" in err and "12 ok, 0 failed" in err


def test_experiment_draws_figures_and_plot_redraws_them_identically(tmp_path, capsys):
    spec = write_spec(tmp_path, GRID + FIGURES, "tiny")
    out = tmp_path / "results"
    assert main(["experiment", str(spec), "--out", str(out), "--workers", "0"]) == 0
    names = ["01_heatmap", "corners", "03_timeseries", "04_curve"]
    first = {}
    for name in names:
        for ext in ("png", "svg"):
            path = out / "figures" / f"{name}.{ext}"
            assert path.stat().st_size > 1000, path
            first[path.name] = path.read_bytes()
    for table in ("outcomes", "points", "quantiles_market", "quantiles_providers"):
        assert len(pd.read_parquet(out / "summary" / f"{table}.parquet")) > 0
    assert json.loads((out / "summary" / "analysis.json").read_text())["failed"] == 0

    # Re-running the experiment finishes nothing new (all done) and re-draws.
    capsys.readouterr()
    assert main(["experiment", str(spec), "--out", str(out), "--workers", "0"]) == 0
    assert "finished: 0 runs" in capsys.readouterr().err

    shutil.rmtree(out / "figures")
    assert main(["plot", str(out)]) == 0
    for name, data in first.items():
        assert (out / "figures" / name).read_bytes() == data, name
    assert main(["plot", str(tmp_path / "nothing")]) == 2


def test_sobol_sweep_draws_sensitivity_bars(tmp_path):
    body = """
    seed = 4
    [design]
    kind = "sobol"
    samples = 8
    [params.flywheel]
    key = "capability.flywheel"
    low = 0.0
    high = 2.0
    [params.lock]
    key = "providers.*.lock_in"
    mode = "scale"
    low = 0.5
    high = 2.0
    [[figures]]
    kind = "sensitivity"
    name = "sobol"
    outcome = ["final_hhi_revenue", "leader_share_revenue"]
    """
    spec = write_spec(tmp_path, body)
    out = tmp_path / "out"
    assert main(["sweep", str(spec), "--out", str(out), "--workers", "0"]) == 0
    assert (out / "figures" / "sobol.png").stat().st_size > 1000
    indices = pd.read_csv(out / "summary" / "sensitivity_final_hhi_revenue.csv")
    assert list(indices["parameter"]) == ["flywheel", "lock"]
    assert {"S1", "S1_conf", "ST", "ST_conf"} <= set(indices.columns)


def test_preset_experiments_are_valid_specs():
    presets = sorted(p.stem for p in EXPERIMENT_DIR.glob("*.toml"))
    assert presets == ["arms_race", "closed_loop", "export_controls", "gala", "group_funding", "late_entrant",
                       "open_weights", "porters", "scenario_discovery", "sensitivity", "switching_remedy", "tipping"]
    for name in presets:
        spec = load_spec(name)
        assert spec.figures and spec.claim, name
        # issue 12: experiments that hold: at least 20,000 customers a run, replicates by a stated rule
        # (or, for one-run-per-point designs, a fixed count), and verdicts checked with intervals
        assert spec.fixed.get("run.customers", 0) >= 20_000, name
        assert spec.verdicts or spec.design.kind == "sobol", name
        assert spec.replication is not None or spec.design.kind in ("sobol", "latin"), name


def test_progress_bar_on_a_terminal_counts_failures():
    import io

    from sim.experiment.progress import Progress

    stream = io.StringIO()
    progress = Progress(5, 1, stream=stream, tty=True, label="demo")
    progress.start()
    for status in ("ok", "failed", "ok"):
        progress.update(status)
    tally = progress.close()
    text = stream.getvalue()
    assert "demo" in text and "4/5" in text and "failed=1" in text and "run/s" in text
    assert (tally.ok, tally.failed, tally.skipped) == (2, 1, 1)
    assert "1 not run (finish with --resume)" in text.splitlines()[-1]


UNREACHED = """
seed = 4
[design]
kind = "sobol"
samples = 8
[params.flywheel]
key = "capability.flywheel"
low = 0.0
high = 2.0
[params.lock]
key = "providers.*.lock_in"
mode = "scale"
low = 0.5
high = 2.0
[outcomes.reached]
kind = "quarters_to_share"
providers = ["FullStack"]
threshold = 0.25
[outcomes.held]
kind = "share"
providers = ["FullStack"]
[outcomes.never]
kind = "quarters_to_share"
providers = ["Porter"]
threshold = 0.99
[[figures]]
kind = "sensitivity"
name = "sobol"
outcome = ["held", "reached", "never"]
[[figures]]
kind = "curve"
name = "never_curve"
x = "flywheel"
outcome = "never"
[[figures]]
kind = "shares"
name = "shares"
"""


def test_an_outcome_undefined_in_every_run_does_not_take_the_others_down(tmp_path, capsys):
    """Issue 13 case 10: 'never' is reached by no run; 'held' and 'reached' still get their indices,
    the other figures are drawn, and the report says which outcome is undefined."""
    spec = write_spec(tmp_path, UNREACHED)
    out = tmp_path / "out"
    assert main(["sweep", str(spec), "--out", str(out), "--workers", "0"]) == 0
    text = capsys.readouterr()
    assert "note: outcome never is undefined in every finished run (no run reaches a share of 0.99)" in text.out
    assert (out / "summary" / "sensitivity_reached.csv").is_file()
    assert pd.read_csv(out / "summary" / "sensitivity_held.csv")["ST"].notna().all()
    assert not (out / "summary" / "sensitivity_never.csv").exists()
    assert (out / "figures" / "sobol.png").stat().st_size > 1000
    assert (out / "figures" / "shares.png").stat().st_size > 1000
    analysis = json.loads((out / "summary" / "analysis.json").read_text())
    assert analysis["undefined_outcomes"] == ["never"]
    assert analysis["figures_not_drawn"] == ["never_curve"] and not (out / "figures" / "never_curve.png").exists()
    assert "note: never_curve: not drawn: outcome never is undefined in every finished run" in text.out
    assert any("left out: never is undefined in every run" in n for n in analysis["notes"])
    outcomes = pd.read_parquet(out / "summary" / "outcomes.parquet")
    assert (outcomes["reached"] == 1).all() and outcomes["never"].isna().all()

    # aicloud plot: the same, from the stored results
    shutil.rmtree(out / "figures")
    assert main(["plot", str(out)]) == 0
    assert (out / "figures" / "sobol.png").is_file() and (out / "figures" / "shares.png").is_file()


@pytest.mark.parametrize("option, value, expected", [
    ("--max-runs", "-1", "--max-runs -1: must be 1 or more"),
    ("--max-runs", "0", "--max-runs 0: must be 1 or more"),
    ("--log-every", "-5", "--log-every -5: must be a number of seconds, 0 or more"),
    ("--log-every", "nan", "--log-every nan: must be a number of seconds, 0 or more"),
    ("--cluster-timeout", "0", "--cluster-timeout 0: must be a number of seconds above 0"),
    ("--workers", "-2", "--workers -2: must be 0 (in this process) or more"),
])
def test_bad_numeric_options_are_one_clear_line(tmp_path, capsys, option, value, expected):
    """Issue 13 case 13, and the other numeric options of the sweep commands."""
    spec = write_spec(tmp_path, GRID)
    for command in ("sweep", "experiment"):
        out = tmp_path / command
        assert main([command, str(spec), "--out", str(out), option, value]) == 2
        err = capsys.readouterr().err
        assert err.strip().splitlines() == [f"error: {expected}"]
        assert not out.exists()


def test_plot_needs_at_least_one_format(tmp_path, capsys):
    spec = write_spec(tmp_path, GRID)
    out = tmp_path / "out"
    assert main(["sweep", str(spec), "--out", str(out), "--workers", "0", "--no-plots"]) == 0
    capsys.readouterr()
    assert main(["plot", str(out), "--formats", ","]) == 2
    assert capsys.readouterr().err.strip() == "error: --formats ',': names no format; allowed: png, svg, pdf"
