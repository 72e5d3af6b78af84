"""glibc's malloc thresholds for large populations (sim/allocator.py): set once a population is
large enough, only ever raised, and nothing at all for small ones."""

import ctypes.util

import pytest

from sim import allocator
from sim.model import Market


def test_small_populations_leave_the_allocator_alone(monkeypatch):
    calls = []
    monkeypatch.setattr(allocator, "mallopt", lambda *a: calls.append(a) or True)
    monkeypatch.setattr(allocator, "_trim_set", 0)
    assert allocator.keep_heap_for(1_000_000) is False
    Market(preset="minimal", customers=500)
    assert calls == []


@pytest.mark.skipif(ctypes.util.find_library("c") is None, reason="no C library to call mallopt in")
def test_large_populations_raise_the_thresholds_once_and_never_lower_them(monkeypatch):
    monkeypatch.setattr(allocator, "_trim_set", 0)
    assert allocator.keep_heap_for(4_000_000) is True  # glibc here: mallopt accepted both values
    assert allocator.trim_threshold() == 256 * 2**20
    assert allocator.keep_heap_for(3_000_000) is False  # already high enough: not lowered
    assert allocator.keep_heap_for(8_000_000) is True and allocator.trim_threshold() == 64 * 8_000_000


def test_a_batch_keeps_the_heap_for_its_customers_in_all(monkeypatch):
    """A batch's temporaries span all its runs: 2 runs x 60,000 customers (120,000 in all) raise
    the thresholds, which neither run alone (below 2 million) nor a small batch would."""
    from sim.batch import Batch
    from sim.config import load_config, with_overrides

    calls = []
    monkeypatch.setattr(allocator, "mallopt", lambda *a: calls.append(a) or True)
    monkeypatch.setattr(allocator, "_trim_set", 0)
    small = with_overrides(load_config("minimal"), {"run.customers": 500}, source="test")
    Batch([small, small])
    assert calls == []
    large = with_overrides(load_config("minimal"), {"run.customers": 60_000}, source="test")
    assert allocator.keep_heap_for(60_000) is False  # one run alone: the default thresholds
    Batch([large, large])
    assert calls == [(256 * 2**20,)] and allocator.trim_threshold() == 256 * 2**20
