"""Solara components for running the dashboard's model and setting its controls.

In place of Mesa's SolaraViz sidebar, whose defaults mean nothing to our users (a "Page 0"
tab, "Use Threads", "Render Interval", a "Time: 3.0" counter): Reset / Play / Step, a play
speed, and the controls of ``sim.viz.params`` with their values shown beside them.  At the end
of the run Play and Step are switched off and a note says why and what to do.
"""

from __future__ import annotations

import time
from typing import Any, Callable

import solara
from mesa.visualization.utils import force_update, update_counter

from sim import quarters

CSS = """
.control-row { align-items: center; flex-wrap: nowrap; }
.control-value { min-width: 64px; text-align: right; font-size: 13px; font-variant-numeric: tabular-nums; }
.run-note { font-size: 12px; color: #555; margin-top: 6px; }
"""


def value_text(spec: dict[str, Any], value: Any) -> str:
    """A control's value as shown beside it: thousands separated, decimals as the step needs."""
    if "quarters_from" in spec:  # a quarter offset: its label, or never at the end of the run
        if int(value) >= spec["max"]:
            return "never"
        return quarters.label(quarters.parse(spec["quarters_from"]) + int(value))
    if spec["type"] == "SliderInt":
        return str(int(value)) if spec.get("plain") else f"{int(value):,}"  # a seed is a name, not an amount
    step = float(spec.get("step", 0.1))
    decimals = max(0, min(3, len(f"{step:g}".split(".")[1]) if "." in f"{step:g}" else 0))
    return f"{float(value):,.{decimals}f}"


def end_note(model) -> str:
    """Why Play and Step are off at the end of the run (empty while the run goes on)."""
    if model.running:
        return ""
    config = model.config
    first = config.run.start
    last = quarters.label(quarters.parse(first) + config.run.quarters - 1)
    return (f"End of the run: all {config.run.quarters} quarters ({first} to {last}) are simulated, so Play and "
            f"Step are off. Press Reset to run again; the run length is run.quarters in the config.")


@solara.component
def Settings(specs: dict[str, dict[str, Any]], values: solara.Reactive[dict[str, Any]]):
    """The controls (sliders, a select, a checkbox) with their current values; applied on Reset."""
    solara.Style(CSS)

    def setter(name: str) -> Callable[[Any], None]:
        return lambda value: values.set({**values.value, name: value})

    for name, spec in specs.items():
        value = values.value[name]
        kind = spec["type"]
        if kind in ("SliderInt", "SliderFloat"):
            slider = solara.SliderInt if kind == "SliderInt" else solara.SliderFloat
            # The import cap's value matters only while the cap is on.
            off = name == "import_cap" and not values.value.get("import_cap_on", True)
            with solara.Row(classes=["control-row"], gap="4px"):
                slider(spec["label"], value=value, on_value=setter(name), min=spec["min"], max=spec["max"],
                       step=spec["step"], disabled=off)
                solara.Text("off" if off else value_text(spec, value), classes=["control-value"]).meta(ref=f"value-{name}")
        elif kind == "Select":
            solara.Select(spec["label"], value=value, values=spec["values"], on_value=setter(name))
        elif kind == "Checkbox":
            solara.Checkbox(label=spec["label"], value=value, on_value=setter(name))
        else:
            raise ValueError(f"{kind} is not a control type of the dashboard")


@solara.component
def RunControls(model: solara.Reactive, make_model: Callable[[], Any], play_interval: int = 150):
    """Reset (a new model from the settings), Play/Pause and Step; off at the end of the run, with a note."""
    update_counter.get()
    playing = solara.use_reactive(False)
    error = solara.use_reactive(None)
    interval = solara.use_reactive(play_interval)
    failed = error.value is not None  # a quarter that failed leaves the model mid-quarter: only Reset goes on
    at_end = not model.value.running or failed

    def advance() -> bool:
        """One quarter; False (and the error shown) if the model cannot go on."""
        try:
            model.value.step()
        except Exception as exc:  # e.g. NonFiniteState: shown in the page, never a traceback
            error.set(str(exc))
            return False
        force_update()
        return model.value.running

    def play_loop():
        while playing.value and model.value.running:
            time.sleep(interval.value / 1000)
            if not playing.value:
                break
            if not advance():
                break
        playing.set(False)

    solara.lab.use_task(play_loop, dependencies=[playing.value], prefer_threaded=True)

    def reset():
        playing.set(False)
        error.set(None)
        try:
            model.set(make_model())
        except Exception as exc:  # a control out of the config's range: say so, keep the old run
            error.set(str(exc))
        force_update()

    def step():
        if model.value.running:
            advance()

    with solara.Row(justify="space-between"):
        solara.Button(label="Reset", color="primary", on_click=reset)
        solara.Button(label="❚❚" if playing.value and not at_end else "▶", color="primary",
                      on_click=lambda: playing.set(not playing.value), disabled=at_end)
        solara.Button(label="Step", color="primary", on_click=step, disabled=playing.value or at_end)
    with solara.Row(classes=["control-row"], gap="4px"):
        solara.SliderInt("Play speed (ms per quarter)", value=interval, min=10, max=1000, step=10)
        solara.Text(f"{interval.value:,}", classes=["control-value"])
    if at_end and not failed:
        solara.Text(end_note(model.value), classes=["run-note"]).meta(ref="run-end-note")
    if failed:
        solara.Error(label=f"{error.value} (Play and Step are off; press Reset to start again)")
