"""Checks of a sweep's plan before its first run: whatever can fail late is tried now.

- every design point is applied to the base config and validated (not only the
  first and last): each bad parameter value is one line naming the parameter,
  the value and how many design points hold it; a point whose values are each
  valid but invalid together (e.g. a floor above a ceiling) is named by index;
- outcome and figure columns exist in the tables a run records (read from one
  quarter of a small probe run of the base config, so new model columns need
  no list kept here);
- provider names in outcomes and figures exist in the base config (with the
  close name, if any);
- figures' design points and ``where`` selections exist in the design, and a
  share ``sustained`` for more quarters than a run has is refused;
- a parameter that sets a key shaping a drawn population (``POPULATION_KEYS``) in a
  sweep whose base starts from a snapshot (``run.start_from``) is refused, whatever its
  values: the snapshot's customers replace that population in every run.

Each problem is one line starting with the spec file; all are reported at once.
"""

from __future__ import annotations

import difflib
from typing import Any, Iterator

import numpy as np

from sim.config import POPULATION_KEYS, Config, ConfigError, population_line, with_overrides
from sim.experiment.designs import Design, _fmt
from sim.experiment.keys import Overrides
from sim.experiment.spec import Spec, _matches

KEYS = ("run_id", "design_index", "replicate", "step", "quarter")
MAX_LINES = 20  # problems listed before "... and N more"


def check_plan(spec: Spec, base: Config, design: Design, overrides: Overrides) -> None:
    """ConfigError listing every problem found, or nothing."""
    problems = list(start_from_problems(spec, base))
    if problems:  # every design point would be refused for the same reason: say it once per parameter
        raise ConfigError(problems)
    problems = list(point_problems(spec, base, design, overrides))
    if not problems:  # column checks need a valid base to probe
        problems = list(reference_problems(spec, base, design))
    if problems:
        if len(problems) > MAX_LINES:
            problems = problems[:MAX_LINES] + [f"{spec.source}: ... and {len(problems) - MAX_LINES} more problems"]
        raise ConfigError(problems)


# -------------------------------------------------------------- design points
def start_from_problems(spec: Spec, base: Config) -> Iterator[str]:
    """Parameters that sweep a key of ``POPULATION_KEYS`` while the base config starts from a
    snapshot: one line each, worded as the config's own refusal (``population_line``).  A spec
    that sweeps ``run.start_from`` itself is left to the check of each design point."""
    if base.run.start_from is None or any(_matches(t, "run.start_from") for p in spec.params.values() for t in p.targets):
        return
    for name, p in spec.params.items():
        hits = [t for t in p.targets if any(_matches(pattern, t) for pattern in POPULATION_KEYS)]
        if hits:
            yield population_line(f"{spec.source}: params.{name}", [f"{t} (swept)" for t in hits], base.run.start_from)


def point_problems(spec: Spec, base: Config, design: Design, overrides: Overrides) -> Iterator[str]:
    """Validate every design point; blame single values where one is at fault."""
    alone: dict[tuple[str, Any], list[str]] = {}  # (parameter, value) -> its problems on its own
    bad_values: dict[tuple[str, Any], int] = {}  # -> number of design points holding it
    joint: list[tuple[int, dict, str]] = []  # points whose values are each fine but not together
    for index, point in enumerate(design.points):
        try:
            with_overrides(base, overrides(point), source=f"{spec.source}: design point {index}")
            continue
        except ConfigError as exc:
            point_errors = exc.problems
        culprits = []
        for name, value in point.items():
            key = (name, _hashable(value))
            if key not in alone:
                alone[key] = _alone(spec, base, overrides, name, value)
            if alone[key]:
                culprits.append(key)
                bad_values[key] = bad_values.get(key, 0) + 1
        if not culprits:
            joint.append((index, point, point_errors[0]))
    for (name, value), count in bad_values.items():
        first, *rest = alone[(name, value)]
        more = f"; and {len(rest)} more key{'s' if len(rest) != 1 else ''} like it" if rest else ""
        yield f"{first} (params.{name} = {value!r}, at {count} design point{'s' if count != 1 else ''}{more})"
    if joint:
        index, point, problem = joint[0]
        label = ", ".join(f"{n} = {_fmt(v)}" for n, v in point.items())
        indices = [i for i, _, _ in joint]
        shown = ", ".join(map(str, indices[:8])) + (", ..." if len(indices) > 8 else "")
        yield (f"{problem} ({label}): these values do not go together, at {len(indices)} design "
               f"point{'s' if len(indices) != 1 else ''}: {shown}")


def _alone(spec: Spec, base: Config, overrides: Overrides, name: str, value: Any) -> list[str]:
    try:
        with_overrides(base, overrides({name: value}), source=f"{spec.source}: params.{name}")
    except ConfigError as exc:
        return list(exc.problems)
    return []


