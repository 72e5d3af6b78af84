"""Words for the values in sweep figures: what a parameter value or an outcome means.

A design value must be a number, so specs stand in for "never" and "no cap" with numbers that
cannot take effect in the run: an open-weights release at offset 99 of a 32-quarter run, an import
cap of 10^12 GPU-equivalents a quarter.  Figures should say what these mean, not print the
stand-in (issue 13, case 15):

- a quarter (a field whose unit is "quarter": release, entry, start dates) is shown as its label,
  e.g. ``2026Q1``, and as ``never`` when it falls at or after the end of the run;
- an optional limit whose none means "no limit" (``finance.import_cap``) is shown as ``none`` when
  the value is none or at least ``NO_LIMIT``;
- shares (kind ``share`` and ``leader_share`` outcomes, CR3/CR5 and share columns) are shown in
  per cent, as in every other figure.
"""

from __future__ import annotations

import typing
from typing import Any

from pydantic import BaseModel

from sim import quarters
from sim.config import Config, _inner_model

NO_LIMIT = 1e12  # an optional cap at or above this binds nothing in any run (GPU-equivalents a quarter)
SHARE_PREFIXES = ("cr3_", "cr5_", "share_")


def field_at(key: str, root: type[BaseModel] = Config) -> Any:
    """The pydantic field a config key path sets (list indices, provider names, segment names and
    '*' skipped), or None."""
    model: type[BaseModel] | None = root
    parts = key.split(".")
    i = 0
    while i < len(parts) and model is not None:
        field = model.model_fields.get(parts[i])
        if field is None:
            return None
        if i == len(parts) - 1:
            return field
        container = typing.get_origin(field.annotation)
        model = _inner_model(field.annotation)
        i += 2 if container in (list, dict) else 1  # the next part names the item
    return None


def value_text(key: str | None, value: Any, base: Config | None) -> str:
    """``value`` of the config field at ``key`` in words (see the module docstring)."""
    if hasattr(value, "item"):  # a numpy scalar from a table
        value = value.item()
    field = field_at(key) if key else None
    unit = (field.json_schema_extra or {}).get("unit") if field is not None and isinstance(field.json_schema_extra, dict) else None
    if field is not None and base is not None and unit == "quarter" and isinstance(value, (int, str)) \
            and not isinstance(value, bool):
        try:
            offset = base.quarter_offset(value)
        except ValueError:
            return str(value)
        if offset >= base.run.quarters:
            return "never"
        return quarters.label(quarters.parse(base.run.start) + offset)
    if value is None or value == "none":
        return "none"
    if field is not None and _optional(field) and isinstance(value, (int, float)) and value >= NO_LIMIT:
        return "none"
    return number_text(value)


def number_text(value: Any) -> str:
    if isinstance(value, float):
        if value == int(value) and abs(value) < 1e7:
            return f"{value:,.0f}" if abs(value) >= 1000 else f"{value:.0f}"
        return f"{value:.3g}"
    return str(value)


def param_value_text(spec, name: str, value: Any, base: Config | None) -> str:
    """A spec parameter's value in words; a 'scale' parameter is a multiplier (x1.5)."""
    param = spec.params[name]
    if param.mode == "scale":
        return f"x{number_text(value)}"
    return value_text(param.targets[0], value, base)


def point_label(spec, point: dict[str, Any], base: Config | None) -> str:
    """A design point as 'name=value, ...' with values in words."""
    return ", ".join(f"{n}={param_value_text(spec, n, point[n], base)}" for n in spec.params if n in point) or "base"


def is_share(outcome) -> bool:
    """Whether an outcome is a share (a fraction of the market), to be shown in per cent."""
    if outcome.kind in ("share", "leader_share"):
        return True
    return outcome.kind in ("final", "change", "provider") and bool(outcome.column) and outcome.column.startswith(SHARE_PREFIXES)


def _optional(field) -> bool:
    return any(a is type(None) for a in typing.get_args(field.annotation))
