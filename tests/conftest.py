import pytest

from sim.config import load_config, with_overrides


@pytest.fixture
def minimal():
    return load_config("minimal")


def small(config, **overrides):
    """A config with overrides given as keyword args: key paths use '__' for '.'."""
    return with_overrides(config, {k.replace("__", "."): v for k, v in overrides.items()})
