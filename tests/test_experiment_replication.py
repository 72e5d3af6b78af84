"""Replicates chosen by a rule, 95 % intervals (heatmap cells, verdicts), several master seeds for Sobol'
(sim/experiment/replication.py, analysis.verdicts / agreement), and the new preset experiments at tiny size."""

import io
import shutil
import tomllib

import numpy as np
import pandas as pd
import pytest
from experiment_support import write_spec
from scipy import stats

from sim.experiment import analysis, replication
from sim.experiment.progress import Progress
from sim.experiment.report import report
from sim.experiment.runner import Plan, run_sweep
from sim.experiment.spec import EXPERIMENT_DIR, load_spec, validate_spec
from sim.experiment.store import Store, load_market, load_runs

NOISY = """
replicates = 12
seed = 5
common_random_numbers = true

[replication]
outcome = "final_hhi_revenue"
width = {width}
first = 3
block = 3

[params.lock]
key = "providers.*.lock_in"
mode = "scale"
values = [0.0, 1.0, 3.0]
"""
FIXED = "[fixed]\nrun.customers = 150\nrun.quarters = 6\n"


def sweep(spec_path, out, workers=0, resume=False):
    plan = Plan.make(load_spec(spec_path))
    progress = Progress(plan.runs, stream=io.StringIO(), tty=False)
    run_sweep(plan, out, workers=workers, resume=resume, progress=progress, log=lambda *_: None)
    return plan


# ------------------------------------------------------------------ intervals
def test_mean_intervals_match_textbook_values():
    x = np.array([3.1, 2.4, 5.0, 4.2, 3.3, 2.9, 4.8])
    mean, low, high, n = replication.mean_interval(x)
    ref = stats.t.interval(0.95, n - 1, loc=x.mean(), scale=stats.sem(x))
    assert n == 7 and mean == pytest.approx(x.mean()) and (low, high) == pytest.approx(ref)
    # Wilson's interval: 0 of 10 -> (0, 0.2775); 5 of 10 -> (0.2366, 0.7634) (Newcombe 1998, table I)
    assert replication.mean_interval(np.zeros(10))[1:3] == pytest.approx((0.0, 0.2775), abs=1e-4)
    # 0 of 300 does not exclude a probability of 0, nor 300 of 300 one of 1 (exact ends, not 1e-19 off)
    none = replication.difference_interval(np.zeros(300), 0.0)
    assert none["low"] == 0.0 and replication.verdict_word(none["low"], none["high"], "higher") == "not resolved"
    every = replication.difference_interval(np.ones(300), 1.0)
    assert replication.verdict_word(every["low"], every["high"], "lower") == "not resolved"
    assert replication.mean_interval(np.r_[np.ones(5), np.zeros(5)])[1:3] == pytest.approx((0.2366, 0.7634), abs=1e-4)
    # the median of 1..10: order statistics 2 and 9 (coverage 97.9 %)
    assert replication.median_interval(np.arange(1.0, 11.0))[1:3] == (2.0, 9.0)
    assert np.isnan(replication.mean_interval([4.0])[1])  # one run: no interval


def test_t_interval_covers_the_true_mean_95_percent_of_the_time():
    rng = np.random.default_rng(7)
    hits = sum(lo <= 10.0 <= hi for lo, hi in
               (replication.mean_interval(rng.normal(10.0, 3.0, 8))[1:3] for _ in range(4000)))
    assert 0.94 < hits / 4000 < 0.96


def test_difference_intervals_welch_paired_and_against_a_value():
    rng = np.random.default_rng(3)
    common = rng.normal(0, 5, 30)  # what common random numbers share between two design points
    a, b = common + 1.0 + rng.normal(0, 0.5, 30), common + rng.normal(0, 0.5, 30)
    welch = replication.difference_interval(a, b)
    ref = stats.ttest_ind(a, b, equal_var=False).confidence_interval(0.95)
    assert (welch["low"], welch["high"]) == pytest.approx((ref.low, ref.high))
    paired = replication.difference_interval(a, b, paired=True)
    assert paired["high"] - paired["low"] < (welch["high"] - welch["low"]) / 5  # pairing removes the shared noise
    assert replication.verdict_word(paired["low"], paired["high"], "higher") == "supported"
    assert replication.verdict_word(welch["low"], welch["high"], "higher") == "not resolved"
    assert replication.verdict_word(paired["low"], paired["high"], "lower") == "contradicted"
    # a proportion against a number: Wilson's interval shifted by the number
    p = replication.difference_interval(np.r_[np.ones(3), np.zeros(29)], 0.0)
    assert p["method"].startswith("Wilson") and p["low"] > 0


