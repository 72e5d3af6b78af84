"""End to end: `aicloud calibrate` writes a loadable overlay and reports, identically whatever
the number of worker processes; `aicloud validate` reports out-of-sample errors, bands and the
nine stylized facts."""

import json

import pytest

from sim.calibration.overlay import read_overlay
from sim.cli import main

CONFIG = "configs/china_history_2020.toml"
SMALL = ["--customers", "400", "--replications", "2"]
FIT = ["--fit", "2020Q1:2023Q4", "--generations", "1", "--popsize", "2", "--no-progress",
       "--param", "choice.switching_base=0:3", "--param", "providers.Baidu AI Cloud.capability=0.4:1"]


@pytest.fixture(scope="module")
def calibrated(tmp_path_factory):
    root = tmp_path_factory.mktemp("cal")
    for workers in ("2", "1"):
        assert main(["calibrate", CONFIG, *SMALL, *FIT, "--workers", workers, "--out", str(root / workers)]) == 0
    return root


def test_calibrate_outputs_do_not_depend_on_workers(calibrated):
    for name in ("fitted.toml", "fit_report.json", "fit_report.md", "manifest.json", "profile.csv",
                 "china_history_2020_profile.png"):
        a, b = calibrated / "2" / name, calibrated / "1" / name
        assert a.read_bytes() == b.read_bytes(), name
    report = json.loads((calibrated / "1" / "fit_report.json").read_text())
    assert [p["parameter"] for p in report["parameters"]] == ["choice.switching_base", "providers.Baidu AI Cloud.capability"]
    assert report["fitted_rmse_pp"] <= report["start_rmse_pp"]
    # scipy keeps at least 5 members: 5 initial + 5 in one generation + the starting point
    # 44 Canalys shares and concentration figures and 12 market sizes of 2020Q1-2023Q4 (IDC's are of 2024)
    assert len(report["targets"]) == 44 + 12 and report["evaluations"] == 5 + 5 + 1
    assert {t["layer"] for t in report["targets"]} == {"cloud"}
    # The loss profile: 9 values of each of the 2 parameters, the other at its fitted value.
    assert len(report["profile"]) == 18 and all(r["rmse_pp"] > 0 for r in report["profile"])
    # Identification: the noise band on 8 fresh seed sets, a row per parameter, one pair.
    assert len(report["noise"]["losses"]) == 8 and report["noise"]["sd_pp"] > 0
    assert [r["parameter"] for r in report["identification"]] == [p["parameter"] for p in report["parameters"]]
    assert len(report["collinearity"]) == 1
    assert (calibrated / "1" / "china_history_2020_profile.png").read_bytes()[:4] == b"\x89PNG"
    timing = json.loads((calibrated / "1" / "timing.json").read_text())
    assert timing["seconds"] > 0


def test_validate_reports_errors_bands_and_facts(calibrated, tmp_path, capsys):
    out = tmp_path / "val"
    overlay = calibrated / "1" / "fitted.toml"
    assert main(["validate", CONFIG, *SMALL, "--overlay", str(overlay), "--workers", "1", "--out", str(out)]) == 0
    printed = capsys.readouterr().out
    assert "out-of-sample" in printed and "stylized facts" in printed
    body = json.loads((out / "validation.json").read_text())
    assert body["fit_window"] == "2020Q1:2023Q4"  # read from the overlay
    outside = {(t["metric"], t["provider"], t["period"]) for t in body["targets"] if t["sample"] == "out"}
    assert outside == {("top3_share", "(market)", "2024Q1"), ("top3_share", "(market)", "2024Q2"),
                       ("top3_share", "(market)", "2024Q3"), ("token_share", "Volcano Engine", "2024"),
                       *(("market_size", "(market)", f"2024Q{q}") for q in (1, 2, 3)),
                       ("token_rank", "Baidu AI Cloud", "2024"), ("token_rank", "Alibaba Cloud", "2024"),
                       ("spend_rank", "Volcano Engine", "2024")}
    for t in body["targets"]:
        assert t["p05"] <= t["median"] <= t["p95"]
    facts = body["stylized_facts"]
    assert [f["number"] for f in facts] == list(range(1, 10))
    assert all(f["measured"] and 0 <= f["pass_rate"] <= 1 and f["passed"] == (f["pass_rate"] >= 0.5) for f in facts)
    for name in ("china_history_2020_shares.png", "china_history_2020_concentration.png", "china_history_2020_tokens.png"):
        assert (out / name).read_bytes()[:8] == b"\x89PNG\r\n\x1a\n"
    md = (out / "validation.md").read_text()
    assert "## Out-of-sample error" in md and "few_full_stack_providers" in md
    manifest = json.loads((out / "manifest.json").read_text())
    fitted = read_overlay(overlay)
    assert manifest["config"]["choice"]["switching_base"] == pytest.approx(fitted["choice.switching_base"])
    assert manifest["config"]["run"]["customers"] == 400


def test_validate_needs_a_window_without_overlay(tmp_path, capsys):
    code = main(["validate", CONFIG, *SMALL, "--workers", "1", "--out", str(tmp_path)])
    assert code == 2 and "--fit FIRST:LAST is needed" in capsys.readouterr().err


def test_calibrate_refuses_a_bad_window_and_bad_parameter(tmp_path, capsys):
    assert main(["calibrate", CONFIG, "--fit", "2023Q4:2020Q1", "--out", str(tmp_path)]) == 2
    assert "2020Q1:2023Q4" in capsys.readouterr().err
    assert main(["calibrate", CONFIG, "--fit", "2020Q1:2023Q4", "--param", "choice.bogus=0:1", "--out", str(tmp_path)]) == 2
    assert "choice.bogus: not a numeric field" in capsys.readouterr().err
