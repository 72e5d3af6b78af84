"""The dashboard without a browser: controls -> config, the dashboard model, its tables and
plots, the page rendered with ``solara.render`` (click Step, move a slider, Reset), the CLI."""

from __future__ import annotations

import importlib
import importlib.util
import os

import numpy as np
import pytest

from sim.cli import main
from sim.config import ConfigError, load_config
from sim.model import Market
from sim.viz import figures
from sim.viz.params import ALL, config_for, controls, defaults, settings_text


def require(module: str):
    """Import ``module``; in CI (CI=true) a missing one fails the test instead of skipping it."""
    try:
        return importlib.import_module(module)
    except ImportError:
        if os.environ.get("CI", "").lower() == "true":
            pytest.fail(f"{module} is needed in CI: install the viz extra (pip install -e '.[viz]')")
        pytest.skip(f"{module} not installed (the viz extra)")


@pytest.fixture(scope="module")
def china():
    return load_config("china_2025")


@pytest.fixture(scope="module")
def small():
    return load_config("minimal")


# ------------------------------------------------------------------ controls -> config
@pytest.mark.parametrize("preset", ["minimal", "china_2025", "global_2025"])
def test_untouched_controls_reproduce_the_base_config(preset):
    base = load_config(preset)
    assert config_for(base, **defaults(base)).hash() == base.hash()


def test_lock_in_multiplier_for_all_or_one_provider(china):
    every = config_for(china, lock_in=2.0)
    for before, after in zip(china.providers, every.providers):
        assert after.lock_in == pytest.approx(min(20.0, 2.0 * before.lock_in))
    one = config_for(china, lock_in=3.0, lock_in_target="Volcano Engine")
    for before, after in zip(china.providers, one.providers):
        expected = 3.0 * before.lock_in if before.name == "Volcano Engine" else before.lock_in
        assert after.lock_in == pytest.approx(expected)
    assert config_for(china, lock_in=100.0).providers[0].lock_in == 20.0  # the config's upper bound
    with pytest.raises(ValueError, match="not a provider"):
        config_for(china, lock_in_target="Nobody")


def test_capex_multiplier_keeps_differences_between_providers(china):
    shares = [p.capex_share for p in china.providers]
    doubled = [p.capex_share for p in config_for(china, capex=2.0).providers]
    assert doubled == pytest.approx([min(5.0, 2 * s) for s in shares])
    assert [p.capex_share for p in config_for(china, capex=0.0).providers] == [0.0] * len(shares)


def test_open_weights_release_quarter_and_never(china):
    q = china.run.quarters
    later = config_for(china, open_release=6, open_capability=0.4)
    assert later.open_weights.enabled and later.quarter_offset(later.open_weights.release) == 6
    assert later.open_weights.capability == 0.4
    assert not config_for(china, open_release=q).open_weights.enabled


def test_import_cap_toggle_and_value(china, small):
    assert config_for(china, import_cap_on=False).finance.import_cap is None
    assert config_for(china, import_cap_on=True, import_cap=40_000).finance.import_cap == 40_000
    assert small.finance.import_cap is None
    assert config_for(small, import_cap_on=True, import_cap=5_000).finance.import_cap == 5_000


def test_direct_controls_and_integer_seed(china):
    cfg = config_for(china, flywheel=3.5, entry_compute=250_000, customers=2_000, seed="17")
    assert (cfg.capability.flywheel, cfg.entry.entry_compute, cfg.run.customers) == (3.5, 250_000, 2_000)
    assert cfg.run.seed == 17 and isinstance(cfg.run.seed, int)  # a text seed is coerced (mesa#3516)


def test_out_of_range_value_is_a_config_error_naming_the_key(small):
    with pytest.raises(ConfigError) as err:
        config_for(small, customers=5)
    assert "dashboard" in err.value.problems[0] and "run.customers" in err.value.problems[0]


