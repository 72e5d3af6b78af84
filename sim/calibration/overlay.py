"""Fitted values as a config overlay: a small TOML file of ``key.path = value`` overrides
that is applied on top of the config it was fitted to.

    [calibration]                 # where the values come from (for the reader; not applied)
    config = "configs/china_history_2020.toml"
    ...
    [overrides]
    "choice.switching_base" = 1.25
    "demand.segments.*.renewal_hazard" = 0.061     # '*' = every segment
"""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

from sim.calibration import params as fp
from sim.config import Config, ConfigError, read_toml, with_overrides
from sim.output import write_text

TABLES = ("calibration", "overrides")


def render(values: dict[str, float], info: dict[str, Any], header: str = "") -> str:
    lines = [f"# {line}" if line else "#" for line in header.splitlines()]
    lines += ["[calibration]"]
    lines += [f"{_key(k)} = {_value(v)}" for k, v in info.items()]
    lines += ["", "[overrides]"]
    lines += [f"{_key(k)} = {_value(v)}" for k, v in values.items()]
    return "\n".join(lines) + "\n"


def write_overlay(path: Path, values: dict[str, float], info: dict[str, Any], header: str = "") -> None:
    write_text(path, render(values, info, header))


def read_overlay(path: str | Path) -> dict[str, Any]:
    """The overrides of an overlay file; a ConfigError names the file and the bad key."""
    path = Path(path)
    if not path.exists():
        raise ConfigError([f"{path}: no such overlay file"])
    raw = read_toml(path)
    problems = [f"{path}: {k}: unknown table; allowed: {', '.join(TABLES)}" for k in raw if k not in TABLES]
    overrides = raw.get("overrides")
    if not isinstance(overrides, dict) or not overrides:
        problems.append(f"{path}: overrides: missing or empty; expected a table of \"key.path\" = value")
        overrides = {}
    for key, value in overrides.items():
        if isinstance(value, dict):
            problems.append(f"{path}: overrides.{key}: expected a value, got a table (quote dotted keys: \"a.b\" = 1)")
    if problems:
        raise ConfigError(problems)
    return overrides


def apply_overlay(config: Config, path: str | Path) -> Config:
    """``config`` with the overlay's overrides; unknown keys are refused by the config's own
    validation, with the overlay file named as the source."""
    expanded: dict[str, Any] = {}
    for key, value in read_overlay(path).items():
        expanded.update({p: value for p in fp.expand(config, key)})
    return with_overrides(config, expanded, source=str(path))


def _key(key: str) -> str:
    return key if key.replace("_", "").isalnum() else json.dumps(key)


def _value(value: Any) -> str:
    if isinstance(value, bool):
        return "true" if value else "false"
    if isinstance(value, float):
        return repr(value)
    if isinstance(value, int):
        return str(value)
    return json.dumps(str(value))
