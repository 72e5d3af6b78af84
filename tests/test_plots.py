"""The share plot's end labels never sit on top of each other."""

import pandas as pd

from sim.plots import label_positions


def test_end_labels_are_pushed_apart_in_order():
    values = pd.Series({"A": 8.4, "B": 8.3, "C": 30.0, "D": 8.35})
    placed = label_positions(values, gap=1.0)
    heights = sorted(placed.values())
    assert all(b - a >= 1.0 - 1e-12 for a, b in zip(heights, heights[1:]))
    assert placed["B"] == 8.3 and placed["C"] == 30.0  # the lowest and a lone label stay at their value
    assert placed["B"] < placed["D"] < placed["A"]  # order kept


# ------------------------------------------------- issue 13, case 14: colours and end labels
import itertools  # noqa: E402

import matplotlib.colors as mcolors  # noqa: E402
import numpy as np  # noqa: E402
import pytest  # noqa: E402

from sim.colors import palette, provider_colours, provider_styles  # noqa: E402

TWELVE = ["Alibaba Cloud", "Volcano Engine", "Huawei Cloud", "Tencent Cloud", "Baidu AI Cloud", "China Telecom",
          "China Mobile", "China Unicom", "Kingsoft Cloud", "JD Cloud", "UCloud", "SenseTime"]


@pytest.mark.parametrize("n", [1, 5, 9, 10, 12, 20])
def test_palette_gives_distinct_colours_for_any_number_of_providers(n):
    rgb = np.array([mcolors.to_rgb(c) for c in palette(n)])
    assert len({tuple(c) for c in rgb}) == n
    closest = min((np.linalg.norm(a - b) for a, b in itertools.combinations(rgb, 2)), default=1.0)
    assert closest > 0.12, closest  # tab10 repeated its colours from the 11th provider on (distance 0)


def test_beyond_nine_providers_line_styles_are_a_second_cue():
    styles = provider_styles(TWELVE)
    pairs = {(s.color, s.linestyle) for s in styles.values()}
    assert len(pairs) == 12 and len({s.linestyle for s in styles.values()}) > 1
    assert {s.linestyle for s in provider_styles(TWELVE[:5]).values()} == {"-"}


def _line_colours(ax) -> dict[str, str]:
    return {line.get_label(): mcolors.to_hex(line.get_color()) for line in ax.get_lines()
            if not line.get_label().startswith("_")}


def test_share_plot_with_twelve_providers_names_every_line_inside_the_axes():
    from conftest import make_config, provider

    from sim.plots import share_figure
    from sim.simulate import simulate

    config = make_config([provider(n, initial_share=1 / 12) for n in TWELVE], customers=1500, quarters=6)
    result = simulate(config)
    fig = share_figure(result.providers, result.market)
    top = fig.axes[0]
    colours = _line_colours(top)
    assert len(set(colours.values())) == len(colours) == 12
    labels = [t for t in top.texts if t.get_text()]
    assert sorted(t.get_text().rsplit(" ", 1)[0] for t in labels) == sorted(TWELVE)  # names, not only numbers
    low, high = top.get_ylim()
    assert all(low <= t.xyann[1] <= high for t in labels), [t.xyann[1] for t in labels]
    heights = sorted(t.xyann[1] for t in labels)
    assert min(b - a for a, b in zip(heights, heights[1:])) > 0.02 * (high - low)  # no two on top of each other


def test_label_positions_stay_inside_the_range():
    values = pd.Series({f"p{i}": 99.0 - 0.01 * i for i in range(12)})
    placed = label_positions(values, gap=5.0, low=0.0, high=100.0)
    assert max(placed.values()) <= 100.0 and min(placed.values()) >= 0.0
    heights = sorted(placed.values())
    assert all(b - a >= 5.0 - 1e-9 for a, b in zip(heights, heights[1:]))


