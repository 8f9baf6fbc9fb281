"""The web pages and the video route through TestClient (no browser; see
``test_ui_browser.py`` for Chromium).

Pages and static assets are public (they hold no data); the video route
``/v1/jobs/{id}/video`` has the job routes' authentication and visibility and honours
HTTP range requests.
"""

from __future__ import annotations

import hashlib
import re
import tomllib
from collections.abc import Iterator
from html.parser import HTMLParser
from pathlib import Path

import pytest
from fastapi.testclient import TestClient

from service.main import create_app
from service.routes.ui import STATIC_DIR
from service.settings import ServiceSettings
from service.upload import upload_dir_for
from workers.jobstore import JobRecord, new_job_id

REPO_ROOT = Path(__file__).resolve().parent.parent
VIDEO_BYTES = bytes(range(256)) * 40  # 10240 bytes; the route never decodes it


@pytest.fixture
def client(auth_settings: ServiceSettings) -> Iterator[TestClient]:
    """The app with authentication on (key ``tester``); no key header by default."""
    with TestClient(create_app(auth_settings)) as c:
        yield c


def _stored_job(client: TestClient, owner: str | None = "tester", suffix: str = ".mp4") -> str:
    """A job record whose upload is stored where ``POST /v1/analyze`` puts it."""
    settings: ServiceSettings = client.app.state.settings  # type: ignore[attr-defined]
    job_id = new_job_id()
    path = upload_dir_for(settings, job_id) / f"input{suffix}"
    path.parent.mkdir(parents=True)
    path.write_bytes(VIDEO_BYTES)
    client.app.state.job_store.create(  # type: ignore[attr-defined]
        JobRecord(id=job_id, filename=f"clip{suffix}", upload_path=str(path), owner=owner)
    )
    return job_id


class _Assets(HTMLParser):
    """Collects the local ``src`` / ``href`` URLs of scripts and stylesheets."""

    def __init__(self) -> None:
        super().__init__()
        self.urls: list[str] = []

    def handle_starttag(self, tag: str, attrs: list[tuple[str, str | None]]) -> None:
        values = dict(attrs)
        url = values.get("src") if tag == "script" else None
        if tag == "link" and values.get("rel") == "stylesheet":
            url = values.get("href")
        if url:
            self.urls.append(url)


def _assets_of(html: str) -> list[str]:
    parser = _Assets()
    parser.feed(html)
    return parser.urls


def test_upload_page_is_served_with_its_assets(client: TestClient) -> None:
    r = client.get("/")
    assert r.status_code == 200
    assert r.headers["content-type"].startswith("text/html")
    assert "script-src 'self'" in r.headers["content-security-policy"]
    assert 'id="drop-zone"' in r.text and 'id="api-key"' in r.text
    assets = _assets_of(r.text)
    assert "/ui/static/upload.js" in assets
    for url in assets:
        asset = client.get(url)
        assert asset.status_code == 200, url
        assert asset.content == (STATIC_DIR / url.removeprefix("/ui/static/")).read_bytes()
    assert all(url.startswith("/ui/static/") for url in assets), assets  # no CDN


def test_job_page_is_served_for_a_known_job_only(client: TestClient) -> None:
    job_id = _stored_job(client)
    r = client.get(f"/ui/jobs/{job_id}")  # the page itself holds no data: no key needed
    assert r.status_code == 200
    assets = _assets_of(r.text)
    assert "/ui/static/vendor/uplot/uPlot.iife.min.js" in assets
    assert "/ui/static/job.js" in assets
    for url in assets:
        assert client.get(url).status_code == 200, url

    for unknown in (new_job_id(), "not-a-job-id"):
        r = client.get(f"/ui/jobs/{unknown}")
        assert r.status_code == 404
        assert r.json()["code"] == "job_not_found"


def test_static_assets_and_missing_ones(client: TestClient) -> None:
    for name, ctype in [
        ("ui.js", "text/javascript"),
        ("job.js", "text/javascript"),
        ("style.css", "text/css"),
        ("vendor/uplot/uPlot.min.css", "text/css"),
    ]:
        r = client.get(f"/ui/static/{name}")
        assert r.status_code == 200, name
        assert r.headers["content-type"].startswith(ctype), (name, r.headers["content-type"])
    assert client.get("/ui/static/nope.js").status_code == 404
    assert client.get("/ui/static/../routes/ui.py").status_code == 404


def test_ui_config_tells_whether_a_key_is_needed(
    client: TestClient, settings: ServiceSettings
) -> None:
    r = client.get("/ui/config")
    assert r.status_code == 200
    assert r.json() == {"auth_enabled": True, "max_upload_bytes": settings.max_upload_bytes}
    with TestClient(create_app(settings)) as open_client:
        assert open_client.get("/ui/config").json()["auth_enabled"] is False


