"""Shared fixtures: small configs built in code so each test states what it varies."""

from __future__ import annotations

import copy
import json
import os
import re

import pytest

from sim.config import Config, load_config, validate


def provider(name: str, **fields) -> dict:
    base = dict(name=name, has_model=True, capability=0.8, compute=1.5e5, lock_in=1.0, initial_share=0.0,
                cash=1.0e5, captive_compute=0.0, captive_tokens=0.0)
    base.update(fields)
    return base


def make_config(providers: list[dict] | None = None, *, n_identical: int = 3, customers: int = 3000,
                quarters: int = 12, seed: int = 7, entrants: list[dict] | None = None, **sections) -> Config:
    """A validated config; ``sections`` are dicts per section, e.g. choice={"switching_base": 0},
    or lists for list-valued keys, e.g. parents=[{"name": "G", "budget_per_quarter": 100.0}]."""
    if providers is None:
        providers = [provider(f"P{i}", initial_share=1.0 / n_identical) for i in range(n_identical)]
    raw = {"name": "test", "run": {"customers": customers, "quarters": quarters, "seed": seed},
           "demand": {"market_compute": 3.0e5}, "providers": copy.deepcopy(providers),
           "entrants": copy.deepcopy(entrants or [])}
    for key, value in sections.items():
        if isinstance(value, list):
            raw[key] = copy.deepcopy(value)
            continue
        raw.setdefault(key, {})
        raw[key].update(value)
    return validate(raw, "test-config")


@pytest.fixture
def minimal() -> Config:
    return load_config("minimal")


def _recorded_durations() -> dict[str, float]:
    """Each test's duration in mutmut's stats run (``mutmut-stats.json`` in the working directory,
    which is ``mutants/`` under mutmut); empty when there is none."""
    try:
        with open("mutmut-stats.json") as f:
            return json.load(f).get("duration_by_test", {})
    except (OSError, ValueError):
        return {}


def pytest_collection_modifyitems(config, items):
    """Under ``make mutate`` (mutmut sets MUTANT_UNDER_TEST to e.g. ``sim.submodels.finance.x_step__mutmut_3``)
    run the mutated module's own test file first, then the other model tests, the quickest first
    within each: a mutant is mostly killed by its own module's tests, so it dies in a second
    instead of after the suite.  The sweep-store tests run only against the store's mutants (they
    run whole simulations but check what is stored, not the model's outputs) and the random-config
    property test not at all (3 s of hypothesis examples; it still runs in make test, and the
    mutation score counts only what the direct tests catch), so that a surviving mutant, which runs every
    test that reaches it, costs seconds, not half a minute."""
    mutant = os.environ.get("MUTANT_UNDER_TEST", "")
    match = re.match(r"sim\.(?:[a-z_]+\.)*?([a-z_]+)\.x[_\u01c1]", mutant)
    if not match:
        return
    module = mutant[: match.end(1)].split(".")
    own = {f"test_{module[-1]}.py", f"test_{'_'.join(module[-2:])}.py"}
    skip = {"test_experiment_store.py", "test_invariants.py"} - own
    dropped = [item for item in items if item.path.name in skip]
    if dropped:
        config.hook.pytest_deselected(items=dropped)
        items[:] = [item for item in items if item.path.name not in skip]
    durations = _recorded_durations()

    def rank(item) -> tuple[int, float]:
        name = item.path.name
        return (0 if name in own else 1), durations.get(item.nodeid, 0.0)

    items.sort(key=rank)
