"""Calibration: simulated counterparts of observed figures, free parameters, overlays, and a
synthetic twin (data made by the model at known parameter values) that the fit must recover."""

import numpy as np
import pandas as pd
import pytest

from sim.calibration import params as fp
from sim.calibration.fit import FitSettings, calibrate, starting_point
from sim.calibration.objective import Objective, quarters_needed
from sim.calibration.overlay import apply_overlay, read_overlay, write_overlay
from sim.calibration.replicate import run_replications
from sim.calibration.targets import Panel, Target, fringe_names, in_window, parse_window
from sim.config import ConfigError, load_config, with_overrides


def target(metric, period, provider="", observed=0.0, qualifier="exact"):
    return Target("china_cloud", metric, period, provider, observed, qualifier, "V", 1)


def toy_panel():
    # Two quarters of 2020, four providers; "Others" is the fringe.
    quarters = ["2020Q1", "2020Q2", "2020Q3", "2020Q4"]
    revenue = np.array([[50, 30, 15, 5], [40, 30, 20, 10], [40, 30, 20, 10], [40, 30, 20, 10]], float)
    tokens = np.array([[0, 0, 0, 0], [0, 0, 0, 0], [1, 3, 0, 0], [1, 3, 0, 0]], float)
    return Panel(quarters, ["A", "B", "Others", "C"], np.array([False, False, True, False]), revenue, tokens)


def test_panel_measures_shares_topk_without_fringe_and_years():
    p = toy_panel()
    assert p.measure(target("spend_share", "2020Q1", "A")) == pytest.approx(50.0)
    # Top-3 of the named providers: A, B and C (the fringe's 15 % is never a "top" firm).
    assert p.measure(target("top3_share", "2020Q1")) == pytest.approx(85.0)
    assert p.measure(target("top4_share", "2020Q1")) == pytest.approx(85.0)  # only three named
    assert p.measure(target("others_share", "2020Q1")) == pytest.approx(15.0)
    # A year sums the quarters' revenue: A has 170 of 400.
    assert p.measure(target("spend_share", "2020", "A")) == pytest.approx(42.5)
    tok = Target("china_maas", "token_share", "2020", "B", 0.0, "exact", "M", 1)
    assert p.measure(tok) == pytest.approx(75.0)
    assert p.measure(target("spend_share", "2021Q1", "A")) is None  # not simulated
    assert p.named_hhi("2020Q1") == pytest.approx(50**2 + 30**2 + 5**2)


def test_lower_bound_counts_only_when_broken():
    t = target("top4_share", "2021Q1", observed=80.0, qualifier="lower_bound")
    assert t.error(83.0) == 0.0 and t.error(78.5) == pytest.approx(-1.5)
    assert target("top4_share", "2021Q1", observed=80.0).error(83.0) == pytest.approx(3.0)


def test_windows():
    assert parse_window("2020Q1:2023Q4") == ("2020Q1", "2023Q4")
    for bad in ("2020Q1-2023Q4", "2023Q4:2020Q1", "2020:2023"):
        with pytest.raises(ValueError, match="2020Q1:2023Q4"):
            parse_window(bad)
    assert in_window("2022", ("2020Q1", "2023Q4")) and not in_window("2023", ("2020Q1", "2023Q3"))


def test_history_config_starts_from_the_2020q1_shares():
    cfg = load_config("china_history_2020")
    shares = {p.name: p.initial_share for p in cfg.providers}
    assert shares == {"Alibaba Cloud": 0.445, "Huawei Cloud": 0.141, "Tencent Cloud": 0.139,
                      "Baidu AI Cloud": 0.086, "Others": 0.189}
    volcano = cfg.entrants[0]
    assert volcano.name == "Volcano Engine" and cfg.quarter_offset(volcano.earliest) == 4  # 2021Q1
    assert cfg.quarter_offset(cfg.demand.model_services_start) == 12  # 2023Q1
    assert {cfg.quarter_offset(c.quarter) for c in cfg.pricing.token_price_cuts} == {17}  # 2024Q2
    assert fringe_names(cfg) == ["Others"]


def test_wildcard_parameter_moves_every_segment():
    cfg = load_config("china_history_2020")
    p = fp.FreeParam("demand.segments.*.renewal_hazard", 0.02, 0.25)
    new = fp.apply(cfg, [p], [0.2])
    assert {s.renewal_hazard for s in new.demand.segments.values()} == {0.2}
    named = fp.apply(cfg, [fp.FreeParam("providers.Huawei Cloud.affinity.government", 0, 3)], [2.5])
    assert named.providers[1].affinity["government"] == 2.5


