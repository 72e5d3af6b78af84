"""``aicloud dashboard``: the interactive browser dashboard (Solara, on the Mesa model) on 127.0.0.1."""

from __future__ import annotations

import argparse
import importlib.util
import os
import socket
import sys

from sim.cli import UserError

DEFAULT_CONFIG = "china_2025"
DEFAULT_PORT = 8765
HOST = "127.0.0.1"  # local only: the dashboard has no authentication
APP_MODULE = "sim.viz.app"


def add_parser(sub: argparse._SubParsersAction) -> None:
    p = sub.add_parser("dashboard", help="serve the interactive dashboard in the browser (needs the viz extra)",
                       description="Serve a Solara dashboard for a config on http://127.0.0.1:PORT: sliders for "
                                   "lock-in, data flywheel, open weights, capex, entry cost, import cap, customers "
                                   "and seed; play/step/reset; live share and HHI plots; a provider table.")
    p.add_argument("config", nargs="?", default=DEFAULT_CONFIG,
                   help=f"config file or preset name (default: {DEFAULT_CONFIG})")
    p.add_argument("--port", type=int, default=DEFAULT_PORT, help=f"port on 127.0.0.1 (default: {DEFAULT_PORT})")
    p.set_defaults(func=main)


def server_command(port: int) -> list[str]:
    return [sys.executable, "-m", "solara", "run", APP_MODULE, "--host", HOST, "--port", str(port), "--no-open",
            "--production", "--no-check-version"]


def server_env(config_path: str) -> dict[str, str]:
    """The server's environment: our config, and no calls home (solara's telemetry and version check)."""
    from sim.viz import CONFIG_ENV

    # solara warns on every http://127.0.0.1 page load that its session cookie falls back to samesite=lax.
    warnings = ",".join(filter(None, [os.environ.get("PYTHONWARNINGS"), "ignore:Cookies with samesite=none"]))
    return {**os.environ, CONFIG_ENV: config_path, "SOLARA_TELEMETRY_MIXPANEL_ENABLE": "False",
            "PYTHONWARNINGS": warnings}


def port_free(port: int) -> bool:
    """Checked up front: the server would take seconds to start before it found out."""
    with socket.socket() as probe:
        try:
            probe.bind((HOST, port))
        except OSError:
            return False
    return True


def main(args: argparse.Namespace) -> int:
    if not 1 <= args.port <= 65535:
        raise UserError(f"--port {args.port}: allowed: 1..65535")
    if importlib.util.find_spec("solara") is None:
        raise UserError("the dashboard needs the viz extra: .venv/bin/pip install -e '.[viz]' (or make dashboard)")
    if not port_free(args.port):
        raise UserError(f"port {args.port} on {HOST} is in use; choose another with --port")
    from sim.config import load_config, resolve_path

    path = resolve_path(args.config)
    load_config(path)  # report a bad config here, not as a traceback inside the server
    env = server_env(str(path.resolve()))
    print(f"dashboard for {path} on http://{HOST}:{args.port}  (Ctrl-C stops it)", flush=True)
    # Replace this process with the server so that Ctrl-C and kill reach it directly.
    command = server_command(args.port)
    sys.stdout.flush()
    os.execve(command[0], command, env)
    return 0  # not reached
