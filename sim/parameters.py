"""Keyword parameters of ``Market``: from Mesa-style keywords to a validated config.

Mesa users build models as ``Market(customers=2000, flywheel=2.0)`` and sweep
them with ``mesa.batch_run(Market, parameters={...})``, which passes every
parameter as a keyword.  This module maps such keywords onto the validated
configuration, so a keyword is checked exactly like the same value in a TOML
file (same one-line errors).

Three spellings are accepted:

* a **config key path** with dots, as ``--set`` takes it:
  ``choice.switching_base``, ``providers.Volcano Engine.lock_in`` (providers and
  entrants by name or index), ``providers.*.lock_in`` (``*`` = every item of a
  list or every segment of ``demand.segments``).  Python accepts dotted names
  through ``**{...}`` and ``mesa.batch_run`` passes them as they are; the
  ``overrides={...}`` argument of ``Market`` takes the same keys;
* a **flat name**: the name of a field of one of the single sections (``run``,
  ``demand``, ``pricing``, ``choice``, ``service``, ``finance``, ``capability``,
  ``open_weights``, ``entry`` and any section added later) when that name is
  unique among them, e.g. ``flywheel`` = ``capability.flywheel``,
  ``customers`` = ``run.customers``.  ``flat_names()`` lists them.  A name
  found in two sections is refused with both key paths.  Provider fields
  (``lock_in``, ``cash``, ...) have no flat name: a provider's value and every
  provider's value are different parameters, so say which with a key path.
  A field named like a section (``open_weights.capability``) has no flat name either;
* ``customers``, ``quarters`` and ``seed`` are flat names of ``run``.
"""

from __future__ import annotations

import copy
import difflib
import typing
from functools import lru_cache
from typing import Any

from pydantic import BaseModel

from sim.config import Config, ConfigError, set_path, validate


def _is_section(annotation: Any) -> bool:
    return isinstance(annotation, type) and issubclass(annotation, BaseModel)


@lru_cache(maxsize=1)
def _alias_table() -> tuple[dict[str, str], dict[str, list[str]]]:
    """(flat name -> key path, ambiguous name -> its key paths), from the Config schema."""
    found: dict[str, list[str]] = {}
    for section, field in Config.model_fields.items():
        if not _is_section(field.annotation):
            continue  # providers, entrants (lists) and the scalar name/description
        for name, sub in field.annotation.model_fields.items():
            if _is_section(sub.annotation) or typing.get_origin(sub.annotation) in (list, dict):
                continue
            found.setdefault(name, []).append(f"{section}.{name}")
    for name in Config.model_fields:  # capability= could mean the section or open_weights.capability
        if name in found:
            found[name].append(f"the {name} section")
    unique = {name: paths[0] for name, paths in found.items() if len(paths) == 1}
    ambiguous = {name: paths for name, paths in found.items() if len(paths) > 1}
    return unique, ambiguous


def flat_names() -> dict[str, str]:
    """Every flat keyword name and the config key path it sets, e.g. ``{"flywheel": "capability.flywheel"}``."""
    return dict(sorted(_alias_table()[0].items()))


def key_path(name: str, source: str = "Market") -> str:
    """The config key path a keyword stands for; ``ConfigError`` (one line) if it stands for none."""
    if "." in name:
        return name
    unique, ambiguous = _alias_table()
    if name in unique:
        return unique[name]
    if name in ambiguous:
        paths = [p for p in ambiguous[name] if "." in p]
        raise ConfigError([f"{source}({name}=...): ambiguous name; use a key path: {', '.join(paths)}"])
    close = difflib.get_close_matches(name, [*unique, *Config.model_fields], n=3)
    hint = f"did you mean {', '.join(close)}? " if close else ""
    provider_fields = "providers.NAME.FIELD or providers.*.FIELD for provider fields such as lock_in"
    raise ConfigError([f"{source}({name}=...): unknown parameter; {hint}allowed: a flat name from "
                       f"sim.parameters.flat_names() (e.g. flywheel, customers), a key path like "
                       f"choice.switching_base, or {provider_fields}"])


def expand(raw: dict[str, Any], path: str) -> list[list[str]]:
    """Concrete key paths for ``path`` in the raw config ``raw``; ``*`` stands for every list item
    (by name) or every entry of a table of tables (``demand.segments.*``)."""
    paths: list[list[str]] = [[]]
    for part in path.split("."):
        if part != "*":
            paths = [p + [part] for p in paths]
            continue
        grown: list[list[str]] = []
        for p in paths:
            node: Any = raw
            for key in p:
                if isinstance(node, list):
                    node = next((x for x in node if isinstance(x, dict) and x.get("name") == key),
                                node[int(key)] if key.lstrip("-").isdigit() and -len(node) <= int(key) < len(node) else None)
                else:
                    node = node.get(key) if isinstance(node, dict) else None
            if isinstance(node, list):
                grown += [p + [str(item.get("name", i)) if isinstance(item, dict) else str(i)]
                          for i, item in enumerate(node)]
            elif isinstance(node, dict) and node and all(isinstance(v, dict) for v in node.values()):
                grown += [p + [name] for name in node]
            else:
                raise ConfigError([f"{'.'.join(p) or '(root)'}: '*' must follow a list (providers, entrants, ...) "
                                   f"or a table of tables (demand.segments) in {path}"])
        paths = grown
    return paths


def apply_keywords(config: Config, keywords: dict[str, Any], source: str = "Market") -> Config:
    """``config`` with the keyword parameters applied and validated again.

    ``keywords`` maps flat names or key paths (see the module docstring) to values; values go
    through the same validation as a TOML file, and every problem becomes one line of a
    ``ConfigError`` naming ``source``, the key path and what is allowed.
    """
    if not keywords:
        return config
    raw = copy.deepcopy(config.resolved())
    problems: list[str] = []
    for name, value in keywords.items():
        try:
            for parts in expand(raw, key_path(name, source)):
                set_path(raw, parts, value, f"{source}({name}=...):")
        except ConfigError as exc:
            problems += exc.problems
    if problems:
        raise ConfigError(problems)
    return validate(raw, f"{source}(...)")
