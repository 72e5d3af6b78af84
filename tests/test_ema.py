"""EMA Workbench bridges: PRIM finds a planted box through our adapter, a sweep converts to EMA's
(experiments, outcomes), the model runs as an EMA model, and specs draw prim, feature_scoring and
parcoords figures."""

from __future__ import annotations

import json
from types import SimpleNamespace

import numpy as np
import pandas as pd
import pytest

pytest.importorskip("ema_workbench")

from sim.api import run_sweep  # noqa: E402
from sim.experiment import ema  # noqa: E402
from sim.experiment.report import report  # noqa: E402
from sim.experiment.spec import Figure, validate_spec  # noqa: E402


def planted_context(tmp_path, n: int = 400):
    """A synthetic sweep: three parameters sampled uniformly; the leader's share is high exactly when
    a > 0.7 and b < 0.3 (c is noise)."""
    rng = np.random.default_rng(5)
    spec = validate_spec({"base": "minimal", "design": {"kind": "random", "samples": n},
                          "params": {"a": {"key": "capability.flywheel", "low": 0, "high": 1},
                                     "b": {"key": "choice.switching_base", "low": 0, "high": 1, "role": "lever"},
                                     "c": {"key": "demand.bass_q", "low": 0, "high": 1}}}, "planted.toml")
    design = pd.DataFrame({"design_index": range(n), "label": [f"p{i}" for i in range(n)],
                           "a": rng.random(n), "b": rng.random(n), "c": rng.random(n)})
    rule = (design["a"] > 0.7) & (design["b"] < 0.3)
    outcomes = pd.DataFrame({"run_id": range(n), "design_index": range(n), "replicate": 0,
                             "leader_share_revenue": np.where(rule, 0.6, 0.3) + rng.normal(0, 0.01, n)})
    runs = outcomes[["run_id", "design_index"]].assign(seed=rng.integers(0, 2**62, n))
    summary = tmp_path / "summary"
    summary.mkdir()
    ctx = SimpleNamespace(spec=spec, design=design, runs=runs, outcomes=outcomes, summary_dir=summary,
                          param_label=lambda name: name, outcome_label=lambda name: name)
    return ctx, rule


def test_prim_finds_the_planted_box(tmp_path):
    ctx, rule = planted_context(tmp_path)
    fig, note = ema.draw(ctx, Figure(kind="prim", outcome="leader_share_revenue", threshold=0.5, name="planted"))
    assert note is None and fig is not None
    box = json.loads((ctx.summary_dir / "prim_planted.json").read_text())
    assert box["cases_of_interest"] == int(rule.sum())
    assert set(box["limits"]) == {"a", "b"}  # c is noise and stays unrestricted
    assert 0.62 <= box["limits"]["a"][0] <= 0.75 and box["limits"]["a"][1] == pytest.approx(ctx.design["a"].max())
    assert 0.25 <= box["limits"]["b"][1] <= 0.38 and box["limits"]["b"][0] == pytest.approx(ctx.design["b"].min())
    assert box["density"] >= 0.8 and box["coverage"] >= 0.8
    trajectory = pd.read_csv(ctx.summary_dir / "prim_planted_trajectory.csv")
    assert {"coverage", "density", "mass", "res_dim"} <= set(trajectory.columns)


def test_experiments_table_numbers_scenarios_and_policies(tmp_path):
    ctx, _ = planted_context(tmp_path, n=6)
    table = ema.experiments_table(ctx.spec, ctx.design, ctx.runs)
    assert list(table.columns) == ["a", "b", "c", "scenario", "policy", "model"]
    assert table["scenario"].nunique() == 6 and table["policy"].nunique() == 6
    assert table["a"].tolist() == ctx.design["a"].tolist()


SPEC = {"name": "ema_small", "base": "minimal", "replicates": 2, "seed": 3,
        "fixed": {"run": {"customers": 200, "quarters": 4}},
        "params": {"flywheel": {"key": "capability.flywheel", "values": [0.0, 3.0]},
                   "lock": {"key": "providers.*.lock_in", "values": [0.5, 3.0], "role": "lever"}},
        "outcomes": {"porters": {"kind": "share", "providers": "porters"}},
        "figures": [{"kind": "feature_scoring", "outcome": ["final_hhi_revenue", "porters"]},
                    {"kind": "parcoords", "outcome": "porters", "threshold": 0.3, "below": True},
                    {"kind": "prim", "outcome": "porters", "threshold": 0.3, "below": True}]}


def test_sweep_to_ema_and_ema_figures(tmp_path):
    results = run_sweep(SPEC, out=tmp_path / "ema_small", workers=0)
    experiments, outcomes = ema.to_ema(results)
    assert len(experiments) == 8 and set(outcomes) >= {"porters", "final_hhi_revenue"}
    assert experiments["scenario"].nunique() == 2 and experiments["policy"].nunique() == 2
    table = results.outcomes()
    assert outcomes["porters"].tolist() == pytest.approx(table["porters"].tolist())
    assert experiments["lock"].tolist() == table["lock"].tolist()
    done = report(results.root, formats=("png",), log=lambda *a: None)
    names = sorted(p.split("/")[-1] for p in done["figures"])
    assert names == ["01_feature_scoring.png", "02_parcoords.png", "03_prim.png"]
    scores = pd.read_csv(results.root / "summary" / "feature_scores_final_hhi_revenue_porters.csv")
    assert set(scores["parameter"]) == {"flywheel", "lock", "seed (noise floor)"}


def test_the_model_as_an_ema_model():
    from ema_workbench import perform_experiments

    model = ema.ema_model(validate_spec(SPEC, "ema_small.toml"))
    assert [u.name for u in model.uncertainties] == ["flywheel"] and [lever.name for lever in model.levers] == ["lock"]
    experiments, outcomes = perform_experiments(model, scenarios=2, policies=2)
    assert len(experiments) == 4 and len(outcomes["porters"]) == 4
    first = experiments.iloc[0]
    again = model.function(flywheel=first["flywheel"], lock=first["lock"])
    assert again["porters"] == pytest.approx(outcomes["porters"][0])  # a point's seed is stable