def test_a_provider_has_the_same_colour_in_every_figure():
    """shares.png, the experiment share figure, the calibration token figure and the dashboard: Huawei
    was orange in shares.png and green in the experiment figures."""
    from sim.calibration.plots import token_figure
    from sim.colors import config_provider_names
    from sim.config import load_config
    from sim.experiment.plots import shares_figure
    from sim.plots import share_figure
    from sim.simulate import simulate
    from sim.viz.figures import share_figure as dashboard_share_figure

    config = load_config("china_2025", ["run.customers=1500", "run.quarters=4"])
    names = config_provider_names(config)
    expected = provider_colours(names)
    result = simulate(config)
    run_fig = _line_colours(share_figure(result.providers, result.market).axes[0])

    p = result.providers
    quantiles = p.assign(variable="share_revenue", design_index=0, median=p["share_revenue"], q05=0.0, q25=0.0,
                         q75=p["share_revenue"], q95=p["share_revenue"])
    quantiles = quantiles.sort_values("provider")  # analysis tables come sorted by name, not config order
    exp_fig = _line_colours(shares_figure(quantiles, [0], {0: "base"}, metric="revenue", title="t",
                                          order=names).axes[0])

    bands = pd.concat([pd.DataFrame({"series": f"tokens_share:{n}", "step": p[p.provider == n]["step"],
                                     "quarter": p[p.provider == n]["quarter"], "p05": 1.0, "p25": 2.0, "median": 3.0,
                                     "p75": 4.0, "p95": 5.0}) for n in names])
    targets = pd.DataFrame(columns=["metric", "provider", "period", "observed", "sample", "qualifier"])
    ordered = names[::-1]  # calibrate orders the fringe last: colours must not follow that order
    cal_fig = _line_colours(token_figure(bands, targets, ordered, "2025Q1", "2025Q4", "t",
                                         colours=provider_colours(names)).axes[0])
    dash_fig = _line_colours(dashboard_share_figure(p, names, list(p["quarter"].unique()), "revenue").axes[0])

    for figure in (run_fig, exp_fig, cal_fig, dash_fig):
        for name, colour in figure.items():
            assert colour == expected[name].lower(), (name, colour, expected[name])
    assert "Huawei Cloud" in run_fig and "Huawei Cloud" in exp_fig and "Huawei Cloud" in dash_fig


# ------------------------------------------------- issue 13, case 15: values and shares in words
def test_stand_in_values_are_shown_in_words():
    from sim.config import load_config
    from sim.experiment.labels import value_text

    base = load_config("china_2025", ["run.quarters=32"])
    assert value_text("open_weights.release", 99, base) == "never"  # was '99'
    assert value_text("open_weights.release", np.int64(4), base) == "2026Q1"
    assert value_text("finance.import_cap", 1e12, base) == "none"  # was '1e+12'
    assert value_text("finance.import_cap", None, base) == "none"
    assert value_text("finance.import_cap", 150000.0, base) == "150,000"
    assert value_text("entrants.0.earliest", 40, base) == "never"  # a further instance: entry after the run
    assert value_text("choice.switching_base", 0.5, base) == "0.5"


def test_sweep_figures_say_never_none_and_per_cent(tmp_path, monkeypatch):
    from experiment_support import write_spec

    from sim.experiment.report import report
    from sim.experiment.runner import Plan, run_sweep
    from sim.experiment.spec import load_spec

    path = write_spec(tmp_path, """
        name = "words"
        base = "china_2025"
        replicates = 1
        [params.release]
        key = "open_weights.release"
        type = "int"
        values = [0, 99]
        [params.cap]
        key = "finance.import_cap"
        values = [150000.0, 1e12]
        [outcomes.porters]
        kind = "share"
        providers = "porters"
        label = "porters' final share of revenue"
        [[figures]]
        kind = "heatmap"
        x = "cap"
        y = "release"
        outcome = "porters"
        [[figures]]
        kind = "curve"
        x = "release"
        hue = "cap"
        outcome = "porters"
        [[figures]]
        kind = "shares"
        points = [0]
        title = "A user's title long enough to have run into the legend title beside it before"
        """, fixed="[fixed]\nrun.customers = 100\nrun.quarters = 4\n")
    out = tmp_path / "out"
    run_sweep(Plan.make(load_spec(path)), out, workers=0)
    import matplotlib.pyplot as plt

    from sim.experiment import plots

    figs = {}

    def keep(fig, stem, formats=("png",)):  # the figures themselves, to read their texts
        figs[stem.name] = fig
        return []

    monkeypatch.setattr(plots, "save", keep)
    report(out, formats=("png",), log=lambda *_: None)
    heat, curve, shares = (figs[n] for n in ("01_heatmap", "02_curve", "03_shares"))
    ax = heat.axes[0]
    assert [t.get_text() for t in ax.get_yticklabels()] == ["2025Q1", "never"]
    assert [t.get_text() for t in ax.get_xticklabels()] == ["150,000", "none"]
    cells = [float(t.get_text().split("\n")[0]) for t in ax.texts]  # the mean; its interval is the line below
    assert max(cells) > 1.0, cells  # per cent, not a fraction
    assert "%" in heat.axes[1].get_ylabel()
    ax = curve.axes[0]
    assert [t.get_text() for t in ax.get_xticklabels()] == ["2025Q1", "never"]
    assert sorted(t.get_text() for t in ax.get_legend().get_texts()) == ["cap = 150,000", "cap = none"]
    assert "(%)" in ax.get_ylabel()
    shares.canvas.draw()
    title, legend = shares._suptitle.get_window_extent(), shares.legends[0].get_window_extent()
    assert not title.overlaps(legend)
    plt.close("all")
