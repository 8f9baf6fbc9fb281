"""The web pages in a real browser: Debian's ``chromium`` driven by Playwright.

The real app runs under uvicorn on 127.0.0.1 (embedded runner, file job store, a
temporary data dir, authentication on). The test types the API key, uploads the bundled
sample clip on ``/``, waits for the job, opens its results page and checks what a user
sees: the plots drawn, the video playable, an interval labelled ``positive`` that seeks
the video when clicked, the apex frame, no browser console errors (CSP included).

Outside CI the test skips when chromium or Playwright is missing; under ``CI`` that is a
failure. Never ``playwright install``: the browser is the system's (``MER_CHROMIUM`` or
``chromium`` on the PATH). ``MER_UI_SCREENSHOT=path.png`` also saves the results page
screenshot there (the README's docs/ui.png is made that way).
"""

from __future__ import annotations

import os
import shutil
import subprocess
import sys
import time
from collections.abc import Iterator
from pathlib import Path

import httpx
import pytest
from conftest import REPO_ROOT, TEST_API_KEY, _missing

from mer.serving import free_port
from service.auth import hash_key

pytestmark = [pytest.mark.media, pytest.mark.slow]

BUNDLED_SAMPLE = REPO_ROOT / "samples" / "single_face.mp4"


def _chromium() -> str:
    """Path of the system chromium (``MER_CHROMIUM`` overrides)."""
    path = os.environ.get("MER_CHROMIUM") or shutil.which("chromium")
    if not path:
        _missing("chromium is not installed (apt-get install chromium)")
    return str(path)


@pytest.fixture
def sample_clip(request: pytest.FixtureRequest) -> Path:
    """``samples/single_face.mp4`` when the repo bundles it, else the shared media copy."""
    if BUNDLED_SAMPLE.is_file():
        return BUNDLED_SAMPLE
    return request.getfixturevalue("single_face_video")


@pytest.fixture(params=["api-key", "open"])
def live_server(request: pytest.FixtureRequest, tmp_path: Path) -> Iterator[str]:
    """``uvicorn service.main:app`` on a free 127.0.0.1 port, authentication on
    (``api-key``) or off (``open``); yields its base URL."""
    port = free_port()
    env = {k: v for k, v in os.environ.items() if not k.startswith("MER_")}
    env.update(
        MER_DATA_DIR=str(tmp_path / "data"),
        MER_AUTH_ENABLED="true" if request.param == "api-key" else "false",
        MER_API_KEYS=f"tester:{hash_key(TEST_API_KEY)}",
        MER_RATE_LIMIT="100000/minute",
        MER_SUBMIT_RATE_LIMIT="100000/minute",
        PYTHONPATH=os.pathsep.join(filter(None, [str(REPO_ROOT), env.get("PYTHONPATH")])),
    )
    log_path = tmp_path / "uvicorn.log"
    cmd = [sys.executable, "-m", "uvicorn", "service.main:app",
           "--host", "127.0.0.1", "--port", str(port)]  # fmt: skip
    with open(log_path, "wb") as log:
        proc = subprocess.Popen(
            cmd, cwd=tmp_path, env=env, stdout=log, stderr=subprocess.STDOUT
        )  # fmt: skip
    base = f"http://127.0.0.1:{port}"
    try:
        deadline = time.monotonic() + 60
        while True:
            try:
                if httpx.get(f"{base}/healthz", timeout=1).status_code == 200:
                    break
            except httpx.HTTPError:
                pass
            if proc.poll() is not None or time.monotonic() > deadline:
                pytest.fail(f"uvicorn did not start:\n{log_path.read_text()[-4000:]}")
            time.sleep(0.2)
        yield base
    finally:
        proc.terminate()
        try:
            proc.wait(timeout=20)
        except subprocess.TimeoutExpired:
            proc.kill()
            proc.wait(timeout=10)


def result_last_timestamp(page) -> float:  # type: ignore[no-untyped-def]
    """The last frame's timestamp (s) of the job shown, read from the API like the page."""
    job_id = page.url.rsplit("/", 1)[-1]
    return float(
        page.evaluate(
            "async id => { const r = await MER.apiFetch(`/v1/jobs/${id}`);"
            " const j = await r.json(); return j.result.frames.at(-1).timestamp_s; }",
            job_id,
        )
    )