# ---------------------------------------------------------------------- rule
def _widths_rule_holds(store: Store, plan: Plan, width: float, first: int, block: int, cap: int) -> pd.DataFrame:
    """Re-derive the rule from the stored runs: a point got its last block only because its interval was
    still too wide, and stopped only because it became narrow enough or hit the cap."""
    table = store.replication()
    runs = load_runs(store.root)
    market = load_market(store.root, columns=["hhi_revenue"])
    final = market[market["step"] == market["step"].max()].set_index("run_id")["hhi_revenue"]
    for row in table.itertuples():
        n = int(row.planned)
        assert n == first or (n - first) % block == 0 or n == cap
        ids = runs[(runs["design_index"] == row.design_index) & (runs["replicate"] < n)]["run_id"]
        _, lo, hi, _ = replication.mean_interval(final.reindex(ids))
        assert (hi - lo < width) or n == cap
        if n > first:
            before = runs[(runs["design_index"] == row.design_index) & (runs["replicate"] < n - block)]["run_id"]
            _, lo, hi, _ = replication.mean_interval(final.reindex(before))
            assert hi - lo >= width
    assert set(runs["status"]) == {"ok"}  # no run left pending beyond what the rule asked for
    assert len(runs) == int(table["planned"].sum())
    return table


def _first_block_width(tmp_path) -> float:
    """A width between the narrowest and the widest first-block interval of the design's points, so that
    some points stop after the first block and others need more (whatever the model's noise is)."""
    fixed = write_spec(tmp_path, NOISY.format(width=1.0).split("[replication]")[0] + NOISY.split("block = 3")[1],
                       name="fixed", fixed=FIXED)
    sweep(fixed, tmp_path / "fixed")
    market = load_market(tmp_path / "fixed", columns=["hhi_revenue"])
    final = market[market["step"] == market["step"].max()]
    widths = [np.subtract(*replication.mean_interval(g[g["replicate"] < 3]["hhi_revenue"])[2:0:-1])
              for _, g in final.groupby("design_index")]
    return float(np.median(widths))


def test_the_rule_adds_blocks_only_where_the_interval_is_too_wide(tmp_path):
    width = _first_block_width(tmp_path)
    spec = write_spec(tmp_path, NOISY.format(width=width), fixed=FIXED)
    out = tmp_path / "rule"
    plan = sweep(spec, out)
    table = _widths_rule_holds(Store(out), plan, width, 3, 3, 12)
    # the design has points that stop after the first block and points that need more: the rule chose
    assert table["planned"].nunique() > 1, table
    info = Store(out).manifest()
    assert info["replicate_rule"]["rule"] == "interval width" and info["replicate_rule"]["cap"] == 12
    # the report says how many replicates each point got and whether the width was reached
    result = report(out, log=lambda *_: None, formats=("png",))
    assert result["replication"]["replicates_total"] == int(table["n"].sum())
    assert (out / "summary" / "replication.csv").is_file()


