"""The stylized facts of ../shared/notes/model-anchors.md section 6 as named checks.

Each check measures a few numbers in every replication and decides pass or fail
for that replication; the report gives the median of each number over the
replications and the share of replications that pass.  A fact passes when at
least half of the replications pass.  Thresholds are written next to each
check with the observed figures they come from (data/market_shares.csv).
Facts 1 and 2 are observed in the global market; they are checked on the
simulated China market, since the model has only one market.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Callable

import numpy as np
import pandas as pd
from scipy.stats import spearmanr

from sim import quarters as qtr
from sim.calibration.targets import period_quarters
from sim.metrics import NONE_LABEL, hhi


@dataclass
class Context:
    """What the checks need to know about the scenario."""

    fringe: list[str]
    leader: str  # the largest provider at the start
    entrant: str | None  # the late entrant with internal demand
    full_stack: list[str]  # providers with their own model
    porters: list[str]  # compute-only providers
    shock: str  # first quarter of model services
    late: tuple[str, str]  # the quarters where the leader's erosion is measured
    fit_end: str

    @classmethod
    def from_config(cls, config, fringe: list[str], fit_end: str) -> "Context":
        start = config.run.start
        shock = config.demand.model_services_start
        shock_label = qtr.label(qtr.parse(start) + config.quarter_offset(shock)) if shock is not None else start
        late_first = qtr.label(max(qtr.parse(start), qtr.parse(fit_end) - 7))
        leader = max(config.providers, key=lambda p: p.initial_share).name
        return cls(fringe=fringe, leader=leader, entrant=config.entrants[0].name if config.entrants else None,
                   full_stack=[p.name for p in config.all_providers if p.has_model],
                   porters=[p.name for p in config.all_providers if not p.has_model],
                   shock=shock_label, late=(late_first, fit_end), fit_end=fit_end)


@dataclass
class Check:
    number: int
    name: str
    fact: str
    criterion: str
    measure: Callable  # (run, context) -> (dict of numbers, passed)


@dataclass
class FactResult:
    number: int
    name: str
    fact: str
    criterion: str
    measured: dict[str, float]
    pass_rate: float
    passed: bool
    notes: list[str] = field(default_factory=list)


# ------------------------------------------------------------------ helpers
def _table(run, column: str) -> pd.DataFrame:
    qs = list(dict.fromkeys(run.providers["quarter"]))
    return run.providers.pivot(index="quarter", columns="provider", values=column).loc[qs]


def _between(table: pd.DataFrame, first: str, last: str) -> pd.DataFrame:
    lo, hi = qtr.parse(first), qtr.parse(last)
    return table[[lo <= qtr.parse(q) <= hi for q in table.index]]


def _named(table: pd.DataFrame, ctx: Context) -> pd.DataFrame:
    return table[[c for c in table.columns if c not in ctx.fringe]]


def _year_shares(run, what: str, year: str) -> pd.Series:
    table = _table(run, what)
    rows = [q for q in period_quarters(year) if q in table.index]
    total = table.loc[rows].sum()
    return total / total.sum() if total.sum() > 0 else total * 0.0


# ------------------------------------------------------------------- checks
def f1_top_shares_move_slowly(run, ctx: Context):
    """Normal times = before model services start.  China 2020Q1-2021Q1: Alibaba -4.7, Huawei +5.6,
    Tencent -0.2, Baidu -1.4 pp a year (mean 3.0); global: AWS about -0.7 pp a year."""
    share = _named(_table(run, "share_revenue"), ctx)
    incumbents = [c for c in share.columns if c != ctx.entrant]
    normal = _between(share, share.index[0], qtr.label(qtr.parse(ctx.shock) - 1))[incumbents]
    yearly = (normal - normal.shift(4)).dropna().abs() * 100
    mean_change = float(yearly.to_numpy().mean()) if len(yearly) else float("nan")
    leaders = normal.idxmax(axis=1)
    changes = int((leaders != leaders.shift()).iloc[1:].sum())
    return {"mean |yearly change| of top providers (pp)": mean_change, "leader changes": changes}, \
        bool(mean_change <= 4.0 and changes == 0)


def f2_fringe_loses_share_while_growing(run, ctx: Context):
    """Global 'others' about 50 % (2017) to 34-36 % (2022) while the market tripled."""
    share, revenue = _table(run, "share_revenue"), _table(run, "revenue")
    fringe = [c for c in share.columns if c in ctx.fringe]
    d_share = float(share[fringe].iloc[-1].sum() - share[fringe].iloc[0].sum()) * 100
    growth = float(revenue[fringe].iloc[-1].sum() / max(revenue[fringe].iloc[0].sum(), 1e-12) - 1) * 100
    return {"fringe share change (pp)": d_share, "fringe revenue growth (%)": growth}, bool(d_share < 0 and growth > 0)


def f3_china_leader_erodes_but_stays_first(run, ctx: Context):
    """Alibaba 46.4 (2019Q4) / 44.5 (2020Q1) to 34-39 in 2022-2023; top four 79-81; HHI 1,900-2,600."""
    share = _table(run, "share_revenue")
    named = _named(share, ctx)
    to_fit = _between(named, named.index[0], ctx.fit_end)
    late = _between(share, *ctx.late)[ctx.leader].mean() * 100
    first = share[ctx.leader].iloc[0] * 100
    always_first = bool((to_fit.idxmax(axis=1) == ctx.leader).all())
    top4 = float(np.sort(to_fit.to_numpy(), axis=1)[:, ::-1][:, :4].sum(axis=1).mean() * 100)
    named_hhi = float(np.mean([hhi(row) for row in to_fit.to_numpy()]))
    ok = 33 <= late <= 40 and late <= first - 3 and always_first and 75 <= top4 <= 85 and 1900 <= named_hhi <= 2600
    return {"leader share, late years (%)": late, "leader erosion (pp)": first - late,
            "leader first in every quarter": float(always_first), "top-4 share (%)": top4,
            "HHI of named providers": named_hhi}, bool(ok)


def f4_new_layer_concentrates_faster(run, ctx: Context):
    """The model-services (token) layer is more concentrated than the cloud layer and
    concentrates faster after the shock."""
    mkt = run.market.set_index("quarter")
    after = _between(mkt, ctx.shock, mkt.index[-1])
    after = after[after["total_tokens"] > 0]
    if after.empty:
        return {"token HHI, last quarter": float("nan"), "revenue HHI, last quarter": float("nan")}, False
    tok_last, rev_last = float(after["hhi_tokens"].iloc[-1]), float(after["hhi_revenue"].iloc[-1])
    tok_rise = tok_last - float(after["hhi_tokens"].iloc[0])
    rev_rise = rev_last - float(after["hhi_revenue"].iloc[0])
    return {"token HHI, last quarter": tok_last, "revenue HHI, last quarter": rev_last,
            "token HHI rise since shock": tok_rise, "revenue HHI rise since shock": rev_rise}, \
        bool(tok_last > rev_last and tok_rise > rev_rise)


def f5_late_entrant_leads_new_layer(run, ctx: Context):
    """Volcano Engine: 46.4 % of 2024 model tokens (IDC), not in the top six by cloud revenue."""
    if ctx.entrant is None:
        return {"entrant token share (%)": float("nan")}, False
    year = run.providers["quarter"].iloc[-1][:4]
    tokens, revenue = _year_shares(run, "tokens", year), _year_shares(run, "revenue", year)
    tok, rev = float(tokens.get(ctx.entrant, 0.0)) * 100, float(revenue.get(ctx.entrant, 0.0)) * 100
    first = tokens.idxmax() == ctx.entrant
    return {f"entrant token share {year} (%)": tok, f"entrant revenue share {year} (%)": rev,
            "entrant first in tokens": float(first)}, bool(first and tok >= 30 and rev < 10)


def f6_price_war_with_volume_jump(run, ctx: Context):
    """Token prices fell 85-99 % in 2024 and volume rose by an order of magnitude or more
    (Doubao 0.12 to >1.3 trillion tokens a day, May to Sep 2024)."""
    cfg = run.config
    cuts = [cfg.quarter_offset(c.quarter) for c in cfg.pricing.token_price_cuts]
    last = int(run.market["step"].iloc[-1])
    before = (min(cuts) - 1) if cuts else max(0, last - 4)
    if before < 0 or before >= last:
        return {"token price fall (%)": float("nan")}, False
    prov = run.providers
    pr = cfg.pricing

    def avg_price(step: int) -> tuple[float, float]:
        rows = prov[prov["step"] == step]
        factor = rows["token_factor"].to_numpy()
        per_token = rows["price"].to_numpy() * factor * pr.token_compute * (1 - pr.token_efficiency_gain) ** step
        volume = rows["tokens"].to_numpy()
        ok = volume > 0
        return (float(np.average(per_token[ok], weights=volume[ok])) if ok.any() else float("nan")), float(volume.sum())

    p0, v0 = avg_price(before)
    p1, v1 = avg_price(last)
    fall = (1 - p1 / p0) * 100 if p0 > 0 else float("nan")
    ratio = v1 / v0 if v0 > 0 else float("nan")
    return {"token price fall (%)": fall, "token volume ratio": ratio}, bool(fall >= 85 and ratio >= 10)


def f7_customers_rarely_switch(run, ctx: Context):
    """Ofcom/CMA: loyalty is common, competition is at first adoption, renewal prices rise.
    No public churn rate; the history-friendly model uses a renewal hazard of 0.04-0.08."""
    churn = run.market["churn"].to_numpy()
    annual = float(1 - np.prod(1 - churn) ** (4 / len(churn))) * 100
    flows = run.flows
    new = int(flows.loc[flows["from"] == NONE_LABEL, "customers"].sum())
    switches = int(flows.loc[(flows["from"] != NONE_LABEL) & (flows["to"] != NONE_LABEL), "customers"].sum())
    prov = run.providers.dropna(subset=["markup"])
    harvest = float(spearmanr(prov["share_compute"], prov["markup"]).statistic) if len(prov) > 2 else float("nan")
    return {"existing customers switching per year (%)": annual, "new adoptions per switch": new / max(switches, 1),
            "rank correlation share-markup": harvest}, bool(annual <= 10 and new > switches and harvest > 0)


def f8_few_full_stack_providers(run, ctx: Context):
    """About 3-5 viable full-stack providers however large the market; compute-only providers
    grow slower than the market."""
    share, revenue = _table(run, "share_revenue"), _table(run, "revenue")
    full = [c for c in share.columns if c in ctx.full_stack]
    viable_first = int((share[full].iloc[0] >= 0.05).sum())
    viable_last = int((share[full].iloc[-1] >= 0.05).sum())
    market_growth = float(revenue.iloc[-1].sum() / revenue.iloc[0].sum() - 1) * 100
    porters = [c for c in revenue.columns if c in ctx.porters]
    porter_growth = float(revenue[porters].iloc[-1].sum() / max(revenue[porters].iloc[0].sum(), 1e-12) - 1) * 100 \
        if porters else float("nan")
    ok = 3 <= viable_last <= 5 and (not porters or porter_growth < market_growth)
    return {"viable full-stack providers, first quarter": viable_first, "viable full-stack providers, last quarter": viable_last,
            "market revenue growth (%)": market_growth, "compute-only revenue growth (%)": porter_growth}, bool(ok)


def f9_token_layer_more_concentrated_in_level(run, ctx: Context):
    """Issue 12: the token layer is more concentrated than the cloud layer in level: IDC-based
    token HHI about 3,400 in 2024 (Volcano Engine 46.4 %, Baidu second, Alibaba third) against
    1,900-2,400 for cloud revenue (market-shares.md section 6)."""
    year = run.providers["quarter"].iloc[-1][:4]
    tokens, revenue = _year_shares(run, "tokens", year), _year_shares(run, "revenue", year)
    named = [n for n in revenue.index if n not in ctx.fringe]
    tok_hhi = hhi(tokens.to_numpy())
    rev_hhi = hhi(revenue[named].to_numpy())
    return {f"token HHI {year}": tok_hhi, f"named revenue HHI {year}": rev_hhi}, \
        bool(2800 <= tok_hhi <= 4500 and tok_hhi > rev_hhi)


CHECKS = [
    Check(1, "top_shares_move_slowly", "At the top, shares move a few points a year; no leapfrogging in normal times.",
          "before the shock: mean |yearly change| of the named incumbents' revenue shares <= 4 pp and the leader never changes",
          f1_top_shares_move_slowly),
    Check(2, "fringe_loses_share_while_growing", "The fringe loses share while its revenue grows.",
          "fringe revenue share falls from the first to the last quarter while its revenue rises",
          f2_fringe_loses_share_while_growing),
    Check(3, "china_leader_erodes_but_stays_first",
          "China's leader erodes but stays first; the top four stay near 80 %; HHI about 1,900-2,500.",
          "leader's share 33-40 % in the last 8 fitted quarters and >= 3 pp below its start; first in every fitted quarter; "
          "named top-4 share 75-85 %; HHI of named providers 1,900-2,600 (fit window means)",
          f3_china_leader_erodes_but_stays_first),
    Check(4, "new_layer_concentrates_faster", "A technology shock opens a new layer (model services) that concentrates fast, "
          "faster than the compute layer.",
          "in the last quarter token HHI > revenue HHI, and token HHI rose more than revenue HHI since the shock",
          f4_new_layer_concentrates_faster),
    Check(5, "late_entrant_leads_new_layer", "A late entrant with large internal demand can lead the new layer while staying "
          "small in total cloud revenue.",
          "in the last year the entrant has the largest token share, >= 30 %, and < 10 % of revenue",
          f5_late_entrant_leads_new_layer),
    Check(6, "price_war_with_volume_jump", "A price war accompanies the shock: token prices fall 85-99 % and volume rises "
          "by an order of magnitude or more.",
          "volume-weighted price per token falls >= 85 % and token volume rises >= 10x from the quarter before the first "
          "cut to the last quarter",
          f6_price_war_with_volume_jump),
    Check(7, "customers_rarely_switch", "Existing customers rarely switch; competition happens at first adoption; renewal "
          "prices rise.",
          "<= 10 % of existing customers switch per year; more new adoptions than switches; markup rises with installed "
          "share (rank correlation > 0; the model has one price per provider, so this is a proxy for renewal prices)",
          f7_customers_rarely_switch),
    Check(8, "few_full_stack_providers", "The number of viable full-stack providers does not rise (about 3-5); compute-only "
          "providers grow slower than the market.",
          "3-5 providers with their own model and >= 5 % of revenue in the last quarter; compute-only revenue grows less "
          "than the market's",
          f8_few_full_stack_providers),
    Check(9, "token_layer_more_concentrated_in_level", "The token layer is more concentrated than the cloud layer: "
          "token HHI about 3,400 (IDC 2024) against 1,900-2,400 for cloud revenue.",
          "in the last year token HHI (all providers) is 2,800-4,500 and above the named providers' revenue HHI",
          f9_token_layer_more_concentrated_in_level),
]


def winners_over_seeds(config, seeds: list[int], tipped_at: float = 0.5) -> pd.DataFrame:
    """Issue 12's fact "tipping is possible but not certain": one run per seed of ``config``;
    per run the provider with the largest final revenue share, that share, and whether the
    market tipped (the winner holds more than ``tipped_at``).  Arthur (1989): with increasing
    returns and identical providers some runs tip and which one wins varies across seeds."""
    from sim.calibration.replicate import run_replications

    rows = []
    for seed, run in zip(seeds, run_replications(config, seeds)):
        last = run.providers[run.providers["step"] == run.providers["step"].max()]
        top = last.loc[last["share_revenue"].idxmax()]
        rows.append({"seed": seed, "winner": top["provider"], "winner share": float(top["share_revenue"]),
                     "tipped": bool(top["share_revenue"] > tipped_at),
                     "HHI": float(run.market["hhi_revenue"].iloc[-1])})
    return pd.DataFrame(rows)


def tipping_verdict(table: pd.DataFrame) -> dict[str, float]:
    """Share of seeds that tipped and how many different providers won them: tipping is possible
    but not certain when 0 < share < 1 and the tipped runs have more than one winner."""
    tipped = table[table["tipped"]]
    return {"runs": len(table), "share tipped": float(table["tipped"].mean()),
            "distinct winners of tipped runs": int(tipped["winner"].nunique()),
            "possible but not certain": bool(0 < table["tipped"].mean() < 1 and tipped["winner"].nunique() > 1)}


def evaluate(runs: list, ctx: Context) -> list[FactResult]:
    results = []
    for check in CHECKS:
        measured, passed = zip(*(check.measure(run, ctx) for run in runs))
        keys = list(measured[0])
        medians = {k: float(np.nanmedian([m.get(k, np.nan) for m in measured])) for k in keys}
        rate = float(np.mean(passed))
        results.append(FactResult(check.number, check.name, check.fact, check.criterion, medians, rate, rate >= 0.5))
    return results
