"""glibc's malloc thresholds, raised so that a large population's per-quarter temporaries reuse
memory instead of faulting fresh pages in every quarter.

A quarter allocates and frees a few temporaries of one value per customer (float64 totals'
weights, keys).  glibc returns the top of the heap to the OS when more than its trim threshold
is free there (dynamically at most 64 MiB), and serves requests above its mmap threshold (at
most 32 MiB) with fresh ``mmap`` s.  From about 3 million customers three freed temporaries pass
64 MiB, so the heap shrinks and grows again every quarter and each regrowth faults its pages in
(zeroed by the kernel): measured at 4M customers x 40 quarters (``china_2025``), 15.3-18.4 s of
CPU against 12.3-13.1 s with the thresholds below, while 1M customers take the same 2.85 s either
way: the step that made 4M cost 1.2-1.5x four times 1M.  Peak memory is unchanged (616 against
619 MiB); the freed memory simply stays in the process until it exits.

``keep_heap_for(customers)`` sets, once the population is large enough to need it, an mmap
threshold of 32 MiB (glibc's maximum) and a trim threshold of max(256 MiB, 64 bytes per customer).
glibc only (Linux); elsewhere it does nothing.  The settings are process-wide and only ever raised.

A batch of runs (sim/batch.py) needs them much earlier: its quarter's temporaries are as large as
the whole batch's population, and glibc's dynamic thresholds let its heap shrink and regrow every
quarter from about 100,000 customers in all.  Measured (china_2025, 40 quarters, CPU time of
``run_batch``, minor page faults): 5 runs x 40,000 customers 1.44 s and 190,000 faults with the
defaults, 0.88 s and 5,600 with these thresholds; 20 x 10,000 1.39 s / 193,000 against 1.14 s /
7,100; 20 x 1,000 the same either way (0.30 s).  So ``Batch`` raises them from
``FROM_BATCH_CUSTOMERS`` customers in all.
"""

from __future__ import annotations

import ctypes
import ctypes.util

M_TRIM_THRESHOLD, M_MMAP_THRESHOLD = -1, -3  # mallopt parameters (malloc.h)
MMAP_THRESHOLD = 32 * 2**20  # glibc refuses more (HEAP_MAX_SIZE / 2)
MIN_TRIM = 256 * 2**20
BYTES_PER_CUSTOMER = 64  # trim threshold per customer: eight float64 temporaries
FROM_CUSTOMERS = 2_000_000  # below this the default (dynamic) thresholds do as well
FROM_BATCH_CUSTOMERS = 100_000  # a batch's customers in all (runs x customers): see above
_trim_set = 0


def mallopt(trim: int, mmap: int = MMAP_THRESHOLD) -> bool:
    """Set glibc's trim and mmap thresholds (bytes); False where there is no glibc ``mallopt``."""
    try:
        libc = ctypes.CDLL(ctypes.util.find_library("c"))
        call = libc.mallopt
    except (OSError, AttributeError, TypeError):
        return False  # not glibc (macOS, musl): nothing to set
    ok = call(M_MMAP_THRESHOLD, int(mmap)) == 1
    ok &= call(M_TRIM_THRESHOLD, int(trim)) == 1
    return bool(ok)


def keep_heap_for(customers: int, start: int = FROM_CUSTOMERS) -> bool:
    """Raise the thresholds for a population of ``customers`` (see the module docstring), from
    ``start`` customers on (``FROM_BATCH_CUSTOMERS`` for a batch's customers in all); True if it
    changed them now, False if not needed, already high enough, or not glibc."""
    global _trim_set
    if customers < start:
        return False
    trim = max(MIN_TRIM, BYTES_PER_CUSTOMER * customers)
    if trim <= _trim_set:
        return False
    if not mallopt(trim):
        return False
    _trim_set = trim
    return True


def trim_threshold() -> int:
    """The trim threshold this module set in this process (0: none)."""
    return _trim_set
