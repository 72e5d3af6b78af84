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

from sim.provider_table import INDEX

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


# What the recorder keeps of each provider and quarter, in the providers table's column order
# after quarter, step, provider and status: each share metric and its share, then the
# provider's state (``LIVE``: table column, and the value recorded for a provider that is not
# active and did not exit this quarter), the model users, and ``EXTRA`` (0 when not active).
LIVE = (("capability", "capability", 0.0), ("compute_stock", "compute", 0.0), ("price", "price", np.nan),
        ("price_new", "price_new", np.nan), ("price_renewal", "price_renewal", np.nan), ("markup", "markup", np.nan),
        ("token_factor", "token_factor", np.nan), ("cash", "cash", np.nan), ("reliability", "reliability", np.nan),
        ("utilisation", "utilisation", np.nan), ("capex", "capex", 0.0), ("opex", "opex", 0.0),
        ("internal_revenue", "internal_revenue", 0.0), ("parent_funding", "parent_funding", 0.0),
        ("training_share", "training_share", np.nan), ("standing", "standing", 0.0), ("gpus_bought", "gpus_bought", 0.0))
EXTRA = ("maas_revenue", "tokens_demanded", "unserved_tokens", "captive_tokens")
PROVIDER_FLOATS = (*(name for m in METRICS for name in (m, f"share_{m}")), *(name for name, _, _ in LIVE), *EXTRA)
PROVIDER_COLUMNS = ("quarter", "step", "provider", "status", *PROVIDER_FLOATS[:-len(EXTRA)], "model_users", *EXTRA)
MARKET_FLOATS = (*(f"{k}_{m}" for m in METRICS for k in ("hhi", "cr3", "cr5")), "churn", "frontier", "open_capability",
                 "total_revenue", "total_tokens", "total_cloud_revenue", "total_ai_cloud_revenue", "total_maas_tokens",
                 "maas_tokens_trillion", "total_tokens_demanded", "total_unserved_tokens", "total_captive_tokens")
MARKET_INTS = ("adopted", "new_adopters", "active_providers", "entries", "exits", "total_model_users",
               "multihoming_customers")
MARKET_COLUMNS = ("quarter", "step", *MARKET_FLOATS[:len(METRICS) * 3 + 1], *MARKET_INTS[:5], "entered", "exited",
                  *MARKET_FLOATS[len(METRICS) * 3 + 1:], *MARKET_INTS[5:])
FLOW_COLUMNS = ("quarter", "step", "from", "to", "customers")
# Status codes 0, 1, 2, 3: pending, active, exited, and exited at the end of this quarter (it served the
# quarter: it counts in the quarter's shares).  Odd codes are the providers that count (``live``).
STATUS = np.array(["pending", "active", "exited", "exited"], dtype=object)
_PF = {name: i for i, name in enumerate(PROVIDER_FLOATS)}
_MF = {name: i for i, name in enumerate(MARKET_FLOATS)}
_MI = {name: i for i, name in enumerate(MARKET_INTS)}
# How BatchRecorder.record builds its (runs, METRICS then EXTRA, slots) block from the table: rows
# copied from a column, and rows that are the price times GPUs billed (US$ million).
_COPIED = {"revenue": "revenue", "compute": "customer_compute", "tokens": "tokens", "customers": "customers",
           "maas_tokens": "tokens", "tokens_demanded": "tokens_demanded", "unserved_tokens": "unserved_tokens",
           "captive_tokens": "captive_tokens_quarter"}
