"""``aicloud run``: one simulation from a config, with tables, a summary and a plot."""

from __future__ import annotations

import argparse
import time
from pathlib import Path
from typing import TYPE_CHECKING

if TYPE_CHECKING:
    from sim.simulate import RunResult

# The model, pandas and matplotlib are imported inside the functions: `aicloud --help` and a
# config error return before they are needed.
# Share metrics (sim.metrics.METRICS, repeated here so that --help needs no numpy; a test keeps them equal).
METRIC_CHOICES = ("revenue", "compute", "tokens", "customers", "cloud_revenue", "ai_cloud_revenue", "maas_tokens")

DEFAULT_CONFIG = "china_2025"


def add_parser(sub: argparse._SubParsersAction) -> None:
    p = sub.add_parser("run", help="run one simulation and write its tables, summary and plot",
                       description="Run one simulation from a TOML config (a path or a preset name in configs/).")
    p.add_argument("config", nargs="?", default=DEFAULT_CONFIG, help=f"config file or preset name (default: {DEFAULT_CONFIG})")
    p.add_argument("--quarters", type=int, help="override run.quarters")
    p.add_argument("--seed", type=int, help="override run.seed")
    p.add_argument("--customers", type=int, help="override run.customers")
    p.add_argument("--set", action="append", default=[], metavar="KEY.PATH=VALUE",
                   help="override any config field, e.g. --set providers.Alibaba Cloud.lock_in=2 (repeatable)")
    p.add_argument("--overlay", type=Path, action="append", default=[], metavar="FILE",
                   help="apply fitted values written by `aicloud calibrate` (fitted.toml) before --set (repeatable)")
    p.add_argument("--out", type=Path, help="output directory (default: runs/<config name>)")
    p.add_argument("--metric", default="revenue", choices=list(METRIC_CHOICES),
                   help="share metric for the summary and plot (default: revenue); cloud_revenue, ai_cloud_revenue "
                        "and maas_tokens are the three analysts' layers (docs/model.md)")
    p.add_argument("--snapshot-out", type=Path, metavar="FILE",
                   help="also write the end state (a sample of customers, providers) to FILE (.npz), for a later "
                        "run to start from (run.start_from = FILE)")
    p.add_argument("--snapshot-sample", type=int, default=100_000, metavar="N",
                   help="customers kept in the snapshot (a random sample if the run has more; default 100000)")
    p.set_defaults(func=main)


def overrides_from(args: argparse.Namespace) -> list[str]:
    extra = list(args.set)
    for flag, key in (("quarters", "run.quarters"), ("seed", "run.seed"), ("customers", "run.customers")):
        value = getattr(args, flag)
        if value is not None:
            extra.append(f"{key}={value}")
    return extra


def main(args: argparse.Namespace) -> int:
    from sim.config import load_config, parse_override, resolve_path, with_overrides

    path = resolve_path(args.config)
    config = load_config(path, [] if args.overlay else overrides_from(args))
    if args.overlay:  # fitted values first, then --set on top of them
        from sim.calibration.overlay import apply_overlay

        for overlay in args.overlay:
            config = apply_overlay(config, overlay)
        sets = (parse_override(text) for text in overrides_from(args))
        config = with_overrides(config, {".".join(keys): value for keys, value in sets}, source="--set")
    from sim.output import output_dir
    from sim.simulate import simulate

    out = output_dir(args.out or Path("runs") / path.stem)  # checked before the run, not after it
    if args.snapshot_out is not None and args.snapshot_sample < 1:
        from sim.cli import UserError

        raise UserError(f"--snapshot-sample {args.snapshot_sample}: must be at least 1")
    final = []
    started = time.perf_counter()
    result = simulate(config, on_quarter=final.append if args.snapshot_out is not None else None)
    elapsed = time.perf_counter() - started
    write_outputs(result, out, source=str(path), metric=args.metric,
                  extra={"overlays": [str(o) for o in args.overlay], "overrides": overrides_from(args)})
    print(format_summary(result, args.metric))
    print(f"\n{config.run.customers:,} customers x {config.run.quarters} quarters in {elapsed:.2f} s")
    print(f"wrote {out}/: quarters.parquet, quarters.csv, flows.csv, summary.json, manifest.json, shares.png")
    print(f"plot: {out / 'shares.png'}")
    if args.snapshot_out is not None:
        from sim.snapshot import write_snapshot

        snap = write_snapshot(final[-1], args.snapshot_out, sample=args.snapshot_sample, source=str(path))
        print(f"snapshot: {args.snapshot_out} ({snap['sampled']:,} of {snap['customers']:,} customers, "
              f"state at the end of {snap['quarter']})")
    return 0


