"""``aicloud calibrate`` and ``aicloud validate``: fit free parameters to the observed market
record, then check the fitted model in and out of sample (docs/validation.md)."""

from __future__ import annotations

import argparse
import shlex
import time
from pathlib import Path

# sim.config, sim.output and sim.calibration (pydantic, pandas, scipy, matplotlib) are imported
# inside the commands, so that building the CLI's parser stays quick.

DATA_FILE = Path("data") / "market_shares.csv"


def default_data() -> Path:
    """data/market_shares.csv of the working directory (a clone), else the copy shipped with the package."""
    if DATA_FILE.is_file():
        return DATA_FILE
    from sim import resources

    return resources.folder("data") / DATA_FILE.name


def add_parser(sub: argparse._SubParsersAction) -> None:
    c = sub.add_parser("calibrate", help="fit free parameters to observed market shares (writes an overlay and a fit report)",
                       description="Fit a few free parameters of CONFIG to the observed figures in --data within the "
                                   "--fit window, by differential evolution over replications with common seeds.")
    _common(c, replications=4)
    c.add_argument("--fit", required=True, metavar="FIRST:LAST", help="fit window, e.g. 2020Q1:2023Q4")
    c.add_argument("--param", action="append", default=[], metavar="KEY.PATH=LOW:HIGH",
                   help="a free parameter and its bounds (repeatable; replaces the default set; '*' = every item, "
                        "e.g. demand.segments.*.renewal_hazard=0.02:0.25)")
    c.add_argument("--generations", type=int, default=30, help="generations of differential evolution (default 30)")
    c.add_argument("--popsize", type=int, default=6, help="population per free parameter (default 6)")
    c.add_argument("--opt-seed", type=int, default=0, help="seed of the optimiser (default 0)")
    c.add_argument("--workers", type=int, default=2, help="worker processes (default 2)")
    c.add_argument("--profile-points", type=int, default=9,
                   help="after the fit, the loss at this many values of each parameter, the others fitted (0 = none, and no "
                        "identification table; default 9)")
    c.add_argument("--noise-sets", type=int, default=8,
                   help="fresh seed sets on which the loss at the fit is evaluated: the replicate-noise band (default 8)")
    c.add_argument("--figures", type=Path, help="directory for the profile figure (default: the output directory)")
    c.set_defaults(func=main_calibrate)

    v = sub.add_parser("validate", help="run the (calibrated) model with replications against the observed record",
                       description="Run CONFIG (plus an --overlay of fitted values) with replications; report in- and "
                                   "out-of-sample errors, simulated bands against the observed points and the stylized facts.")
    _common(v, replications=20)
    v.add_argument("--overlay", type=Path, help="fitted values written by `aicloud calibrate` (fitted.toml)")
    v.add_argument("--fit", metavar="FIRST:LAST", help="fit window (default: the overlay's)")
    v.add_argument("--figures", type=Path, help="directory for the PNG figures (default: the output directory)")
    v.add_argument("--workers", type=int, default=2, help="worker processes (default 2)")
    v.set_defaults(func=main_validate)


def _common(p: argparse.ArgumentParser, replications: int) -> None:
    p.add_argument("config", help="config file or preset name, e.g. configs/china_history_2020.toml")
    p.add_argument("--data", type=Path, help="observed figures (default: data/market_shares.csv here, "
                                             "else the copy shipped with the package)")
    p.add_argument("--replications", type=int, default=replications, help=f"runs per evaluation (default {replications})")
    p.add_argument("--customers", type=int, help="override run.customers")
    p.add_argument("--set", action="append", default=[], metavar="KEY.PATH=VALUE", help="override a config field (repeatable)")
    p.add_argument("--fringe", action="append", default=[], metavar="PROVIDER",
                   help="provider standing for the unnamed rest of the market (default: names containing 'other')")
    p.add_argument("--out", type=Path, help="output directory (default: runs/<command>/<config name>)")
    p.add_argument("--no-progress", action="store_true", help="no progress bar")


def _positive(name: str, value: int) -> None:
    from sim.cli import UserError

    if value < 1:
        raise UserError(f"--{name} must be at least 1 (got {value})")


def _window(text: str):
    from sim.calibration.targets import parse_window
    from sim.cli import UserError

    try:
        return parse_window(text)
    except ValueError as exc:
        raise UserError(f"--fit {exc}") from None


