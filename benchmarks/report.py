"""Turn measurements into the markdown table, the aims verdicts and the log-log plot."""

from __future__ import annotations

import os
import platform
import re
import subprocess
from importlib import metadata
from pathlib import Path

LABELS = {
    "mesa": "Mesa per-agent reference (choice rule, agents.do)",
    "mesa-shuffle": "Mesa per-agent, usual shuffle_do activation",
    "naive": "naive numpy kernel (choice rule, one draw per customer)",
    "kernel": "bare numpy kernel (choice rule, lower bound)",
    "choice": "engine: choice.step on a Market",
    "market": "engine: Market.step, other mechanisms neutral",
    "full": "full model (all mechanisms, china_2025)",
    "cli": "`aicloud run` end to end (with output files)",
}
MB = 1024 * 1024


def machine() -> dict[str, str]:
    model = platform.processor() or "unknown"
    try:
        lscpu = subprocess.run(["lscpu"], capture_output=True, text=True, timeout=10).stdout
        found = re.search(r"^Model name:\s*(.+)$", lscpu, re.M)
        model = found.group(1).strip() if found else model
    except (OSError, subprocess.SubprocessError):
        pass
    info = {"cpu": model, "cores": str(os.cpu_count()), "python": platform.python_version()}
    for name in ("numpy", "mesa", "pandas"):
        try:
            info[name] = metadata.version(name)
        except metadata.PackageNotFoundError:
            pass
    for var in ("OPENBLAS_CORETYPE", "OPENBLAS_L2_SIZE"):
        if os.environ.get(var):
            info[var] = os.environ[var]
    return info


def machine_line(info: dict[str, str], results: list[dict] | None = None) -> str:
    extra = "".join(f", {k}={info[k]}" for k in ("OPENBLAS_CORETYPE", "OPENBLAS_L2_SIZE") if k in info)
    load = ""
    if results:
        loads = [r["load_1min"] for r in results if "load_1min" in r]
        if loads:
            load = (f" Load average during the run {min(loads):.1f}-{max(loads):.1f} on {info['cores']} cores "
                    "(other work shared the machine: wall times are upper bounds; CPU time is closer to an idle machine).")
    return (f"Machine: {info['cpu']}, {info['cores']} cores; Python {info['python']}, numpy {info.get('numpy')}, "
            f"Mesa {info.get('mesa')}{extra}. One thread per measurement, each configuration in a fresh process.{load}")


def rate(r: dict) -> float:
    return r["customers"] * r["quarters"] / r["total_s"]


def bytes_per_customer(r: dict) -> float:
    return r["above_start_mb"] * MB / r["customers"]


def table(results: list[dict]) -> str:
    lines = ["| version | customers | setup s | 40 quarters s | total s | CPU s | customer-quarters/s | peak RSS above start MB | bytes/customer |",
             "|---|---:|---:|---:|---:|---:|---:|---:|---:|"]
    order = list(LABELS)
    for r in sorted(results, key=lambda r: (order.index(r["version"]), r["customers"])):
        setup = "-" if r["version"] == "cli" else f"{r['setup_s']:.3f}"
        lines.append(f"| {LABELS[r['version']]} | {r['customers']:,} | {setup} | {r['quarters_s']:.3f} | "
                     f"{r['total_s']:.3f} | {r.get('cpu_s', float('nan')):.3f} | {rate(r) / 1e6:.2f} M | {r['above_start_mb']:.1f} | {bytes_per_customer(r):.0f} |")
    return "\n".join(lines)


def pivot(results: list[dict]) -> str:
    """One row per version: total wall time and customer-quarters/s at each size, bytes per customer at the largest."""
    sizes = sorted({r["customers"] for r in results})
    lines = ["| version | " + " | ".join(f"{n:,}" for n in sizes) + " | bytes/customer (largest) |",
             "|---|" + "---:|" * (len(sizes) + 1)]
    for version, label in LABELS.items():
        rows = {r["customers"]: r for r in results if r["version"] == version}
        if not rows:
            continue
        cells = [f"{rows[n]['total_s']:.3f} s ({rate(rows[n]) / 1e6:.1f} M/s)" if n in rows else "" for n in sizes]
        largest = rows[max(rows)]
        lines.append(f"| {label} | " + " | ".join(cells) + f" | {bytes_per_customer(largest):.0f} ({max(rows):,}) |")
    return "\n".join(lines)