def test_controls_start_at_the_base_values_and_fit_their_ranges(china, small):
    for base in (china, small):
        for name, spec in controls(base).items():
            if spec["type"].startswith("Slider"):
                assert spec["min"] <= spec["value"] <= spec["max"], name
        assert controls(base)["lock_in_target"]["values"] == [ALL, *[p.name for p in base.all_providers]]
    c = controls(china)
    assert c["seed"]["value"] == china.run.seed and c["seed"]["type"] == "SliderInt"
    assert c["customers"]["value"] == china.run.customers
    assert c["import_cap_on"]["value"] is True and c["import_cap"]["value"] == int(china.finance.import_cap)
    assert controls(small)["open_release"]["value"] == small.run.quarters  # minimal has no open weights


def test_settings_text_reads_the_config(china, small):
    text = settings_text(config_for(china, open_release=4, lock_in=1.5), {"lock_in": 1.5, "lock_in_target": ALL})
    assert "lock-in x1.5 (all providers)" in text and "from 2026Q1 (quarter 4)" in text
    assert "import cap 150,000" in text and "seed 2025" in text
    assert "no open weights" in settings_text(small, {}) and "no import cap" in settings_text(small, {})


# ------------------------------------------------------------------ the dashboard model
def test_dashboard_market_runs_exactly_like_market(small):
    from sim.viz.market import DashboardMarket

    dash = DashboardMarket(base=small, lock_in=2.0, seed=5)
    plain = Market(config=config_for(small, lock_in=2.0, seed=5))
    for _ in range(6):
        dash.step()
        plain.step()
    for a, b in zip(dash.recorder.frames(), plain.recorder.frames()):
        assert a.equals(b)
    assert [p.lock_in for p in dash.active_providers()] == [3.0, 1.0]


def test_dashboard_market_stops_at_the_horizon_and_builds_without_arguments():
    from sim.viz.market import DashboardMarket

    model = DashboardMarket(customers=200)  # Mesa harnesses call Model() with keywords only
    assert model.config.name == "minimal" and model.running
    for _ in range(model.config.run.quarters - 1):
        model.step()
    assert model.running
    model.step()
    assert not model.running and model.t == model.config.run.quarters


# ------------------------------------------------------------------ table and plots
def test_provider_table_before_and_after_stepping(china):
    from sim.viz.market import DashboardMarket

    model = DashboardMarket(base=china, customers=3_000)
    start = figures.provider_table(model, model.recorder.frames()[0], "revenue")
    assert start["share"].sum() == pytest.approx(1.0)  # installed compute shares at the start
    assert list(start["provider"]) == model.names
    for _ in range(3):
        model.step()
    providers = model.recorder.frames()[0]
    after = figures.provider_table(model, providers, "tokens")
    last = providers[providers["step"] == 2].set_index("provider")
    assert np.allclose(after["share"], last.loc[model.names, "share_tokens"])
    assert np.allclose(after["cash"], last.loc[model.names, "cash"])
    html = figures.table_html(after, "tokens")
    assert html.count("<tr") == len(model.names) + 1 and "%" in html and "share of model tokens" in html
    assert "Telecom &amp; others" in html  # names are escaped


def test_table_marks_a_provider_that_is_not_active(small):
    from sim.config import with_overrides
    from sim.viz.market import DashboardMarket

    base = with_overrides(small, {"entrants": [{"name": "NewCo", "bankroll": 0.0, "initial_share": 0.0}]})
    model = DashboardMarket(base=base, lock_in=2.0, lock_in_target="NewCo")
    assert model.config.entrants[0].lock_in == 2.0 and model.config.providers[0].lock_in == small.providers[0].lock_in
    model.step()
    table = figures.provider_table(model, model.recorder.frames()[0], "revenue")
    assert list(table["provider"]) == ["FullStack", "Porter", "NewCo (pending)"]
    html = figures.table_html(table, "revenue")
    assert "<td>NewCo (pending)</td>" in html and "<td>-</td>" in html and "nan" not in html.lower()


def test_figures_draw_one_line_per_provider_and_the_hhi(small):
    from sim.viz.market import DashboardMarket

    model = DashboardMarket(base=small)
    labels = [f"q{i}" for i in range(small.run.quarters)]
    empty = figures.share_figure(model.recorder.frames()[0], model.names, labels, "revenue")
    assert len(empty.axes[0].lines) == 0 and "press Step" in empty.axes[0].texts[0].get_text()
    for _ in range(4):
        model.step()
    providers, market, _ = model.recorder.frames()
    share = figures.share_figure(providers, model.names, labels, "compute")
    assert [line.get_label() for line in share.axes[0].lines] == model.names
    assert np.allclose(share.axes[0].lines[0].get_ydata(), 100 * providers[providers.provider == "FullStack"]["share_compute"])
    hhi = figures.hhi_figure(market, labels, "revenue")
    assert np.allclose(hhi.axes[0].lines[-1].get_ydata(), market["hhi_revenue"])
    assert share.axes[0].get_xlim() == (0, small.run.quarters - 1)  # the whole run's time axis from the start


