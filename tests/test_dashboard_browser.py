"""End to end in a real browser: ``aicloud dashboard`` serves the page, headless Chromium
(Debian's, driven by Playwright through ``executable_path``) moves a slider, resets,
steps and plays, and we check that the plots and the table changed.

Screenshot: test-artifacts/dashboard.png.  In CI (CI=true) a missing browser or
Playwright fails the test; elsewhere it is skipped.
"""

from __future__ import annotations

import importlib.util
import os
import re
import shutil
import socket
import subprocess
import sys
import time
from pathlib import Path

import pytest

from sim.config import load_config
from sim.viz.params import config_for

pytestmark = pytest.mark.browser

ROOT = Path(__file__).resolve().parent.parent
ARTIFACTS = ROOT / "test-artifacts"
CHROMIUM_FLAGS = ["--no-sandbox", "--disable-gpu", "--disable-quic", "--no-first-run", "--disable-background-networking",
                  "--disable-component-update", "--disable-sync", "--disable-dev-shm-usage"]
STARTUP_TIMEOUT = 60  # seconds for the server to accept connections


def unavailable(reason: str):
    if os.environ.get("CI", "").lower() == "true":
        pytest.fail(f"browser test cannot run in CI: {reason}")
    pytest.skip(reason)


def chromium_path() -> str:
    path = os.environ.get("AICLOUD_CHROMIUM") or shutil.which("chromium") or shutil.which("chromium-browser")
    if not path:
        unavailable("no chromium on PATH (apt-get install chromium chromium-driver)")
    return path


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def wait_for_port(port: int, server: subprocess.Popen, log: Path) -> None:
    deadline = time.monotonic() + STARTUP_TIMEOUT
    while time.monotonic() < deadline:
        if server.poll() is not None:
            pytest.fail(f"dashboard server exited with {server.returncode}:\n{log.read_text()}")
        try:
            socket.create_connection(("127.0.0.1", port), timeout=0.5).close()
            return
        except OSError:
            time.sleep(0.2)
    pytest.fail(f"dashboard server did not listen on port {port} within {STARTUP_TIMEOUT} s:\n{log.read_text()}")


@pytest.fixture
def server(tmp_path):
    """``aicloud dashboard minimal`` on a free port; yields (url, log path)."""
    if importlib.util.find_spec("solara") is None:
        unavailable("solara is missing (pip install -e '.[viz]')")
    port = free_port()
    log = tmp_path / "server.log"
    with log.open("w") as out:
        proc = subprocess.Popen([sys.executable, "-m", "sim", "dashboard", "minimal", "--port", str(port)],
                                cwd=ROOT, stdout=out, stderr=subprocess.STDOUT)
    try:
        wait_for_port(port, proc, log)
        yield f"http://127.0.0.1:{port}/", log
    finally:
        proc.terminate()
        try:
            proc.wait(timeout=10)
        except subprocess.TimeoutExpired:
            proc.kill()
            proc.wait()


@pytest.fixture
def page(tmp_path):
    executable = chromium_path()
    try:
        from playwright.sync_api import sync_playwright
    except ImportError:
        unavailable("the playwright package is missing (pip install -e '.[dev]')")
    with sync_playwright() as pw:
        browser = pw.chromium.launch(executable_path=executable, headless=True, args=CHROMIUM_FLAGS)
        context = browser.new_context(viewport={"width": 1500, "height": 1050})
        page = context.new_page()
        page.set_default_timeout(20_000)
        page.errors = []
        page.on("pageerror", lambda exc: page.errors.append(str(exc)))
        page.on("requestfailed", lambda req: page.errors.append(f"request failed: {req.url}"))
        yield page
        browser.close()


def table_rows(page) -> dict[str, dict[str, str]]:
    """The provider table as {provider: {column: cell text}}."""
    headers = [h.strip() for h in page.locator(".provider-table thead th").all_inner_texts()]
    rows = {}
    for row in page.locator(".provider-table tbody tr").all():
        cells = [c.strip() for c in row.locator("td").all_inner_texts()]
        rows[cells[0]] = dict(zip(headers, cells))
    return rows


def image_loaded(page, selector: str) -> None:
    page.wait_for_function("s => { const i = document.querySelector(s); return i && i.complete && i.naturalWidth > 0; }",
                           arg=selector)


