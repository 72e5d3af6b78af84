"""The public Python API (simulate, replicate, run_sweep) and `aicloud export --csv`."""

from __future__ import annotations

import pandas as pd
import pytest

from sim.api import as_config, open_results, replicate, run_sweep, simulate
from sim.cli import main
from sim.config import ConfigError, load_config, with_overrides
from sim.simulate import simulate as simulate_config

SMALL = {"run.customers": 300, "run.quarters": 4}


def spec_dict() -> dict:
    return {"name": "api_test", "base": "minimal", "replicates": 2, "seed": 11,
            "fixed": {"run": {"customers": 200, "quarters": 4}},
            "params": {"flywheel": {"key": "capability.flywheel", "values": [0.0, 3.0]}},
            "design": {"kind": "grid"}}


@pytest.fixture(scope="module")
def sweep(tmp_path_factory):
    return run_sweep(spec_dict(), out=tmp_path_factory.mktemp("sweep") / "api_test", workers=0)


def test_simulate_takes_presets_dicts_and_keywords():
    cfg = with_overrides(load_config("minimal"), {**SMALL, "run.seed": 3, "capability.flywheel": 2.0})
    expected = simulate_config(cfg)
    by_name = simulate("minimal", seed=3, customers=300, quarters=4, flywheel=2.0)
    pd.testing.assert_frame_equal(by_name.providers, expected.providers)
    by_dict = simulate(load_config("minimal").resolved(), seed=3, **{"run.customers": 300, "run.quarters": 4,
                                                                      "capability.flywheel": 2.0})
    pd.testing.assert_frame_equal(by_dict.market, expected.market)
    with pytest.raises(ConfigError, match="unknown parameter"):
        simulate("minimal", lockin=2)
    with pytest.raises(ConfigError, match="expected a preset name"):
        as_config(42)


@pytest.fixture
def batch_sizes(monkeypatch):
    """The sizes of the batches ``sim.batch.run_batch`` is given."""
    from sim import batch

    sizes: list[int] = []
    real = batch.run_batch
    monkeypatch.setattr(batch, "run_batch", lambda configs: sizes.append(len(configs)) or real(configs))
    return sizes


def test_replicate_runs_its_seeds_as_one_batch_each_equal_to_simulate_and_labels_rows(batch_sizes):
    reps = replicate("minimal", seeds=[1, 2, 3], customers=300, quarters=4)
    assert batch_sizes == [3]  # the three seeds stepped together
    prov = reps.providers
    assert list(prov.columns[:2]) == ["replicate", "seed"]
    assert sorted(prov["seed"].unique()) == [1, 2, 3]
    for seed, result in zip([1, 2, 3], reps.results):  # table for table, bit for bit
        one = simulate("minimal", seed=seed, customers=300, quarters=4)
        for table in ("providers", "market", "flows"):
            pd.testing.assert_frame_equal(getattr(result, table), getattr(one, table), check_exact=True)
    one = simulate("minimal", seed=2, customers=300, quarters=4).providers
    pd.testing.assert_frame_equal(prov[prov["seed"] == 2].drop(columns=["replicate", "seed"]).reset_index(drop=True), one)
    finals = reps.final()
    assert finals.shape == (3, 2) and finals.drop_duplicates().shape[0] == 3  # replicates differ


def test_simulate_many_batches_within_its_memory_budget_and_a_failing_run_raises_its_own_error(batch_sizes, monkeypatch):
    import math

    from sim import batch
    from sim.errors import NonFiniteState
    from sim.simulate import simulate_many

    base = with_overrides(load_config("minimal"), SMALL, source="test")
    configs = [with_overrides(base, {"run.seed": s}, source="test") for s in range(1, 6)]
    results = simulate_many(configs, memory_budget=2 * batch.run_bytes(base) + 1)  # two runs fit
    assert batch_sizes == [2, 2]  # and the fifth alone (simulate)
    for config, result in zip(configs, results):
        alone = simulate_config(config)
        for table in ("providers", "market", "flows"):
            pd.testing.assert_frame_equal(getattr(result, table), getattr(alone, table), check_exact=True)

    real_step = batch.Batch.step

    def step_then_poison(self):  # seed 3's state turns NaN after its second quarter
        real_step(self)
        for market in self.markets:
            if market.config.run.seed == 3 and market.steps == 2:
                market.slots[0].cash = math.nan

    monkeypatch.setattr(batch.Batch, "step", step_then_poison)
    with pytest.raises(NonFiniteState) as alone:
        simulate_config(configs[2])
    with pytest.raises(NonFiniteState) as batched:
        simulate_many(configs)
    assert str(batched.value) == str(alone.value) and "the run was stopped" in str(alone.value)


