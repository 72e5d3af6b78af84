"""Designs: sizes, value ranges, integer and categorical parameters, reproducible sampling."""

import itertools

import numpy as np
import pytest

from sim.experiment import designs
from sim.experiment.spec import validate_spec


def spec(design, params, seed=3):
    return validate_spec({"base": "minimal", "seed": seed, "design": design, "params": params}, "test.toml")


MIXED = {
    "x": {"key": "capability.flywheel", "low": 0.5, "high": 2.0},
    "n": {"key": "entry.exit_after", "type": "int", "low": 2, "high": 5},
    "c": {"key": "open_weights.enabled", "type": "categorical", "values": [True, False]},
    "g": {"key": "demand.token_elasticity", "low": 0.01, "high": 1.0, "log": True},
}


def test_grid_is_the_full_factorial_first_parameter_slowest():
    s = spec({"kind": "grid"}, {
        "a": {"key": "capability.flywheel", "low": 0.0, "high": 1.0, "num": 3},
        "b": {"key": "entry.exit_after", "type": "int", "low": 2, "high": 4},
        "c": {"key": "open_weights.enabled", "type": "categorical", "values": [True, False]},
    })
    d = designs.build(s)
    assert len(d) == designs.size(s) == 3 * 3 * 2
    expected = list(itertools.product([0.0, 0.5, 1.0], [2, 3, 4], [True, False]))
    assert [(p["a"], p["b"], p["c"]) for p in d.points] == expected
    assert all(isinstance(p["b"], int) for p in d.points)
    frame = d.frame()
    assert list(frame["design_index"]) == list(range(18)) and frame["label"].is_unique


def test_log_grid_and_integer_grid_with_num():
    s = spec({"kind": "grid"}, {"a": {"key": "capability.flywheel", "low": 0.01, "high": 100.0, "num": 5, "log": True},
                                "b": {"key": "entry.exit_after", "type": "int", "low": 1, "high": 100, "num": 4}})
    d = designs.build(s)
    assert sorted({p["a"] for p in d.points}) == pytest.approx([0.01, 0.1, 1.0, 10.0, 100.0])
    assert sorted({p["b"] for p in d.points}) == [1, 34, 67, 100]


def test_zip_takes_the_ith_value_of_each_parameter_with_labels():
    s = spec({"kind": "zip", "labels": ["low", "mid", "high"]},
             {"a": {"key": "capability.flywheel", "values": [0.0, 1.0, 2.0]},
              "b": {"key": "entry.exit_after", "type": "int", "values": [2, 4, 8]}})
    d = designs.build(s)
    assert d.points == [{"a": 0.0, "b": 2}, {"a": 1.0, "b": 4}, {"a": 2.0, "b": 8}]
    assert d.labels == ["low", "mid", "high"]


@pytest.mark.parametrize("kind, samples, expected", [("random", 40, 40), ("latin", 40, 40),
                                                      ("sobol", 16, 16 * (4 + 2)), ("morris", 6, 6 * (4 + 1))])
def test_sampling_designs_sizes_and_ranges(kind, samples, expected):
    s = spec({"kind": kind, "samples": samples}, MIXED)
    d = designs.build(s)
    assert len(d) == designs.size(s) == expected
    xs = np.array([p["x"] for p in d.points])
    assert xs.min() >= 0.5 and xs.max() <= 2.0 and xs.std() > 0
    ns = {p["n"] for p in d.points}
    assert ns <= {2, 3, 4, 5} and all(isinstance(n, int) for n in ns) and len(ns) >= 2
    assert {p["c"] for p in d.points} == {True, False}
    gs = np.array([p["g"] for p in d.points])
    assert gs.min() >= 0.01 and gs.max() <= 1.0
    assert d.unit.shape == (expected, 4) and ((d.unit >= 0) & (d.unit <= 1)).all()


def test_latin_hypercube_fills_every_stratum():
    s = spec({"kind": "latin", "samples": 20}, {"x": {"key": "capability.flywheel", "low": 0.0, "high": 1.0}})
    xs = np.array([p["x"] for p in designs.build(s).points])
    assert sorted(np.floor(xs * 20).astype(int)) == list(range(20))


def test_sampling_is_reproducible_and_follows_the_master_seed():
    a = designs.build(spec({"kind": "random", "samples": 10}, MIXED, seed=1)).points
    b = designs.build(spec({"kind": "random", "samples": 10}, MIXED, seed=1)).points
    c = designs.build(spec({"kind": "random", "samples": 10}, MIXED, seed=2)).points
    assert a == b and a != c


def test_categorical_values_in_a_sampling_design_are_all_used_evenly():
    s = spec({"kind": "latin", "samples": 30},
             {"s": {"key": "run.start", "type": "categorical", "values": ["2025Q1", "2026Q1", "2027Q1"]}})
    counts = {v: 0 for v in ("2025Q1", "2026Q1", "2027Q1")}
    for p in designs.build(s).points:
        counts[p["s"]] += 1
    assert counts == {"2025Q1": 10, "2026Q1": 10, "2027Q1": 10}