@pytest.mark.parametrize("spec, words", [
    ("choice.nonsense=0:1", "not a numeric field"),
    ("providers.Nobody.lock_in=0:1", "not a numeric field"),
    ("choice.switching_base=-1:2", ">= 0"),
    ("demand.segments.*.renewal_hazard=0:1.5", "<= 1"),
])
def test_bad_free_parameters_are_refused(spec, words):
    cfg = load_config("china_history_2020")
    with pytest.raises(ConfigError) as err:
        fp.check(cfg, [fp.parse_param(spec)])
    assert words in str(err.value)


def test_parse_param_needs_bounds():
    for text in ("choice.switching_base", "choice.switching_base=2:1", "choice.switching_base=a:b"):
        with pytest.raises(ConfigError, match="--param"):
            fp.parse_param(text)


def test_overlay_round_trip_and_refusals(tmp_path):
    cfg = load_config("china_history_2020")
    path = tmp_path / "fitted.toml"
    values = {"choice.switching_base": 1.25, "demand.segments.*.w_price": 3.5,
              "providers.Huawei Cloud.affinity.government": 2.0}
    write_overlay(path, values, {"fit": "2020Q1:2023Q4"}, "header line")
    assert read_overlay(path) == values
    fitted = apply_overlay(cfg, path)
    assert fitted.choice.switching_base == 1.25
    assert {s.w_price for s in fitted.demand.segments.values()} == {3.5}
    assert fitted.providers[1].affinity == {"government": 2.0, "enterprise": 0.3}
    bad = tmp_path / "bad.toml"
    bad.write_text('[overrides]\n"choice.nonsense" = 1\n')
    with pytest.raises(ConfigError) as err:
        apply_overlay(cfg, bad)
    assert str(bad) in str(err.value) and "nonsense" in str(err.value) and "unknown key" in str(err.value)
    bad.write_text('[extras]\na = 1\n[overrides]\n"choice.switching_base" = 1\n')
    with pytest.raises(ConfigError, match="extras: unknown table"):
        read_overlay(bad)


# ----------------------------------------------------------------- synthetic twin
TWIN_PARAMS = [fp.FreeParam("demand.segments.*.renewal_hazard", 0.02, 0.4),
               fp.FreeParam("providers.B.capability", 0.4, 1.0)]
TRUTH = [0.15, 0.7]
# Stated tolerance: renewal hazard within 0.05 (13 % of its range), B's capability within
# 0.08 (13 % of its range).
TOLERANCE = [0.05, 0.08]


def twin_config():
    """Three providers, homogeneous customers (no size or taste noise), no new adopters, and a
    challenger B starting far from its equilibrium share: the speed of its rise tells the renewal
    hazard, its level tells its capability."""
    return with_overrides(load_config("minimal"), {
        "run.customers": 3000, "run.quarters": 12, "run.start": "2020Q1",
        "demand.bass_p": 0.0, "demand.bass_q": 0.0, "demand.size_tail": 8.0, "demand.preference_spread": 0.0,
        "providers": [
            {"name": "A", "capability": 0.8, "compute": 1e5, "initial_share": 0.7, "cash": 2e4},
            {"name": "B", "capability": 0.8, "compute": 6e4, "initial_share": 0.1, "cash": 2e4},
            {"name": "C", "has_model": False, "capability": 0.6, "compute": 4e4, "initial_share": 0.2, "cash": 2e4},
        ]}, source="twin")


def twin_observations(config) -> list[Target]:
    """Observed = the mean over 8 runs at the true values, with seeds the fit never uses."""
    truth = fp.apply(config, TWIN_PARAMS, TRUTH)
    panels = [Panel.from_frame(r.providers, []) for r in run_replications(truth, list(range(100, 108)))]
    found = []
    for q in panels[0].quarters:
        for name in "ABC":
            probe = target("spend_share", q, name)
            found.append(target("spend_share", q, name, float(np.mean([p.measure(probe) for p in panels]))))
    return found


def test_synthetic_twin_recovers_known_parameters():
    config = twin_config()
    objective = Objective(config, TWIN_PARAMS, twin_observations(config), seeds=[1, 2, 3, 4], fringe=[])
    assert objective.quarters == 12
    result = calibrate(objective, FitSettings(generations=8, popsize=6, seed=3, workers=1, progress=False))
    for value, truth, tol, p in zip(result.best, TRUTH, TOLERANCE, TWIN_PARAMS):
        assert abs(value - truth) <= tol, f"{p.key}: fitted {value:.3f}, true {truth}"
    assert result.best_loss < result.start_loss  # the config's own values fit worse
    assert result.evaluations == 6 * 2 * 9 + 1 and len(result.history) == 8
    assert list(starting_point(objective)) == [0.08, 0.8]  # the first segment's value


