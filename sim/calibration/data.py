"""Loading the observed market figures (``data/market_shares.csv``) with validation.

Each row is checked by a pydantic model; every problem is reported as one line
naming the file, the row (1 = first data row) and its line in the file, the
column and what is allowed, and the whole file is refused if any row is bad.
Metrics are tied to their markets and units so that cloud-spend shares, model
token shares and concentration figures can never be mixed up.
"""

from __future__ import annotations

import csv
import math
import re
from datetime import date
from pathlib import Path
from typing import Any, Literal

import pandas as pd
from pydantic import BaseModel, ConfigDict, ValidationError, field_validator, model_validator

from sim.config import ConfigError

REQUIRED_COLUMNS = ("market", "metric", "period", "provider", "value", "unit", "source", "date", "quality")
OPTIONAL_COLUMNS = ("qualifier", "note")
COLUMNS = REQUIRED_COLUMNS + OPTIONAL_COLUMNS

MARKETS = {
    "china_cloud": "Mainland China cloud infrastructure services (IaaS + PaaS + hosted private cloud), Canalys",
    "china_maas": "China model-as-a-service: public-cloud large-model calls, IDC and press",
    "global_cloud": "global cloud infrastructure services, Synergy Research Group",
    "global_iaas": "worldwide public IaaS only, Gartner",
}
# metric -> (needs a provider, allowed units, range of values)
METRICS: dict[str, tuple[bool, tuple[str, ...], tuple[float, float]]] = {
    "spend_share": (True, ("percent",), (0, 100)),
    "token_share": (True, ("percent",), (0, 100)),
    "top3_share": (False, ("percent",), (0, 100)),
    "top4_share": (False, ("percent",), (0, 100)),
    "top5_share": (False, ("percent",), (0, 100)),
    "others_share": (False, ("percent",), (0, 100)),
    "hhi": (False, ("HHI",), (0, 10_000)),
    "market_size": (False, ("US$ bn per quarter", "US$ bn per year"), (0, 1e6)),
    "market_growth_yoy": (False, ("percent",), (-100, 1000)),
    "provider_growth_yoy": (True, ("percent",), (-100, 1000)),
    "token_volume": (False, ("trillion tokens per year",), (0, 1e9)),
    "daily_tokens": (True, ("trillion tokens per day",), (0, 1e9)),
    "token_price": (True, ("yuan per 1k tokens",), (0, 1e6)),
    "token_price_cut": (True, ("percent",), (0, 100)),
    "spend_rank": (True, ("rank",), (1, 100)),
    "token_rank": (True, ("rank",), (1, 100)),
}
# Which metrics belong to which market: never a token share in a cloud-spend market.
MARKET_METRICS = {
    "china_cloud": {"spend_share", "top3_share", "top4_share", "others_share", "hhi", "market_size",
                    "market_growth_yoy", "provider_growth_yoy", "spend_rank"},
    "global_cloud": {"spend_share", "top3_share", "top4_share", "others_share", "hhi", "market_size",
                     "market_growth_yoy", "provider_growth_yoy"},
    "global_iaas": {"spend_share", "top5_share", "others_share", "market_size"},
    "china_maas": {"token_share", "token_volume", "daily_tokens", "token_price", "token_price_cut", "token_rank"},
}
QUALITY = {"V": "seen in a page reporting the analyst's release", "M": "seen only on a secondary site",
           "D": "derived here from other rows"}
QUALIFIERS = ("exact", "approx", "lower_bound", "upper_bound", "range_low", "range_high", "midpoint")
PERIOD = re.compile(r"^(\d{4})(?:Q([1-4]))?$")


class DataError(ConfigError):
    """Problems in a data file, one line each (printed by the CLI without a traceback)."""


class Observation(BaseModel):
    """One row of the market figures file."""

    model_config = ConfigDict(extra="forbid")

    market: Literal["china_cloud", "china_maas", "global_cloud", "global_iaas"]
    metric: str
    period: str
    provider: str = ""
    value: float
    unit: str
    source: str
    date: date
    quality: Literal["V", "M", "D"]
    qualifier: Literal["exact", "approx", "lower_bound", "upper_bound", "range_low", "range_high", "midpoint"] = "exact"
    note: str = ""

    @field_validator("metric")
    @classmethod
    def _metric(cls, v: str) -> str:
        if v not in METRICS:
            raise ValueError(f"unknown metric; allowed: {', '.join(METRICS)}")
        return v

    @field_validator("period")
    @classmethod
    def _period(cls, v: str) -> str:
        if not PERIOD.match(v):
            raise ValueError("expected a year like 2022 or a quarter like 2022Q3")
        return v

    @field_validator("value")
    @classmethod
    def _finite(cls, v: float) -> float:
        if not math.isfinite(v):
            raise ValueError("must be a finite number")
        return v

    @field_validator("source")
    @classmethod
    def _source(cls, v: str) -> str:
        if not v.strip():
            raise ValueError("must name the analyst or publisher")
        return v

    @model_validator(mode="after")
    def _consistent(self) -> "Observation":
        needs_provider, units, (low, high) = METRICS[self.metric]
        if self.metric not in MARKET_METRICS[self.market]:
            raise _ColumnError("metric", f"{self.metric!r} is not a metric of market {self.market}; allowed: "
                                         f"{', '.join(sorted(MARKET_METRICS[self.market]))}")
        if needs_provider and not self.provider:
            raise _ColumnError("provider", f"metric {self.metric} needs a provider")
        if not needs_provider and self.provider:
            raise _ColumnError("provider", f"metric {self.metric} is market-wide: leave provider empty")
        if self.unit not in units:
            raise _ColumnError("unit", f"{self.unit!r} is not a unit of {self.metric}; allowed: {', '.join(units)}")
        if not low <= self.value <= high:
            raise _ColumnError("value", f"{self.value:g} is out of range for {self.metric}; allowed: {low:g} to {high:g}")
        if self.date != period_end(self.period):
            raise _ColumnError("date", f"{self.date} is not the last day of period {self.period}; expected {period_end(self.period)}")
        return self


