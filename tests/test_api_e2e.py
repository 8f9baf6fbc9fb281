"""End to end through the API with the embedded runner and the real pipeline.

Needs ``../shared/data/videos`` (skipped without it, failed under ``CI``).
"""

from __future__ import annotations

import csv
import io
from collections.abc import Iterator
from pathlib import Path

import pytest
from fastapi.testclient import TestClient
from helpers import check_single_face_result, upload, wait_finished

from mer.schemas import CSV_COLUMNS
from service.main import create_app
from service.settings import ServiceSettings

pytestmark = [pytest.mark.media, pytest.mark.slow]


@pytest.fixture
def client(settings: ServiceSettings) -> Iterator[TestClient]:
    """The app with the default embedded runner and file job store."""
    with TestClient(create_app(settings)) as c:
        yield c


def _error(r, status: int, codes: set[str]) -> None:
    assert r.status_code == status, r.text
    body = r.json()
    assert set(body) == {"code", "message"} and body["code"] in codes, body


def test_single_face_end_to_end(client: TestClient, single_face_video: Path) -> None:
    r = upload(client, single_face_video)
    assert r.status_code == 202, r.text
    job_id = r.json()["job_id"]

    job = wait_finished(client, job_id, timeout_s=120)
    assert job["state"] == "succeeded", job
    assert job["error"] is None
    assert job["progress"]["percent"] == 100.0
    result = check_single_face_result(job["result"])
    assert result.video.filename == "single_face.mp4"

    r = client.get(f"/v1/jobs/{job_id}/result.csv")
    assert r.status_code == 200
    assert r.headers["content-type"].startswith("text/csv")
    rows = list(csv.reader(io.StringIO(r.text)))
    assert tuple(rows[0]) == CSV_COLUMNS
    assert len(rows) - 1 == 72
    assert [int(row[0]) for row in rows[1:]] == list(range(72))

    assert client.delete(f"/v1/jobs/{job_id}").status_code == 204
    r = client.get(f"/v1/jobs/{job_id}")
    assert r.status_code == 404 and r.json()["code"] == "job_not_found"


def test_unknown_job(client: TestClient) -> None:
    r = client.get("/v1/jobs/0123456789abcdef0123456789abcdef")
    _error(r, 404, {"job_not_found"})


def test_no_face_fails_with_code(client: TestClient, no_face_video: Path) -> None:
    r = upload(client, no_face_video)
    assert r.status_code == 202, r.text
    job = wait_finished(client, r.json()["job_id"], timeout_s=120)
    assert job["state"] == "failed", job
    assert job["error"]["code"] == "no_face_detected"
    assert job["result"] is None


def test_bad_uploads_rejected_then_valid_succeeds(
    client: TestClient, single_face_video: Path, tmp_path: Path
) -> None:
    _error(
        upload(client, data=b"this is plain text, not a video\n", name="x.mp4"),
        422,
        {"invalid_video"},
    )
    _error(upload(client, data=b"", name="empty.mp4"), 422, {"empty_upload"})
    data = single_face_video.read_bytes()
    truncated = tmp_path / "truncated.mp4"
    truncated.write_bytes(data[: int(len(data) * 0.4)])
    # the MP4 index (moov) of this file is at its end: a cut copy is not a readable
    # container at all (invalid_video); a cut with the index intact is truncated_video
    _error(upload(client, truncated), 422, {"truncated_video", "invalid_video"})

    r = upload(client, single_face_video)
    assert r.status_code == 202
    job = wait_finished(client, r.json()["job_id"], timeout_s=120)
    assert job["state"] == "succeeded", job
    check_single_face_result(job["result"])