# ------------------------------------------------------------------ the page, rendered without a browser
def test_page_renders_steps_and_resets_with_a_slider_value(small):
    solara = require("solara")
    v = require("ipyvuetify")
    from sim.viz.market import DashboardMarket
    from sim.viz.page import make_page

    page = make_page(small)

    @solara.component
    def App():  # the server wraps pages in an AppLayout; the sidebar needs it
        with solara.AppLayout():
            page()

    _, rc = solara.render(App(), handle_error=False)

    def table_html():
        return rc.find(meta_ref="provider-table").widget.unsafe_innerHTML

    def heading():
        return table_html().split("<table")[0]

    def plot_png():
        return rc.find(meta_ref="share-plot").widget.value

    labels = sorted(s.label for s in rc.find(v.Slider).widgets)
    assert {"Lock-in (x)", "Data flywheel", "Open-weights quarter", "Open-weights level", "Capex rate (x)",
            "Entry cost (GPUs)", "Import cap (GPUs/q)", "Customers", "Seed"} <= set(labels)
    assert "nothing simulated yet" in heading()
    first_table, first_png = table_html(), plot_png()

    rc.find(v.Slider, label="Lock-in (x)").widget.v_model = 1.5
    rc.find(v.Slider, label="Seed").widget.v_model = 9
    rc.find(v.Btn, children=["Reset"]).widget.click()
    expected = config_for(small, lock_in=1.5, seed=9)
    assert f"hash {expected.hash()}" in heading() and "lock-in x1.5" in heading()
    step = rc.find(v.Btn, children=["Step"]).widget
    for _ in range(3):
        step.click()
    assert "After 3 quarter(s)" in heading()
    assert plot_png() != first_png and table_html() != first_table

    revenue_png = plot_png()
    rc.find(v.BtnToggle).widget.v_model = 1  # the metric picker: revenue, compute, tokens, customers
    assert "share of compute demand" in table_html() and plot_png() != revenue_png
    rc.find(v.BtnToggle).widget.v_model = 0

    twin = DashboardMarket(base=small, lock_in=1.5, seed=9)  # the same run outside the UI
    for _ in range(3):
        twin.step()
    want = figures.table_html(figures.provider_table(twin, twin.recorder.frames()[0], "revenue"), "revenue")
    assert table_html().endswith(want)


# ------------------------------------------------------------------ CLI
def test_cli_rejects_bad_config_and_port(capsys):
    assert main(["dashboard", "no_such_preset"]) == 2
    assert "no_such_preset" in capsys.readouterr().err
    assert main(["dashboard", "minimal", "--port", "70000"]) == 2
    assert "--port 70000" in capsys.readouterr().err


def test_cli_rejects_a_port_in_use(capsys):
    import socket

    with socket.socket() as busy:
        busy.bind(("127.0.0.1", 0))
        busy.listen()
        port = busy.getsockname()[1]
        assert main(["dashboard", "minimal", "--port", str(port)]) == 2
    assert f"port {port} on 127.0.0.1 is in use" in capsys.readouterr().err


def test_cli_explains_a_missing_viz_extra(monkeypatch, capsys):
    real = importlib.util.find_spec
    monkeypatch.setattr(importlib.util, "find_spec", lambda name, *a: None if name == "solara" else real(name, *a))
    assert main(["dashboard", "minimal"]) == 2
    assert "viz extra" in capsys.readouterr().err


def test_server_command_is_local_and_quiet():
    from sim.commands.dashboard import server_command, server_env

    cmd = server_command(8123)
    assert cmd[cmd.index("--host") + 1] == "127.0.0.1" and cmd[cmd.index("--port") + 1] == "8123"
    assert "--no-check-version" in cmd and "sim.viz.app" in cmd
    env = server_env("/x/minimal.toml")
    assert env["AICLOUD_DASHBOARD_CONFIG"] == "/x/minimal.toml" and env["SOLARA_TELEMETRY_MIXPANEL_ENABLE"] == "False"


