"""Sweep results on disk, streamed as runs finish.

    OUT/sweep.json                    manifest: spec, base config, hashes, versions (written first)
    OUT/design.parquet                one row per design point
    OUT/runs.jsonl                    journal: one line per finished run, appended as it finishes
    OUT/runs.parquet                  the runs table, rewritten atomically at the end of a sweep
    OUT/parts/providers/run-N.parquet per-quarter provider rows of run N (written atomically)
    OUT/parts/market/run-N.parquet    per-quarter market rows of run N
    OUT/replication.parquet           with a replicate rule: per design point, the replicates planned so
                                      far, the headline outcome's 95 % interval and whether its width
                                      was reached (rewritten after each block)

A run counts as done when the journal's last line for it says ``ok`` and its
part files exist; a part is written before its journal line, so a crash at any
moment leaves at worst an orphan part that a resumed sweep overwrites.  Each
journal line is one ``write`` on a file opened for appending, and a torn last
line (a kill mid-write) is skipped when reading and ended with a newline before a
resumed sweep appends to it.  Nothing here holds more than
one run's rows at a time while a sweep runs.
"""

from __future__ import annotations

import json
import os
import signal
import threading
from contextlib import contextmanager
from pathlib import Path
from typing import Any, Iterable

import pandas as pd
import pyarrow as pa
import pyarrow.dataset as ds
import pyarrow.parquet as pq

from sim.experiment.seeds import run_seed
from sim.output import atomic_path, write_json, write_parquet

TABLES = ("providers", "market")
RUN_COLUMNS = ["run_id", "design_index", "replicate", "seed", "status", "error", "wall_time", "worker"]


class Store:
    def __init__(self, root: str | Path):
        self.root = Path(root)
        self.manifest_path = self.root / "sweep.json"
        self.design_path = self.root / "design.parquet"
        self.journal_path = self.root / "runs.jsonl"
        self.runs_path = self.root / "runs.parquet"
        self.replication_path = self.root / "replication.parquet"
        self._fd: int | None = None

    # ------------------------------------------------------------ creating
    def exists(self) -> bool:
        return self.manifest_path.is_file()

    def create(self, manifest: dict[str, Any], design: pd.DataFrame) -> None:
        for table in TABLES:
            (self.root / "parts" / table).mkdir(parents=True, exist_ok=True)
        write_parquet(self.design_path, design)
        write_json(self.manifest_path, manifest)

    def write_replication(self, table: pd.DataFrame) -> None:
        """Per design point: replicates planned so far (and the rule's state), written atomically."""
        write_parquet(self.replication_path, table)

    def replication(self) -> pd.DataFrame | None:
        """The replicate rule's table (design_index, planned, ...), or None for a fixed number of replicates."""
        return pd.read_parquet(self.replication_path) if self.replication_path.is_file() else None

    def manifest(self) -> dict[str, Any]:
        if not self.exists():
            raise FileNotFoundError(f"{self.root}: no sweep results here (sweep.json is missing)")
        return json.loads(self.manifest_path.read_text())

    def design(self) -> pd.DataFrame:
        return pd.read_parquet(self.design_path)

    # ------------------------------------------------------------- writing
    def part_path(self, table: str, run_id: int) -> Path:
        return self.root / "parts" / table / f"run-{run_id:07d}.parquet"

    def write_parts(self, run_id: int, tables: dict[str, pa.Table | pd.DataFrame]) -> None:
        for name in TABLES:
            data = tables[name]
            if isinstance(data, pd.DataFrame):
                data = pa.Table.from_pandas(data, preserve_index=False)
            with atomic_path(self.part_path(name, run_id)) as tmp:
                pq.write_table(data, tmp)

    def record_run(self, run_id: int, tables: dict[str, pa.Table | pd.DataFrame] | None, record: dict[str, Any]) -> None:
        """A finished run's part files (if any), then its journal line, with Ctrl-C held back until
        both are on disk: an interrupt between the two left a part file that no journal line knew
        about (issue 13, case 12).  A SIGKILL can still leave such an orphan; resume overwrites it."""
        with interrupt_deferred():
            if tables is not None:
                self.write_parts(run_id, tables)
            self.append(record)

    def append(self, record: dict[str, Any]) -> None:
        """One journal line, in one write to a file opened for appending."""
        if self._fd is None:
            self._fd = os.open(self.journal_path, os.O_WRONLY | os.O_APPEND | os.O_CREAT, 0o644)
            if _ends_torn(self.journal_path):  # a kill mid-write: end that line, or the next record joins it
                os.write(self._fd, b"\n")
        line = json.dumps({k: record.get(k) for k in RUN_COLUMNS}, separators=(",", ":")) + "\n"
        os.write(self._fd, line.encode())

    def close(self) -> None:
        if self._fd is not None:
            os.close(self._fd)
            self._fd = None

    def finalize(self) -> pd.DataFrame:
        """Rewrite the runs table (atomically) from the design and the journal."""
        self.close()
        runs = self.runs()
        write_parquet(self.runs_path, runs)
        return runs

    # ------------------------------------------------------------- reading
    def journal(self) -> pd.DataFrame:
        """The last journal record of each run (torn lines skipped)."""
        records: dict[int, dict] = {}
        if self.journal_path.is_file():
            with self.journal_path.open("rb") as fh:
                for line in fh:
                    try:
                        rec = json.loads(line)
                    except ValueError:
                        continue  # a line cut short by a kill
                    records[int(rec["run_id"])] = rec
        return pd.DataFrame(list(records.values()), columns=RUN_COLUMNS)

    def runs(self) -> pd.DataFrame:
        """Every planned run (pending ones too) with its parameters, seed, status, error and wall time."""
        info = self.manifest()
        design = self.design()
        replicates, master, common = info["replicates"], info["spec"]["seed"], info["spec"]["common_random_numbers"]
        plan = planned_runs(len(design), replicates, master, common, seeds=_design_seeds(design))
        rule = self.replication()
        if rule is not None:  # replicates chosen by a rule: only the runs it has asked for so far
            planned = rule.set_index("design_index")["planned"].reindex(plan["design_index"]).to_numpy()
            plan = plan[plan["replicate"].to_numpy() < planned].reset_index(drop=True)
        done = self.journal().drop(columns=["design_index", "replicate", "seed"])
        runs = plan.merge(done, on="run_id", how="left")
        runs["status"] = runs["status"].fillna("pending")
        ok = runs["status"] == "ok"
        missing = [rid for rid in runs.loc[ok, "run_id"] if not self._has_parts(rid)]
        runs.loc[runs["run_id"].isin(missing), ["status", "error"]] = ["missing", "part files missing"]
        params = design.drop(columns=[c for c in design.columns if c.startswith("unit:") or c == "local_index"])
        runs = runs.merge(params, on="design_index", how="left")
        order = ["run_id", "design_index", "replicate", "label", *[c for c in params.columns if c not in ("design_index", "label")],
                 "seed", "status", "error", "wall_time", "worker"]
        return runs[order].sort_values("run_id", kind="stable").reset_index(drop=True)

    def _has_parts(self, run_id: int) -> bool:
        return all(self.part_path(t, run_id).is_file() for t in TABLES)

    def done_ids(self) -> set[int]:
        runs = self.journal()
        ok = runs.loc[runs["status"] == "ok", "run_id"]
        return {int(r) for r in ok if self._has_parts(int(r))}

    def table(self, table: str, *, columns: list[str] | None = None, run_ids: Iterable[int] | None = None) -> pd.DataFrame:
        """Per-quarter rows of the given runs (default: all runs that finished ok), in run order."""
        if table not in TABLES:
            raise ValueError(f"table must be one of {TABLES}")
        ids = sorted(self.done_ids() if run_ids is None else {int(r) for r in run_ids})
        files = [str(self.part_path(table, r)) for r in ids]
        if not files:
            return pd.DataFrame(columns=columns or [])
        data = ds.dataset(files, format="parquet").to_table(columns=_with_keys(columns)).to_pandas()
        return data.sort_values(["run_id", "step"], kind="stable").reset_index(drop=True)


