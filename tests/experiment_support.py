"""Helpers for the experiment tests: tiny specs on the minimal preset."""

from __future__ import annotations

import os
import textwrap
from pathlib import Path

TINY_FIXED = """
[fixed]
run.customers = 150
run.quarters = 6
"""


def write_spec(directory: Path, body: str, name: str = "spec", fixed: str = TINY_FIXED) -> Path:
    """A spec file with ``base = "minimal"`` (unless the body names a base) and tiny fixed sizes."""
    text = textwrap.dedent(body)
    if "base =" not in text:
        text = 'base = "minimal"\n' + text
    path = Path(directory) / f"{name}.toml"
    path.write_text(text + fixed)
    return path


# A sweep slow enough (40 runs of 1,500 customers x 16 quarters) to be interrupted or killed midway.
SLOW_ENOUGH = """
replicates = 4
seed = 3

[params.flywheel]
key = "capability.flywheel"
low = 0.0
high = 2.0
num = 10
"""
SLOW_FIXED = "[fixed]\nrun.customers = 1500\nrun.quarters = 16\n"


GRID = """
replicates = 2
seed = 11

[params.lock]
key = "providers.*.lock_in"
mode = "scale"
values = [0.5, 2.0]

[params.flywheel]
key = "capability.flywheel"
low = 0.0
high = 2.0
num = 3
"""


def process_group(pgid: int) -> list[tuple[int, int]]:
    """(pid, parent pid) of the live (not zombie) processes of process group ``pgid``, from /proc."""
    found = []
    for entry in os.listdir("/proc"):
        if not entry.isdigit():
            continue
        try:
            stat = Path(f"/proc/{entry}/stat").read_text()
        except OSError:
            continue
        state, ppid, group = stat.rsplit(")", 1)[1].split()[:3]
        if int(group) == pgid and state != "Z":
            found.append((int(entry), int(ppid)))
    return found