# ------------------------------------------------- issue 13 case 16, issue 14 item 7: controls
def _render(base):
    solara = require("solara")
    from sim.viz.page import make_page

    page = make_page(base)

    @solara.component
    def App():
        with solara.AppLayout():
            page()

    return solara.render(App(), handle_error=False)[1]


def test_at_the_last_quarter_play_and_step_are_off_and_the_page_says_why(small):
    v = require("ipyvuetify")
    from sim.config import with_overrides

    rc = _render(with_overrides(small, {"run.quarters": 3}))
    step = rc.find(v.Btn, children=["Step"]).widget
    play = rc.find(v.Btn, children=["▶"]).widget
    assert not step.disabled and not play.disabled
    assert not rc.find(meta_ref="run-end-note")
    for _ in range(3):
        step.click()
    assert step.disabled and play.disabled  # Mesa left Step off and Play a greyed pause with no reason
    assert not rc.find(v.Btn, children=["❚❚"])
    note = rc.find(meta_ref="run-end-note").widget.children[0]
    assert "all 3 quarters (2025Q1 to 2025Q3) are simulated" in note and "Reset" in note
    rc.find(v.Btn, children=["Reset"]).widget.click()
    assert not rc.find(v.Btn, children=["Step"]).widget.disabled and not rc.find(meta_ref="run-end-note")


def test_no_mesa_defaults_and_every_slider_shows_its_value(small):
    v = require("ipyvuetify")
    rc = _render(small)
    texts = " ".join(str(w.label) for w in rc.find(v.Checkbox).widgets + rc.find(v.Slider).widgets)
    assert "Use Threads" not in texts and "Render Interval" not in texts
    assert not rc.find(v.Tab), "no 'Page 0' tab"
    value = rc.find(meta_ref="value-lock_in").widget
    assert value.children[0] == "1.0"
    rc.find(v.Slider, label="Lock-in (x)").widget.v_model = 2.5
    assert rc.find(meta_ref="value-lock_in").widget.children[0] == "2.5"
    assert rc.find(meta_ref="value-customers").widget.children[0] == f"{small.run.customers:,}"
    rc.find(v.Slider, label="Seed").widget.v_model = 2025
    assert rc.find(meta_ref="value-seed").widget.children[0] == "2025"  # a seed, not an amount
    assert rc.find(meta_ref="value-open_release").widget.children[0] == "never"  # minimal: no open weights
    rc.find(v.Slider, label="Open-weights quarter").widget.v_model = 4
    assert rc.find(meta_ref="value-open_release").widget.children[0] == "2026Q1"
    assert rc.find(meta_ref="value-import_cap").widget.children[0] == "off"  # the cap is off in minimal
    slider_labels = {w.label for w in rc.find(v.Slider).widgets}
    assert len(slider_labels) == len(controls(small)) - 2 + 1  # the sliders (not the select, checkbox), play speed


def test_a_quarter_that_fails_is_shown_in_the_panel_not_as_a_traceback(small, monkeypatch):
    v = require("ipyvuetify")
    from sim import guard
    from sim.errors import NonFiniteState

    def failing(market):
        if market.t == 1:
            raise NonFiniteState("quarter 2025Q2 (quarter 2 of 20): FullStack's cash became NaN in the money mechanism")

    monkeypatch.setattr(guard, "check", failing)
    rc = _render(small)
    step = rc.find(v.Btn, children=["Step"]).widget
    step.click()
    assert not rc.find(v.Alert)
    step.click()
    (alert,) = rc.find(v.Alert).widgets
    assert "FullStack's cash became NaN" in str(alert.children) and "press Reset" in str(alert.children)
    assert rc.find(v.Btn, children=["Step"]).widget.disabled  # the model is mid-quarter: only Reset goes on
    rc.find(v.Btn, children=["Reset"]).widget.click()
    assert not rc.find(v.Alert) and not rc.find(v.Btn, children=["Step"]).widget.disabled
