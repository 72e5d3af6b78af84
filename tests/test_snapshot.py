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
# minimal's initial shares (a drawn population's), set back to their default for a snapshot start
NO_SHARES = ["--set", "providers.FullStack.initial_share=0", "--set", "providers.Porter.initial_share=0"]


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
    providers = [provider("C", has_model=False), provider("B"), provider("A")]  # shares: the snapshot's
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


@pytest.mark.parametrize("customers", [1500, 5000])
def test_load_state_is_the_drawn_rows_in_order(source, customers):
    """Fewer customers than the snapshot holds (rows drawn without replacement) and more (with):
    each array is the snapshot's rows at the sorted draw, slots renumbered by name."""
    from sim.snapshot import load_state

    _, path, _ = source
    providers = [provider("C", has_model=False), provider("B"), provider("A")]
    config = make_config(providers, customers=customers, quarters=1, run={"start_from": str(path)})
    manifest, snap = read_snapshot(str(path))
    out = load_state(config, ["C", "B", "A"], np.random.default_rng(3))
    rows = np.sort(np.random.default_rng(3).choice(2000, customers, replace=customers > 2000))
    assert customers < 2000 or np.bincount(rows).max() > 1  # some rows are repeated
    renumber = np.array([["C", "B", "A"].index(p["name"]) for p in manifest["providers"]] + [-1])
    for name in ("segment", "adopted", "tenure", "uses_model", "model_tenure", "split", "multihomer", "weights"):
        assert out[name].dtype == snap[name].dtype and np.array_equal(out[name], snap[name][rows]), name
    for name in ("provider", "second_provider", "model_provider"):
        assert np.array_equal(out[name], renumber[snap[name][rows]]), name
    scale = config.demand.market_compute / float(snap["compute"][rows][snap["adopted"][rows]].sum(dtype=np.float64))
    assert np.array_equal(out["compute"], (snap["compute"][rows] * scale).astype(np.float32))


def test_snapshot_that_does_not_fit_is_refused_with_one_line(source, tmp_path):
    _, path, _ = source
    missing = [provider("A"), provider("Z")]
    with pytest.raises(ConfigError) as err:
        Market(config=make_config(missing, customers=100, run={"start_from": str(path)}))
    (line,) = err.value.problems
    assert "B" in line and "start_from" in line and "Z" in line
    # A renamed provider is matched with run.start_from_names.
    renamed = [provider("A"), provider("Bee"), provider("C")]
    market = Market(config=make_config(renamed, customers=500, run={"start_from": str(path), "start_from_names": {"Bee": "B"}}))
    assert (market.customers.provider == 1).any()
    with pytest.raises(ConfigError) as err:
        Market(config=make_config([provider("A")], customers=100, run={"start_from": str(tmp_path / "nothing.npz")}))
    assert "no such snapshot file" in str(err.value)
    other_segments = make_config([provider("A"), provider("B"), provider("C")], customers=100,
                                 run={"start_from": str(path)}, demand={"segments": {"martians": {"weight": 1.0, "new": True}}})
    with pytest.raises(ConfigError) as err:
        Market(config=other_segments)
    assert "segments" in str(err.value) and "martians" in str(err.value)


def test_cli_bad_snapshot_gives_one_error_line(tmp_path, capsys):
    bad = tmp_path / "bad.npz"
    bad.write_bytes(b"not a snapshot")
    code = cli_main(["run", "minimal", "--quarters", "1", "--out", str(tmp_path / "out"), "--set", f"run.start_from={bad}",
                     *NO_SHARES])
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
    assert cli_main(["run", "minimal", "--quarters", "2", "--out", str(tmp_path / "b"), "--set", f"run.start_from={snap}",
                     *NO_SHARES]) == 0
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


