"""Benchmarks of the engine (not part of the test suite): run with ``make bench``."""
