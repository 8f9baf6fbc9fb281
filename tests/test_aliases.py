"""The unversioned aliases ``POST /analyze``, ``GET /jobs/{id}``, ``GET /jobs/{id}/result.csv``,
``DELETE /jobs/{id}``: same operations and authentication as ``/v1``; the schema marks
``/v1`` as canonical. Embedded runner with the fake analyzer (API behaviour only; the real
pipeline behind the aliases runs in ``test_client.py``)."""

from __future__ import annotations

import csv
import io
from collections.abc import Iterator
from pathlib import Path

import pytest
from fastapi.testclient import TestClient
from helpers import FakeAnalyzer, make_video, wait_for

from mer.schemas import CSV_COLUMNS
from service.main import create_app
from service.routes.aliases import ALIAS_TAG
from service.settings import ServiceSettings
from workers import tasks

ALIASES = {
    ("post", "/analyze"): "/v1/analyze",
    ("get", "/jobs/{job_id}"): "/v1/jobs/{job_id}",
    ("get", "/jobs/{job_id}/result.csv"): "/v1/jobs/{job_id}/result.csv",
    ("delete", "/jobs/{job_id}"): "/v1/jobs/{job_id}",
}


@pytest.fixture
def fake(monkeypatch: pytest.MonkeyPatch) -> FakeAnalyzer:
    analyzer = FakeAnalyzer()
    monkeypatch.setattr(tasks, "load_analyzer", lambda: analyzer)
    return analyzer


@pytest.fixture
def app_client(auth_settings: ServiceSettings, fake: FakeAnalyzer) -> Iterator[TestClient]:
    """Authentication on; the client sends no key unless a test adds one."""
    with TestClient(create_app(auth_settings)) as c:
        yield c


def _post(client: TestClient, path: str, video: Path, **kw) -> object:
    return client.post(path, files={"file": ("clip.mp4", video.read_bytes(), "video/mp4")}, **kw)


def test_aliases_serve_the_v1_operations(
    app_client: TestClient, api_key: str, tmp_path: Path
) -> None:
    video = make_video(tmp_path / "clip.mp4")
    key = {"X-API-Key": api_key}
    r = _post(app_client, "/analyze", video, headers=key)
    assert r.status_code == 202, r.text
    job_id = r.json()["job_id"]
    # links point at the canonical path
    assert r.json()["status_url"] == f"/v1/jobs/{job_id}" == r.headers["location"]

    def fetch() -> dict:
        got = app_client.get(f"/jobs/{job_id}", headers=key)
        assert got.status_code == 200, got.text
        return got.json()

    job = wait_for(fetch, lambda j: j["state"] not in ("queued", "running"))
    assert job["state"] == "succeeded", job
    assert job == app_client.get(f"/v1/jobs/{job_id}", headers=key).json()

    r = app_client.get(f"/jobs/{job_id}/result.csv", headers=key)
    assert r.status_code == 200 and r.headers["content-type"].startswith("text/csv")
    rows = list(csv.reader(io.StringIO(r.text)))
    assert tuple(rows[0]) == CSV_COLUMNS and len(rows) - 1 == len(job["result"]["frames"])
    assert r.text == app_client.get(f"/v1/jobs/{job_id}/result.csv", headers=key).text

    assert app_client.delete(f"/jobs/{job_id}", headers=key).status_code == 204
    gone = app_client.get(f"/v1/jobs/{job_id}", headers=key)
    assert gone.status_code == 404 and gone.json()["code"] == "job_not_found"
    assert app_client.get(f"/jobs/{job_id}", headers=key).json()["code"] == "job_not_found"


@pytest.mark.parametrize(("method", "path"), sorted(ALIASES))
def test_aliases_require_the_api_key(
    app_client: TestClient, method: str, path: str, tmp_path: Path
) -> None:
    url = path.replace("{job_id}", "0" * 32)
    if method == "post":
        r = _post(app_client, url, make_video(tmp_path / "clip.mp4"))
        bad = _post(app_client, url, tmp_path / "clip.mp4", headers={"X-API-Key": "nope"})
    else:
        r = app_client.request(method.upper(), url)
        bad = app_client.request(method.upper(), url, headers={"X-API-Key": "nope"})
    assert r.status_code == 401 and r.json()["code"] == "missing_api_key", r.text
    assert r.headers["www-authenticate"].startswith("Bearer")
    assert bad.status_code == 401 and bad.json()["code"] == "invalid_api_key", bad.text


def test_aliases_are_marked_in_the_schema(app_client: TestClient) -> None:
    spec = app_client.get("/openapi.json").json()
    ids = []
    for (method, path), canonical in ALIASES.items():
        alias = spec["paths"][path][method]
        original = spec["paths"][canonical][method]
        assert alias["tags"] == [ALIAS_TAG]
        assert alias["x-canonical"] == canonical
        assert canonical in alias["summary"] and canonical in alias["description"]
        assert "x-canonical" not in original and ALIAS_TAG not in original["tags"]
        assert alias.get("deprecated") is not True
        assert alias["responses"].keys() == original["responses"].keys()
        assert alias.get("security") == original.get("security")
        ids += [alias["operationId"], original["operationId"]]
    assert len(ids) == len(set(ids)), "operation ids must be unique"
    body = spec["paths"]["/analyze"]["post"]["requestBody"]["content"]
    assert "multipart/form-data" in body
