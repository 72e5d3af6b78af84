"""How many runs a sweep hands a worker at once (a batch), and which runs go together.

Runs whose configs share ``sim.batch.batch_key`` (same customers, quarters, providers and
segments; parameters and seeds may differ) can step together in one batch
(``sim.batch.run_batch``).  A run's outputs do not depend on its batch, so the batch size
changes only speed and memory, never results.

The size rule (``BatchRule.size``), for runs that each need ``run_bytes`` bytes
(``sim.batch.run_bytes``: from the customers, quarters and provider slots, the recorder's rows
included) and an engine that runs ``slots`` batches at once:

- memory: ``floor(memory_budget / slots / run_bytes)`` runs, at least 1: the batches running
  at the same time together stay within the budget (default 4 GB for the whole sweep);
- with ``batch_size = N`` (spec) or ``--batch-size N``: N runs, still within the memory cap;
  otherwise (automatic) also at most ``MAX_BATCH`` (100) runs, since the fixed cost of a quarter's
  Python step is spread over the batch and little is left to gain beyond that, and at most
  ``ceil(runs / (slots * BATCHES_PER_SLOT))`` runs, so each worker gets about four batches or more:
  the work spreads over all workers, a slow batch cannot leave the others idle for long, and the
  progress bar moves in steps of at most a quarter of a worker's share.

Batch size 1 (``--batch-size 1``) runs every run alone, as before batching (the baseline of
``benchmarks/batching.py``).
"""

from __future__ import annotations

import math
import re
from dataclasses import dataclass
from typing import Callable, Hashable, Iterable, Iterator, TypeVar

MAX_BATCH = 100
BATCHES_PER_SLOT = 4
DEFAULT_MEMORY_BUDGET = "4GB"
UNITS = {"B": 1, "KB": 10**3, "MB": 10**6, "GB": 10**9, "TB": 10**12,
         "KIB": 2**10, "MIB": 2**20, "GIB": 2**30, "TIB": 2**40}
SIZE_HELP = "a size with a unit, e.g. 4GB, 512MB or 2GiB (B, KB, MB, GB, TB, KiB, MiB, GiB, TiB)"

T = TypeVar("T")


def parse_size(text: str) -> int:
    """``"4GB"`` -> 4_000_000_000 bytes (KB/MB/GB/TB are powers of 1000, KiB/MiB/GiB/TiB of 1024;
    a bare number is bytes).  ValueError (worded for the user) if it is not a size above 0."""
    match = re.fullmatch(r"\s*([0-9]+(?:\.[0-9]*)?|\.[0-9]+)\s*([A-Za-z]*)\s*", str(text))
    unit = match.group(2).upper() if match else ""
    if not match or (unit and unit not in UNITS):
        raise ValueError(f"{text!r} is not a size; allowed: {SIZE_HELP}")
    size = float(match.group(1)) * UNITS[unit or "B"]
    if not math.isfinite(size) or size < 1:
        raise ValueError(f"{text!r} must be at least 1 byte; allowed: {SIZE_HELP}")
    return int(size)


def format_size(size: float) -> str:
    """Bytes as a short decimal size: 4.0 GB, 300 MB, 12 kB."""
    for unit, scale in (("TB", 1e12), ("GB", 1e9), ("MB", 1e6), ("kB", 1e3)):
        if size >= scale:
            value = size / scale
            return f"{value:.1f} {unit}" if value < 10 else f"{value:.0f} {unit}"
    return f"{size:.0f} B"


@dataclass(frozen=True)
class BatchRule:
    """The batch size rule of a sweep: a memory budget (bytes, for the whole sweep) and, if set,
    a fixed number of runs per batch (else the automatic rule of this module's docstring)."""

    memory_budget: int
    batch_size: int | None = None

    def size(self, run_bytes: int, *, slots: int, todo: int) -> int:
        """Runs per batch for runs of ``run_bytes`` bytes each, ``slots`` batches running at once and
        ``todo`` runs to do (>= 1)."""
        slots = max(1, slots)
        by_memory = max(1, self.memory_budget // slots // max(1, run_bytes))
        if self.batch_size is not None:
            return min(self.batch_size, by_memory)
        by_spread = max(1, math.ceil(todo / (slots * BATCHES_PER_SLOT)))
        return min(MAX_BATCH, by_memory, by_spread)

    def describe(self, run_bytes: int, *, slots: int, todo: int) -> str:
        """One line: the size, and what decided it (for the log and ``--dry-run``)."""
        size = self.size(run_bytes, slots=slots, todo=todo)
        per_slot = self.memory_budget // max(1, slots)
        why = (f"memory budget {format_size(self.memory_budget)} over {max(1, slots)} worker"
               f"{'s' if max(1, slots) != 1 else ''}: {format_size(per_slot)} each, {format_size(run_bytes)} a run")
        if self.batch_size is not None:
            asked = f"batch size {self.batch_size}" + (" (capped by memory)" if size < self.batch_size else "")
        else:
            asked = f"automatic, at most {MAX_BATCH} and about {BATCHES_PER_SLOT} batches per worker"
        if run_bytes > per_slot:
            why += "; one run needs more than a worker's share: runs go one by one"
        return f"batches of {size} run{'s' if size != 1 else ''} ({asked}; {why})"


def batches(items: Iterable[T], key: Callable[[T], Hashable], size: Callable[[Hashable], int]) -> Iterator[list[T]]:
    """Group ``items`` (in order) into lists of equal ``key``, each at most ``size(key)`` long.
    A list is handed out as soon as it is full (so a long stream is never held whole); the lists
    not yet full come out at the end, in the order their first item came.  Items whose key is None
    go alone."""
    open_: dict[Hashable, list[T]] = {}
    for item in items:
        k = key(item)
        if k is None:
            yield [item]
            continue
        group = open_.setdefault(k, [])
        group.append(item)
        if len(group) >= max(1, size(k)):
            del open_[k]
            yield group
    yield from open_.values()
