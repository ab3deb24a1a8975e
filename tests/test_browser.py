"""A real browser (Debian's chromium driven by playwright) uses the app like a person would."""

from __future__ import annotations

import shutil
import socket
from pathlib import Path

import pytest

CHROMIUM = shutil.which("chromium") or "/usr/bin/chromium"
SCREENSHOT = Path(__file__).parent / "screenshots" / "app.png"
ARGS = ["--headless", "--no-sandbox", "--disable-gpu", "--disable-dev-shm-usage", "--disable-background-networking",
        "--disable-component-update", "--no-first-run", "--disable-sync"]

pytestmark = pytest.mark.skipif(not Path(CHROMIUM).exists(), reason="Debian chromium is not installed (.ci/run installs it)")


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


@pytest.fixture(scope="module")
def url(tmp_path_factory: pytest.TempPathFactory):
    import app
    from mmdemo.inference import Predictor

    demo = app.build_demo(Predictor.load(device="cpu"), example_dir=tmp_path_factory.mktemp("examples"))
    demo.queue(default_concurrency_limit=4)
    port = free_port()
    demo.launch(server_name="127.0.0.1", server_port=port, prevent_thread_lock=True, quiet=True)
    yield f"http://127.0.0.1:{port}/"
    demo.close()


def test_ask_see_heatmap_and_scrub_steps(url: str) -> None:
    from playwright.sync_api import expect, sync_playwright

    with sync_playwright() as p:
        browser = p.chromium.launch(executable_path=CHROMIUM, args=ARGS, headless=True)
        page = browser.new_page(viewport={"width": 1400, "height": 1900})
        requests_out = []
        page.on("request", lambda r: requests_out.append(r.url))
        page.goto(url)
        page.locator("#seed input").fill("42")
        page.locator("#question textarea").fill("How many objects have the same shape as the red object?")  # its steps look at different places
        page.locator("#new-scene").click()  # generates the scene and asks
        expect(page.locator("#answer h2")).to_be_visible(timeout=60_000)
        assert page.locator("#answer h2").inner_text().strip() in {"yes", "no", "square", "circle", "1", "2", "3", "4", "5", "6"}
        expect(page.locator("#truth")).to_contain_text("True answer", timeout=30_000)
        expect(page.locator("#heatmap .js-plotly-plot")).to_be_visible(timeout=30_000)
        overlay = page.locator("#overlay img")
        expect(overlay).to_be_visible(timeout=30_000)
        before = overlay.get_attribute("src")
        steps = page.locator("#step input[type=number]")
        current = int(steps.input_value())
        steps.fill("1" if current != 1 else "2")
        steps.press("Enter")
        steps.blur()
        expect(overlay).not_to_have_attribute("src", before, timeout=30_000)
        SCREENSHOT.parent.mkdir(exist_ok=True)
        page.screenshot(path=str(SCREENSHOT), full_page=True)
        browser.close()
    assert all(u.startswith((url, "data:", "blob:")) for u in requests_out), [u for u in requests_out if not u.startswith(url)][:5]
