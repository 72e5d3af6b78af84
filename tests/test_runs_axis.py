"""The runs-axis prototype (benchmarks/runs_axis.py, the choice rule for a batch of runs that
step together): a run's final state is bit-identical alone and in a batch, and the batch
agrees in distribution with the engine's bare kernel."""

import numpy as np

from benchmarks import agreement, runs_axis
from benchmarks.choice_rule import start

SMALL = {"customers": 1500, "quarters": 16, "seeds": (1, 2, 3)}


def test_a_run_is_bit_identical_alone_and_in_a_batch():
    populations = [start(1500, s)[2] for s in (1, 2, 3, 4)]
    rule = start(10, 1)[1]
    seeds = [21, 22, 23, 24]
    batch = runs_axis.run(populations, rule, 12, seeds)
    for r in range(4):
        alone = runs_axis.run([populations[r]], rule, 12, [seeds[r]]).run_state(0)
        in_batch = batch.run_state(r)
        for name, values in alone.items():
            assert np.array_equal(values, in_batch[name]), (r, name)
    reordered = runs_axis.run(populations[::-1], rule, 12, seeds[::-1])  # position in the batch does not matter
    assert np.array_equal(reordered.run_state(3)["provider"], batch.run_state(0)["provider"])


def run_batched(customers, quarters, seed):
    _, rule, pop = start(customers, seed)
    batch = runs_axis.run([pop, pop], rule, quarters, [seed + 60_000, seed + 70_000])
    states = [batch.run_state(r) for r in range(2)]
    return {k: np.concatenate([s[k] for s in states]) for k in states[0]}


def test_the_batched_rule_agrees_with_the_engine_kernel():
    result = agreement.check(versions={"bare kernel": agreement.run_kernel, "runs axis": run_batched}, **SMALL)
    assert result.ok, result.markdown()
