"""Unreadable inputs and unwritable outputs (issue 13, cases 5 and 6): one error line naming the
file, a non-zero exit, no traceback, and nothing partial left behind, for every command."""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path

import pytest

from sim.cli import main

ROOT = Path(__file__).resolve().parent.parent
SMALL = ["--quarters", "2", "--customers", "200"]
SPEC = """name = "tiny"
base = "minimal"
replicates = 1
[fixed]
"run.customers" = 100
"run.quarters" = 2
[params.lock]
key = "choice.switching_base"
values = [0.5, 1.0]
"""


def cli(*args: str, cwd: Path = ROOT) -> subprocess.CompletedProcess:
    return subprocess.run([sys.executable, "-m", "sim", *args], cwd=cwd, capture_output=True, text=True, timeout=120)


def one_error_line(proc_or_err, code: int | None = None) -> str:
    err = proc_or_err if isinstance(proc_or_err, str) else proc_or_err.stderr
    assert "Traceback" not in err, err
    lines = [line for line in err.splitlines() if line.strip()]
    assert len(lines) == 1 and lines[0].startswith("error: "), err
    if code is not None:
        assert code != 0
    return lines[0]


@pytest.fixture
def binary_toml(tmp_path) -> Path:
    path = tmp_path / "x.toml"
    path.write_bytes(bytes(range(256)) * 8)  # not UTF-8, like `head -c 2000 /dev/urandom`
    return path


@pytest.fixture
def read_only_dir(tmp_path) -> Path:
    """A directory nobody may write in; as root (who ignores permission bits) /sys stands in."""
    path = tmp_path / "ro"
    path.mkdir()
    path.chmod(0o555)
    if os.access(path, os.W_OK):
        path.chmod(0o755)
        yield Path("/sys")
        return
    yield path
    path.chmod(0o755)


# -------------------------------------------------------------------- case 5: unreadable input
def test_case_5_a_binary_file_is_one_error_line(binary_toml):
    proc = cli("run", str(binary_toml))  # a real process: its exit status and everything it prints
    line = one_error_line(proc)
    assert proc.returncode == 2
    assert str(binary_toml) in line and "not UTF-8 text" in line


@pytest.mark.parametrize("command", [["sweep"], ["experiment"], ["dashboard", "--port", "8799"]])
def test_case_5_in_the_other_commands(binary_toml, command, capsys):
    assert main([command[0], str(binary_toml), *command[1:]]) == 2
    line = one_error_line(capsys.readouterr().err)
    assert str(binary_toml) in line and "not UTF-8 text" in line


def test_binary_overlay_and_corrupt_sweep_results_are_one_error_line(binary_toml, tmp_path, capsys):
    """Further instances: every other file the commands read."""
    assert main(["run", "minimal", *SMALL, "--overlay", str(binary_toml), "--out", str(tmp_path / "r")]) == 2
    assert "not UTF-8 text" in one_error_line(capsys.readouterr().err)
    results = tmp_path / "results"
    results.mkdir()
    (results / "sweep.json").write_text('{"spec": {"name": "cut off')
    assert main(["plot", str(results)]) == 2
    line = one_error_line(capsys.readouterr().err)
    assert str(results) in line and "cannot be read" in line


def test_calibration_data_that_is_binary_is_one_error_line(binary_toml, tmp_path, capsys):
    code = main(["validate", "china_history_2020", "--data", str(binary_toml), "--fit", "2020Q1:2023Q4",
                 "--out", str(tmp_path / "v")])
    assert code == 2 and "not UTF-8 text" in one_error_line(capsys.readouterr().err)


# -------------------------------------------------------------------- case 6: unwritable output
def test_case_6_out_on_a_file(tmp_path):
    afile = tmp_path / "afile"
    afile.write_text("hi\n")
    proc = cli("run", "minimal", *SMALL, "--out", str(afile))
    line = one_error_line(proc)
    assert proc.returncode == 2 and f"--out {afile}: is a file, not a directory" in line
    assert afile.read_text() == "hi\n"


def test_case_6_out_below_a_file_and_in_a_read_only_directory(tmp_path, read_only_dir, capsys):
    afile = tmp_path / "afile"
    afile.write_text("hi\n")
    assert main(["run", "minimal", *SMALL, "--out", str(afile / "sub")]) == 2
    assert f"{afile} is a file, so no directory can be made below it" in one_error_line(capsys.readouterr().err)
    assert main(["run", "minimal", *SMALL, "--out", str(read_only_dir / "run")]) == 2
    line = one_error_line(capsys.readouterr().err)
    assert f"cannot write in {read_only_dir}" in line
    assert not (read_only_dir / "run").exists()


def test_case_6_sweep_out_on_a_file_runs_nothing(tmp_path, capsys):
    spec = tmp_path / "tiny.toml"
    spec.write_text(SPEC)
    afile = tmp_path / "afile"
    afile.write_text("hi\n")
    assert main(["sweep", str(spec), "--workers", "0", "--out", str(afile)]) == 2
    assert "is a file, not a directory" in one_error_line(capsys.readouterr().err)
    assert afile.read_text() == "hi\n" and sorted(p.name for p in tmp_path.iterdir()) == ["afile", "tiny.toml"]


def test_calibrate_checks_its_outputs_before_the_fit(tmp_path, capsys):
    """A further instance: calibrate ran its whole fit and only then failed to write."""
    afile = tmp_path / "afile"
    afile.write_text("hi\n")
    code = main(["calibrate", "china_history_2020", "--fit", "2020Q1:2023Q4", "--customers", "200",
                 "--replications", "1", "--generations", "1", "--popsize", "1", "--out", str(afile)])
    captured = capsys.readouterr()
    assert code == 2 and "is a file, not a directory" in one_error_line(captured.err)
    assert "fitting" not in captured.out  # refused before any work


def test_a_failed_write_leaves_no_partial_file(tmp_path):
    from sim.errors import OutputError
    from sim.output import write_json

    blocker = tmp_path / "f"
    blocker.write_text("x")
    with pytest.raises(OutputError, match=f"{blocker} is a file, not a directory"):
        write_json(blocker / "sub" / "m.json", {"a": 1})
    assert blocker.read_text() == "x" and json.dumps({"a": 1})


def test_export_of_damaged_results_is_one_error_line(tmp_path, capsys):
    results = tmp_path / "results"
    results.mkdir()
    (results / "sweep.json").write_text('{"spec": ')
    assert main(["export", str(results), "--csv"]) == 2
    line = one_error_line(capsys.readouterr().err)
    assert str(results) in line and "cannot be read" in line and not (results / "table.csv").exists()


def test_atomic_writes_blame_the_output_only_for_write_errors(tmp_path):
    import errno

    from sim.errors import OutputError
    from sim.output import atomic_path

    with pytest.raises(OutputError, match="cannot write .*out.txt: No space left on device"):
        with atomic_path(tmp_path / "out.txt"):
            raise OSError(errno.ENOSPC, os.strerror(errno.ENOSPC))
    with pytest.raises(FileNotFoundError):  # reading an input inside the block is not an output problem
        with atomic_path(tmp_path / "out.txt"):
            (tmp_path / "missing.csv").read_text()
    assert sorted(p.name for p in tmp_path.iterdir()) == []  # no temporary file left