class _ColumnError(ValueError):
    def __init__(self, column: str, message: str):
        self.column = column
        super().__init__(message)


def period_end(period: str) -> date:
    """Last day of a year (2022) or a quarter (2022Q3)."""
    year, q = PERIOD.match(period).groups()
    month = 12 if q is None else 3 * int(q)
    return date(int(year), month, 31 if month in (3, 12) else 30)


def load_observations(path: str | Path) -> pd.DataFrame:
    """The validated rows as a DataFrame (columns ``COLUMNS`` plus ``row``); raises DataError."""
    path = Path(path)
    rows = _read_rows(path)
    problems: list[str] = []
    good: list[dict[str, Any]] = []
    seen: dict[tuple, int] = {}
    for number, raw in rows:
        try:
            # Empty cells are left out, so optional columns take their defaults and required ones
            # are reported as empty.
            cells = {k: v.strip() for k, v in raw.items() if v is not None and v.strip()}
            obs = Observation.model_validate(cells)
        except ValidationError as exc:
            problems.extend(_describe(path, number, err) for err in exc.errors())
            continue
        key = (obs.market, obs.metric, obs.period, obs.provider, obs.qualifier)
        if key in seen:
            problems.append(f"{path}: {number}: repeats {seen[key]} "
                            f"(same market, metric, period, provider and qualifier)")
            continue
        seen[key] = number
        good.append({**obs.model_dump(), "row": int(number.split()[1])})
    if problems:
        raise DataError(problems)
    frame = pd.DataFrame(good, columns=[*COLUMNS, "row"])
    frame["date"] = pd.to_datetime(frame["date"])
    return frame


def _read_rows(path: Path) -> list[tuple[str, dict[str, str]]]:
    try:
        text = path.read_text(encoding="utf-8")
    except FileNotFoundError:
        raise DataError([f"{path}: no such data file"]) from None
    except UnicodeDecodeError as exc:
        raise DataError([f"{path}: not UTF-8 text ({exc.reason} at byte {exc.start})"]) from None
    except OSError as exc:
        raise DataError([f"{path}: cannot read: {exc.strerror}"]) from None
    reader = csv.DictReader(text.splitlines())
    header = reader.fieldnames or []
    missing = [c for c in REQUIRED_COLUMNS if c not in header]
    unknown = [c for c in header if c not in COLUMNS]
    problems = []
    if missing:
        problems.append(f"{path}: header: missing column(s) {', '.join(missing)}; required: {', '.join(REQUIRED_COLUMNS)}")
    if unknown:
        problems.append(f"{path}: header: unknown column(s) {', '.join(unknown)}; allowed: {', '.join(COLUMNS)}")
    if problems:
        raise DataError(problems)
    rows = []
    for number, raw in enumerate(reader, start=1):
        where = f"row {number} (line {reader.line_num})"
        if None in raw:  # more fields than the header has columns
            problems.append(f"{path}: {where}: {len(header) + len(raw[None])} fields, the header has {len(header)}")
            continue
        rows.append((where, raw))
    if problems:
        raise DataError(problems)
    if not rows:
        raise DataError([f"{path}: no data rows"])
    return rows


def _describe(path: Path, number: str, err: dict[str, Any]) -> str:
    ctx_error = (err.get("ctx") or {}).get("error")
    if isinstance(ctx_error, _ColumnError):
        return f"{path}: {number}, column {ctx_error.column!r}: {ctx_error}"
    column = str(err["loc"][0]) if err["loc"] else "?"
    msg = err["msg"].removeprefix("Value error, ")
    got = err.get("input")
    shown = f" (got {got!r})" if isinstance(got, str) else ""
    if err["type"] == "missing":
        msg = "empty; a value is required"
    elif err["type"] == "literal_error":
        msg = f"not allowed; allowed: {_allowed(column)}"
    return f"{path}: {number}, column {column!r}: {msg}{shown}"


def _allowed(column: str) -> str:
    return {"market": ", ".join(MARKETS), "quality": ", ".join(f"{k} ({v})" for k, v in QUALITY.items()),
            "qualifier": ", ".join(QUALIFIERS)}.get(column, "see data/README.md")
