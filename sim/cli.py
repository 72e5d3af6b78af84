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

from sim.config import ConfigError
from sim.errors import NonFiniteState, OutputError

# name -> module; each module registers its own parser(s).
COMMAND_MODULES = [
    "sim.commands.run",
    "sim.commands.dashboard",
    "sim.commands.sweep",
    "sim.commands.calibrate",
]


class UserError(Exception):
    """A problem in what the user asked for, worded for them."""


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(prog="aicloud", description="Agent-based simulation of the AI-cloud market war.")
    sub = parser.add_subparsers(dest="command", metavar="COMMAND")
    sub.required = True
    for name in COMMAND_MODULES:
        importlib.import_module(name).add_parser(sub)
    return parser


def main(argv: list[str] | None = None) -> int:
    parser = build_parser()
    args = parser.parse_args(argv)
    try:
        return int(args.func(args) or 0)
    except ConfigError as exc:
        for line in exc.problems:
            print(f"error: {line}", file=sys.stderr)
        return 2
    except (UserError, OutputError, NonFiniteState) as exc:
        print(f"error: {exc}", file=sys.stderr)
        return 2
    except KeyboardInterrupt:
        print("interrupted", file=sys.stderr)
        return 130


if __name__ == "__main__":
    sys.exit(main())