def test_the_rule_decides_the_same_with_two_workers_and_after_a_resume(tmp_path):
    spec = write_spec(tmp_path, NOISY.format(width=_first_block_width(tmp_path)), fixed=FIXED)
    serial, pool = tmp_path / "serial", tmp_path / "pool"
    sweep(spec, serial)
    sweep(spec, pool, workers=2)
    cols = ["run_id", "design_index", "replicate", "seed", "status"]
    pd.testing.assert_frame_equal(load_runs(serial)[cols], load_runs(pool)[cols])
    pd.testing.assert_frame_equal(Store(serial).replication(), Store(pool).replication())
    # a sweep killed during its second block: the journal keeps its first lines, the rule's table is stale
    cut = tmp_path / "cut"
    shutil.copytree(serial, cut)
    lines = (cut / "runs.jsonl").read_text().splitlines(keepends=True)
    keep = 9 + 2  # the first block (3 points x 3) and two runs of the next
    (cut / "runs.jsonl").write_text("".join(lines[:keep]))
    (cut / "replication.parquet").unlink()
    sweep(spec, cut, resume=True)
    pd.testing.assert_frame_equal(load_runs(cut)[cols], load_runs(serial)[cols])
    pd.testing.assert_frame_equal(Store(cut).replication(), Store(serial).replication())


# ------------------------------------------------------- heatmaps and verdicts
VERDICTS = """
replicates = 4
seed = 9
common_random_numbers = true

[params.lock]
key = "providers.*.lock_in"
mode = "scale"
values = [0.0, 3.0]

[params.flywheel]
key = "capability.flywheel"
values = [0.0, 2.0]

[outcomes.hhi_change]
kind = "change"
column = "hhi_revenue"

[outcomes.alive]
kind = "survives"
providers = ["Porter"]

[[figures]]
kind = "heatmap"
name = "map"
x = "lock"
y = "flywheel"
outcome = "final_hhi_revenue"

[[figures]]
kind = "heatmap"
name = "alive_map"
x = "lock"
y = "flywheel"
outcome = "alive"

[[verdicts]]
name = "lock"
outcome = "final_hhi_revenue"
at = { lock = 3.0, flywheel = 0.0 }
against = { lock = 0.0, flywheel = 0.0 }
expect = "higher"

[[verdicts]]
name = "change"
outcome = "hhi_change"
at = { lock = 3.0 }
value = 0.0
expect = "lower"
"""


def test_verdicts_come_from_intervals_and_heatmap_cells_show_theirs(tmp_path):
    spec_path = write_spec(tmp_path, VERDICTS, fixed=FIXED)
    out = tmp_path / "v"
    sweep(spec_path, out)
    result = report(out, log=lambda *_: None, formats=("png",))
    table = pd.read_csv(out / "summary" / "verdicts.csv")
    assert list(table["name"]) == ["lock", "change"]
    outcomes = pd.read_parquet(out / "summary" / "outcomes.parquet")
    design = Store(out).design()
    # recompute the first verdict by hand: paired by replicate (common random numbers, one point each side)
    at = analysis.select(design, {"lock": 3.0, "flywheel": 0.0})
    against = analysis.select(design, {"lock": 0.0, "flywheel": 0.0})
    a = outcomes[outcomes["design_index"] == at[0]].sort_values("replicate")["final_hhi_revenue"].to_numpy()
    b = outcomes[outcomes["design_index"] == against[0]].sort_values("replicate")["final_hhi_revenue"].to_numpy()
    ref = stats.ttest_rel(a, b).confidence_interval(0.95)
    row = table.iloc[0]
    assert (row["low"], row["high"]) == pytest.approx((ref.low, ref.high))
    assert row["verdict"] == replication.verdict_word(ref.low, ref.high, "higher")
    # the second pools the two points with lock 3 against 0: a one-sample t interval of the change
    change = outcomes[outcomes["design_index"].isin(analysis.select(design, {"lock": 3.0}))]["hhi_change"]
    _, lo, hi, _ = replication.mean_interval(change)
    assert (table.iloc[1]["low"], table.iloc[1]["high"]) == pytest.approx((lo, hi))
    assert len(result["verdicts"]) == 2 and (out / "figures" / "verdicts.png").is_file()
    points = pd.read_parquet(out / "summary" / "points.parquet")
    assert {"ci_low", "ci_high"} <= set(points.columns)


