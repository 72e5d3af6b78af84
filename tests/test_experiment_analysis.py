"""Analysis: quantile summaries, outcomes from per-quarter tables, SALib ordering and failed runs."""

import numpy as np
import pandas as pd
import pytest

from sim.experiment import analysis, designs
from sim.experiment.spec import validate_spec


def test_quantile_table_matches_numpy():
    rng = np.random.default_rng(0)
    frame = pd.DataFrame({"design_index": np.repeat([0, 1], 50), "step": 0, "quarter": "2025Q1",
                          "hhi_revenue": rng.random(100) * 10_000})
    frame.loc[3, "hhi_revenue"] = np.nan  # ignored, not counted
    table = analysis.quantile_table(frame, ["design_index", "step", "quarter"], ["hhi_revenue"])
    assert list(table.columns) == ["design_index", "step", "quarter", "variable", "n", "mean", "median",
                                   "q05", "q25", "q75", "q95"]
    for point in (0, 1):
        values = frame.loc[frame["design_index"] == point, "hhi_revenue"].dropna().to_numpy()
        row = table[table["design_index"] == point].iloc[0]
        assert row["n"] == len(values)
        assert row["mean"] == pytest.approx(values.mean())
        assert row["median"] == pytest.approx(np.median(values))
        for name, q in analysis.QUANTILES.items():
            assert row[name] == pytest.approx(np.quantile(values, q))


def tables():
    """Two runs, three quarters, an incumbent, a porter and a start-up that enters in quarter 2."""
    rows = []
    shares = {  # run -> step -> (Big, Porter, Startup)
        0: [(0.6, 0.4, 0.0), (0.55, 0.35, 0.10), (0.5, 0.3, 0.2)],
        1: [(0.6, 0.4, 0.0), (0.6, 0.37, 0.03), (0.7, 0.3, 0.0)],
    }
    status = {0: ["pending", "active", "active"], 1: ["pending", "active", "exited"]}
    for run, steps in shares.items():
        for step, triple in enumerate(steps):
            for name, share in zip(("Big", "Porter", "Startup"), triple):
                rows.append({"run_id": run, "design_index": run, "replicate": 0, "step": step,
                             "quarter": f"2025Q{step + 1}", "provider": name, "share_revenue": share,
                             "markup": 2 * share,
                             "status": status[run][step] if name == "Startup" else "active"})
    providers = pd.DataFrame(rows)
    market = providers.groupby(["run_id", "design_index", "replicate", "step", "quarter"], as_index=False).agg(
        hhi_revenue=("share_revenue", lambda s: float(((100 * s) ** 2).sum())))
    config = {"providers": [{"name": "Big", "has_model": True}, {"name": "Porter", "has_model": False}],
              "entrants": [{"name": "Startup", "has_model": True}]}
    return providers, market, analysis.provider_groups(config)


def test_outcomes_from_per_quarter_tables():
    spec = validate_spec({"base": "minimal", "outcomes": {
        "up5": {"kind": "reaches_share", "providers": ["Startup"], "threshold": 0.05, "survive": True},
        "up5_any": {"kind": "reaches_share", "providers": "entrants", "threshold": 0.05},
        "to15": {"kind": "quarters_to_share", "providers": ["Startup"], "threshold": 0.15},
        "to5_held": {"kind": "quarters_to_share", "providers": ["Startup"], "threshold": 0.05, "sustained": 2},
        "up3_held": {"kind": "reaches_share", "providers": ["Startup"], "threshold": 0.03, "sustained": 2},
        "porters": {"kind": "share", "providers": "porters"},
        "porters_max": {"kind": "share", "providers": "porters", "at": "max"},
        "alive": {"kind": "survives", "providers": ["Startup"]},
        "entered": {"kind": "entered", "providers": "entrants"},
        "owners_markup": {"kind": "provider", "column": "markup", "providers": "model_owners", "at": "final"},
        "owners_markup_mean": {"kind": "provider", "column": "markup", "providers": "model_owners", "at": "mean"},
    }}, "test.toml")
    providers, market, groups = tables()
    out = analysis.outcomes(spec, providers, market, groups).set_index("run_id")
    assert list(out["up5"]) == [1.0, 0.0]  # run 1 never reached 5 % and exited
    assert list(out["up5_any"]) == [1.0, 0.0]
    assert out.loc[0, "to15"] == 3 and np.isnan(out.loc[1, "to15"])  # third quarter; never
    assert out.loc[0, "to5_held"] == 2 and np.isnan(out.loc[1, "to5_held"])  # 10 %, 20 %: held from the 2nd
    assert list(out["up3_held"]) == [1.0, 0.0]  # run 1: 3 % for one quarter only
    assert list(out["porters"]) == pytest.approx([0.3, 0.3])
    assert list(out["porters_max"]) == pytest.approx([0.4, 0.4])
    assert list(out["alive"]) == [1.0, 0.0] and list(out["entered"]) == [1.0, 1.0]
    assert list(out["leader_share_revenue"]) == pytest.approx([0.5, 0.7])
    # mean over the group's active providers: run 0 ends with Big and Startup active, run 1 with Big only
    assert list(out["owners_markup"]) == pytest.approx([(1.0 + 0.4) / 2, 1.4])
    assert out.loc[1, "owners_markup_mean"] == pytest.approx((1.2 + (1.2 + 0.06) / 2 + 1.4) / 3)
    assert out.loc[1, "final_hhi_revenue"] == pytest.approx(70**2 + 30**2)