def _setup(args):
    from sim.calibration.data import load_observations
    from sim.calibration.targets import fringe_names
    from sim.cli import UserError

    for name in ("replications", "workers", "generations", "popsize"):
        if hasattr(args, name):
            _positive(name, getattr(args, name))
    if getattr(args, "profile_points", 0) < 0:
        raise UserError(f"--profile-points must be 0 or more (got {args.profile_points})")
    if hasattr(args, "noise_sets") and args.noise_sets < 2:
        raise UserError(f"--noise-sets must be at least 2 (got {args.noise_sets})")
    from sim.config import load_config, resolve_path

    path = resolve_path(args.config)
    extra = list(args.set) + ([f"run.customers={args.customers}"] if args.customers else [])
    config = load_config(path, extra)
    if args.data is None:
        args.data = default_data()
    observations = load_observations(args.data)
    try:
        fringe = fringe_names(config, args.fringe)
    except ValueError as exc:
        raise UserError(str(exc)) from None
    return path, config, observations, fringe


def _outputs(args, command: str, path: Path) -> Path:
    """The output directory (and --figures), checked before the long work starts."""
    from sim.output import output_dir

    out = output_dir(args.out or Path("runs") / command / path.stem)
    if getattr(args, "figures", None) is not None:
        output_dir(args.figures, "--figures")
    return out


def _command(args, name: str) -> str:
    parts = ["aicloud", name, str(args.config), "--data", str(args.data)]
    # --workers is left out: it changes how long a run takes, never its result.
    for flag in ("fit", "overlay", "replications", "customers", "generations", "popsize", "opt_seed", "profile_points",
                 "noise_sets"):
        value = getattr(args, flag, None)
        if value is not None:
            parts += [f"--{flag.replace('_', '-')}", str(value)]
    for key in ("param", "set", "fringe"):
        for value in getattr(args, key, []) or []:
            parts += [f"--{key}", value]
    return " ".join(shlex.quote(p) for p in parts)