def find(results: list[dict], version: str, customers: int) -> dict | None:
    return next((r for r in results if r["version"] == version and r["customers"] == customers), None)


def aims(results: list[dict]) -> list[tuple[str, str, bool]]:
    """(aim, measured, met) for every aim that the measurements cover.  Ratios are judged on
    CPU time (on a shared machine the two sides see different contention); absolute times and
    rates on wall time, which is never below CPU time for one thread."""
    out = []
    mesa, full = find(results, "mesa", 100_000), find(results, "full", 100_000)
    if mesa and full:
        cpu = mesa["cpu_s"] / full["cpu_s"]
        wall = mesa["total_s"] / full["total_s"]
        out.append(("full model >= 50x faster than the per-agent Mesa reference, 100k customers",
                    f"{cpu:.1f}x CPU time ({full['cpu_s']:.3f} s vs {mesa['cpu_s']:.2f} s; wall {wall:.1f}x)", cpu >= 50))
    for n in (100_000, 1_000_000):
        choice, kern = find(results, "choice", n), find(results, "kernel", n)
        if choice and kern:
            x = choice["cpu_quarters_s"] / kern["cpu_quarters_s"]
            wall = choice["quarters_s"] / kern["quarters_s"]
            out.append((f"choice step within 2x of the bare kernel, {n:,} customers",
                        f"{x:.2f}x CPU time ({choice['cpu_quarters_s']:.3f} s vs {kern['cpu_quarters_s']:.3f} s; "
                        f"wall {wall:.2f}x)", x <= 2))
    big = find(results, "full", 1_000_000)
    if big:
        out.append(("full model, 1M customers x 40 quarters in <= 6 s", f"{big['total_s']:.2f} s", big["total_s"] <= 6))
        out.append(("full model, 1M customers: <= 300 MB above the start", f"{big['above_start_mb']:.0f} MB",
                    big["above_start_mb"] <= 300))
    if full:
        out.append(("full model >= 10 million customer-quarters/s at 100k customers", f"{rate(full) / 1e6:.1f} M/s",
                    rate(full) >= 10e6))
    for n in (100_000, 1_000_000):
        r = find(results, "full", n)
        if r:
            out.append((f"full model <= 300 bytes per customer, {n:,} customers", f"{bytes_per_customer(r):.0f} B",
                        bytes_per_customer(r) <= 300))
    return out


def aims_table(rows: list[tuple[str, str, bool]]) -> str:
    lines = ["| aim | measured | met |", "|---|---:|:---:|"]
    lines += [f"| {aim} | {value} | {'yes' if ok else '**no**'} |" for aim, value, ok in rows]
    return "\n".join(lines)


def plot(results: list[dict], path: Path) -> None:
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    from sim.plots import save_figure

    fig, (ax_t, ax_m) = plt.subplots(1, 2, figsize=(11, 5.2))
    for version, label in LABELS.items():
        rows = sorted((r for r in results if r["version"] == version), key=lambda r: r["customers"])
        if not rows:
            continue
        n = [r["customers"] for r in rows]
        ax_t.plot(n, [r["total_s"] for r in rows], marker="o", label=label)
        ax_m.plot(n, [max(r["above_start_mb"], 0.01) for r in rows], marker="o", label=label)
    for ax, ylabel in ((ax_t, "wall time, 40 quarters (s)"), (ax_m, "peak RSS above start (MB)")):
        ax.set_xscale("log")
        ax.set_yscale("log")
        ax.set_xlabel("customers")
        ax.set_ylabel(ylabel)
        ax.grid(True, which="both", alpha=0.3)
    ax_t.set_title("Time")
    ax_m.set_title("Memory")
    handles, labels = ax_t.get_legend_handles_labels()
    fig.legend(handles, labels, loc="lower center", ncol=3, fontsize=8, frameon=False)
    fig.tight_layout(rect=(0, 0.14, 1, 1))
    save_figure(fig, path)
    plt.close(fig)