# ------------------------------------------------- keys a snapshot start cannot use (POPULATION_KEYS)
# One concrete key for each pattern of POPULATION_KEYS, with a value other than its default.
POPULATION_SETTINGS = {
    "demand.initial_adoption": 0.3, "demand.size_tail": 3.0, "demand.token_share": 0.5,
    "demand.preference_spread": 0.9, "demand.segments.internet.compute_size": 7.0,
    "demand.segments.startup.token_intensity": 7.0, "multihoming.share": 0.6,
    "multihoming.segments.internet.share": 0.2, "models.initial_use": 0.5, "providers.A.initial_share": 0.6,
}


def test_every_population_key_pattern_is_exercised():
    from sim.config import POPULATION_KEYS
    from sim.experiment.spec import _matches

    assert all(any(_matches(p, k) for k in POPULATION_SETTINGS) for p in POPULATION_KEYS)
    assert all(any(_matches(p, k) for p in POPULATION_KEYS) for k in POPULATION_SETTINGS)


def _set_unchecked(config, key, value):
    """``config`` with ``key`` set past the Config-level check (assignment validates the field only)."""
    from sim.config import MultihomingSegment

    config = config.model_copy(deep=True)
    *path, field = key.split(".")
    if path[:2] == ["multihoming", "segments"]:
        config.multihoming.segments = {path[2]: MultihomingSegment(**{field: value})}
        return config
    node = config
    for part in path:
        node = next(p for p in node if p.name == part) if isinstance(node, list) else (
            node[part] if isinstance(node, dict) else getattr(node, part))
    setattr(node, field, value)
    return config


@pytest.mark.parametrize("key", POPULATION_SETTINGS)
def test_a_population_key_has_no_effect_on_a_snapshot_start(source, key):
    # The premise of the refusal: set past the check, the key changes nothing a run records (not
    # even the random stream: a snapshot start draws the same numbers whatever the key).
    _, path, _ = source
    config = make_config([provider("A"), provider("B"), provider("C", has_model=False)], customers=1500,
                         quarters=3, run={"start_from": str(path)})
    changed = _set_unchecked(config, key, POPULATION_SETTINGS[key])
    assert changed.population_settings() and not config.population_settings()

    def recorded(cfg):
        market = ended(cfg, 3)
        return market.recorder.provider_rows, market.recorder.market_rows

    assert recorded(changed) == recorded(config), key


def _refusal(err, source_text: str, key: str) -> str:
    (line,) = err.value.problems
    assert line.startswith(source_text) and key in line and "run.start_from" in line and '"none"' in line
    return line


@pytest.mark.parametrize("key", POPULATION_SETTINGS)
def test_a_population_key_in_a_snapshot_start_config_file_is_refused(tmp_path, key):
    *table, field = key.split(".")
    if table[0] == "providers":
        body = f'[[providers]]\nname = "A"\n{field} = {POPULATION_SETTINGS[key]}\n'
    else:
        body = f"[{'.'.join(table)}]\n{field} = {POPULATION_SETTINGS[key]}\n" + '[[providers]]\nname = "A"\n'
    path = tmp_path / "start.toml"
    path.write_text(f'[run]\nstart_from = "{SHIPPED}"\n' + body)
    with pytest.raises(ConfigError) as err:
        load_config(path)
    line = _refusal(err, str(path), key)
    assert "remove it" in line and f"= {SHIPPED!r}".replace("'", '"') in line
    # The same file drawing its own population is fine.
    path.write_text(path.read_text().replace(f'start_from = "{SHIPPED}"', 'start_from = "none"')
                    .replace('name = "A"\n', 'name = "A"\ninitial_share = 1.0\n' if table[0] != "providers" else 'name = "A"\n'))
    if table[0] == "providers":
        path.write_text(path.read_text().replace(f"{field} = 0.6", f"{field} = 1.0"))
    load_config(path)


