"""Decoding with PyAV: real clips, timestamps, limits and bad input codes."""

from pathlib import Path

import numpy as np
import pytest

from mer.errors import MERError
from mer.settings import Settings
from mer.video import DecodeStats, iter_frames, probe_video


@pytest.mark.parametrize(
    ("name", "codec", "frames"),
    [("single_face.mp4", "h264", 72), ("grid_bbaf2n.mpg", "mpeg1video", 75)],
)
def test_decodes_real_clips_with_timestamps(shared_data: Path, name: str, codec: str, frames: int) -> None:
    path = shared_data / "videos" / name
    probe = probe_video(path)
    assert probe.codec == codec
    stats = DecodeStats()
    decoded = list(iter_frames(path, stats=stats))
    assert len(decoded) == frames == stats.frames
    ts = np.array([f.timestamp_s for f in decoded])
    assert np.all(np.diff(ts) > 0)
    assert abs(np.median(np.diff(ts)) - 1 / probe.fps) < 1e-3
    assert decoded[0].image.dtype == np.uint8 and decoded[0].image.shape[2] == 3


def _expect(path: Path, code: str, settings: Settings | None = None) -> None:
    with pytest.raises(MERError) as info:
        probe_video(path, settings)
    assert info.value.code == code, info.value.message


def test_bad_inputs_get_codes(tmp_path: Path, single_face_video: Path) -> None:
    empty = tmp_path / "empty.mp4"
    empty.write_bytes(b"")
    _expect(empty, "empty_upload")
    text = tmp_path / "notes.mp4"
    text.write_text("this is not a video\n" * 50)
    _expect(text, "invalid_video")
    data = single_face_video.read_bytes()
    truncated = tmp_path / "truncated.mp4"
    truncated.write_bytes(data[: len(data) // 3])
    with pytest.raises(MERError) as info:
        probe_video(truncated)
    assert info.value.code in {"invalid_video", "truncated_video"}


def test_limits(single_face_video: Path) -> None:
    _expect(single_face_video, "resolution_too_large", Settings(max_width=320))
    _expect(single_face_video, "video_too_long", Settings(max_duration_s=1.0))
    _expect(single_face_video, "file_too_large", Settings(max_upload_bytes=1000))
    with pytest.raises(MERError) as info:
        list(iter_frames(single_face_video, Settings(max_frames=10)))
    assert info.value.code == "too_many_frames"
