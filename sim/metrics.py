"""Per-quarter outputs: provider rows, market rows and switching flows.

Shares are taken over the providers active in the quarter, so they sum to 1
whenever any provider has a positive value; HHI is on the 0-10,000 scale.

The three analysts' layers (docs/model.md, Observation):
  cloud_revenue     IaaS + PaaS: compute served to customers, at the provider's price
                    (Canalys/Omdia cloud infrastructure services; MaaS left out)
  ai_cloud_revenue  compute served to customers who use models, plus MaaS token revenue
                    (Omdia "AI cloud": IaaS + PaaS + MaaS for generative AI)
  maas_tokens       model tokens served to external customers from the provider's GPUs;
                    own apps' (captive) tokens excluded (IDC: MaaS token calls)
``revenue`` is all market revenue (cloud_revenue + MaaS revenue); ``tokens`` is the same as
``maas_tokens`` (kept for readers of the older name); both count what was served.
"""

from __future__ import annotations

import numpy as np
import pandas as pd

METRICS = ("revenue", "compute", "tokens", "customers", "cloud_revenue", "ai_cloud_revenue", "maas_tokens")
MILLION = 1e6
NONE_LABEL = "(none)"


def hhi(shares: np.ndarray) -> float:
    return float(np.sum((100.0 * np.asarray(shares)) ** 2))


def concentration_ratio(shares: np.ndarray, k: int) -> float:
    return float(np.sort(np.asarray(shares))[::-1][:k].sum())


def concentration(shares: np.ndarray) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """HHI (0-10,000), CR3 and CR5 of each row of ``shares`` (shape (rows, providers)), each of
    shape (rows,): row i equals ``hhi(shares[i])`` and ``concentration_ratio(shares[i], 3 | 5)``
    to the last bit (the same sums, one call for all rows)."""
    hhis = ((100.0 * shares) ** 2).sum(axis=1)
    top = np.sort(shares, axis=1)[:, ::-1]
    return hhis, top[:, :3].sum(axis=1), top[:, :5].sum(axis=1)


def shares_of(values: np.ndarray) -> np.ndarray:
    total = values.sum()
    return values / total if total > 0 else np.zeros_like(values, dtype=float)


OVERLOAD_LIMIT = 1.5  # utilisation
OVERLOAD_SPELL = 4  # quarters in a row; a longer spell is flagged in the run summary


def longest_overload(providers: pd.DataFrame, limit: float = OVERLOAD_LIMIT) -> dict[str, int]:
    """Longest run of consecutive quarters with utilisation above ``limit``, per provider
    (provider rows as recorded, in quarter order; quarters not active break a run)."""
    spells = {}
    for name, rows in providers.groupby("provider", sort=False):
        over = (rows["utilisation"].to_numpy(dtype=float) > limit)  # NaN (not active) compares False
        best = run = 0
        for flag in over:
            run = run + 1 if flag else 0
            best = max(best, run)
        spells[name] = best
    return spells