@pytest.mark.parametrize("key", POPULATION_SETTINGS)
def test_a_population_key_set_on_a_snapshot_start_is_refused_by_override_and_keyword(key):
    china = load_config("china_2025")
    real = key.replace("providers.A.", "providers.Alibaba Cloud.")
    with pytest.raises(ConfigError) as err:
        with_overrides(china, {real: POPULATION_SETTINGS[key]})
    _refusal(err, "overrides", real)
    with pytest.raises(ConfigError) as err:
        Market(preset="china_2025", **{real: POPULATION_SETTINGS[key]})
    _refusal(err, "Market(...)", real)


def test_flat_keywords_and_wildcards_are_refused_too_and_defaults_pass():
    with pytest.raises(ConfigError) as err:
        Market(preset="china_2025", token_share=0.2)  # a flat name
    _refusal(err, "Market(...)", "demand.token_share = 0.2 (default 0.1)")
    with pytest.raises(ConfigError) as err:
        Market(preset="china_2025", **{"providers.*.initial_share": 0.2})
    line = _refusal(err, "Market(...)", "providers.Alibaba Cloud.initial_share = 0.2")
    assert "providers.Telecom & others.initial_share = 0.2" in line and "remove them" in line
    # A value equal to the default is what a snapshot start has anyway: nothing to refuse.
    with_overrides(load_config("china_2025"), {"demand.initial_adoption": 0.5, "demand.segments.internet.compute_size": 2.0})


def test_cli_refuses_a_population_key_on_a_snapshot_start_in_one_line(tmp_path, capsys):
    out = tmp_path / "out"
    code = cli_main(["run", "china_2025", "--quarters", "1", "--customers", "500", "--out", str(out),
                     "--set", "demand.token_share=0.2"])
    err = capsys.readouterr().err
    assert code == 2 and not out.exists() and "Traceback" not in err
    (line,) = err.strip().splitlines()
    assert "china_2025.toml" in line and "demand.token_share = 0.2" in line and "run.start_from" in line


SWEEP = """
base = "china_2025"
replicates = 1
seed = 3

[params.adoption]
key = "demand.initial_adoption"
values = [0.3, 0.5, 0.7]

[params.lock]
key = "providers.*.lock_in"
mode = "scale"
values = [1.0]

[outcomes.hhi]
kind = "final"
column = "hhi_revenue"
"""


@pytest.mark.parametrize("param", ["demand.initial_adoption", "providers.*.initial_share",
                                   "demand.segments.*.token_intensity", "multihoming.share"])
def test_a_sweep_over_a_population_key_from_a_snapshot_is_refused_before_any_run(tmp_path, capsys, param):
    from experiment_support import write_spec

    from sim.experiment.runner import Plan
    from sim.experiment.spec import load_spec

    # Whatever its values (0.5 is the default, a scale of 1 leaves every value as it is): one line.
    spec = write_spec(tmp_path, SWEEP.replace('"demand.initial_adoption"', f'"{param}"'),
                      fixed="[fixed]\nrun.customers = 200\nrun.quarters = 2\n")
    if param != "demand.initial_adoption":
        spec.write_text(spec.read_text().replace("values = [0.3, 0.5, 0.7]", 'mode = "scale"\nvalues = [1.0]'))
    with pytest.raises(ConfigError) as err:
        Plan.make(load_spec(spec))
    _refusal(err, f"{spec}: params.adoption", f"{param} (swept)")
    out = tmp_path / "out"
    assert cli_main(["sweep", str(spec), "--out", str(out), "--workers", "0", "--no-plots"]) == 2
    err = capsys.readouterr().err
    assert not out.exists() and "Traceback" not in err and len(err.strip().splitlines()) == 1


def test_presets_load_and_a_snapshot_start_sets_no_population_key():
    from sim.config import CONFIG_DIR

    presets = sorted(p.stem for p in CONFIG_DIR.glob("*.toml"))
    assert "china_2025" in presets
    for name in presets:
        config = load_config(name)
        if config.run.start_from is not None:
            assert config.population_settings() == [], name
