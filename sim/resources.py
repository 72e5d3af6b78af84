"""Where the presets, experiment specs and observed data are read from.

In a clone (or an editable install) they are the repository's ``configs/``,
``experiments/`` and ``data/`` folders: the files users edit, and the only
copy.  A built wheel carries the same files as package data
(``sim/_shipped/<folder>/``, mapped in pyproject.toml at build time), read
with ``importlib.resources`` when no clone is around.
"""

from __future__ import annotations

from importlib import resources
from pathlib import Path
from typing import Literal

Folder = Literal["configs", "experiments", "data"]
CLONE_ROOT = Path(__file__).resolve().parent.parent


def in_clone() -> bool:
    """True when the package runs from a source tree (its pyproject.toml sits beside ``sim/``)."""
    return (CLONE_ROOT / "pyproject.toml").is_file()


def folder(name: Folder) -> Path:
    """The folder of presets (``configs``), experiment specs (``experiments``) or observed data (``data``)."""
    clone = CLONE_ROOT / name
    if in_clone() and clone.is_dir():
        return clone
    # A wheel is installed as plain files, so the traversable is a real directory.
    return Path(str(resources.files("sim") / "_shipped" / name))
