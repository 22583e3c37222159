"""The Insight UI in headless Chromium (Playwright): click through every tab, non-blank screenshots."""

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
def ui_server(services):
    """uvicorn on 127.0.0.1 serving the API with the UI mounted at /ui (the same app the ingress builds)."""
    import uvicorn

    from serving.api import create_api
    from serving.local import LocalBackend
    from serving.ui import build_ui

    port = _free_port()
    url = f"http://127.0.0.1:{port}"
    app = create_api(LocalBackend(services), ui=build_ui(url))
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


def test_click_through_every_tab(ui_server, tmp_path):
    pw = pytest.importorskip("playwright.sync_api")
    shots = []
    with pw.sync_playwright() as p:
        browser = p.chromium.launch(executable_path=CHROMIUM, args=FLAGS, headless=True)
        page = browser.new_page(viewport={"width": 1280, "height": 1600})
        page.set_default_timeout(180_000)
        page.goto(f"{ui_server}/ui/")
        page.get_by_text("EvoSpikeNet Insight").first.wait_for()

        page.locator("#gen-button").click()
        page.wait_for_function(
            "() => document.querySelector('#gen-output textarea')?.value.length > 0"
            " && document.querySelectorAll('img').length >= 3"
        )
        shots.append(tmp_path / "generate.png")
        page.screenshot(path=shots[-1], full_page=True)

        page.get_by_role("tab", name="Classify").click()
        page.locator("#sent-button").click()
        page.get_by_text("positive").first.wait_for()
        shots.append(tmp_path / "classify_sentiment.png")
        page.screenshot(path=shots[-1], full_page=True)
        page.get_by_role("tab", name="ECG").click()
        page.locator("#ecg-button").click()
        page.get_by_text("Class probabilities (AAMI)").first.wait_for()
        page.wait_for_function(
            "() => document.body.innerText.includes('N') && document.querySelectorAll('img').length >= 4"
        )
        shots.append(tmp_path / "classify_ecg.png")
        page.screenshot(path=shots[-1], full_page=True)

        page.get_by_role("tab", name="Network").click()
        before = page.locator("img").count()
        page.locator("#net-button").click()
        page.wait_for_function(f"() => document.querySelectorAll('img').length >= {before + 4}")
        shots.append(tmp_path / "network.png")
        page.screenshot(path=shots[-1], full_page=True)

        page.get_by_role("tab", name="Multimodal").click()
        page.locator("#mm-button").click()
        page.wait_for_function(
            "() => (document.querySelector('#mm-answer textarea')?.value || '').length > 0"
        )
        page.wait_for_timeout(2000)  # the three plots render after the answer arrives
        shots.append(tmp_path / "multimodal.png")
        page.screenshot(path=shots[-1], full_page=True)
        browser.close()
    out = os.environ.get("EVOSPIKENET_SCREENSHOTS")
    for s in shots:
        ok, why = not_blank(s)
        assert ok, f"{s.name} looks blank: {why}"
        if out:
            os.makedirs(out, exist_ok=True)
            shutil.copy(s, out)
