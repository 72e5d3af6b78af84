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
