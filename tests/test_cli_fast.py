"""The CLI starts without the heavy modules: `aicloud --help`, `--version` and a config error never
import the model, pandas, matplotlib or pyarrow (what they cost is measured, not timed here)."""

from __future__ import annotations

import json
import subprocess
import sys

import pytest

from sim import __version__
from sim.cli import COMMANDS, build_parser

HEAVY = ["mesa", "pandas", "matplotlib", "pyarrow", "scipy", "numpy", "sim.model"]

PROBE = """
import json, sys
from sim.cli import main
try:
    code = main(sys.argv[1:])
except SystemExit as exc:
    code = exc.code
print(json.dumps({"code": code, "loaded": [m for m in %r if m in sys.modules]}), file=sys.stderr)
""" % HEAVY


def probe(*argv: str) -> dict:
    done = subprocess.run([sys.executable, "-c", PROBE, *argv], capture_output=True, text=True, timeout=60)
    return {**json.loads(done.stderr.strip().splitlines()[-1]), "stdout": done.stdout, "stderr": done.stderr}


@pytest.mark.parametrize("argv", [["--help"], ["--version"], ["run", "--help"], ["run", "{bad}"],
                                  ["run", "no-such-preset"], ["validate", "--help"]])
def test_help_and_config_errors_load_no_heavy_module(argv, tmp_path):
    bad = tmp_path / "bad.toml"
    bad.write_text('[run]\nquarters = "x"\n')
    result = probe(*[a.replace("{bad}", str(bad)) for a in argv])
    assert result["loaded"] == [], result
    assert result["code"] in (0, 2)


def test_version():
    result = probe("--version")
    assert result["stdout"].strip() == f"aicloud-sim {__version__}"


def test_top_level_help_lists_what_the_command_modules_register():
    lazy = build_parser([]).format_help()
    full = build_parser([], full=True).format_help()
    assert lazy == full
    parser = build_parser([], full=True)
    sub = next(a for a in parser._actions if a.dest == "command")
    assert sorted(sub.choices) == sorted(COMMANDS)


def test_only_the_chosen_command_is_loaded():
    run = build_parser(["run"])
    sub = next(a for a in run._actions if a.dest == "command")
    assert "--seed" in sub.choices["run"].format_help()
    assert "--scheduler" not in sub.choices["sweep"].format_help()  # a one-line placeholder