def test_upload_then_results_page_in_chromium(
    live_server: str, sample_clip: Path, tmp_path: Path
) -> None:
    executable = _chromium()
    try:
        from playwright.sync_api import expect, sync_playwright
    except ImportError:
        _missing("playwright is not installed (pip install -e '.[dev]')")

    auth = httpx.get(f"{live_server}/ui/config").json()["auth_enabled"]
    console_errors: list[str] = []
    video_statuses: list[int] = []
    with sync_playwright() as pw:
        browser = pw.chromium.launch(
            executable_path=executable, headless=True, args=["--no-sandbox"]
        )
        try:
            page = browser.new_page(viewport={"width": 1280, "height": 1100})
            page.on(
                "console",
                lambda m: console_errors.append(m.text) if m.type == "error" else None,
            )
            page.on("pageerror", lambda e: console_errors.append(str(e)))
            outside: list[str] = []  # the pages work offline: nothing beyond the service

            def only_local(route) -> None:  # type: ignore[no-untyped-def]
                url = route.request.url
                if url.startswith(live_server) or url.startswith(("blob:", "data:")):
                    route.continue_()
                else:
                    outside.append(url)
                    route.abort()

            page.route("**/*", only_local)
            page.on(
                "response",
                lambda r: video_statuses.append(r.status) if r.url.endswith("/video") else None,
            )

            # upload page: the key field shows (auth is on), the upload runs, progress
            page.goto(f"{live_server}/")
            if auth:
                expect(page.locator("#key-section")).to_be_visible()
                page.fill("#api-key", TEST_API_KEY)
                page.locator("#api-key").dispatch_event("change")
            else:
                expect(page.locator("#key-section")).to_be_hidden()
            if auth:  # one of the two runs gives the person's neutral stretch
                page.fill("#neutral-start", "0")
                page.fill("#neutral-end", "0.2")
            page.set_input_files("#file", str(sample_clip))
            expect(page.locator("#job-section")).to_be_visible()
            open_result = page.locator("#open-result")
            expect(open_result).to_be_visible(timeout=240_000)
            expect(page.locator("#job-state")).to_have_text("succeeded")
            assert page.locator("#job-progress").evaluate("p => p.value") == 100
            page.screenshot(path=str(tmp_path / "upload.png"))

            # results page: summary, plots, intervals, video, apex frame
            open_result.click()
            page.wait_for_url("**/ui/jobs/*")
            expect(page.locator("#result")).to_be_visible(timeout=30_000)
            expect(page.locator("#summary")).to_contain_text("72 frames")
            neutral = "neutral: reference 0.00–0.20 s" if auth else "neutral: estimated"
            expect(page.locator("#summary")).to_contain_text(neutral)
            for plot in ("#apex-plot", "#au-plot"):
                canvas = page.locator(f"{plot} canvas").first
                box = canvas.bounding_box()
                assert box is not None and box["width"] > 300 and box["height"] > 150, box
                inked = canvas.evaluate(
                    """c => {
                        const d = c.getContext('2d').getImageData(0, 0, c.width, c.height).data;
                        let n = 0;
                        for (let i = 3; i < d.length; i += 4) if (d[i] > 0) n++;
                        return n / (c.width * c.height);
                    }"""
                )
                assert inked > 0.01, f"{plot}: the canvas is blank ({inked:.4f} inked)"

            video = page.locator("#video")
            page.wait_for_function(
                "() => document.getElementById('video').readyState >= 2", timeout=30_000
            )
            if auth:  # fetched with the key header, played from a blob
                assert video.evaluate("v => v.src.startsWith('blob:')")
                assert video_statuses == [200]
            else:  # streamed by the browser itself with range requests
                assert video.evaluate("v => v.src.endsWith('/video')")
                assert 206 in video_statuses, video_statuses
            assert video.evaluate("v => v.duration") == pytest.approx(72 / 30, abs=0.1)
            expect(page.locator("#apex-thumb")).to_have_attribute("data-drawn", "true")
            expect(page.locator("#apex-caption")).to_contain_text("frame ")

            positive = page.locator("#intervals .interval", has_text="positive").first
            expect(positive).to_be_visible()
            onset = float(positive.get_attribute("data-onset") or "nan")
            positive.click()
            page.wait_for_function(
                "t => { const v = document.getElementById('video');"
                " return !v.seeking && Math.abs(v.currentTime - t) < 0.03; }",
                arg=onset,
                timeout=10_000,
            )
            expect(positive).to_have_class("interval active")
            expect(page.locator("#video-status")).to_contain_text("frame ")

            # a click on a plot seeks to the time under the cursor (mid-plot: mid-clip)
            page.locator("#apex-plot .u-over").click()
            last_t = result_last_timestamp(page)
            page.wait_for_function(
                "t => Math.abs(document.getElementById('video').currentTime - t) < 0.1",
                arg=last_t / 2,
                timeout=10_000,
            )

            # the JSON / CSV links point at the API
            assert page.locator("#link-csv").get_attribute("href", timeout=1000) == (
                page.url.replace(live_server, "").replace("/ui/jobs/", "/v1/jobs/") + "/result.csv"
            )
            page.wait_for_function(  # the seeked frame is shown (no loading spinner)
                "() => document.getElementById('video').readyState >= 3", timeout=10_000
            )
            if os.environ.get("MER_UI_SCREENSHOT"):  # for docs/ui.png: let Chromium's
                page.wait_for_timeout(1500)  # media controls fade their loading spinner out
            shot = tmp_path / "job.png"
            page.screenshot(path=str(shot), full_page=True)
            if os.environ.get("MER_UI_SCREENSHOT"):
                shutil.copyfile(shot, os.environ["MER_UI_SCREENSHOT"])
        finally:
            browser.close()
    assert console_errors == [], console_errors
    assert outside == [], outside