_BLOCK = (*METRICS, *EXTRA)
_BILLED = ("billed_compute_gpu", "billed_ai_gpu", "billed_token_gpu")
# The table columns a record keeps as they are until _finish, in the provider floats of METRICS and
# EXTRA (which _finish then overwrites with the metrics): as many columns as places.
_RAW = (*dict.fromkeys(_COPIED.values()), *_BILLED, "price")
_RAW_COLUMNS = np.array([INDEX[col] for col in _RAW])
_RAW_AT = np.array([_PF[name] for name in (*METRICS, *EXTRA)])
assert len(_RAW) == len(_RAW_AT)
_COPIED_ROWS = np.array([_BLOCK.index(name) for name in _COPIED])
_COPIED_RAW = np.array([_RAW.index(col) for col in _COPIED.values()])
_BILLED_ROWS = np.array([_BLOCK.index(name) for name in ("cloud_revenue", "ai_cloud_revenue", "maas_revenue")])
_BILLED_RAW = np.array([_RAW.index(col) for col in _BILLED])
_PRICE_RAW = _RAW.index("price")
_LIVE_COLUMNS = np.array([INDEX[col] for _, col, _ in LIVE])
_LIVE_AT = np.arange(2 * len(METRICS), 2 * len(METRICS) + len(LIVE))
_LIVE_FILL = np.array([fill for _, _, fill in LIVE])
_MF_SCALARS = np.array([_MF[name] for name in ("churn", "frontier", "open_capability")])
_TOTALS = {"total_revenue": "revenue", "total_tokens": "tokens", "total_cloud_revenue": "cloud_revenue",
           "total_ai_cloud_revenue": "ai_cloud_revenue", "total_maas_tokens": "maas_tokens",
           "total_tokens_demanded": "tokens_demanded", "total_unserved_tokens": "unserved_tokens",
           "total_captive_tokens": "captive_tokens"}
_MF_TOTALS = np.array([_MF[name] for name in _TOTALS])
_TOTALS_OF = np.array([_BLOCK.index(row) for row in _TOTALS.values()])
_MI_SCALARS = np.array([_MI[name] for name in ("new_adopters", "entries", "exits")])


# Customers from which a run alone counts its model users slot by slot (np.count_nonzero of one
# compare per slot: ~0.09 ms per slot at 1M) rather than by a bincount (1.45 ms at 1M: it casts
# every int16 to intp and finds the range first; at 1,000 customers it is the cheaper of the two).
COUNT_BY_SLOT_FROM = 50_000


def _count_per_run(flags: np.ndarray, runs: int) -> list[int]:
    """True flags of each run's customers (``flags``: the runs' customers end to end): one
    count_nonzero per run, which counts bytes far faster than a count along an axis."""
    return [np.count_nonzero(part) for part in flags.reshape(runs, -1)]