def test_objective_uses_common_random_numbers_run_as_one_batch(monkeypatch):
    from sim import batch
    from sim.calibration.objective import _value, loss
    from sim.simulate import simulate

    config = twin_config()
    targets = [target("spend_share", "2020Q2", "B", 20.0)]
    obj = Objective(with_overrides(config, {"run.customers": 500}), TWIN_PARAMS, targets, seeds=[5, 6], fringe=[])
    assert obj.quarters == 2 == quarters_needed(obj.config, targets)
    x = [0.2, 0.7]
    sizes, real = [], batch.run_batch
    monkeypatch.setattr(batch, "run_batch", lambda configs: sizes.append(len(configs)) or real(configs))
    assert obj(x) == obj(x)  # same candidate, same seeds: the same loss
    assert sizes == [2, 2]  # each evaluation's two seeds step together
    cfg = fp.apply(obj.config, obj.params, x)
    alone = [simulate(with_overrides(cfg, {"run.seed": s, "run.quarters": 2}, source="test")) for s in obj.seeds]
    panels = [Panel.from_frame(r.providers, []) for r in alone]
    assert obj(x) == loss(targets, np.array([[_value(p, t) for t in targets] for p in panels]))  # as seeds one by one
    table = obj.table(x)
    assert isinstance(table, pd.DataFrame) and table.loc[0, "error_pp"] == pytest.approx(table.loc[0, "simulated_mean"] - 20)


# ------------------------------------------------------------ issue 12: both layers, identification
def test_ranks_sizes_and_layers():
    p = toy_panel()  # 2020Q1 revenue: A 50, B 30, Others 15 (fringe), C 5
    rank = lambda provider, r, q="exact": Target("china_cloud", "spend_rank", "2020Q1", provider, r, q, "M", 1)
    assert p.measure(rank("B", 2)) == 0.0  # B is second among the named A, B, C
    assert p.measure(rank("B", 1)) == pytest.approx(30.0 - 50.0)  # 20 pp short of first
    assert p.measure(rank("A", 2)) == pytest.approx(50.0 - 30.0)  # 20 pp above second (B's 30)
    assert p.measure(rank("A", 3)) == pytest.approx(50.0 - 5.0)  # third means below C's 5
    below_all = rank("A", 6, "lower_bound")  # "not among the top six": below every named provider
    assert below_all.error(p.measure(below_all)) == pytest.approx(50.0 - 5.0)
    assert rank("C", 6, "lower_bound").error(p.measure(rank("C", 6, "lower_bound"))) == 0.0
    tok = Target("china_maas", "token_rank", "2020", "A", 2, "exact", "M", 1)  # tokens: B 6, A 2
    assert p.measure(tok) == 0.0 and tok.layer == "tokens" and rank("A", 1).layer == "cloud"
    size = Target("china_cloud", "market_size", "2020Q1", "", 0.05, "exact", "V", 1)  # US$ bn; revenue in US$ million
    assert p.measure(size) == pytest.approx(0.1)
    assert size.error(0.1) == pytest.approx(10 * np.log(2.0))  # LOG_WEIGHT x ln(simulated / observed)


def test_loss_weighs_the_two_layers_alike():
    from sim.calibration.objective import layer_rmse, loss

    cloud = [target("spend_share", "2020Q1", "A", observed=0.0) for _ in range(3)]
    tokens = [Target("china_maas", "token_share", "2024", "A", 0.0, "exact", "M", 1)]
    sims = np.array([[1.0, 1.0, 1.0, 4.0]])  # cloud errors 1 pp, the one token error 4 pp
    assert layer_rmse(cloud + tokens, sims) == {"cloud": pytest.approx(1.0), "tokens": pytest.approx(4.0)}
    assert loss(cloud + tokens, sims) == pytest.approx(np.sqrt((1.0 + 16.0) / 2))  # not sqrt((3 + 16) / 4)
    assert loss(cloud, sims[:, :3]) == pytest.approx(1.0)