def _hashable(value: Any) -> Any:
    return value if isinstance(value, (int, float, str, bool)) else repr(value)


# ----------------------------------------------- columns, names and selections
def recorded_columns(base: Config) -> tuple[list[str], list[str]]:
    """(market columns, provider columns) a run of ``base`` records, from one quarter of a small probe run."""
    from sim.model import Market

    try:
        probe = with_overrides(base, {"run.customers": min(base.run.customers, 200)})
    except ConfigError:
        probe = base
    market = Market(config=probe)
    market.step()
    recorder = market.recorder
    columns = lambda rows: [c for c in dict.fromkeys(k for row in rows for k in row) if c not in KEYS]  # noqa: E731
    return columns(recorder.market_rows), columns(recorder.provider_rows)


def reference_problems(spec: Spec, base: Config, design: Design) -> Iterator[str]:
    market_cols, provider_cols = recorded_columns(base)
    names = [p.name for p in base.providers] + [p.name for p in base.entrants]
    src = spec.source
    for name, o in spec.outcomes.items():
        where = f"{src}: outcomes.{name}"
        if o.kind in ("final", "change") and o.column not in market_cols:
            yield f"{where}.column: {o.column!r} is not a market column{_hint(o.column, market_cols)}; " \
                  f"allowed: {', '.join(market_cols)}"
        if o.kind == "provider" and o.column not in provider_cols:
            yield f"{where}.column: {o.column!r} is not a provider column{_hint(o.column, provider_cols)}; " \
                  f"allowed: {', '.join(provider_cols)}"
        if o.kind not in ("final", "change", "provider") and f"share_{o.metric}" not in provider_cols:
            yield f"{where}.metric: this model does not record share_{o.metric}"
        yield from _provider_names(f"{where}.providers", o.providers, names)
        if o.kind in ("reaches_share", "quarters_to_share") and o.sustained > base.run.quarters:
            yield f"{where}.sustained: {o.sustained} quarters in a row cannot happen in a run of " \
                  f"{base.run.quarters} quarters; allowed: <= {base.run.quarters}"
    frame = design.frame()
    for i, v in enumerate(spec.verdicts):
        for side in ("at", "against"):
            yield from _selection_problems(f"{src}: verdicts[{i}].{side}", getattr(v, side) or {}, frame)
    for i, f in enumerate(spec.figures):
        where = f"{src}: figures[{i}]"
        if f.column is not None and f.column not in market_cols:
            yield f"{where}.column: {f.column!r} is not a market column{_hint(f.column, market_cols)}; " \
                  f"allowed: {', '.join(market_cols)}"
        yield from _provider_names(f"{where}.providers", f.providers, names)
        if f.kind in ("shares", "timeseries") and f"share_{f.metric}" not in provider_cols:
            yield f"{where}.metric: this model does not record share_{f.metric}"
        if isinstance(f.points, list):
            bad = [p for p in f.points if not 0 <= p < len(design)]
            if bad:
                yield f"{where}.points: design point(s) {bad} do not exist; allowed: 0..{len(design) - 1}"
        yield from _selection_problems(f"{where}.where", f.where or {}, frame)


def _selection_problems(where: str, selection: dict, frame) -> Iterator[str]:
    """A selection of design points (a verdict's ``at``/``against``, a figure's ``where``) must hold at least one."""
    if not selection or not len(frame):
        return
    keep = np.ones(len(frame), dtype=bool)
    for param, value in selection.items():
        column = frame[param]
        if _numeric(value) and column.map(_numeric).all():
            keep &= np.isclose(column.to_numpy(dtype=float), float(value))
        else:
            keep &= (column == value).to_numpy()
    if not keep.any():
        shown = {p: sorted(dict.fromkeys(frame[p]), key=str)[:8] for p in selection}
        yield f"{where}: no design point has {selection}; values in the design: " + \
              "; ".join(f"{p}: {', '.join(map(repr, v))}" for p, v in shown.items())


def _provider_names(where: str, selector, names: list[str]) -> Iterator[str]:
    if not isinstance(selector, list):
        return  # a group name, or none
    for name in selector:
        if name not in names:
            yield f"{where}: {name!r} is not a provider of the base config{_hint(name, names)}; " \
                  f"allowed: {', '.join(names)} (or a group: porters, model_owners, entrants, incumbents)"


def _hint(name: str, allowed: list[str]) -> str:
    close = difflib.get_close_matches(name, allowed, n=1)
    return f" (did you mean {close[0]!r}?)" if close else ""


def _numeric(value) -> bool:
    return isinstance(value, (int, float, np.integer, np.floating)) and not isinstance(value, (bool, np.bool_))
