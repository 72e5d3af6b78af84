"""End-to-end: the CLI writes every output, the same seed gives identical files, bad input exits 2."""

import json
import subprocess
import sys

import pandas as pd

from sim.cli import main

OUTPUTS = ["quarters.parquet", "quarters.csv", "flows.csv", "summary.json", "manifest.json", "shares.png"]


def test_run_writes_all_outputs_and_is_deterministic(tmp_path):
    args = ["run", "minimal", "--quarters", "8", "--seed", "3"]
    assert main([*args, "--out", str(tmp_path / "a")]) == 0
    assert main([*args, "--out", str(tmp_path / "b")]) == 0
    for name in OUTPUTS:
        a, b = (tmp_path / d / name for d in "ab")
        assert a.stat().st_size > 0
        assert a.read_bytes() == b.read_bytes(), name
    table = pd.read_parquet(tmp_path / "a" / "quarters.parquet")
    assert len(table) == 8 * 2  # one row per quarter x provider
    assert list(table["quarter"].unique()) == ["2025Q1", "2025Q2", "2025Q3", "2025Q4", "2026Q1", "2026Q2", "2026Q3", "2026Q4"]
    manifest = json.loads((tmp_path / "a" / "manifest.json").read_text())
    assert manifest["seed"] == 3 and manifest["config"]["run"]["quarters"] == 8
    assert len(manifest["config_hash"]) == 16 and manifest["versions"]["mesa"].startswith("3.")
    assert not list((tmp_path / "a").glob(".*.tmp")), "no temporary files left behind"
    assert (tmp_path / "a" / "summary.json").stat().st_mode & 0o044, "readable by others, like any file"


def test_different_seed_changes_results(tmp_path):
    main(["run", "minimal", "--quarters", "8", "--seed", "3", "--out", str(tmp_path / "a")])
    main(["run", "minimal", "--quarters", "8", "--seed", "4", "--out", str(tmp_path / "b")])
    assert (tmp_path / "a" / "quarters.csv").read_bytes() != (tmp_path / "b" / "quarters.csv").read_bytes()


def test_set_override_reaches_the_manifest(tmp_path):
    main(["run", "minimal", "--quarters", "4", "--set", "providers.Porter.lock_in=0.25", "--out", str(tmp_path)])
    manifest = json.loads((tmp_path / "manifest.json").read_text())
    assert manifest["config"]["providers"][1]["lock_in"] == 0.25


def test_bad_config_prints_lines_not_traceback(tmp_path):
    bad = tmp_path / "bad.toml"
    bad.write_text('[run]\nquartrs = 5\n[[providers]]\nname = "A"\ninitial_share = 1.0\nlock_in = -2\n')
    proc = subprocess.run([sys.executable, "-m", "sim", "run", str(bad), "--out", str(tmp_path / "out")],
                          capture_output=True, text=True)
    assert proc.returncode == 2
    assert "Traceback" not in proc.stderr
    lines = proc.stderr.strip().splitlines()
    assert any("bad.toml: run.quartrs: unknown key" in line and "quarters" in line for line in lines)
    assert any("bad.toml: providers[0] (A).lock_in" in line and ">= 0" in line for line in lines)
    assert not (tmp_path / "out").exists(), "nothing is written for a bad config"


def test_overlay_of_fitted_values_then_set(tmp_path):
    overlay = tmp_path / "fitted.toml"
    overlay.write_text('[calibration]\nconfig = "minimal"\n[overrides]\n"choice.switching_base" = 2.5\n"run.quarters" = 3\n')
    out = tmp_path / "out"
    assert main(["run", "minimal", "--overlay", str(overlay), "--set", "run.quarters=4", "--out", str(out)]) == 0
    manifest = json.loads((out / "manifest.json").read_text())
    assert manifest["config"]["choice"]["switching_base"] == 2.5
    assert manifest["config"]["run"]["quarters"] == 4, "--set wins over the overlay"
    assert manifest["overlays"] == [str(overlay)] and manifest["overrides"] == ["run.quarters=4"]
    overlay.write_text('[overrides]\n"choice.switching_bass" = 1.0\n')
    assert main(["run", "minimal", "--overlay", str(overlay), "--out", str(tmp_path / "bad")]) == 2


def test_summary_flags_a_provider_overloaded_for_more_than_four_quarters(tmp_path, capsys):
    # The Porter's fleet is cut to a tenth and the exit rule made blind to overload: a zombie.
    zombie = ["run", "minimal", "--quarters", "8", "--set", "providers.Porter.compute=1.6e4",
              "--set", "providers.Porter.cash=0", "--set", "entry.overload_limit=100",
              "--set", "pricing.scarcity_elasticity=0", "--out", str(tmp_path / "z")]
    assert main(zombie) == 0
    out = capsys.readouterr().out
    assert "WARNING overloaded (utilisation > 1.5 for more than 4 consecutive quarters): Porter (8 quarters)" in out
    assert json.loads((tmp_path / "z" / "summary.json").read_text())["overloaded"] == {"Porter": 8}
    assert main(["run", "minimal", "--quarters", "8", "--out", str(tmp_path / "ok")]) == 0
    assert "WARNING overloaded" not in capsys.readouterr().out