def test_vendored_uplot_matches_its_recorded_sha256() -> None:
    vendor = STATIC_DIR / "vendor" / "uplot"
    table = dict(
        re.findall(
            r"^\| (?:dist/)?(\S+) \| ([0-9a-f]{64}) \|$", (vendor / "VENDOR.md").read_text(), re.M
        )
    )
    files = {"uPlot.iife.min.js", "uPlot.min.css", "LICENSE"}
    assert files <= set(table)
    for name in files:
        assert hashlib.sha256((vendor / name).read_bytes()).hexdigest() == table[name], name
    assert "MIT" in (vendor / "LICENSE").read_text()


def test_static_files_are_package_data() -> None:
    """Every file under service/static matches a package-data pattern (so a wheel has it)."""
    config = tomllib.loads((REPO_ROOT / "pyproject.toml").read_text())
    patterns = config["tool"]["setuptools"]["package-data"]["service"]
    packaged = {p for pattern in patterns for p in STATIC_DIR.parent.glob(pattern)}  # as setuptools
    missing = [p for p in STATIC_DIR.rglob("*") if p.is_file() and p not in packaged]
    assert missing == [], f"not package data: {missing}"


def test_video_route_needs_the_owners_key(client: TestClient, api_key: str) -> None:
    job_id = _stored_job(client)
    url = f"/v1/jobs/{job_id}/video"
    r = client.get(url)
    assert r.status_code == 401 and r.json()["code"] == "missing_api_key"
    r = client.get(url, headers={"X-API-Key": "wrong-key"})
    assert r.status_code == 401 and r.json()["code"] == "invalid_api_key"

    r = client.get(url, headers={"Authorization": f"Bearer {api_key}"})
    assert r.status_code == 200
    assert r.content == VIDEO_BYTES
    assert r.headers["content-type"] == "video/mp4"
    assert r.headers["accept-ranges"] == "bytes"
    assert r.headers["content-disposition"].startswith("inline")

    other = _stored_job(client, owner="someone-else")
    r = client.get(f"/v1/jobs/{other}/video", headers={"X-API-Key": api_key})
    assert r.status_code == 404 and r.json()["code"] == "job_not_found"


def test_video_route_honours_ranges(client: TestClient, api_key: str) -> None:
    job_id = _stored_job(client, suffix=".webm")
    url = f"/v1/jobs/{job_id}/video"
    size = len(VIDEO_BYTES)

    def get(range_header: str):
        return client.get(url, headers={"X-API-Key": api_key, "Range": range_header})

    r = get("bytes=100-199")
    assert r.status_code == 206
    assert r.headers["content-range"] == f"bytes 100-199/{size}"
    assert r.headers["content-type"] == "video/webm"
    assert r.content == VIDEO_BYTES[100:200]

    r = get("bytes=10000-")
    assert r.status_code == 206 and r.content == VIDEO_BYTES[10000:]
    r = get("bytes=-16")
    assert r.status_code == 206 and r.content == VIDEO_BYTES[-16:]

    r = get("bytes=0-1, 20-21")
    assert r.status_code == 206
    assert r.headers["content-type"].startswith("multipart/byteranges")

    r = get(f"bytes={size}-")
    assert r.status_code == 416
    assert r.headers["content-range"] == f"bytes */{size}"
    assert r.json()["code"] == "range_not_satisfiable"
    for bad in ("bytes=abc", "bytes=50-10", "pages=1-2"):
        r = get(bad)
        assert r.status_code == 400, bad
        assert set(r.json()) == {"code", "message"} and r.json()["code"] == "invalid_range"
    # a stale If-Range: the whole file (RFC 9110), never an error
    r = client.get(url, headers={"X-API-Key": api_key, "Range": "bytes=0-9", "If-Range": '"stale"'})
    assert r.status_code == 200 and r.content == VIDEO_BYTES


def test_video_route_unknown_gone_and_deleted(client: TestClient, api_key: str) -> None:
    headers = {"X-API-Key": api_key}
    r = client.get(f"/v1/jobs/{new_job_id()}/video", headers=headers)
    assert r.status_code == 404 and r.json()["code"] == "job_not_found"

    job_id = _stored_job(client)
    store = client.app.state.job_store  # type: ignore[attr-defined]
    Path(store.get(job_id).upload_path).unlink()
    r = client.get(f"/v1/jobs/{job_id}/video", headers=headers)
    assert r.status_code == 404 and r.json()["code"] == "upload_not_found"

    # a record pointing outside the uploads directory is never served
    outside = Path(client.app.state.settings.data_dir) / "secret.mp4"  # type: ignore[attr-defined]
    outside.write_bytes(b"secret")
    escaped = new_job_id()
    store.create(JobRecord(id=escaped, filename="x.mp4", upload_path=str(outside), owner="tester"))
    r = client.get(f"/v1/jobs/{escaped}/video", headers=headers)
    assert r.status_code == 404 and r.json()["code"] == "upload_not_found"

    live = _stored_job(client)
    assert client.delete(f"/v1/jobs/{live}", headers=headers).status_code == 204
    r = client.get(f"/v1/jobs/{live}/video", headers=headers)
    assert r.status_code == 404 and r.json()["code"] == "job_not_found"