SOBOL = {"base": "minimal", "seed": 9, "design": {"kind": "sobol", "samples": 64},
         "params": {"a": {"key": "capability.flywheel", "low": 0.0, "high": 1.0},
                    "b": {"key": "choice.model_lock", "low": 0.0, "high": 1.0},
                    "c": {"key": "entry.exit_after", "type": "int", "low": 1, "high": 4}}}


def synthetic(spec, replicates=2):
    """Outcome table of a known function (4a + b, c inert) with replicate noise, rows in design order."""
    design = designs.build(spec).frame()
    rng = np.random.default_rng(1)
    rows = [{"run_id": d * replicates + r, "design_index": d, "replicate": r,
             "y": 4 * row["a"] + row["b"] + 0.01 * rng.standard_normal()}
            for d, row in design.iterrows() for r in range(replicates)]
    return design, pd.DataFrame(rows)


@pytest.mark.parametrize("kind", ["sobol", "morris"])
def test_sensitivity_is_ordered_by_design_index_not_by_completion(kind):
    raw = {**SOBOL, "design": {"kind": kind, "samples": 64 if kind == "sobol" else 20}}
    spec = validate_spec(raw, "test.toml")
    design, table = synthetic(spec)
    res = analysis.sensitivity(spec, design, table, "y")
    first = "S1" if kind == "sobol" else "mu_star"
    ranked = list(res.table.sort_values(first, ascending=False)["parameter"])
    assert ranked == ["a", "b", "c"]  # the known function: a matters most, c not at all
    assert 0 < res.noise_share < 0.01  # replicate noise (sd 0.01) is tiny against the signal
    # Rows arriving in completion order (shuffled) give exactly the same indices.
    shuffled = table.sample(frac=1.0, random_state=3)
    again = analysis.sensitivity(spec, design.sample(frac=1.0, random_state=4), shuffled, "y")
    pd.testing.assert_frame_equal(res.table, again.table)
    assert res.blocks_dropped == 0


def test_sobol_drops_the_blocks_of_points_without_finished_runs():
    spec = validate_spec(SOBOL, "test.toml")
    design, table = synthetic(spec)
    block = len(spec.params) + 2
    lost = table[~table["design_index"].isin([7, 3 * block + 1])]  # all replicates of two points failed
    res = analysis.sensitivity(spec, design, lost, "y")
    assert res.blocks_dropped == 2 and res.blocks_used == 62 and res.points_missing == [7, 3 * block + 1]
    assert "dropped" in res.note()
    # Same as analysing only the complete blocks by hand.
    from SALib.analyze import sobol

    y = table.groupby("design_index")["y"].mean().to_numpy().reshape(64, block)
    kept = np.delete(y, [1, 3], axis=0).ravel()
    problem = {"num_vars": 3, "names": ["a", "b", "c"], "bounds": [[0, 1]] * 3}
    manual = sobol.analyze(problem, kept, calc_second_order=False, seed=analysis.design_seed(spec.seed))
    assert np.allclose(res.table["ST"], manual["ST"])
    # one replicate failing at a point is fine: the other replicate still gives the point a value
    partial = table[table["run_id"] != 14]
    assert analysis.sensitivity(spec, design, partial, "y").blocks_dropped == 0


def test_no_complete_block_is_an_explicit_error():
    spec = validate_spec(SOBOL, "test.toml")
    design, table = synthetic(spec)
    none_left = table[table["design_index"] % (len(spec.params) + 2) != 0]
    with pytest.raises(analysis.AnalysisError, match="no complete sobol block"):
        analysis.sensitivity(spec, design, none_left, "y")
