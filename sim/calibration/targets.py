"""Observed figures the model is compared with, and their simulated counterparts.

The model's market is mainland China cloud: a provider's ``spend_share`` is its
share of revenue, ``token_share`` its share of customers' model tokens (the
IDC MaaS call volume).  Concentration figures (top-k, "others") are taken over
the *named* providers only: the fringe provider (many small firms in reality,
one aggregate in the model) never counts as one of the top k, just as in the
analysts' tables.  Year periods (``2022``) aggregate the quarters of that year.

Two layers (issue 12): the cloud layer (Canalys: spend shares, top-k and "others",
market size, Volcano Engine's rank) and the token layer (IDC: Volcano Engine's token
share, Baidu's and Alibaba's ranks).  Every error is in percentage points or worth as
much: a share or top-k error in pp; a market size as ``LOG_WEIGHT x ln(simulated /
observed)`` (a 10 % miss counts about 1 pp); a rank as the pp by which the provider's
share would have to move to hold that rank among the named providers (0 if it holds it).
The HHI rows are derived from the share rows (quality D) and are not fitted again.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np
import pandas as pd

from sim import quarters
from sim.metrics import hhi

# Metrics compared with the model, by market; everything else in the data file is context.
SHARE_METRICS = {"china_cloud": ("spend_share", "top3_share", "top4_share", "others_share", "market_size", "spend_rank"),
                 "china_maas": ("token_share", "token_rank")}
LAYERS = {"china_cloud": "cloud", "china_maas": "tokens"}
LOG_WEIGHT = 10.0  # pp-equivalents per unit of ln(simulated / observed) for sizes
FRINGE_WORDS = ("other",)


@dataclass(frozen=True)
class Target:
    market: str
    metric: str
    period: str
    provider: str
    observed: float  # percent (a share), US$ bn (a market size) or a rank
    qualifier: str
    quality: str
    row: int

    @property
    def layer(self) -> str:
        """'cloud' (Canalys) or 'tokens' (IDC's model-token market)."""
        return LAYERS.get(self.market, self.market)

    @property
    def label(self) -> str:
        who = f" {self.provider}" if self.provider else ""
        return f"{self.metric}{who} {self.period}"

    def error(self, simulated: float) -> float:
        """Simulated minus observed, in percentage points (or worth as much, see the module
        docstring); a bound counts only when broken.  For a rank target ``simulated`` is already
        the signed gap in pp (positive: ranked above the observed rank)."""
        if self.metric == "market_size":
            gap = LOG_WEIGHT * float(np.log(max(simulated, 1e-12) / self.observed))
        elif self.metric.endswith("_rank"):
            gap = simulated
            # A lower bound on a rank ("not among the top six") is broken by ranking too high.
            return max(gap, 0.0) if self.qualifier == "lower_bound" else gap
        else:
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

    def total_revenue_bn(self, period: str) -> float | None:
        """Revenue of all providers over ``period`` (US$ bn; revenue is recorded in US$ million)."""
        rows = self.rows(period)
        return None if rows is None else float(self.revenue[rows].sum()) / 1000.0

    def rank_gap(self, what: str, provider: str, rank: int, period: str) -> float | None:
        """pp by which ``provider``'s share is above (+) or below (-) the band that would give it
        ``rank`` among the named providers (1 = first); 0 inside it.  A rank beyond the number of
        named providers means below all of them."""
        shares = self.shares(what, period)
        if shares is None or provider not in self.names:
            return None
        j = self.names.index(provider)
        others = np.sort([100.0 * s for i, s in enumerate(shares) if i != j and not self.fringe[i]])[::-1]
        x = 100.0 * float(shares[j])
        above = others[rank - 2] if rank >= 2 and rank - 2 < len(others) else (np.inf if rank < 2 else others[-1] if len(others) else np.inf)
        below = others[rank - 1] if rank - 1 < len(others) else -np.inf
        if x > above:
            return x - above
        if x < below:
            return x - below
        return 0.0

    def measure(self, target: Target) -> float | None:
        """The simulated counterpart of ``target`` (percent, US$ bn or a rank gap in pp), or None
        if the run does not cover it."""
        m = target.metric
        if m == "market_size":
            total = self.total_revenue_bn(target.period)
            return total
        if m in ("spend_rank", "token_rank"):
            return self.rank_gap("revenue" if m == "spend_rank" else "tokens", target.provider,
                                 int(round(target.observed)), target.period)
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
