"""State snapshots: a run's end state as another run's start."""

import numpy as np
import pytest

from sim.cli import main as cli_main
from sim.config import ConfigError, load_config, with_overrides
from sim.customers import NO_PROVIDER
from sim.model import Market
from sim.snapshot import read_snapshot, write_snapshot
from tests.conftest import make_config, provider

SHIPPED = "snapshots/china_2024Q4.npz"


def ended(config, quarters):
    market = Market(config=config)
    for _ in range(quarters):
        market.step()
    return market


@pytest.fixture(scope="module")
def source(tmp_path_factory):
    providers = [provider("A", initial_share=0.6), provider("B", initial_share=0.4), provider("C", has_model=False, initial_share=0.0)]
    config = make_config(providers, customers=3000, quarters=6, multihoming={"share": 0.5, "split": 0.3, "migration_rate": 0.5},
                         demand={"segments": {s: {"model_use_rate": 0.5} for s in ("internet", "enterprise")}})
    market = ended(config, 6)
    path = tmp_path_factory.mktemp("snap") / "end.npz"
    manifest = write_snapshot(market, path, sample=2000)
    return market, path, manifest


def test_snapshot_round_trip_keeps_the_state_of_customers(source):
    market, path, manifest = source
    assert manifest["sampled"] == 2000 and manifest["quarter"] == "2026Q2"
    # Provider slots in another order, and a new entrant: customers follow their provider's name.
    providers = [provider("C", has_model=False, initial_share=0.0), provider("B", initial_share=0.4), provider("A", initial_share=0.6)]
    config = make_config(providers, customers=4000, quarters=2, run={"start_from": str(path)})
    fresh = Market(config=config)
    people, old = fresh.customers, market.customers
    names_new, names_old = fresh.names, market.names

    def share_by_name(pop, names, array):
        held = array[array != NO_PROVIDER]
        return {names[s]: float(np.mean(held == s)) for s in range(len(names))}

    for key in ("provider", "model_provider", "second_provider"):
        new, was = share_by_name(people, names_new, getattr(people, key)), share_by_name(old, names_old, getattr(old, key))
        for name in was:
            assert new[name] == pytest.approx(was[name], abs=0.04), (key, name)
    assert people.uses_model.mean() == pytest.approx(old.uses_model.mean(), abs=0.03)
    assert people.uses_model.mean() > 0.2
    assert (people.multihomer == (people.multihomer)).all() and people.multihomer.mean() == pytest.approx(old.multihomer.mean(), abs=0.03)
    assert people.tenure.max() > 0 and people.model_tenure.max() > 0
    # Adopted customers demand this config's market compute.
    assert float(people.compute[people.adopted].sum(dtype=np.float64)) == pytest.approx(config.demand.market_compute, rel=1e-5)
    fresh.step()  # and it runs
    assert sum(p.tokens for p in fresh.active_providers()) > 0


def test_snapshot_that_does_not_fit_is_refused_with_one_line(source, tmp_path):
    _, path, _ = source
    missing = [provider("A", initial_share=0.5), provider("Z", initial_share=0.5)]
    with pytest.raises(ConfigError) as err:
        Market(config=make_config(missing, customers=100, run={"start_from": str(path)}))
    (line,) = err.value.problems
    assert "B" in line and "start_from" in line and "Z" in line
    # A renamed provider is matched with run.start_from_names.
    renamed = [provider("A", initial_share=0.5), provider("Bee", initial_share=0.3), provider("C", initial_share=0.2)]
    market = Market(config=make_config(renamed, customers=500, run={"start_from": str(path), "start_from_names": {"Bee": "B"}}))
    assert (market.customers.provider == 1).any()
    with pytest.raises(ConfigError) as err:
        Market(config=make_config(n_identical=3, customers=100, run={"start_from": str(tmp_path / "nothing.npz")}))
    assert "no such snapshot file" in str(err.value)
    other_segments = make_config([provider("A", initial_share=1.0), provider("B"), provider("C")], customers=100,
                                 run={"start_from": str(path)}, demand={"segments": {"martians": {"weight": 1.0, "new": True}}})
    with pytest.raises(ConfigError) as err:
        Market(config=other_segments)
    assert "segments" in str(err.value) and "martians" in str(err.value)


def test_cli_bad_snapshot_gives_one_error_line(tmp_path, capsys):
    bad = tmp_path / "bad.npz"
    bad.write_bytes(b"not a snapshot")
    code = cli_main(["run", "minimal", "--quarters", "1", "--out", str(tmp_path / "out"), "--set", f"run.start_from={bad}"])
    err = capsys.readouterr().err.strip().splitlines()
    assert code == 2 and len(err) == 1 and "start_from" in err[0]
    assert not (tmp_path / "out").exists()


def test_cli_writes_a_snapshot_a_run_can_start_from(tmp_path, capsys):
    snap = tmp_path / "s.npz"
    assert cli_main(["run", "minimal", "--quarters", "3", "--out", str(tmp_path / "a"), "--snapshot-out", str(snap)]) == 0
    printed = capsys.readouterr().out
    assert "cloud" in printed and "AI cloud" in printed and "MaaS tokens" in printed  # the three layers
    manifest, arrays = read_snapshot(str(snap))
    assert manifest["config_name"] == "minimal" and arrays["provider"].size == 400
    assert cli_main(["run", "minimal", "--quarters", "2", "--out", str(tmp_path / "b"), "--set", f"run.start_from={snap}"]) == 0
    import json
    written = json.loads((tmp_path / "b" / "manifest.json").read_text())
    assert written["start_from"]["sha256"]


def test_shipped_history_snapshot_loads_into_china_2025():
    manifest, arrays = read_snapshot(SHIPPED)
    assert manifest["config_name"] == "china_history_2020" and manifest["quarter"] == "2024Q4"
    assert arrays["segment"].size <= 100_000
    config = load_config("china_2025")
    assert config.run.start_from == SHIPPED  # the preset starts in its own present
    market = Market(config=with_overrides(config, {"run.customers": 3000, "run.quarters": 1}))
    people = market.customers
    assert people.uses_model.mean() > 0.1 and (people.second_provider != NO_PROVIDER).mean() > 0.3
    volcano = market.slot_of("Volcano Engine")
    assert (people.model_provider == volcano).sum() > 0
    market.step()
    shares = {p.name: p.tokens for p in market.active_providers()}
    assert max(shares, key=shares.get) == "Volcano Engine"  # first in MaaS tokens, as where 2024 ended


def test_global_preset_starts_with_model_users():
    market = Market(config=with_overrides(load_config("global_2025"), {"run.customers": 3000, "run.quarters": 1}))
    market.step()
    held = market.customers.provider != NO_PROVIDER
    assert market.customers.uses_model[held].mean() > 0.25
