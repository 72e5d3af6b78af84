"""Writing results: atomic files, the manifest, and the run directory layout."""

from __future__ import annotations

import errno
import json
import math
import os
import platform
import subprocess
import tempfile
from contextlib import contextmanager
from importlib import metadata
from pathlib import Path
from typing import Any, Iterator

import pandas as pd

from sim.errors import OutputError

__all__ = ["OutputError", "atomic_path", "output_dir", "write_text", "write_json", "write_parquet", "write_csv",
           "manifest", "versions", "git_commit", "dumps", "json_records"]

# Errors of writing a file (rather than of reading one): disk full, quota, read-only file system, too large, I/O.
WRITE_ERRNOS = {errno.ENOSPC, errno.EDQUOT, errno.EROFS, errno.EFBIG, errno.EIO}

PACKAGES = ("aicloud-sim", "mesa", "numpy", "pandas", "pydantic", "pyarrow", "matplotlib", "SALib")


def output_dir(path: Path, what: str = "--out") -> Path:
    """Check, before any work is done, that ``path`` can be an output directory: it is a directory
    or can be made one, and a file can be written in it.  Nothing is created (a run that fails
    later leaves no empty directory behind).  Raises ``OutputError`` naming the path and the reason."""
    path = Path(path)
    if path.exists() and not path.is_dir():
        raise OutputError(f"{what} {path}: is a file, not a directory; choose a directory")
    existing = path
    while not existing.exists():
        if existing.parent == existing:
            break
        existing = existing.parent
    if not existing.is_dir():
        raise OutputError(f"{what} {path}: {existing} is a file, so no directory can be made below it")
    try:
        fd, probe = tempfile.mkstemp(prefix=".aicloud-write-test.", dir=existing)
        os.close(fd)
        os.unlink(probe)
    except OSError as exc:
        raise OutputError(f"{what} {path}: cannot write in {existing}: {exc.strerror or exc}") from None
    return path


@contextmanager
def atomic_path(target: Path) -> Iterator[Path]:
    """Yields a temporary path beside ``target``; on success it replaces ``target`` at once,
    on failure it is removed, so a reader never sees a half-written file.  A directory that
    cannot be made or written raises ``OutputError`` naming the path."""
    target = Path(target)
    try:
        target.parent.mkdir(parents=True, exist_ok=True)
        fd, tmp = tempfile.mkstemp(prefix=f".{target.name}.", suffix=".tmp", dir=target.parent)
    except OSError as exc:
        raise OutputError(_why(target, exc)) from None
    os.close(fd)
    tmp_path = Path(tmp)
    try:
        try:
            yield tmp_path
        except OSError as exc:
            # Writing the file itself failed (a full or read-only disk): an output problem.  An error
            # about another file (reading an input inside the block) is not, and passes through.
            if exc.filename not in (str(tmp_path), tmp_path) and exc.errno not in WRITE_ERRNOS:
                raise
            raise OutputError(_why(target, exc)) from None
        try:
            os.chmod(tmp_path, 0o666 & ~_UMASK)  # mkstemp makes 0600; outputs are ordinary files
            os.replace(tmp_path, target)
        except OSError as exc:
            raise OutputError(_why(target, exc)) from None
    finally:
        tmp_path.unlink(missing_ok=True)


def _why(target: Path, exc: OSError) -> str:
    if isinstance(exc, (FileExistsError, NotADirectoryError)):
        blocker = next((p for p in [target.parent, *target.parent.parents] if p.exists() and not p.is_dir()), None)
        if blocker is not None:
            return f"cannot write {target}: {blocker} is a file, not a directory"
    return f"cannot write {target}: {exc.strerror or exc}"


def _read_umask() -> int:
    mask = os.umask(0)  # the only way to read it; done once, at import, before any threads write
    os.umask(mask)
    return mask


_UMASK = _read_umask()


def write_text(target: Path, text: str) -> None:
    with atomic_path(target) as tmp:
        tmp.write_text(text, encoding="utf-8")


def dumps(data: Any, **kw: Any) -> str:
    """Strict JSON (RFC 8259): NaN and infinities are refused, never written as ``NaN``/``Infinity``,
    which strict readers reject.  Raises ``ValueError`` naming the first non-finite entry."""
    try:
        return json.dumps(data, allow_nan=False, default=_jsonable, **kw)
    except ValueError:
        raise ValueError(f"not strict JSON: non-finite number at {_first_non_finite(data) or '?'}") from None


def json_records(frame: pd.DataFrame) -> list[dict[str, Any]]:
    """A table's rows as JSON-ready dicts; a missing value (NaN) becomes null, as strict JSON needs."""
    return frame.astype(object).where(frame.notna(), None).to_dict(orient="records")


def write_json(target: Path, data: Any) -> None:
    write_text(target, dumps(data, indent=2, sort_keys=True) + "\n")


def _first_non_finite(data: Any, path: str = "") -> str | None:
    if isinstance(data, float) and not math.isfinite(data):
        return path or "(top level)"
    if isinstance(data, dict):
        for k, v in data.items():
            found = _first_non_finite(v, f"{path}.{k}" if path else str(k))
            if found:
                return found
    if isinstance(data, (list, tuple)):
        for i, v in enumerate(data):
            found = _first_non_finite(v, f"{path}[{i}]")
            if found:
                return found
    if hasattr(data, "item") and not isinstance(data, (dict, list, tuple)):
        try:
            return _first_non_finite(data.item(), path)
        except (TypeError, ValueError):
            return None
    return None


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
    start_from = getattr(getattr(config, "run", None), "start_from", None)
    if start_from:  # the config names the snapshot; its content is pinned here
        from sim.snapshot import file_sha256, resolve

        path = resolve(start_from)
        data["start_from"] = {"file": start_from, "sha256": file_sha256(path) if path.is_file() else None}
    if extra:
        data.update(extra)
    return data


def _jsonable(value: Any) -> Any:
    if hasattr(value, "item"):
        return value.item()
    if isinstance(value, Path):
        return str(value)
    raise TypeError(f"not JSON serialisable: {type(value).__name__}")