# -------------------------------------------------------------------- calibrate
def main_calibrate(args: argparse.Namespace) -> int:
    from sim.output import manifest, write_csv, write_json, write_text
    from sim.calibration import params as fp
    from sim.calibration import report
    from sim.calibration.fit import FitSettings, calibrate, profile
    from sim.calibration.objective import Objective
    from sim.calibration.overlay import write_overlay
    from sim.calibration.replicate import seeds_for
    from sim.calibration.targets import select_targets
    from sim.cli import UserError

    path, config, observations, fringe = _setup(args)
    out = _outputs(args, "calibrate", path)
    window = _window(args.fit)
    targets = select_targets(observations, config, window=window, markets=("china_cloud", "china_maas"))
    if not targets:
        raise UserError(f"{args.data}: no observed figure of this config's providers inside --fit {args.fit}")
    params = [fp.parse_param(t) for t in args.param] or list(fp.DEFAULT_PARAMS)
    fp.check(config, params)
    seeds = seeds_for(config, args.replications)
    objective = Objective(config, params, targets, seeds, fringe)
    settings = FitSettings(generations=args.generations, popsize=args.popsize, seed=args.opt_seed,
                           workers=args.workers, progress=not args.no_progress)
    print(f"fitting {len(params)} parameters to {len(targets)} observed figures ({args.fit}); "
          f"{args.replications} replications x {config.run.customers:,} customers x {objective.quarters} quarters per "
          f"candidate; population {settings.popsize * len(params)}, {settings.generations} generations, "
          f"{settings.workers} worker(s)")
    fit = calibrate(objective, settings)
    table = objective.table(fit.best)
    prof = profile(objective, fit.best, points=args.profile_points, workers=args.workers) if args.profile_points else None
    ident = pairs = None
    if prof is not None:
        from sim.calibration import identify

        nz = identify.noise(objective, fit.best, fit.best_loss, sets=args.noise_sets, workers=args.workers)
        sens = identify.sensitivities(objective, fit.best, workers=args.workers)
        ident = identify.identification_table(prof, objective, fit.best, nz, sens)
        pairs = identify.collinearity(sens, [p.key for p in params])
    unit = token_unit_for(objective, fit.best, observations, config, window)

    info = {"command": _command(args, "calibrate"), "config": str(args.config), "config_name": config.name,
            "config_hash": config.hash(), "data": str(args.data), "data_sha256": report.file_digest(args.data),
            "fit_window": args.fit, "replications": args.replications, "seeds": seeds,
            "customers": config.run.customers, "population": settings.popsize * len(params),
            "optimizer_seed": settings.seed, "fringe": fringe,
            "layer_rmse_pp": layer_rmse(objective, table)}
    if unit is not None:
        info["token_unit"] = unit
    if prof is not None:
        info["noise"] = {"fit_rmse_pp": nz.fit_loss, "fresh_mean_rmse_pp": nz.fresh, "sd_pp": nz.sd,
                         "band_pp": nz.band, "losses": nz.losses, "seed_sets": nz.seed_sets}
    header = (f"Fitted by: {info['command']}\nRMSE {fit.best_loss:.2f} pp over {len(targets)} observed figures "
              f"(config values: {fit.start_loss:.2f} pp). Apply with: aicloud validate {args.config} --overlay <this file>")
    overlay_info = {"config": str(args.config), "config_hash": config.hash(), "data": str(args.data),
                    "data_sha256": info["data_sha256"], "fit": args.fit, "rmse_pp": round(fit.best_loss, 4),
                    "start_rmse_pp": round(fit.start_loss, 4)}
    values = {k: round(v, 6) for k, v in fit.values().items()}
    if unit is not None:  # a reporting scale, set after the fit (not a free parameter)
        values["models.token_unit"] = float(f"{unit['token_unit']:.4g}")
    write_overlay(out / "fitted.toml", values, overlay_info, header)
    if prof is not None:
        write_csv(out / "profile.csv", prof)
        from sim.calibration.plots import profile_figure
        from sim.plots import save_figure

        figure = (args.figures or out) / f"{config.name}_profile.png"
        save_figure(profile_figure(prof, fit.best_loss, f"{config.name}: loss profile around the fit",
                                   noise=nz if ident is not None else None), figure)
        info["profile_figure"] = str(figure.resolve().relative_to(out.resolve(), walk_up=True))
    body = report.fit_json(fit, table, info, prof, ident, pairs)
    body.pop("seconds")  # timing varies from run to run; it goes to timing.json only
    write_json(out / "fit_report.json", body)
    write_text(out / "fit_report.md", report.fit_markdown(fit, table, info, prof, ident, pairs))
    write_json(out / "timing.json", {"seconds": round(fit.seconds, 1), "evaluations": fit.evaluations,
                                     "workers": settings.workers})
    fitted = fp.apply(config, params, fit.best)
    # The manifest's config is the fitted one: the config file with fitted.toml applied.
    write_json(out / "manifest.json", manifest(fitted, source=str(path), extra={"command": info["command"],
                                                                                "overlay": "fitted.toml"}))
    print(report.markdown_table(report.params_frame(fit).drop(columns=["what it is"]), 3))
    print(f"RMSE {fit.start_loss:.2f} pp -> {fit.best_loss:.2f} pp; {fit.evaluations} evaluations in {fit.seconds:.0f} s")
    print("in-sample RMSE by layer: " + ", ".join(f"{k} {v:.2f} pp" for k, v in info["layer_rmse_pp"].items()))
    if ident is not None:
        from sim.calibration import identify

        print(f"replicate noise of the loss: sd {nz.sd:.2f} pp over {len(nz.losses)} fresh seed sets "
              f"(mean {nz.fresh:.2f} pp against {nz.fit_loss:.2f} pp at the fit's seeds)")
        for line in identify.warnings_of(ident):
            print(line)
        apart = pairs[~pairs["told apart"]]
        for row in apart.itertuples(index=False):
            print(f"NOT TOLD APART: {row[0]} and {row[1]} (collinearity index {row[3]:.1f})")
    print(f"wrote {out}/: fitted.toml, fit_report.json, fit_report.md, timing.json, manifest.json"
          + (", profile.csv and the profile figure" if prof is not None else ""))
    print(f"next: aicloud validate {args.config} --data {args.data} --overlay {out / 'fitted.toml'}")
    return 0


def layer_rmse(objective, table) -> dict[str, float]:
    """In-sample RMSE (pp) per layer from the fit's table."""
    import numpy as np

    return {layer: float(np.sqrt(np.mean(part["error_pp"] ** 2))) for layer, part in table.groupby("layer", sort=False)}


def token_unit_for(objective, best, observations, config, window) -> dict | None:
    """models.token_unit that makes the simulated customers' tokens of the IDC year equal its
    volume (a reporting scale, not a free parameter), or None without such a figure in the window."""
    from sim.calibration.targets import in_window

    rows = observations[(observations["market"] == "china_maas") & (observations["metric"] == "token_volume")]
    rows = rows[[in_window(p, window) for p in rows["period"]]]
    if rows.empty:
        return None
    row = rows.iloc[-1]
    units = objective.token_units(best, row["period"])
    if units <= 0:
        return None
    return {"token_unit": float(row["value"]) * 1e12 / units, "period": str(row["period"]),
            "observed_trillion": float(row["value"]), "token_units": units}


