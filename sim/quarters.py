"""Quarter labels such as ``2025Q1`` and their conversion to step indices."""

from __future__ import annotations

import functools
import re

_LABEL = re.compile(r"^(\d{4})Q([1-4])$")
QUARTER_PATTERN = _LABEL.pattern


@functools.lru_cache(maxsize=1024)  # pure; called every quarter (labels, open-weights release)
def parse(label: str) -> int:
    """Absolute quarter number (year * 4 + quarter - 1) of a label like ``2025Q1``."""
    match = _LABEL.match(label)
    if not match:
        raise ValueError(f"{label!r} is not a quarter label like 2025Q1")
    return int(match.group(1)) * 4 + int(match.group(2)) - 1


def label(absolute: int) -> str:
    year, q = divmod(absolute, 4)
    return f"{year}Q{q + 1}"


def offset(start: str, ref: str | int) -> int:
    """Steps from ``start`` to ``ref``; ``ref`` is a label or already an offset."""
    if isinstance(ref, int):
        return ref
    return parse(ref) - parse(start)


def labels(start: str, n: int) -> list[str]:
    first = parse(start)
    return [label(first + i) for i in range(n)]
