"""Writing results: atomic files, the manifest, and the run directory layout."""

from __future__ import annotations

import json
import os
import platform
import subprocess
import tempfile
from contextlib import contextmanager
from importlib import metadata
from pathlib import Path
from typing import Any, Iterator

import pandas as pd

PACKAGES = ("aicloud-sim", "mesa", "numpy", "pandas", "pydantic", "pyarrow", "matplotlib", "SALib")


@contextmanager
def atomic_path(target: Path) -> Iterator[Path]:
    """Yields a temporary path beside ``target``; on success it replaces ``target`` at once,
    on failure it is removed, so a reader never sees a half-written file."""
    target = Path(target)
    target.parent.mkdir(parents=True, exist_ok=True)
    fd, tmp = tempfile.mkstemp(prefix=f".{target.name}.", suffix=".tmp", dir=target.parent)
    os.close(fd)
    tmp_path = Path(tmp)
    try:
        yield tmp_path
        os.chmod(tmp_path, 0o666 & ~_UMASK)  # mkstemp makes 0600; outputs are ordinary files
        os.replace(tmp_path, target)
    finally:
        tmp_path.unlink(missing_ok=True)


def _read_umask() -> int:
    mask = os.umask(0)  # the only way to read it; done once, at import, before any threads write
    os.umask(mask)
    return mask


_UMASK = _read_umask()


def write_text(target: Path, text: str) -> None:
    with atomic_path(target) as tmp:
        tmp.write_text(text, encoding="utf-8")


def write_json(target: Path, data: Any) -> None:
    write_text(target, json.dumps(data, indent=2, sort_keys=True, default=_jsonable) + "\n")


def write_parquet(target: Path, frame: pd.DataFrame) -> None:
    with atomic_path(target) as tmp:
        frame.to_parquet(tmp, index=False, engine="pyarrow")


def write_csv(target: Path, frame: pd.DataFrame) -> None:
    with atomic_path(target) as tmp:
        frame.to_csv(tmp, index=False, float_format="%.10g")


def versions() -> dict[str, str]:
    from sim import __version__

    found = {"python": platform.python_version()}
    for name in PACKAGES:
        try:
            found[name] = metadata.version(name)
        except metadata.PackageNotFoundError:
            pass
    found["aicloud-sim"] = __version__  # the code that ran (an editable install's metadata can lag)
    return found


def git_commit() -> str | None:
    from sim.resources import CLONE_ROOT, in_clone

    root = CLONE_ROOT
    if not in_clone():  # an installed wheel: a git repository around site-packages is not ours
        return None
    try:
        out = subprocess.run(["git", "rev-parse", "HEAD"], cwd=root, capture_output=True, text=True, timeout=5)
    except (OSError, subprocess.SubprocessError):
        return None
    if out.returncode != 0:
        return None
    dirty = subprocess.run(["git", "status", "--porcelain", "--untracked-files=no"], cwd=root,
                           capture_output=True, text=True, timeout=5).stdout.strip()
    return out.stdout.strip() + ("-dirty" if dirty else "")


def manifest(config, *, source: str | None = None, extra: dict | None = None) -> dict[str, Any]:
    """What is needed to reproduce an output: the resolved config, its hash, the seed and versions.
    No timestamps, so that the same config and seed give byte-identical files."""
    data = {
        "config_hash": config.hash(),
        "seed": config.run.seed,
        "config_source": source,
        "config": config.resolved(),
        "versions": versions(),
        "git_commit": git_commit(),
    }
    if extra:
        data.update(extra)
    return data


def _jsonable(value: Any) -> Any:
    if hasattr(value, "item"):
        return value.item()
    if isinstance(value, Path):
        return str(value)
    raise TypeError(f"not JSON serialisable: {type(value).__name__}")
