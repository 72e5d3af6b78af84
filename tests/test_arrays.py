"""The array-library module (sim/arrays.py) and the batched choice kernel written for any
array library (benchmarks/batch_kernel.py): on array-api-strict, which refuses every call
outside the array API standard, it agrees in distribution with the engine's bare kernel, and
the agreement check would catch a different rule."""

import dataclasses
from functools import partial

import numpy as np
import pytest

from benchmarks import agreement, batch_kernel
from benchmarks.choice_rule import start
from sim.arrays import Arrays, ArraysUnavailable, arrays, gpu

SMALL = {"customers": 1500, "quarters": 16, "seeds": (1, 2, 3)}


def run_batch(customers, quarters, seed, lib="strict", copies=2, rule_edit=None):
    """A batch of ``copies`` runs of one starting population; their final states pooled."""
    lib = arrays(lib)
    _, rule, pop = start(customers, seed)
    rule = rule_edit(rule) if rule_edit else rule
    states = batch_kernel.final_states(lib, batch_kernel.run(lib, [pop] * copies, rule, quarters, seed + 30_000))
    return {k: np.concatenate([s[k] for s in states]) for k in states[0]}


def test_batched_kernel_uses_only_the_array_api_and_agrees_with_the_engine_kernel():
    result = agreement.check(versions={"bare kernel": agreement.run_kernel, "batched, array API": run_batch}, **SMALL)
    assert result.ok, result.markdown()
    assert (result.shares["batched, array API"] > 0).all()


def test_agreement_check_rejects_the_batched_kernel_with_a_different_rule():
    stronger = partial(run_batch, rule_edit=lambda r: dataclasses.replace(r, lock_in=r.lock_in * 1.5))
    result = agreement.check(versions={"bare kernel": agreement.run_kernel, "lock-in x 1.5": stronger}, **SMALL)
    assert not result.ok


def test_runs_of_a_batch_evolve_apart_from_one_start():
    lib = arrays("numpy")
    _, rule, pop = start(800, 4)
    final = batch_kernel.final_states(lib, batch_kernel.run(lib, [pop] * 3, rule, 8, seed=1))
    assert not np.array_equal(final[0]["provider"], final[1]["provider"])  # each run its own draws
    assert all(s["provider"].shape == (800,) for s in final)


def test_library_is_chosen_by_name_or_environment(monkeypatch):
    assert arrays().name == "numpy" and arrays().xp is np
    monkeypatch.setenv("AICLOUD_ARRAYS", "strict")
    assert arrays().name == "strict"
    monkeypatch.setenv("AICLOUD_ARRAYS", "jax")
    with pytest.raises(ValueError, match="allowed: numpy, cupy, torch, strict"):
        arrays()


def test_a_missing_gpu_library_is_one_line_saying_why():
    for name in ("cupy", "torch"):
        try:
            lib = arrays(name)
        except ArraysUnavailable as exc:
            assert "\n" not in str(exc) and name in str(exc)
        else:
            assert isinstance(lib, Arrays)  # a machine with a GPU
    try:
        gpu()
    except ArraysUnavailable as exc:
        assert str(exc).startswith("no GPU array library: ")


def test_gpu_benchmark_skips_cleanly_without_a_gpu_and_runs_its_code_on_numpy(tmp_path, capsys):
    from benchmarks import gpu as bench

    try:
        gpu()
    except ArraysUnavailable:
        assert bench.main(["--out", str(tmp_path / "skip.json")]) == 0
        assert "skipped: no GPU array library" in capsys.readouterr().out
        assert not (tmp_path / "skip.json").exists()
    out = tmp_path / "gpu.json"
    assert bench.main(["--library", "numpy", "--runs", "3", "--customers", "600", "--quarters", "6",
                       "--check-customers", "600", "--out", str(out)]) == 0
    import json
    result = json.loads(out.read_text())
    assert result["agree"] and result["runs"] == 3 and result["customer_quarters_per_s"] > 0
