"""The ``aicloud`` command line (also ``python -m sim``).

Each sub-command lives in its own module under ``sim.commands`` with
``add_parser(subparsers)``; the module's parser sets ``func``.  Errors the user
can fix (a bad config, a missing file) are printed as plain lines with exit
status 2, never as a traceback.
"""

from __future__ import annotations

import argparse
import importlib
import sys

from sim import __version__
from sim.errors import NonFiniteState, OutputError  # no heavy imports: safe for a fast CLI

# Command -> (module that registers its full parser, one-line help).  Only the module of the
# command being run is imported: a command's heavy imports (the model, pandas, matplotlib,
# pyarrow) never slow down ``aicloud --help`` or another command.  The help texts here are
# what ``aicloud --help`` lists; tests/test_cli_fast.py checks they equal the modules' own.
COMMANDS = {
    "run": ("sim.commands.run", "run one simulation and write its tables, summary and plot"),
    "dashboard": ("sim.commands.dashboard", "serve the interactive dashboard in the browser (needs the viz extra)"),
    "sweep": ("sim.commands.sweep", "run an experiment spec: many runs, streamed to disk, then figures"),
    "experiment": ("sim.commands.sweep", "run a preset experiment (experiments/NAME.toml) and draw its figures"),
    "plot": ("sim.commands.sweep", "re-draw the figures of stored sweep results without re-running"),
    "export": ("sim.commands.export", "write stored sweep results as a flat CSV table (one row per run x quarter, "
                                      "parameters and seed in every row)"),
    "calibrate": ("sim.commands.calibrate",
                  "fit free parameters to observed market shares (writes an overlay and a fit report)"),
    "validate": ("sim.commands.calibrate",
                 "run the (calibrated) model with replications against the observed record"),
}
COMMAND_MODULES = list(dict.fromkeys(module for module, _ in COMMANDS.values()))


class UserError(Exception):
    """A problem in what the user asked for, worded for them."""


def build_parser(argv: list[str] | None = None, *, full: bool = False) -> argparse.ArgumentParser:
    """The parser; with ``full`` (or for the command named in ``argv``) the command modules'
    own parsers, otherwise a one-line entry per command for the top-level help."""
    parser = argparse.ArgumentParser(prog="aicloud", description="Agent-based simulation of the AI-cloud market war.")
    parser.add_argument("--version", action="version", version=f"aicloud-sim {__version__}")
    sub = parser.add_subparsers(dest="command", metavar="COMMAND")
    sub.required = True
    wanted = _command_in(argv if argv is not None else sys.argv[1:])
    load = set(COMMAND_MODULES) if full else {COMMANDS[wanted][0]} if wanted in COMMANDS else set()
    added: set[str] = set()
    for name, (module, help_text) in COMMANDS.items():
        if name in added:
            continue
        if module in load:
            before = set(sub.choices)
            importlib.import_module(module).add_parser(sub)
            added |= set(sub.choices) - before
        else:
            sub.add_parser(name, help=help_text)
            added.add(name)
    return parser


def _command_in(argv: list[str]) -> str | None:
    """The command word: the first argument that is not an option (top-level options take no value)."""
    return next((a for a in argv if not a.startswith("-")), None)


def main(argv: list[str] | None = None) -> int:
    argv = sys.argv[1:] if argv is None else argv
    parser = build_parser(argv)
    args = parser.parse_args(argv)
    try:
        return int(args.func(args) or 0)
    except (UserError, OutputError, NonFiniteState) as exc:
        print(f"error: {exc}", file=sys.stderr)
        return 2
    except KeyboardInterrupt:
        print("interrupted", file=sys.stderr)
        return 130
    except Exception as exc:
        # A ConfigError can only come from sim.config, so it is caught without importing it here.
        config = sys.modules.get("sim.config")
        if config is None or not isinstance(exc, config.ConfigError):
            raise
        for line in exc.problems:
            print(f"error: {line}", file=sys.stderr)
        return 2


if __name__ == "__main__":
    sys.exit(main())
