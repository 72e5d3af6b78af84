"""Solara components of the dashboard: share and HHI plots, the provider table.

Each takes the model and re-renders when Mesa's controller bumps its update
counter (after Step, during Play, on Reset).  The share metric is one
reactive value per browser session, shared by the plots and the table.
"""

from __future__ import annotations

from html import escape

import solara
from mesa.visualization.utils import update_counter

from sim import quarters
from sim.metrics import METRICS
from sim.viz import figures
from sim.viz.params import settings_text

metric = solara.reactive("revenue")

CSS = """
.provider-table { border-collapse: collapse; font-size: 13px; width: 100%; }
.provider-table th, .provider-table td { padding: 3px 8px; text-align: right; border-bottom: 1px solid #ddd; }
.run-heading { font-size: 13px; margin-bottom: 6px; }
.provider-table-box { overflow-x: auto; }
.provider-table td:first-child { white-space: nowrap; }
.table-note { font-size: 11px; color: #666; margin-top: 4px; }
.provider-table th:first-child, .provider-table td:first-child { text-align: left; }
"""


def quarter_labels(model) -> list[str]:
    return quarters.labels(model.config.run.start, model.config.run.quarters)


@solara.component
def MetricPicker():
    solara.ToggleButtonsSingle(value=metric, values=list(METRICS), dense=True)


@solara.component
def SharePlot(model):
    update_counter.get()
    key = [model, model.t, metric.value]

    def draw():
        providers, _, _ = model.recorder.frames()
        return figures.share_figure(providers, model.names, quarter_labels(model), metric.value)

    fig = solara.use_memo(draw, key)
    with solara.Column(classes=["share-plot"]):
        MetricPicker()
        solara.FigureMatplotlib(fig, format="png", dependencies=key).meta(ref="share-plot")


@solara.component
def HhiPlot(model):
    update_counter.get()
    key = [model, model.t, metric.value]

    def draw():
        _, market, _ = model.recorder.frames()
        return figures.hhi_figure(market, quarter_labels(model), metric.value)

    fig = solara.use_memo(draw, key)
    with solara.Column(classes=["hhi-plot"]):
        solara.FigureMatplotlib(fig, format="png", dependencies=key).meta(ref="hhi-plot")


@solara.component
def ProviderTable(model):
    update_counter.get()
    providers, _, _ = model.recorder.frames()
    table = figures.provider_table(model, providers, metric.value)
    with solara.Column(classes=["provider-box"]):
        solara.Style(CSS)
        # Plain HTML, not solara.Markdown: Markdown loads KaTeX from a CDN, which is not there offline.
        # Heading and table are one widget so that they always change together.
        solara.HTML(tag="div", unsafe_innerHTML=heading_html(model) + figures.table_html(table, metric.value),
                    classes=["provider-table-box"]).meta(ref="provider-table")


def heading_html(model) -> str:
    if model.t == 0:
        when = f"Start of {model.quarter_label}: nothing simulated yet (share = installed compute demand)"
    else:
        last = quarters.label(quarters.parse(model.quarter_label) - 1)
        when = f"After {model.t} quarter(s), last simulated {last}"
    config = model.config
    return (f"<div class='run-heading'><b>{escape(when)}</b><br>{escape(settings_text(config, model.controls))}"
            f"<br><small>config {escape(config.name)}, hash {config.hash()}</small></div>")