class BatchRecorder:
    """The recorder of a batch (``sim.batch.Batch``): each quarter, every run's provider rows,
    market row and switching flows at once, from the provider table and the joined customers,
    into arrays indexed (record, run, ...); each run's tables are built from its part at the end
    (``Recorder``, ``market.recorder``).  A few numbers per provider and quarter, never per customer.
    A quarter's record keeps the table's numbers the metrics are made of; the values, shares,
    totals and concentration of every record not yet worked out are worked out together when
    something reads them (``columns``, ``latest``: ``_finish``), with the same operations.

    Shares are taken over the providers active in the quarter plus those that exited at its end
    (they still served it).  Sums over providers are numpy's sums along the slots of each run,
    which add the same numbers in the same order as a sum over one run's slots: a run's tables do
    not depend on its batch (tests/test_batch.py).
    """

    def __init__(self, batch):
        self.batch = batch
        self.names = np.array(batch.markets[0].names, dtype=object)
        self.count = 0  # records made
        self.finished = 0  # records whose metrics are worked out (_finish)
        self._alloc(max(batch.markets[0].config.run.quarters, 1))
        # Slots that have held a provider (an exited provider's status is "exited", a slot never filled "pending").
        self.filled = batch.active.copy()
        self.slot_of = {name: s for s, name in enumerate(self.names)}
        self.last = np.zeros(batch.size, dtype=np.intp)  # each run's latest record

    def _alloc(self, capacity: int) -> None:
        runs, slots = self.batch.size, self.batch.n_slots
        old = self.__dict__.get("prov")
        arrays = {
            "recorded": np.zeros((capacity, runs), dtype=bool),
            "steps": np.zeros(capacity, dtype=np.int64),
            "labels": np.empty(capacity, dtype=object),
            "prov": np.zeros((capacity, runs, slots, len(PROVIDER_FLOATS))),
            "model_users": np.zeros((capacity, runs, slots), dtype=np.int64),
            "status": np.zeros((capacity, runs, slots), dtype=np.int8),
            "mfloat": np.zeros((capacity, runs, len(MARKET_FLOATS))),
            "mint": np.zeros((capacity, runs, len(MARKET_INTS)), dtype=np.int64),
            "entered": np.full((capacity, runs), "", dtype=object),
            "exited": np.full((capacity, runs), "", dtype=object),
            "flows": np.zeros((capacity, runs, slots + 1, slots + 1), dtype=np.int64),
        }
        for name, array in arrays.items():
            if old is not None:
                array[:self.count] = getattr(self, name)[:self.count]
            setattr(self, name, array)
        self.capacity = capacity

    def record(self, run: int | None = None) -> None:
        """Record the current quarter of every run (``run`` None, as ``Batch.quarter`` does) or of one run."""
        batch = self.batch
        if self.count == self.capacity:
            self._alloc(2 * self.capacity)
        i = self.count
        self.count += 1
        first, k = (0, batch.size) if run is None else (run, 1)  # runs first .. first + k - 1
        rows = slice(first, first + k)
        markets = batch.markets[rows]
        n_slots = batch.n_slots
        self.recorded[i, rows] = True
        self.last[rows] = i
        self.steps[i] = markets[0].t
        self.labels[i] = markets[0].quarter_label

        data = batch.table.data[rows]  # (k, slots, columns)
        active = batch.active[rows]
        # A provider that exits at the end of this quarter still served it: it counts in this quarter's shares.
        live = active
        for j, m in enumerate(markets):  # entries and exits are rare: the runs that have them
            if m.exits:
                live = live.copy() if live is active else live
                live[j, [self.slot_of[name] for name in m.exits]] = True
                self.exited[i, first + j] = "|".join(m.exits)
            if m.entries:
                self.entered[i, first + j] = "|".join(m.entries)
        self.filled[rows] |= live  # an exited provider's slot stays filled ("exited", not "pending")
        status = self.status[i, rows]
        status[...] = np.where(active, 1, np.where(self.filled[rows], 2, 0))
        if live is not active:
            status += live & ~active  # exited at the end of this quarter: 3
        # The table's numbers the metrics are made of, as they are (``_finish`` masks them and works
        # out values, shares and totals of all records not yet finished at once, when read).
        prov = self.prov[i, rows]
        prov[:, :, _RAW_AT] = data[:, :, _RAW_COLUMNS]
        prov[:, :, _LIVE_AT] = np.where(live[:, :, None], data[:, :, _LIVE_COLUMNS], _LIVE_FILL)

        people = batch.customers
        if batch.size > 1:
            key = batch.bin_key(people.model_provider)  # run * (slots + 1) + model provider + 1, narrow ints
            counts = np.bincount(key, minlength=batch.size * (n_slots + 1)).reshape(batch.size, n_slots + 1)[rows, 1:]
        elif batch.n >= COUNT_BY_SLOT_FROM:  # a large run alone: one compare per slot beats a bincount's cast
            counts = np.array([[np.count_nonzero(people.model_provider == s) for s in range(n_slots)]])
        else:
            counts = np.bincount(people.model_provider + 1, minlength=n_slots + 1)[None, 1:]  # none at bin 0
        self.model_users[i, rows] = counts

        self.mfloat[i, rows][:, _MF_SCALARS] = [[m.churn, m.frontier, m.open_capability] for m in markets]
        customers = slice(first * batch.n, (first + k) * batch.n)  # the customers of these runs
        mi = self.mint[i, rows]
        mi[:, _MI["adopted"]] = _count_per_run(people.adopted[customers], k)
        mi[:, _MI_SCALARS] = [[m.new_adopters, len(m.entries), len(m.exits)] for m in markets]
        mi[:, _MI["active_providers"]] = active.sum(axis=1)
        mi[:, _MI["total_model_users"]] = counts.sum(axis=1)
        mi[:, _MI["multihoming_customers"]] = _count_per_run(people.second_provider[customers] != -1, k)
        self.flows[i, rows] = [m.flows for m in markets]

    def _finish(self) -> None:
        """Work out the metrics of the records not yet finished, all at once: each metric's value per
        slot (0 where the provider does not count), its share, the market's totals, HHI, CR3 and
        CR5.  The same operations on the same numbers as one record at a time: elementwise, and
        sums over each run's slots (a contiguous axis, as values.sum() of one run)."""
        q = slice(self.finished, self.count)
        if q.start >= q.stop:
            return
        self.finished = self.count
        prov, status = self.prov[q], self.status[q]  # (records, runs, slots, ...)
        raw = prov[..., _RAW_AT].transpose(0, 1, 3, 2)  # (records, runs, raw columns, slots)
        shape = raw.shape[:2]
        # (records, runs, METRICS then EXTRA, slots)
        block = np.empty((*shape, len(METRICS) + len(EXTRA), raw.shape[-1]))
        block[:, :, _COPIED_ROWS] = raw[:, :, _COPIED_RAW]
        with np.errstate(all="ignore"):  # a non-live slot's row may hold anything; it is masked out
            billed = raw[:, :, _BILLED_RAW]  # (records, runs, 3, slots): compute, AI, token GPUs
            billed[:, :, 1] += billed[:, :, 2]  # AI cloud: compute of model users plus tokens
            billed *= raw[:, :, _PRICE_RAW, None, :]
            billed /= MILLION
        block[:, :, _BILLED_ROWS] = billed  # cloud revenue, AI-cloud revenue, MaaS revenue
        np.copyto(block, 0.0, where=(status[:, :, None, :] & 1) == 0)
        totals = block.sum(axis=-1)  # (records, runs, metrics + extra): each run's sum over its slots
        values, totals_m = block[:, :, :len(METRICS)], totals[:, :, :len(METRICS), None]
        # shares_of for each run and metric: values / total where the total is positive, else 0
        positive = totals_m > 0
        shares = np.where(positive, values / np.where(positive, totals_m, 1.0), 0.0)
        prov[..., 0:2 * len(METRICS):2] = values.transpose(0, 1, 3, 2)
        prov[..., 1:2 * len(METRICS):2] = shares.transpose(0, 1, 3, 2)
        prov[..., -len(EXTRA):] = block[:, :, len(METRICS):].transpose(0, 1, 3, 2)
        mf = self.mfloat[q]
        hhis, cr3, cr5 = concentration(shares.reshape(-1, shares.shape[-1]))
        mf[..., 0:3 * len(METRICS):3] = hhis.reshape(*shape, len(METRICS))
        mf[..., 1:3 * len(METRICS):3] = cr3.reshape(*shape, len(METRICS))
        mf[..., 2:3 * len(METRICS):3] = cr5.reshape(*shape, len(METRICS))
        mf[..., _MF_TOTALS] = totals[..., _TOTALS_OF]
        token_unit = self.batch.param("models.token_unit")
        mf[..., _MF["maas_tokens_trillion"]] = totals[..., METRICS.index("maas_tokens")] * token_unit / 1e12

    # ------------------------------------------------------------ one run's tables
    def columns(self, run: int) -> tuple[dict, dict, dict]:
        """Run ``run``'s providers, market and flows tables as {column: array}, in column order."""
        self._finish()
        q = np.flatnonzero(self.recorded[:self.count, run])
        if not q.size:
            return {}, {}, {}
        slots = self.batch.n_slots
        labels, steps = self.labels[q], self.steps[q]
        prov = self.prov[q, run]
        providers = {"quarter": np.repeat(labels, slots), "step": np.repeat(steps, slots),
                     "provider": np.tile(self.names, q.size), "status": STATUS[self.status[q, run]].ravel()}
        for name in PROVIDER_COLUMNS[4:]:
            providers[name] = self.model_users[q, run].ravel() if name == "model_users" else prov[:, :, _PF[name]].ravel()
        market = {"quarter": labels, "step": steps}
        for name in MARKET_COLUMNS[2:]:
            if name in _MF:
                market[name] = self.mfloat[q, run, _MF[name]]
            elif name in _MI:
                market[name] = self.mint[q, run, _MI[name]]
            else:
                market[name] = getattr(self, name)[q, run]
        flows = self.flows[q, run]
        at, src, dst = np.nonzero(flows)
        names = np.concatenate([[NONE_LABEL], self.names])  # object, as self.names
        flow_columns = {"quarter": labels[at], "step": steps[at], "from": names[src], "to": names[dst],
                        "customers": flows[at, src, dst]}
        return providers, market, flow_columns

    def latest(self, run: int, column: str, slot: int | None = None, record: int | None = None):
        """One value of run ``run``'s latest record (or of record ``record``): a market column, or a
        provider column of ``slot``."""
        self._finish()
        i = self.last[run] if record is None else record
        if slot is None:
            if column in _MF:
                return float(self.mfloat[i, run, _MF[column]])
            if column in _MI:
                return int(self.mint[i, run, _MI[column]])
            if column == "quarter":
                return self.labels[i]
            if column == "step":
                return int(self.steps[i])
            return getattr(self, column)[i, run]  # entered, exited
        if column in _PF:
            return float(self.prov[i, run, slot, _PF[column]])
        return {"model_users": lambda: int(self.model_users[i, run, slot]), "quarter": lambda: self.labels[i],
                "step": lambda: int(self.steps[i]), "provider": lambda: self.names[slot],
                "status": lambda: STATUS[self.status[i, run, slot]]}[column]()