# --------------------------------------------------------------------- validate
def main_validate(args: argparse.Namespace) -> int:
    from sim.output import manifest, write_csv, write_json, write_text
    from sim.calibration import report
    from sim.calibration.overlay import apply_overlay
    from sim.calibration.replicate import process_pool, seeds_for
    from sim.calibration.validate import validate
    from sim.cli import UserError

    path, config, observations, fringe = _setup(args)
    out = _outputs(args, "validate", path)
    fit_text = args.fit
    if args.overlay is not None:
        config = apply_overlay(config, args.overlay)
        if fit_text is None:
            fit_text = read_overlay_window(args.overlay)
    if fit_text is None:
        raise UserError("--fit FIRST:LAST is needed when no --overlay gives the fit window")
    window = _window(fit_text)
    seeds = seeds_for(config, args.replications)
    started = time.perf_counter()
    with process_pool(args.workers) as pool:
        result = validate(config, observations, seeds, fit_window=window, fringe=fringe, pool=pool)
    elapsed = time.perf_counter() - started

    figs = args.figures or out
    info = {"command": _command(args, "validate"), "config": str(args.config), "config_name": config.name,
            "overlay": str(args.overlay) if args.overlay else None, "config_hash": config.hash(),
            "data": str(args.data), "data_sha256": report.file_digest(args.data), "seeds": seeds,
            "customers": config.run.customers, "quarters": config.run.quarters, "fringe": fringe}
    figures = write_figures(result, config, fringe, figs, window[1])
    write_csv(out / "targets.csv", result.targets)
    write_csv(out / "bands.csv", result.bands)
    write_json(out / "validation.json", report.validation_json(result, info))
    rel = [str(Path(f).resolve().relative_to(out.resolve(), walk_up=True)) for f in figures]
    write_text(out / "validation.md", report.validation_markdown(result, info, rel))
    write_json(out / "manifest.json", manifest(config, source=str(path), extra={"command": info["command"]}))
    print_summary(result)
    print(f"{result.replications} replications in {elapsed:.1f} s")
    print(f"wrote {out}/: validation.md, validation.json, targets.csv, bands.csv, manifest.json; figures in {figs}/")
    return 0


def read_overlay_window(path: Path) -> str | None:
    from sim.calibration.overlay import read_overlay
    from sim.config import read_toml

    read_overlay(path)  # checks the file
    return read_toml(path).get("calibration", {}).get("fit")


def write_figures(result, config, fringe: list[str], where: Path, fit_end: str) -> list[Path]:
    from sim.calibration import plots
    from sim.colors import provider_colours
    from sim.plots import save_figure

    stem = config.name
    names = [p.name for p in config.all_providers]
    ordered = [n for n in names if n not in fringe] + [n for n in names if n in fringe]
    t = result.targets
    files = [where / f"{stem}_shares.png", where / f"{stem}_concentration.png", where / f"{stem}_tokens.png"]
    colours = provider_colours(names)  # config order: the same colours as every other figure of this config
    save_figure(plots.share_bands_figure(result.bands, t, ordered, fit_end,
                                         f"{stem}: revenue share by provider, simulated bands vs Canalys",
                                         colours=colours), files[0])
    save_figure(plots.concentration_figure(result.bands, t, result.hhi_ranges, fit_end,
                                           f"{stem}: concentration"), files[1])
    start = config.demand.model_services_start
    shock = start if isinstance(start, str) else None
    save_figure(plots.token_figure(result.bands, t, ordered, shock or config.run.start, fit_end,
                                   f"{stem}: share of model tokens (model services from {shock or 'the start'})",
                                   colours=colours), files[2])
    return files


def print_summary(result) -> None:
    t = result.targets
    out = t[t["sample"] == "out"]
    if len(out):
        print("out-of-sample (median run - observed, pp):")
        for row in out.itertuples(index=False):
            print(f"  {row.metric:<12} {row.provider:<16} {row.period:<7} observed {row.observed:6.1f}  "
                  f"simulated {row.median:6.1f} [{row.p05:5.1f}, {row.p95:5.1f}]  error {row.error_pp:+6.1f}")
    ins = t[t["sample"] == "in"]
    if len(ins):
        print(f"in-sample: mean absolute error {ins['abs_error_pp'].mean():.2f} pp over {len(ins)} figures; "
              f"{100 * ins['in_90_band'].mean():.0f} % inside the 90 % band")
        from sim.calibration.validate import layer_table

        for row in layer_table(t).itertuples(index=False):
            print(f"  {row.sample}-sample {row.layer:<7} RMSE {row.rmse_pp:5.2f} pp, MAE {row.mae_pp:5.2f} pp over {row.n} "
                  f"figures, {100 * row.in_90_band:.0f} % inside the 90 % band")
    print("stylized facts:")
    for f in result.facts:
        print(f"  {f.number}. {f.name:<38} {'pass' if f.passed else 'FAIL'} ({100 * f.pass_rate:.0f} % of replications)")
