"""Shared fixtures: small configs built in code so each test states what it varies."""

from __future__ import annotations

import copy

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