class Recorder:
    """Keeps a few small rows per quarter (providers x quarters), never per customer."""

    def __init__(self, market):
        self.provider_rows: list[dict] = []
        self.market_rows: list[dict] = []
        self.flow_rows: list[dict] = []

    def record(self, market) -> None:
        label = market.quarter_label
        n = market.n_slots
        values = {m: np.zeros(n) for m in METRICS}
        active = market.active_providers()
        # A provider that exits at the end of this quarter still served it: it counts in this quarter's shares.
        served = active + [market.slots[market.slot_of(name)] for name in market.exits]
        extra = {k: np.zeros(n) for k in ("maas_revenue", "tokens_demanded", "unserved_tokens", "captive_tokens")}
        for p in served:
            values["revenue"][p.slot] = p.revenue
            values["compute"][p.slot] = p.customer_compute
            values["tokens"][p.slot] = p.tokens
            values["maas_tokens"][p.slot] = p.tokens
            values["customers"][p.slot] = p.customers
            values["cloud_revenue"][p.slot] = p.price * p.billed_compute_gpu / MILLION
            extra["maas_revenue"][p.slot] = p.price * p.billed_token_gpu / MILLION
            values["ai_cloud_revenue"][p.slot] = p.price * (p.billed_ai_gpu + p.billed_token_gpu) / MILLION
            extra["tokens_demanded"][p.slot] = p.tokens_demanded
            extra["unserved_tokens"][p.slot] = p.unserved_tokens
            extra["captive_tokens"][p.slot] = p.captive_tokens_quarter
        shares = {m: shares_of(v) for m, v in values.items()}
        people = market.customers
        model_users = np.bincount(people.model_provider.astype(np.intp) + 1, minlength=n + 1)[1:]

        market_row = {"quarter": label, "step": market.t}
        # All metrics at once (metrics x slots): a few array operations instead of a dozen per metric.
        hhis, cr3, cr5 = (a.tolist() for a in concentration(np.array([shares[m] for m in METRICS])))
        for i, m in enumerate(METRICS):
            market_row[f"hhi_{m}"] = hhis[i]
            market_row[f"cr3_{m}"] = cr3[i]
            market_row[f"cr5_{m}"] = cr5[i]
        market_row.update(
            churn=market.churn, adopted=int(np.count_nonzero(market.customers.adopted)), new_adopters=market.new_adopters,
            active_providers=len(active), entries=len(market.entries), exits=len(market.exits),
            entered="|".join(market.entries), exited="|".join(market.exits),
            frontier=market.frontier, open_capability=market.open_capability,
            total_revenue=float(values["revenue"].sum()), total_tokens=float(values["tokens"].sum()),
            total_cloud_revenue=float(values["cloud_revenue"].sum()),
            total_ai_cloud_revenue=float(values["ai_cloud_revenue"].sum()),
            total_maas_tokens=float(values["maas_tokens"].sum()),
            maas_tokens_trillion=float(values["maas_tokens"].sum()) * market.config.models.token_unit / 1e12,
            total_tokens_demanded=float(extra["tokens_demanded"].sum()),
            total_unserved_tokens=float(extra["unserved_tokens"].sum()),
            total_captive_tokens=float(extra["captive_tokens"].sum()),
            total_model_users=int(np.count_nonzero(people.model_provider != -1)),
            multihoming_customers=int(np.count_nonzero(people.second_provider != -1)),
        )
        self.market_rows.append(market_row)

        for slot, name in enumerate(market.names):
            p = market.slots[slot]
            live = p is not None and (market.status[slot] == "active" or name in market.exits)
            row = {"quarter": label, "step": market.t, "provider": name, "status": market.status[slot]}
            for m in METRICS:
                row[m] = float(values[m][slot])
                row[f"share_{m}"] = float(shares[m][slot])
            row.update(
                capability=p.capability if live else 0.0, compute_stock=p.compute if live else 0.0,
                price=p.price if live else np.nan,
                price_new=p.price_new if live else np.nan, price_renewal=p.price_renewal if live else np.nan,
                markup=p.markup if live else np.nan,
                token_factor=p.token_factor if live else np.nan,
                cash=p.cash if live else np.nan, reliability=p.reliability if live else np.nan,
                utilisation=p.utilisation if live else np.nan, capex=p.capex if live else 0.0,
                opex=p.opex if live else 0.0, internal_revenue=p.internal_revenue if live else 0.0,
                parent_funding=p.parent_funding if live else 0.0,
                training_share=p.training_share if live else np.nan, standing=p.standing if live else 0.0,
                gpus_bought=p.gpus_bought if live else 0.0,
                model_users=int(model_users[slot]),
                **{k: float(v[slot]) for k, v in extra.items()},
            )
            self.provider_rows.append(row)

        names = [NONE_LABEL, *market.names]
        src, dst = np.nonzero(market.flows)
        for i, j in zip(src, dst):
            self.flow_rows.append({"quarter": label, "step": market.t, "from": names[i], "to": names[j],
                                   "customers": int(market.flows[i, j])})

    def frames(self) -> tuple[pd.DataFrame, pd.DataFrame, pd.DataFrame]:
        providers, market = _columns(self.provider_rows), _columns(self.market_rows)
        flows = pd.DataFrame(self.flow_rows, columns=["quarter", "step", "from", "to", "customers"])
        return providers, market, flows


def _columns(rows: list[dict]) -> pd.DataFrame:
    """The same DataFrame as ``pd.DataFrame(rows)`` for rows that all have the same keys (the
    recorder's), built column by column: about a third faster."""
    if not rows:
        return pd.DataFrame()
    return pd.DataFrame({key: [row[key] for row in rows] for key in rows[0]})
