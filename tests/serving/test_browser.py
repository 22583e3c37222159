"""The Insight UI in headless Chromium (Playwright): click through every tab, wait until every plot of the
tab holds a drawn figure (an image that has loaded, its status tracker idle), non-blank screenshots."""

from __future__ import annotations

import os
import shutil
import socket
import threading
import time

import pytest

CHROMIUM = os.environ.get("EVOSPIKENET_CHROMIUM", "/usr/bin/chromium")
FLAGS = ["--headless", "--no-sandbox", "--disable-gpu", "--disable-quic", "--no-first-run",
         "--disable-background-networking", "--disable-component-update", "--disable-sync"]  # fmt: skip

pytestmark = [
    pytest.mark.browser,
    pytest.mark.skipif(not (os.path.exists(CHROMIUM) or shutil.which("chromium")),
                       reason="chromium missing: run scripts/install_chromium.sh (apt-get install chromium)"),
]  # fmt: skip


def _free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


@pytest.fixture(scope="module")
def sim_run(tmp_path_factory):
    """A saved simulation run with two analysis plots."""
    from matplotlib.figure import Figure

    run = tmp_path_factory.mktemp("sim-run")
    (run / "analysis").mkdir()
    for name, values in (("rates", [3, 1, 4, 1, 5, 9, 2, 6]), ("raster", [2, 7, 1, 8, 2, 8])):
        fig = Figure(figsize=(4, 3))
        fig.subplots().plot(values)
        fig.savefig(run / "analysis" / f"{name}.png")
    return run


@pytest.fixture(scope="module")
def ui_server(services, sim_run):
    """uvicorn on 127.0.0.1 serving the API with the UI mounted at /ui (the same app the ingress builds)."""
    import uvicorn

    from serving.api import create_api
    from serving.local import LocalBackend
    from serving.ui import build_ui

    port = _free_port()
    url = f"http://127.0.0.1:{port}"
    app = create_api(LocalBackend(services), ui=build_ui(url, sim_run=str(sim_run)))
    server = uvicorn.Server(uvicorn.Config(app, host="127.0.0.1", port=port, log_level="warning"))
    th = threading.Thread(target=server.run, daemon=True)
    th.start()
    for _ in range(200):
        if server.started:
            break
        time.sleep(0.1)
    yield url
    server.should_exit = True
    th.join(10)


def not_blank(path) -> tuple[bool, str]:
    """A screenshot counts as drawn when it has many colours and real contrast."""
    from PIL import Image, ImageStat

    img = Image.open(path).convert("RGB")
    colours = len(img.getcolors(maxcolors=1 << 20) or [])
    std = sum(ImageStat.Stat(img).stddev) / 3
    return colours > 50 and std > 10, f"{colours} colours, std {std:.1f}"


# Every plot (and gallery) of a tab holds at least one loaded image and its status tracker is idle: the
# figure of the answer is drawn, not a "processing" placeholder.
DRAWN = """(ids) => ids.every(id => {
  const el = document.getElementById(id);
  if (!el) return false;
  const status = el.querySelector('[data-testid="status-tracker"]');
  if (status && !status.classList.contains('hide')) return false;
  const imgs = [...el.querySelectorAll('img')];
  return imgs.length > 0 && imgs.every(i => i.complete && i.naturalWidth > 0);
})"""

PLOTS = {
    "generate": ["gen-raster", "gen-attention", "gen-energy"],
    "sentiment": ["sent-signal", "sent-spikes"],
    "ecg": ["ecg-signal", "ecg-spikes"],
    "network": ["net-raster", "net-rates", "net-graph", "net-weights"],
    "multimodal": ["mm-input", "mm-spikes", "mm-cross"],
    "simulation run": ["run-gallery"],
}


def test_every_plot_has_an_id_the_test_waits_for(sim_run):
    """No plot of the UI is left out of ``PLOTS`` (a new plot must be waited for too)."""
    import gradio as gr

    from serving.ui import build_ui

    blocks = build_ui("http://127.0.0.1:9", sim_run=str(sim_run)).blocks.values()
    ids = {b.elem_id for b in blocks if isinstance(b, (gr.Plot, gr.Gallery))}
    assert ids == {i for v in PLOTS.values() for i in v}


def _wait_drawn(page, tab: str) -> None:
    page.wait_for_function(DRAWN, arg=PLOTS[tab])


def test_click_through_every_tab(ui_server, tmp_path):
    pw = pytest.importorskip("playwright.sync_api")
    shots = []
    with pw.sync_playwright() as p:
        browser = p.chromium.launch(executable_path=CHROMIUM, args=FLAGS, headless=True)
        page = browser.new_page(viewport={"width": 1280, "height": 1600})
        page.set_default_timeout(180_000)
        page.goto(f"{ui_server}/ui/")
        page.get_by_text("EvoSpikeNet Insight").first.wait_for()

        def shot(name: str) -> None:
            shots.append(tmp_path / f"{name}.png")
            page.screenshot(path=shots[-1], full_page=True)

        page.locator("#gen-button").click()
        page.wait_for_function("() => document.querySelector('#gen-output textarea')?.value.length > 0")
        _wait_drawn(page, "generate")
        shot("generate")

        page.get_by_role("tab", name="Classify").click()
        page.locator("#sent-button").click()
        page.get_by_text("positive").first.wait_for()
        _wait_drawn(page, "sentiment")
        shot("classify_sentiment")
        page.get_by_role("tab", name="ECG").click()
        page.locator("#ecg-button").click()
        page.get_by_text("Class probabilities (AAMI)").first.wait_for()
        _wait_drawn(page, "ecg")
        assert "N" in page.locator("#ecg-probs").inner_text()
        shot("classify_ecg")

        page.get_by_role("tab", name="Network").click()
        page.locator("#net-button").click()
        _wait_drawn(page, "network")
        shot("network")

        page.get_by_role("tab", name="Multimodal").click()
        page.locator("#mm-button").click()
        page.wait_for_function(
            "() => (document.querySelector('#mm-answer textarea')?.value || '').length > 0"
        )
        _wait_drawn(page, "multimodal")
        shot("multimodal")

        page.get_by_role("tab", name="Simulation run").click()
        assert "rates.png" in page.locator("#run-info").inner_text()
        page.locator("#run-button").click()
        _wait_drawn(page, "simulation run")
        assert page.locator("#run-gallery img").count() >= 2
        shot("simulation_run")
        browser.close()
    out = os.environ.get("EVOSPIKENET_SCREENSHOTS")
    for s in shots:
        ok, why = not_blank(s)
        assert ok, f"{s.name} looks blank: {why}"
        if out:
            os.makedirs(out, exist_ok=True)
            shutil.copy(s, out)