def test_a_probability_heatmap_spans_0_to_1_and_other_outcomes_their_range(tmp_path, monkeypatch):
    """A yes/no outcome's mean is a probability: its colour bar runs from 0 to 1 (a grid of zeros got
    -0.1 to 0.1 before); other outcomes keep their cells' range."""
    from sim.experiment import plots

    spec_path = write_spec(tmp_path, VERDICTS, fixed=FIXED)
    out = tmp_path / "v"
    sweep(spec_path, out)
    scales = []
    real = plots.heatmap_figure

    def spy(grid, **kwargs):
        fig = real(grid, **kwargs)
        cells = grid.to_numpy(dtype=float)
        scales.append((kwargs["label"], fig.axes[0].images[0].get_clim(), (cells.min(), cells.max())))
        return fig

    monkeypatch.setattr(plots, "heatmap_figure", spy)
    report(out, log=lambda *_: None, formats=("png",))
    assert len(scales) == 2
    by_outcome = {("alive" if "alive" in label.lower() or "surviv" in label.lower() else "hhi"): (clim, cells)
                  for label, clim, cells in scales}
    assert by_outcome["alive"][0] == (0.0, 1.0)
    clim, cells = by_outcome["hhi"]
    assert clim == pytest.approx(cells)  # the HHI map keeps its cells' range


def test_heatmap_cells_print_the_interval_under_the_mean():
    from sim.experiment import plots

    grid = pd.DataFrame([[2000.0, 2100.0]], index=[1.0], columns=[0.0, 1.0])
    fig = plots.heatmap_figure(grid, x="a", y="b", xlabel="a", ylabel="b", label="hhi", title="t",
                               low=grid - 50, high=grid + 50)
    texts = [t.get_text() for t in fig.axes[0].texts]
    assert texts == ["2,000\n[1,950, 2,050]", "2,100\n[2,050, 2,150]"]


# ------------------------------------------------------- two master seeds
SOBOL = """
replicates = 2
{seeds}
[design]
kind = "sobol"
samples = 4
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
outcome = ["final_hhi_revenue"]
"""


def test_sobol_with_two_master_seeds_runs_each_as_its_own_design_and_compares_them(tmp_path):
    both = write_spec(tmp_path, SOBOL.format(seeds="seeds = [4, 5]"), name="both", fixed=FIXED)
    one = write_spec(tmp_path, SOBOL.format(seeds="seed = 5"), name="one", fixed=FIXED)
    sweep(both, tmp_path / "both")
    sweep(one, tmp_path / "one")
    runs_both, runs_one = load_runs(tmp_path / "both"), load_runs(tmp_path / "one")
    assert len(runs_both) == 2 * len(runs_one) == 2 * 4 * 4 * 2
    # the second master seed's half is exactly the sweep run with that seed alone (design and seeds)
    half = runs_both[runs_both["master_seed"] == 5]
    assert list(half["seed"]) == list(runs_one["seed"])
    assert np.allclose(half[["flywheel", "lock"]].to_numpy(), runs_one[["flywheel", "lock"]].to_numpy())
    report(tmp_path / "both", log=lambda *_: None, formats=("png",))
    report(tmp_path / "one", log=lambda *_: None, formats=("png",))
    table = pd.read_csv(tmp_path / "both" / "summary" / "sensitivity_final_hhi_revenue.csv")
    alone = pd.read_csv(tmp_path / "one" / "summary" / "sensitivity_final_hhi_revenue.csv")
    assert sorted(set(table["master_seed"])) == [4, 5]
    pd.testing.assert_frame_equal(table[table["master_seed"] == 5].drop(columns="master_seed").reset_index(drop=True),
                                  alone)
    agree = pd.read_json(tmp_path / "both" / "summary" / "agreement_final_hhi_revenue.json", typ="series")
    assert agree["seeds"] == [4, 5] and isinstance(agree["agree"], (bool, np.bool_))