class Recorder:
    """One run's recorder (``market.recorder``): a view of its batch's ``BatchRecorder``.

    ``frames()`` gives the run's providers, market and flows DataFrames; ``provider_rows``,
    ``market_rows`` and ``flow_rows`` the same as lists of row dicts; ``tables()`` the providers
    and market tables as Arrow tables (for sweep workers).  ``record(market)`` records this
    run's current quarter on its own (the batch records all its runs at once).
    """

    def __init__(self, batch_recorder: BatchRecorder, run: int):
        self.batch_recorder, self.run = batch_recorder, run

    def record(self, market=None) -> None:
        self.batch_recorder.record(self.run)

    def latest(self, column: str, slot: int | None = None):
        """A value of the latest record: a market column, or a provider column of ``slot``."""
        return self.batch_recorder.latest(self.run, column, slot)

    def at(self, record: int, column: str, slot: int | None = None):
        """A value of the batch's record ``record`` (an index, ``BatchRecorder.last``) for this run."""
        return self.batch_recorder.latest(self.run, column, slot, record=record)

    def frames(self) -> tuple[pd.DataFrame, pd.DataFrame, pd.DataFrame]:
        providers, market, flows = self.batch_recorder.columns(self.run)
        if len(flows.get("step", ())):
            flows_frame = pd.DataFrame(flows)
        else:  # nobody moved (or nothing recorded): the columns all the same
            flows_frame = pd.DataFrame(columns=list(FLOW_COLUMNS))
        return pd.DataFrame(providers), pd.DataFrame(market), flows_frame

    def tables(self) -> dict:
        """The providers and market tables as ``pyarrow.Table``s (what ``pa.Table.from_pylist`` of the rows gives)."""
        import pyarrow as pa

        providers, market, _ = self.batch_recorder.columns(self.run)
        return {"providers": pa.table(providers), "market": pa.table(market)}

    @property
    def provider_rows(self) -> list[dict]:
        return _rows(self.batch_recorder.columns(self.run)[0])

    @property
    def market_rows(self) -> list[dict]:
        return _rows(self.batch_recorder.columns(self.run)[1])

    @property
    def flow_rows(self) -> list[dict]:
        return _rows(self.batch_recorder.columns(self.run)[2])


def _rows(columns: dict) -> list[dict]:
    if not columns:
        return []
    names = list(columns)
    return [dict(zip(names, values)) for values in zip(*(columns[name].tolist() for name in names))]