def test_sweep_rows_carry_parameters_and_seed(sweep):
    runs = sweep.runs()
    assert len(runs) == 4 and (runs["status"] == "ok").all()
    market = sweep.market()
    assert list(market.columns[:6]) == ["run_id", "design_index", "replicate", "label", "flywheel", "seed"]
    assert len(market) == 4 * 4
    by_run = runs.set_index("run_id")
    for run_id, rows in market.groupby("run_id"):
        assert (rows["flywheel"] == by_run.loc[run_id, "flywheel"]).all()
        assert (rows["seed"] == by_run.loc[run_id, "seed"]).all()
    # a row's parameter is what the run used: re-running it gives the same market
    row = by_run.iloc[-1]
    again = simulate("minimal", seed=int(row["seed"]), customers=200, quarters=4, flywheel=float(row["flywheel"]))
    stored = market[market["run_id"] == by_run.index[-1]]
    assert stored["hhi_revenue"].tolist() == pytest.approx(again.market["hhi_revenue"].tolist())
    outcomes = sweep.outcomes()
    assert {"flywheel", "seed", "final_hhi_revenue", "leader_share_revenue"} <= set(outcomes.columns)
    assert len(outcomes) == 4


def test_flat_table_spreads_provider_columns(sweep):
    flat = sweep.flat()
    providers = sweep.providers()
    assert len(flat) == 16
    assert {"share_revenue[FullStack]", "share_tokens[Porter]", "hhi_revenue", "quarter"} <= set(flat.columns)
    joined = flat.merge(providers[providers["provider"] == "Porter"], on=["run_id", "step"])
    assert joined["share_compute[Porter]"].tolist() == pytest.approx(joined["share_compute"].tolist())


def test_run_sweep_again_resumes_instead_of_rerunning(sweep):
    before = (sweep.root / "runs.jsonl").read_text()
    again = run_sweep(spec_dict(), out=sweep.root, workers=0)
    assert (again.root / "runs.jsonl").read_text() == before  # nothing ran again
    assert "4 of 4 runs finished" in repr(open_results(sweep.root))


def test_export_csv(sweep, tmp_path, capsys):
    target = tmp_path / "table.csv"
    assert main(["export", str(sweep.root), "--csv", "--out", str(target)]) == 0
    table = pd.read_csv(target)
    assert len(table) == 16
    assert list(table.columns[:8]) == ["run_id", "design_index", "replicate", "label", "flywheel", "seed", "quarter",
                                       "step"]
    assert table.groupby("run_id")["flywheel"].nunique().eq(1).all()
    pd.testing.assert_frame_equal(table, pd.read_csv(_csv(sweep.flat())), check_dtype=False)
    long = tmp_path / "providers.csv"
    assert main(["export", str(sweep.root), "--csv", "--long", "--out", str(long)]) == 0
    assert len(pd.read_csv(long)) == 16 * 2


def test_export_errors_are_one_line(sweep, tmp_path, capsys):
    assert main(["export", str(sweep.root), "--csv", "--provider-columns", "share_revenue,nope"]) == 2
    err = capsys.readouterr().err.strip().splitlines()
    assert len(err) == 1 and "nope" in err[0] and "allowed:" in err[0]
    assert main(["export", str(tmp_path), "--csv"]) == 2
    assert "no sweep results" in capsys.readouterr().err


def _csv(frame: pd.DataFrame):
    import io

    buffer = io.StringIO()
    frame.to_csv(buffer, index=False, float_format="%.10g")
    buffer.seek(0)
    return buffer


def test_a_parameter_named_like_a_table_column_is_kept_apart_and_run_columns_are_refused(tmp_path):
    """open_weights.toml sweeps a parameter named ``capability``, which is also a provider column:
    providers() gives both (the parameter as ``param:capability``) instead of failing on the clash;
    a parameter or outcome named like a run-table column (seed, status, ...) is refused up front."""
    spec = spec_dict() | {"replicates": 1, "fixed": {"run": {"customers": 100, "quarters": 2}},
                          "params": {"capability": {"key": "open_weights.capability", "values": [0.5, 0.9]}}}
    results = run_sweep(spec, out=tmp_path / "clash", workers=0)
    providers = results.providers()
    assert list(providers.columns[:6]) == ["run_id", "design_index", "replicate", "label", "param:capability", "seed"]
    assert "capability" in providers.columns and providers["capability"].between(0, 10).all()
    by_run = results.runs().set_index("run_id")["capability"]
    assert (providers["param:capability"] == providers["run_id"].map(by_run)).all()
    assert "capability" in results.market().columns[:6]  # no clash in the market table: the plain name
    for name in ("seed", "status", "run_id", "wall_time"):
        clash = spec_dict() | {"params": {name: {"key": "capability.flywheel", "values": [0.0, 1.0]}}}
        with pytest.raises(ConfigError, match=f"params.{name}: the name '{name}' is taken by a column"):
            run_sweep(clash, out=tmp_path / name, workers=0)
    named = spec_dict() | {"outcomes": {"status": {"kind": "final", "column": "hhi_revenue"}}}
    with pytest.raises(ConfigError, match="outcomes.status: the name 'status' is taken"):
        run_sweep(named, out=tmp_path / "outcome", workers=0)
    same = spec_dict() | {"outcomes": {"flywheel": {"kind": "final", "column": "hhi_revenue"}}}
    with pytest.raises(ConfigError, match="params.flywheel: an outcome has the same name"):
        run_sweep(same, out=tmp_path / "same", workers=0)
