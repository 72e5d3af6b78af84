"""Observed figures the model is compared with, and their simulated counterparts.

The model's market is mainland China cloud: a provider's ``spend_share`` is its
share of revenue, ``token_share`` its share of customers' model tokens (the
IDC MaaS call volume).  Concentration figures (top-k, "others") are taken over
the *named* providers only: the fringe provider (many small firms in reality,
one aggregate in the model) never counts as one of the top k, just as in the
analysts' tables.  Year periods (``2022``) aggregate the quarters of that year.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np
import pandas as pd

from sim import quarters
from sim.metrics import hhi

# Metrics compared with the model, by market; everything else in the data file is context.
SHARE_METRICS = {"china_cloud": ("spend_share", "top3_share", "top4_share", "others_share"),
                 "china_maas": ("token_share",)}
FRINGE_WORDS = ("other",)


@dataclass(frozen=True)
class Target:
    market: str
    metric: str
    period: str
    provider: str
    observed: float  # percent
    qualifier: str
    quality: str
    row: int

    @property
    def label(self) -> str:
        who = f" {self.provider}" if self.provider else ""
        return f"{self.metric}{who} {self.period}"

    def error(self, simulated: float) -> float:
        """Simulated minus observed, in percentage points; a bound counts only when broken."""
        gap = simulated - self.observed
        if self.qualifier == "lower_bound":
            return min(gap, 0.0)
        if self.qualifier == "upper_bound":
            return max(gap, 0.0)
        return gap


@dataclass
class Panel:
    """One run reduced to what the comparisons need: revenue and tokens per quarter and provider."""

    quarters: list[str]
    names: list[str]
    fringe: np.ndarray  # bool per provider
    revenue: np.ndarray  # (quarters, providers)
    tokens: np.ndarray

    @classmethod
    def from_frame(cls, providers: pd.DataFrame, fringe: list[str]) -> "Panel":
        names = list(dict.fromkeys(providers["provider"]))
        qs = list(dict.fromkeys(providers["quarter"]))
        rev = providers.pivot(index="quarter", columns="provider", values="revenue").loc[qs, names]
        tok = providers.pivot(index="quarter", columns="provider", values="tokens").loc[qs, names]
        return cls(qs, names, np.array([n in fringe for n in names]), rev.to_numpy(float), tok.to_numpy(float))

    def rows(self, period: str) -> np.ndarray | None:
        """Indices of the quarters that make up ``period`` (a quarter or a year); None if not all simulated."""
        wanted = period_quarters(period)
        if not all(q in self.quarters for q in wanted):
            return None
        return np.array([self.quarters.index(q) for q in wanted])

    def shares(self, what: str, period: str) -> np.ndarray | None:
        rows = self.rows(period)
        if rows is None:
            return None
        values = (self.revenue if what == "revenue" else self.tokens)[rows].sum(axis=0)
        total = values.sum()
        return values / total if total > 0 else np.zeros_like(values)

    def top_k(self, k: int, period: str) -> float | None:
        shares = self.shares("revenue", period)
        if shares is None:
            return None
        return float(np.sort(shares[~self.fringe])[::-1][:k].sum())

    def named_hhi(self, period: str) -> float | None:
        """HHI of the named providers only (the fringe as many tiny firms: the lower bound)."""
        shares = self.shares("revenue", period)
        return None if shares is None else hhi(shares[~self.fringe])

    def measure(self, target: Target) -> float | None:
        """The simulated counterpart of ``target`` in percent, or None if the run does not cover it."""
        m = target.metric
        if m in ("spend_share", "token_share"):
            shares = self.shares("revenue" if m == "spend_share" else "tokens", target.period)
            if shares is None or target.provider not in self.names:
                return None
            return 100.0 * float(shares[self.names.index(target.provider)])
        if m in ("top3_share", "top4_share", "top5_share"):
            value = self.top_k(int(m[3]), target.period)
            return None if value is None else 100.0 * value
        if m == "others_share":  # everyone outside the named top four
            value = self.top_k(4, target.period)
            return None if value is None else 100.0 * (1.0 - value)
        raise ValueError(f"no simulated counterpart for metric {m!r}")


def period_quarters(period: str) -> list[str]:
    if "Q" in period:
        return [period]
    return [f"{period}Q{q}" for q in range(1, 5)]


def parse_window(text: str) -> tuple[str, str]:
    """``2020Q1:2023Q4`` -> the first and last quarter (inclusive)."""
    try:
        first, last = text.split(":")
        if quarters.parse(first) > quarters.parse(last):
            raise ValueError
    except ValueError:
        raise ValueError(f"{text!r} is not a window like 2020Q1:2023Q4 (first quarter, colon, last quarter)") from None
    return first, last


def in_window(period: str, window: tuple[str, str]) -> bool:
    lo, hi = (quarters.parse(q) for q in window)
    return all(lo <= quarters.parse(q) <= hi for q in period_quarters(period))


def fringe_names(config, given: list[str] | None = None) -> list[str]:
    """Providers that stand for the unnamed rest of the market: given, or named like 'Others'."""
    names = [p.name for p in config.all_providers]
    if given:
        unknown = [g for g in given if g not in names]
        if unknown:
            raise ValueError(f"--fringe {', '.join(unknown)}: not a provider; allowed: {', '.join(names)}")
        return list(given)
    return [n for n in names if any(w in n.lower() for w in FRINGE_WORDS)]


def select_targets(observations: pd.DataFrame, config, *, window: tuple[str, str] | None = None,
                   markets: tuple[str, ...] = ("china_cloud",)) -> list[Target]:
    """Observations with a simulated counterpart in this config, inside ``window`` if given."""
    start = config.run.start
    end = quarters.label(quarters.parse(start) + config.run.quarters - 1)
    run_window = (start, end)
    names = {p.name for p in config.all_providers}
    found = []
    for row in observations.itertuples(index=False):
        if row.market not in markets or row.metric not in SHARE_METRICS.get(row.market, ()):
            continue
        if row.provider and row.provider not in names:
            continue
        if not in_window(row.period, run_window) or (window and not in_window(row.period, window)):
            continue
        found.append(Target(row.market, row.metric, row.period, row.provider, float(row.value),
                            row.qualifier, row.quality, int(row.row)))
    return found