def write_outputs(result: RunResult, out: Path, *, source: str | None = None, metric: str = "revenue",
                  extra: dict | None = None) -> None:
    """Every file is written atomically; the manifest comes last, so its presence marks a complete run."""
    from sim.output import manifest, write_csv, write_json, write_parquet
    from sim.plots import save_figure, share_figure

    tidy = result.tidy()
    write_parquet(out / "quarters.parquet", tidy)
    write_csv(out / "quarters.csv", tidy)
    write_csv(out / "flows.csv", result.flows)
    write_json(out / "summary.json", result.summary(metric))
    title = f"{result.config.name}: share of {metric}"
    save_figure(share_figure(result.providers, result.market, metric=metric, title=title), out / "shares.png")
    write_json(out / "manifest.json", manifest(result.config, source=source, extra=extra))


def format_summary(result: RunResult, metric: str = "revenue") -> str:
    s = result.summary(metric)
    final = s["final_shares"][metric]
    first = s["first_shares"]
    lines = [f"{s['name']}: {s['first_quarter']} to {s['last_quarter']}, share of {metric}",
             f"{'provider':<24}{'first':>8}{'final':>8}{'change':>9}"]
    for name, share in sorted(final.items(), key=lambda kv: -kv[1]):
        start = first.get(name, float("nan"))
        lines.append(f"{name:<24}{100 * start:>7.1f}%{100 * share:>7.1f}%{100 * (share - start):>+8.1f}pp")
    lines.append(f"HHI {s['hhi'][metric]:,.0f}   CR3 {100 * s['cr3'][metric]:.1f}%   CR5 {100 * s['cr5'][metric]:.1f}%"
                 f"   mean churn {100 * s['mean_churn']:.2f}%/quarter")
    lines.append(f"biggest gainer: {s['biggest_gainer']['provider']} ({s['biggest_gainer']['change_pp']:+.1f}pp);"
                 f" biggest loser: {s['biggest_loser']['provider']} ({s['biggest_loser']['change_pp']:+.1f}pp)")
    if s["entries"] or s["exits"]:
        lines.append(f"entries: {', '.join(s['entries']) or '-'}; exits: {', '.join(s['exits']) or '-'}")
    if s["overloaded"]:
        spells = ", ".join(f"{name} ({n} quarters)" for name, n in s["overloaded"].items())
        lines.append(f"WARNING overloaded ({s['overload_rule']}): {spells}")
    lines.append("")
    lines.extend(layer_table(s))
    return "\n".join(lines)


LAYERS = (("cloud_revenue", "cloud"), ("ai_cloud_revenue", "AI cloud"), ("maas_tokens", "MaaS tokens"))


def layer_table(s: dict) -> list[str]:
    """Final shares in the three analysts' layers side by side, with each layer's HHI."""
    lines = [f"{'shares in ' + s['last_quarter']:<24}" + "".join(f"{label:>13}" for _, label in LAYERS)]
    names = sorted(s["final_shares"]["cloud_revenue"], key=lambda k: -s["final_shares"]["cloud_revenue"][k])
    for name in names:
        lines.append(f"{name:<24}" + "".join(f"{100 * s['final_shares'][m].get(name, 0.0):>12.1f}%" for m, _ in LAYERS))
    lines.append(f"{'HHI':<24}" + "".join(f"{s['hhi'][m]:>13,.0f}" for m, _ in LAYERS))
    lines.append(f"{'CR3':<24}" + "".join(f"{100 * s['cr3'][m]:>12.1f}%" for m, _ in LAYERS))
    return lines