def test_agreement_needs_the_gaps_within_the_intervals_and_the_same_top_parameter():
    def res(st, conf, s1=None):
        t = pd.DataFrame({"parameter": ["a", "b"], "S1": s1 or st, "S1_conf": conf, "ST": st, "ST_conf": conf})
        return analysis.Sensitivity("sobol", "y", t, 8, 0, master_seed=1)

    assert analysis.agreement([res([0.6, 0.2], [0.1, 0.1]), res([0.55, 0.25], [0.1, 0.1])])["agree"]
    apart = analysis.agreement([res([0.6, 0.2], [0.05, 0.05]), res([0.3, 0.2], [0.05, 0.05])])
    assert not apart["agree"] and list(apart["outside"]) == ["a"]
    swapped = analysis.agreement([res([0.45, 0.4], [0.1, 0.1]), res([0.4, 0.45], [0.1, 0.1])])
    assert swapped["within_intervals"] and not swapped["same_top"] and not swapped["agree"]


# --------------------------------------------------- new presets, tiny size
@pytest.mark.parametrize("name", ["group_funding", "gala", "switching_remedy", "export_controls", "tipping"])
def test_new_preset_experiment_runs_at_tiny_size(tmp_path, name):
    source = EXPERIMENT_DIR / f"{name}.toml"
    raw = tomllib.loads(source.read_text())
    raw["fixed"]["run"] = {"customers": 120, "quarters": 8}
    raw["replicates"] = 2
    raw["replication"] |= {"first": 2, "block": 1}
    spec = validate_spec(raw, str(source))
    plan = Plan.make(spec)
    out = tmp_path / name
    run_sweep(plan, out, workers=0, progress=Progress(plan.runs, stream=io.StringIO(), tty=False), log=lambda *_: None)
    result = report(out, spec=spec, log=lambda *_: None, formats=("png",))
    assert result["failed"] == 0 and not result["figures_not_drawn"], result["notes"]
    assert len(result["verdicts"]) == len(spec.verdicts) > 0
    assert all(v["verdict"] in ("supported", "contradicted", "not resolved") for v in result["verdicts"])


def test_under_the_rule_failed_runs_are_recorded_and_their_point_runs_to_the_cap(tmp_path):
    from sim.experiment import designs
    from sim.experiment.keys import Overrides
    from sim.experiment.runner import Plan as RawPlan
    from sim.experiment.spec import base_config

    body = """
    replicates = 6
    seed = 1
    [replication]
    outcome = "final_hhi_revenue"
    width = 1e9
    first = 2
    block = 2
    [params.floor]
    key = "pricing.min_markup"
    values = [-0.3, 3.0]   # 3.0 is above max_markup (1.5): those runs fail validation in the worker
    """
    spec = load_spec(write_spec(tmp_path, body, fixed=FIXED))
    base = base_config(spec)
    plan = RawPlan(spec, base, designs.build(spec), Overrides(spec, base))  # without the plan's checks
    out = tmp_path / "out"
    tally = run_sweep(plan, out, workers=0, progress=Progress(plan.runs, stream=io.StringIO(), tty=False),
                      log=lambda *_: None)
    runs = load_runs(out)
    # the good point stops after its first block (any interval is narrower than 1e9); the failing point
    # has no interval, so the rule gives it blocks up to the cap, each run failing once and recorded
    assert list(Store(out).replication()["planned"]) == [2, 6]
    assert tally.ok == 2 and tally.failed == 6
    assert list(runs.loc[runs["status"] == "failed", "design_index"]) == [1] * 6
    assert runs.loc[runs["status"] == "failed", "error"].str.contains("min_markup").all()


def test_the_verdicts_figure_draws_a_proportion_at_the_edge_of_its_interval():
    from sim.experiment import plots

    rows = [replication.difference_interval(np.zeros(48), 0.1) | {"name": "zero", "claim": "", "outcome": "p",
            "at": "a", "against": "0.1", "expect": "lower"},
            replication.difference_interval(np.ones(48), 0.5) | {"name": "one", "claim": "", "outcome": "p",
            "at": "a", "against": "0.5", "expect": "higher"}]
    table = pd.DataFrame(rows)
    table["verdict"] = [replication.verdict_word(r["low"], r["high"], r["expect"]) for r in rows]
    assert list(table["verdict"]) == ["supported", "supported"]
    fig = plots.verdicts_figure(table, {}, "t")  # the mean sits on an end of the interval: no negative error bar
    assert len(fig.axes) == 2
