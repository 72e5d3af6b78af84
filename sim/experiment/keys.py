"""From parameter values to config overrides.

A parameter sets one or more key paths; ``*`` in a path stands for every item
of a list or table of tables (``providers.*.lock_in`` = each provider's lock-in,
``demand.segments.*.growth`` = each segment's growth); ``mode = "scale"``
multiplies the base config's value instead of replacing it.  The expanded keys
name providers by name, so the overrides read well in the runs table.
"""

from __future__ import annotations

from typing import Any

from sim.config import Config, ConfigError
from sim.experiment.spec import Spec


def expand(raw: dict[str, Any], key: str) -> list[str]:
    """Concrete key paths for ``key`` in the resolved config ``raw`` (``*`` expanded)."""
    paths: list[list[str]] = [[]]
    for part in key.split("."):
        if part != "*":
            paths = [p + [part] for p in paths]
            continue
        grown = []
        for p in paths:
            node = lookup(raw, p)
            if isinstance(node, dict) and node and all(isinstance(v, dict) for v in node.values()):
                grown += [p + [name] for name in node]  # e.g. demand.segments.*
            elif isinstance(node, list):
                grown += [p + [str(item.get("name", i)) if isinstance(item, dict) else str(i)]
                          for i, item in enumerate(node)]
            else:
                raise KeyError(f"{'.'.join(p) or '(root)'} is neither a list nor a table of tables, "
                               f"so '*' cannot follow it")
        paths = grown
    return [".".join(p) for p in paths]


def lookup(raw: Any, path: list[str]) -> Any:
    node = raw
    for part in path:
        if isinstance(node, list):
            node = _item(node, part)
        elif isinstance(node, dict) and part in node:
            node = node[part]
        else:
            raise KeyError(f"no key {'.'.join(path)}")
    return node


def _item(items: list[Any], part: str) -> Any:
    for item in items:
        if isinstance(item, dict) and item.get("name") == part:
            return item
    if part.lstrip("-").isdigit() and -len(items) <= int(part) < len(items):
        return items[int(part)]
    raise KeyError(f"no item {part!r}")


class Overrides:
    """Turns a design point (parameter name -> value) into ``{key path: value}``."""

    def __init__(self, spec: Spec, base: Config):
        self.params = spec.params
        self.raw = base.resolved()
        self.keys: dict[str, list[str]] = {}
        problems = []
        for name, param in self.params.items():
            try:
                self.keys[name] = [k for t in param.targets for k in expand(self.raw, t)]
            except KeyError as exc:
                problems.append(f"{spec.source}: params.{name}: {exc.args[0]}")
        if problems:
            raise ConfigError(problems)

    def __call__(self, point: dict[str, Any]) -> dict[str, Any]:
        out: dict[str, Any] = {}
        for name, value in point.items():
            param = self.params[name]
            for key in self.keys[name]:
                out[key] = value * self._base_value(key) if param.mode == "scale" else value
        return out

    def _base_value(self, key: str) -> float:
        try:
            value = lookup(self.raw, key.split("."))
        except KeyError:
            raise ConfigError([f"{key}: mode = 'scale' needs a value in the base config"]) from None
        if not isinstance(value, (int, float)) or isinstance(value, bool):
            raise ConfigError([f"{key}: mode = 'scale' needs a number in the base config; it holds {value!r}"])
        return value