def wait_for_image(locator, *, differs_from: str | None = None, equals: str | None = None,
                   timeout: float = 30.0) -> bool:
    """Poll a plot's image data until it differs from (or equals) a reference: the image
    arrives over the websocket separately from the table, so it may lag a moment.  The
    figures are drawn deterministically, so the same plot gives the same data URL, which is
    a sturdier comparison than screenshots of the rendered page."""
    deadline = time.monotonic() + timeout
    while True:
        data = locator.get_attribute("src")
        if (differs_from is not None and data != differs_from) or (equals is not None and data == equals):
            return True
        if time.monotonic() > deadline:
            return False
        time.sleep(0.25)


def test_dashboard_in_headless_chromium(page, server):  # page first: no browser, no server started
    from playwright.sync_api import expect

    url, log = server
    base = load_config("minimal")
    page.goto(url)
    step = page.get_by_role("button", name="Step", exact=True)
    reset = page.get_by_role("button", name="Reset", exact=True)
    heading = page.locator(".run-heading")
    share_plot, hhi_plot = page.locator(".share-plot img"), page.locator(".hhi-plot img")
    expect(step).to_be_visible(timeout=30_000)
    expect(page.get_by_text("aicloud-sim: minimal")).to_be_visible()
    expect(heading).to_contain_text("nothing simulated yet")
    expect(heading).to_contain_text(f"hash {base.hash()}")
    start_table = table_rows(page)
    assert set(start_table) == {"FullStack", "Porter"}
    assert start_table["FullStack"]["lock-in"] == "1.50"
    image_loaded(page, ".share-plot img")
    image_loaded(page, ".hhi-plot img")
    share_before, hhi_before = share_plot.get_attribute("src"), hhi_plot.get_attribute("src")

    # Move the lock-in slider from x1.0 to x2.0 with the keyboard (step 0.1), then Reset.
    slider = page.get_by_role("slider", name="Lock-in (x)")
    slider.focus()
    for _ in range(10):
        slider.press("ArrowRight")
    expect(slider).to_have_attribute("aria-valuenow", "2")
    reset.click()
    expect(heading).to_contain_text("lock-in x2.0")
    expect(heading).to_contain_text(f"hash {config_for(base, lock_in=2.0).hash()}")
    reset_table = table_rows(page)
    assert wait_for_image(share_plot, equals=share_before), "Reset did not clear the share plot"
    assert reset_table["FullStack"]["lock-in"] == "3.00" and reset_table["Porter"]["lock-in"] == "1.00"

    for n in range(1, 4):
        step.click()
        expect(heading).to_contain_text(f"After {n} quarter(s)")
    stepped = table_rows(page)
    for name in ("FullStack", "Porter"):
        assert stepped[name]["cash"] != reset_table[name]["cash"], name
        assert stepped[name]["share"] != reset_table[name]["share"], name
    assert wait_for_image(share_plot, differs_from=share_before), "the share plot did not change"
    assert wait_for_image(hhi_plot, differs_from=hhi_before), "the HHI plot did not change"
    share_stepped = share_plot.get_attribute("src")

    # Play runs on by itself; pause stops it.
    page.get_by_role("button", name="▶").click()
    expect(heading).to_contain_text(re.compile(r"After ([5-9]|\d\d) quarter"), timeout=60_000)
    page.get_by_role("button", name="❚❚").click()
    expect(page.get_by_role("button", name="▶")).to_be_visible()
    assert wait_for_image(share_plot, differs_from=share_stepped), "the share plot did not move during play"

    # Play on to the end of the run: Play and Step switch off, and the page says why (issue 13, case 16).
    page.get_by_role("button", name="▶").click()
    expect(page.get_by_text("End of the run")).to_be_visible(timeout=90_000)
    expect(heading).to_contain_text(f"After {base.run.quarters} quarter(s)")
    expect(page.get_by_role("button", name="▶")).to_be_disabled()
    expect(step).to_be_disabled()
    assert not page.get_by_role("button", name="❚❚").count()
    body = page.locator("body").inner_text()
    for mesa_default in ("Page 0", "PAGE 0", "Use Threads", "Render Interval"):  # issue 14, item 7
        assert mesa_default not in body, mesa_default

    ARTIFACTS.mkdir(exist_ok=True)
    page.screenshot(path=str(ARTIFACTS / "dashboard.png"))
    assert not page.get_by_role("alert").count(), page.get_by_role("alert").all_inner_texts()
    print("page errors:", page.errors)
    assert page.errors == [], page.errors
    assert "Traceback" not in log.read_text(), log.read_text()
