"""Installable and citable: the package list, the version everywhere, and a real wheel that runs
outside the repository with the presets, experiments and data it ships."""

from __future__ import annotations

import json
import os
import shutil
import subprocess
import sys
import sysconfig
import tomllib
from pathlib import Path

import pytest

from sim import __version__

ROOT = Path(__file__).resolve().parent.parent
PYPROJECT = tomllib.loads((ROOT / "pyproject.toml").read_text())


def test_every_subpackage_is_listed_for_the_wheel():
    listed = {p for p in PYPROJECT["tool"]["setuptools"]["packages"] if not p.startswith("sim._shipped")}
    found = {".".join(init.parent.relative_to(ROOT).parts) for init in (ROOT / "sim").rglob("__init__.py")}
    assert listed == found


def test_shipped_folders_map_the_clone_folders():
    mapping = PYPROJECT["tool"]["setuptools"]["package-dir"]
    assert mapping == {f"sim._shipped.{name}": name for name in ("configs", "experiments", "data")}


def test_version_is_the_same_in_citation_changelog_and_manifest(minimal):
    from sim.output import manifest

    citation = (ROOT / "CITATION.cff").read_text()
    assert f"\nversion: {__version__}\n" in citation
    assert f"## [{__version__}]" in (ROOT / "CHANGELOG.md").read_text()
    assert manifest(minimal)["versions"]["aicloud-sim"] == __version__
    assert "MIT License" in (ROOT / "LICENSE").read_text() and PYPROJECT["project"]["license"] == "MIT"


CHECK = """
import json, sim
from sim.config import load_config, resolve_path
from sim.experiment.spec import load_spec, base_config
from sim.calibration.data import load_observations
from sim.resources import folder, in_clone
names = sorted(p.stem for p in folder("configs").glob("*.toml"))
shipped = {kind: sorted(str(p.relative_to(folder(kind))) for p in folder(kind).rglob("*") if p.is_file())
           for kind in ("configs", "experiments", "data")}
specs = sorted(p.stem for p in folder("experiments").glob("*.toml"))
for n in names:
    load_config(n)
for s in specs:
    base_config(load_spec(s))
obs = load_observations(folder("data") / "market_shares.csv")
print(json.dumps({"in_clone": in_clone(), "sim": sim.__file__, "presets": names, "experiments": specs,
                  "shipped": shipped,
                  "observations": len(obs)}))
"""


@pytest.mark.slow
def test_wheel_installs_in_a_fresh_venv_and_runs_outside_the_clone(tmp_path):
    """The wheel (built from this tree) goes into a new venv in a temporary directory and runs there.

    To stay within the test budget the new venv borrows the dependencies of the running
    environment (a path entry, not an install), so only the wheel itself is installed, and
    ``pip check`` verifies that the wheel's declared requirements are met.  ``sim`` is imported
    from the new venv's site-packages, away from the clone, so the shipped package data is used.
    """
    # Built from a copy: setuptools reuses a build/ folder left in the tree, which can hide a file
    # that the package data no longer includes.
    source = tmp_path / "source"
    shutil.copytree(ROOT, source, ignore=shutil.ignore_patterns(
        ".venv", "build", "*.egg-info", ".git", "runs", "results", "__pycache__", "test-artifacts", ".hypothesis"))
    wheels = tmp_path / "wheels"
    subprocess.run([sys.executable, "-m", "pip", "wheel", str(source), "--no-deps", "-q", "-w", str(wheels)],
                   check=True, capture_output=True, timeout=300)
    (wheel,) = wheels.glob("aicloud_sim-*.whl")
    assert wheel.name.startswith(f"aicloud_sim-{__version__}-")
    venv = tmp_path / "venv"
    subprocess.run([sys.executable, "-m", "venv", str(venv)], check=True, timeout=120)
    py = venv / "bin" / "python"
    site = subprocess.run([py, "-c", "import sysconfig; print(sysconfig.get_paths()['purelib'])"],
                          capture_output=True, text=True, check=True).stdout.strip()
    (Path(site) / "borrowed_deps.pth").write_text(sysconfig.get_paths()["purelib"] + "\n")
    subprocess.run([py, "-m", "pip", "install", "--no-deps", "-q", str(wheel)], check=True, capture_output=True,
                   timeout=300)
    work = tmp_path / "elsewhere"
    work.mkdir()
    env = {k: v for k, v in os.environ.items() if k not in ("PYTHONPATH", "VIRTUAL_ENV")}
    check = subprocess.run([py, "-m", "pip", "check"], capture_output=True, text=True, cwd=work, env=env)
    assert check.returncode == 0, check.stdout + check.stderr

    found = subprocess.run([py, "-c", CHECK], capture_output=True, text=True, cwd=work, env=env, timeout=300)
    assert found.returncode == 0, found.stderr
    info = json.loads(found.stdout)
    assert not info["in_clone"] and info["sim"].startswith(site)
    assert info["presets"] == sorted(p.stem for p in (ROOT / "configs").glob("*.toml"))
    assert info["experiments"] == sorted(p.stem for p in (ROOT / "experiments").glob("*.toml"))
    assert info["observations"] > 50
    for kind, files in info["shipped"].items():  # every file of the clone's folder, snapshots included
        assert files == sorted(str(p.relative_to(ROOT / kind)) for p in (ROOT / kind).rglob("*")
                               if p.is_file() and "__pycache__" not in p.parts), kind

    aicloud = venv / "bin" / "aicloud"
    version = subprocess.run([aicloud, "--version"], capture_output=True, text=True, cwd=work, env=env)
    assert version.stdout.strip() == f"aicloud-sim {__version__}"
    run = subprocess.run([aicloud, "run", "minimal", "--customers", "300", "--quarters", "6"], capture_output=True,
                         text=True, cwd=work, env=env, timeout=300)
    assert run.returncode == 0, run.stderr
    out = work / "runs" / "minimal"
    manifest = json.loads((out / "manifest.json").read_text())
    assert manifest["versions"]["aicloud-sim"] == __version__ and manifest["git_commit"] is None
    assert manifest["config_source"].startswith(site)  # the preset came from the wheel
    assert (out / "shares.png").stat().st_size > 0
    # The default preset starts from a snapshot shipped with the presets.
    run = subprocess.run([aicloud, "run", "china_2025", "--customers", "300", "--quarters", "2"], capture_output=True,
                         text=True, cwd=work, env=env, timeout=300)
    assert run.returncode == 0, run.stderr
    shipped = json.loads((work / "runs" / "china_2025" / "manifest.json").read_text())
    assert shipped["start_from"]["sha256"]
    # validate with the observed data shipped in the wheel (no data/ in the working directory)
    check = subprocess.run([aicloud, "validate", "china_history_2020", "--fit", "2020Q1:2023Q4", "--replications", "1",
                            "--customers", "300", "--workers", "1", "--no-progress", "--out", "val"],
                           capture_output=True, text=True, cwd=work, env=env, timeout=300)
    assert check.returncode == 0, check.stderr
    assert json.loads((work / "val" / "validation.json").read_text())["data"].startswith(site)