def test_identification_flags_bounds_flat_profiles_narrow_dips_and_collinear_pairs():
    from types import SimpleNamespace

    from sim.calibration import identify

    params = [fp.FreeParam("a", 0.0, 1.0), fp.FreeParam("b", 0.0, 1.0), fp.FreeParam("c", 0.0, 1.0)]
    grid = np.linspace(0, 1, 9)
    prof = pd.concat([
        pd.DataFrame({"parameter": "a", "value": grid, "rmse_pp": 2.0 + 4 * (grid - 1.0) ** 2}),  # clear minimum at its bound
        pd.DataFrame({"parameter": "b", "value": grid, "rmse_pp": 2.0 + 0.01 * grid}),  # flat
        pd.DataFrame({"parameter": "c", "value": grid, "rmse_pp": np.where(np.isclose(grid, 0.5), 1.0, 2.6)}),  # rugged
    ])
    best = np.array([1.0, 0.3, 0.55])
    nz = identify.Noise(fit_loss=1.9, losses=[2.2, 2.4, 2.3, 2.5], seed_sets=[])  # sd 0.13, band 2.56
    objective = SimpleNamespace(params=params)
    table = identify.identification_table(prof, objective, best, nz).set_index("parameter")
    assert table.loc["a", "warning"] == "on the upper bound"
    assert "flat" in table.loc["b", "warning"] and "bound" not in table.loc["b", "warning"]
    # c's neighbours on the grid (0.5 at 1.0, 0.625 at 2.6) are not both out of the band: no dip
    assert "dip" not in table.loc["c", "warning"]
    best[2] = 0.45  # neighbours 0.375 (2.6) and 0.5 (1.0): min 1.0, not a dip
    assert "dip" not in identify.identification_table(prof, objective, best, nz).set_index("parameter").loc["c", "warning"]
    rugged = prof.copy()
    rugged.loc[(rugged["parameter"] == "c") & np.isclose(rugged["value"], 0.5), "rmse_pp"] = 2.5
    best[2] = 0.55  # the fit's 1.9 sits between 0.5 (2.5) and 0.625 (2.6); at fresh seeds 2.35: no better
    assert "dip narrower than the noise" in identify.identification_table(rugged, objective, best, nz).set_index("parameter").loc["c", "warning"]
    # Identical columns cannot be told apart; orthogonal ones can.
    sens = np.array([[1.0, 2.0, 0.0], [1.0, 2.0, 0.0], [0.0, 0.0, 1.0]])
    pairs = identify.collinearity(sens, ["a", "b", "c"]).set_index(["parameter A", "parameter B"])
    assert not pairs.loc[("a", "b"), "told apart"] and pairs.loc[("a", "b"), "collinearity index"] > 1e6
    assert pairs.loc[("a", "c"), "collinearity index"] == pytest.approx(1.0) and pairs.loc[("a", "c"), "told apart"]


def test_tipping_is_possible_but_not_certain_only_with_the_loop_on():
    from sim.calibration.facts import tipping_verdict, winners_over_seeds

    # The strong loop: the tipping preset at its hand-set values (at the calibrated ones it stays level).
    seeds, small = list(range(1, 7)), {"run.customers": 1000, "run.quarters": 40}
    on = winners_over_seeds(apply_overlay(with_overrides(load_config("tipping"), small, source="test"),
                                          "configs/overlays/handset_tipping.toml"), seeds)
    off = winners_over_seeds(with_overrides(load_config("neutral"), small, source="test"), seeds)
    assert tipping_verdict(off)["share tipped"] == 0.0  # no increasing returns: no run tips
    verdict = tipping_verdict(on)
    assert verdict["share tipped"] > 0 and verdict["distinct winners of tipped runs"] >= 2, on


# ------------------------------------------------------------ issue 12: one source of truth
FIT_DIR = "docs/validation/fit"


def test_the_committed_fit_is_reproduced_by_this_code():
    # The committed report's loss at the committed values, recomputed with its seeds, customers and
    # figures: a model change that moves it needs a new fit (aicloud calibrate, docs/validation.md).
    import json

    from sim.calibration.data import load_observations
    from sim.calibration.targets import select_targets

    report = json.loads(open(f"{FIT_DIR}/fit_report.json").read())
    cfg = with_overrides(load_config(report["config"]), {"run.customers": report["customers"]}, source="test")
    params = [fp.FreeParam(p["parameter"], p["low"], p["high"]) for p in report["parameters"]]
    targets = select_targets(load_observations(report["data"]), cfg, window=parse_window(report["fit_window"]),
                             markets=("china_cloud", "china_maas"))
    assert [t.label for t in targets] == [t["target"] for t in report["targets"]]
    objective = Objective(cfg, params, targets, report["seeds"], report["fringe"])
    assert objective([p["fitted"] for p in report["parameters"]]) == pytest.approx(report["fitted_rmse_pp"], abs=1e-9)


def test_presets_run_at_the_calibrated_values_and_the_hand_set_ones_are_kept():
    fitted = read_overlay(f"{FIT_DIR}/fitted.toml")
    scenario = {"tipping": {"demand.segments.*.bandwagon", "models.same_cloud_bonus"}}  # the loop's levers, set strong
    for preset in ("china_2025", "tipping"):
        cfg = load_config(preset)
        handset = apply_overlay(cfg, f"configs/overlays/handset_{preset}.toml")
        for key in fp.TRANSFERRED:
            value = fp.current(cfg, fp.FreeParam(key, 0, 1))
            for path in fp.expand(cfg, key):
                node = fp.current(cfg, fp.FreeParam(path, 0, 1))
                if key in scenario.get(preset, ()):
                    assert node != pytest.approx(fitted[key]), (preset, path)
                else:
                    assert node == pytest.approx(fitted[key]), (preset, path)
            assert value is not None
        assert handset.hash() != cfg.hash()
