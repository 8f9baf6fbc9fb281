"""A truncated upload whose index (``moov``) is at the start: the frames before the cut are
analysed and the result says the file is truncated, with decoded vs declared frames and
seconds — through the library and through the API (real pipeline, the shipped sample)."""

from __future__ import annotations

import re
from pathlib import Path

import av
import pytest
from fastapi.testclient import TestClient
from helpers import upload, wait_finished

from mer.pipeline import analyze_video
from mer.video import DecodeStats, iter_frames
from service.main import create_app
from service.settings import ServiceSettings

#: decoded N of M frames (a s of b s)
WARNING_RE = re.compile(
    r"truncated file: (?P<name>\S+) ends before its declared end; decoded (?P<n>\d+) of "
    r"(?P<m>\d+) frames \((?P<a>[\d.]+) s of (?P<b>[\d.]+) s\)"
)


def faststart_copy(src: Path, dst: Path) -> Path:
    """Remux ``src``'s video stream (no re-encoding) into an MP4 with ``moov`` first."""
    with av.open(str(src)) as inp, av.open(str(dst), "w", options={"movflags": "faststart"}) as out:
        stream = inp.streams.video[0]
        copy = out.add_stream_from_template(stream)
        for packet in inp.demux(stream):
            if packet.dts is None:  # the demuxer's flush packet
                continue
            packet.stream = copy
            out.mux(packet)
    return dst


@pytest.fixture(scope="module")
def cut_video(sample_video: Path, tmp_path_factory: pytest.TempPathFactory) -> Path:
    """The first half (bytes) of a faststart copy of the sample: 72 frames declared."""
    tmp = tmp_path_factory.mktemp("cut")
    data = faststart_copy(sample_video, tmp / "fs.mp4").read_bytes()
    assert data[4:8] == b"ftyp" and data.find(b"moov") < data.find(b"mdat")
    cut = tmp / "half.mp4"
    cut.write_bytes(data[: len(data) // 2])
    return cut


def _check_warning(warnings: list[str], name: str) -> re.Match[str]:
    found = [m for w in warnings if (m := WARNING_RE.search(w))]
    assert len(found) == 1, warnings
    m = found[0]
    assert m["name"] == name
    assert 10 <= int(m["n"]) < 60 and int(m["m"]) == 72, m.group(0)
    assert 0.3 < float(m["a"]) < 2.0 and float(m["b"]) == pytest.approx(2.4, abs=0.01)
    return m


def test_decoder_reports_truncation(cut_video: Path, sample_video: Path) -> None:
    stats = DecodeStats()
    n = sum(1 for _ in iter_frames(cut_video, stats=stats))
    assert stats.truncated and stats.frames == n and stats.expected_frames == 72
    assert stats.decoded_s == pytest.approx(n / 30, abs=0.01)
    _check_warning(stats.warnings, "half.mp4")
    whole = DecodeStats()
    assert sum(1 for _ in iter_frames(sample_video, stats=whole)) == 72
    assert not whole.truncated and whole.warnings == []


def test_library_result_names_the_truncation(cut_video: Path) -> None:
    result = analyze_video(cut_video)
    m = _check_warning(result.warnings, "half.mp4")
    assert result.video.frame_count == len(result.frames) == int(m["n"])


def test_api_result_names_the_truncation(cut_video: Path, settings: ServiceSettings) -> None:
    with TestClient(create_app(settings)) as client:
        r = upload(client, cut_video, name="upload.mp4")
        assert r.status_code == 202, r.text
        job = wait_finished(client, r.json()["job_id"], timeout_s=120)
    assert job["state"] == "succeeded", job
    m = _check_warning(job["result"]["warnings"], "upload.mp4")
    assert job["result"]["video"]["frame_count"] == int(m["n"])
