"""Provider state as one table for a batch of runs: ``(runs, slots, columns)`` float64.

A submodel vectorised over runs reads and writes whole columns (``table.price`` is a
``(runs, slots)`` view); a ``Provider`` agent is a view of one run's row for one slot: its
attributes named in ``COLUMNS`` read and write that row (``Column``), so a user who steps a
``Market`` and inspects ``market.slots[0].price`` sees the table's value, and code written
per provider keeps working unchanged.

Whole numbers and flags are stored as float64 too (exact below 2**53) and read back as
``int`` and ``bool``; a float column reads back as a Python ``float`` (exact).  A slot whose
provider has not entered yet, or has exited, keeps the row it had (zeros before entry).
"""

from __future__ import annotations

import numpy as np

# name -> type it is read back as, in the order the guard reports them (sim.guard).
COLUMNS: dict[str, type] = {
    "has_model": bool,
    "own_capability": float, "capability": float, "knowledge": float, "synergy": float,
    "compute": float, "training_share": float, "base_training_share": float, "own_chip_share": float,
    "lock_in": float, "cash": float, "capex_share": float,
    "captive_compute": float, "captive_growth": float, "captive_tokens": float, "reliability": float,
    "committed_start": int, "committed_quarters": int, "committed_per_quarter": float,
    "price": float, "list_price": float, "price_new": float, "price_renewal": float, "markup": float,
    "token_factor": float, "distress_quarters": int, "standing": float,
    "revenue": float, "internal_revenue": float, "opex": float, "capex": float, "parent_funding": float,
    "captive_served": float, "served_share": float, "customer_served_share": float, "apps_served_share": float,
    "capacity_unfunded": bool,
    "demand_gpu": float, "planned_gpu": float, "served_gpu": float, "billed_gpu": float, "utilisation": float,
    "customer_compute": float, "tokens": float, "tokens_demanded": float, "unserved_tokens": float,
    "captive_tokens_quarter": float,
    "billed_compute_gpu": float, "billed_token_gpu": float, "billed_ai_gpu": float,
    "customers": int, "model_users": int, "gpus_bought": float,
}
INDEX = {name: i for i, name in enumerate(COLUMNS)}
# Columns whose values are real numbers (not whole numbers or flags): the guard checks these are finite.
FLOAT_COLUMNS = tuple(name for name, kind in COLUMNS.items() if kind is float)


class ProviderTable:
    """Every provider column of a batch: ``data`` has shape (runs, slots, len(COLUMNS)), float64.

    ``table.NAME`` (NAME in ``COLUMNS``) is the ``(runs, slots)`` view of that column: write
    into it (``table.price[...] = x``, ``table.cash[r, s] -= y``), never rebind it.
    """

    def __init__(self, runs: int, slots: int, segments: int = 0, lags=None):
        self.runs, self.slots = runs, slots
        self.data = np.zeros((runs, slots, len(COLUMNS)))
        # (runs, slots, segments): each provider's fit with each customer segment (utils); a
        # Provider's ``affinity`` is a view of its (segments,) row.
        self.affinity = np.zeros((runs, slots, segments))
        # (runs, slots) bool: the slot's provider is active (Market.enter and Market.retire set it;
        # Batch.active and each Market's status read it).
        object.__setattr__(self, "active", np.zeros((runs, slots), dtype=bool))
        for name, i in INDEX.items():
            object.__setattr__(self, name, self.data[:, :, i])
        # GPUs on order (sim.submodels.finance): run r's last lags[r] entries of its rows, oldest
        # first (runs may differ in finance.capex_lag); the entries before them stay 0.
        self.lags = np.zeros(runs, dtype=np.intp) if lags is None else np.asarray(lags, dtype=np.intp)
        self.pipeline = np.zeros((runs, slots, int(self.lags.max(initial=0))))

    def __setattr__(self, name: str, value) -> None:
        if name in INDEX or name == "active":
            raise AttributeError(f"ProviderTable.{name} is a view of the table: write into it "
                                 f"(table.{name}[...] = values), do not rebind it")
        object.__setattr__(self, name, value)

    def row(self, run: int, slot: int) -> np.ndarray:
        """The columns of one provider of one run: a (len(COLUMNS),) view."""
        return self.data[run, slot]


class Column:
    """A ``Provider`` attribute stored in the provider's row of the table (``obj._row``)."""

    __slots__ = ("index", "kind")

    def __init__(self, name: str):
        self.index = INDEX[name]
        kind = COLUMNS[name]
        self.kind = None if kind is float else kind  # a float reads back as numpy's float64 (see below)

    def __get__(self, obj, owner=None):
        if obj is None:
            return self
        value = obj._row[self.index]
        return value if self.kind is None else self.kind(value)

    def __set__(self, obj, value) -> None:
        obj._row[self.index] = value


def columns_of(cls: type) -> type:
    """Class decorator: every name of ``COLUMNS`` becomes a ``Column`` of ``cls``."""
    for name in COLUMNS:
        setattr(cls, name, Column(name))
    return cls