@contextmanager
def interrupt_deferred():
    """Run the block with SIGINT recorded rather than raised; raise it (through the handler that
    was installed) once the block is done.  Only the main thread can set signal handlers; elsewhere
    the block runs as it is."""
    if threading.current_thread() is not threading.main_thread():
        yield
        return
    caught: list[int] = []
    previous = signal.signal(signal.SIGINT, lambda signum, frame: caught.append(signum))
    try:
        yield
    finally:
        signal.signal(signal.SIGINT, previous)
        if caught:
            if callable(previous):
                previous(signal.SIGINT, None)
            elif previous == signal.SIG_DFL:
                raise KeyboardInterrupt


def _ends_torn(path: Path) -> bool:
    """Whether the file's last line lacks its newline (a write cut short)."""
    with path.open("rb") as fh:
        if fh.seek(0, os.SEEK_END) == 0:
            return False
        fh.seek(-1, os.SEEK_END)
        return fh.read(1) != b"\n"


def _design_seeds(design: pd.DataFrame) -> list[tuple[int, int]] | None:
    """(master seed, local index) per design point of a design drawn with several master seeds."""
    if "master_seed" not in design.columns:
        return None
    ordered = design.sort_values("design_index")
    return list(zip(ordered["master_seed"].astype(int), ordered["local_index"].astype(int)))


def planned_runs(points: int, replicates: int, master: int, common: bool,
                 seeds: list[tuple[int, int]] | None = None) -> pd.DataFrame:
    """run_id = design_index * replicates + replicate; seeds from the master seed (or, for a design drawn
    with several master seeds, from point d's own master seed and its index in that seed's sample)."""
    where = seeds or [(master, d) for d in range(points)]
    rows = [(d * replicates + r, d, r, run_seed(where[d][0], where[d][1], r, common=common))
            for d in range(points) for r in range(replicates)]
    return pd.DataFrame(rows, columns=["run_id", "design_index", "replicate", "seed"]).astype(
        {"run_id": "int64", "design_index": "int64", "replicate": "int64", "seed": "int64"})


def _with_keys(columns: list[str] | None) -> list[str] | None:
    if columns is None:
        return None
    keys = ["run_id", "design_index", "replicate", "step"]
    return keys + [c for c in columns if c not in keys]


# ------------------------------------------------------------------ load API
def load_runs(root: str | Path) -> pd.DataFrame:
    """The runs table: run id, design index, replicate, parameters, seed, status, error, wall time."""
    return Store(root).runs()


def load_design(root: str | Path) -> pd.DataFrame:
    return Store(root).design()


def load_providers(root: str | Path, columns: list[str] | None = None) -> pd.DataFrame:
    """Per-quarter provider rows of every run that finished ok."""
    return Store(root).table("providers", columns=columns)


def load_market(root: str | Path, columns: list[str] | None = None) -> pd.DataFrame:
    """Per-quarter market rows of every run that finished ok."""
    return Store(root).table("market", columns=columns)


def load_manifest(root: str | Path) -> dict[str, Any]:
    return Store(root).manifest()
