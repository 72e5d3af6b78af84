"""Seeds: every run's seed derives from the master seed with numpy's SeedSequence.

The seed of a run depends only on (master seed, design index, replicate), never
on which worker ran it or when it finished; adding replicates or design points
later leaves the existing runs' seeds unchanged.  With common random numbers,
replicate r gets the same seed at every design point (variance reduction when
comparing points).
"""

from __future__ import annotations

import numpy as np

# spawn_key prefixes keep the three streams apart.
_RUN, _COMMON, _DESIGN = 0, 1, 2


def run_seed(master: int, design_index: int, replicate: int, *, common: bool = False) -> int:
    """A 63-bit seed (what ``run.seed`` accepts) for one run."""
    key = (_COMMON, replicate) if common else (_RUN, design_index, replicate)
    state = np.random.SeedSequence(master, spawn_key=key).generate_state(1, dtype=np.uint64)[0]
    return int(state >> np.uint64(1))


def design_seed(master: int) -> int:
    """Seed for the design's own sampling (random, Latin hypercube, Sobol', Morris)."""
    state = np.random.SeedSequence(master, spawn_key=(_DESIGN,)).generate_state(1, dtype=np.uint32)[0]
    return int(state)
