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
def test_decodes_real_clips_with_timestamps(
    shared_data: Path, name: str, codec: str, frames: int
) -> None:
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


def _encode(src: list[np.ndarray], path: Path, codec: str, rotation: int = 0) -> None:
    import av

    h, w = src[0].shape[:2]
    with av.open(str(path), "w") as out:
        s = out.add_stream(codec, rate=30)
        s.width, s.height, s.pix_fmt = w, h, "yuv420p"
        if rotation:
            s.set_display_rotation(rotation)
        for im in src:
            for p in s.encode(av.VideoFrame.from_ndarray(im, format="rgb24")):
                out.mux(p)
        for p in s.encode():
            out.mux(p)


@pytest.fixture(scope="module")
def source_frames(single_face_video: Path) -> list[np.ndarray]:
    return [f.image for f in iter_frames(single_face_video)]


def test_hevc_clip_analyzes(tmp_path: Path, source_frames: list[np.ndarray]) -> None:
    from mer.pipeline import analyze_video

    path = tmp_path / "hevc.mp4"
    _encode(source_frames, path, "libx265")
    assert probe_video(path).codec == "hevc"
    r = analyze_video(path)
    assert r.video.codec == "hevc" and r.video.frame_count == 72
    assert 20 <= r.apex.frame <= 68


def test_display_rotation_is_applied(tmp_path: Path, source_frames: list[np.ndarray]) -> None:
    from mer.pipeline import analyze_video

    path = tmp_path / "rotated.mp4"
    _encode(source_frames[:40], path, "libx264", rotation=90)  # counter-clockwise
    probe = probe_video(path)
    assert probe.rotation_deg == 90 and (probe.width, probe.height) == (360, 640)
    first = next(iter_frames(path)).image
    assert first.shape == (640, 360, 3)
    ccw = np.rot90(source_frames[0], 1).astype(float)
    cw = np.rot90(source_frames[0], -1).astype(float)
    assert np.abs(first - ccw).mean() < 0.3 * np.abs(first - cw).mean()
    r = analyze_video(path)
    assert sum(f.face for f in r.frames) >= 36 and r.video.rotation_deg == 90


def test_undecodable_codec_is_unsupported_not_a_crash(
    tmp_path: Path, source_frames: list[np.ndarray]
) -> None:
    from tests.test_bad_inputs import gen_unknown_codec

    path = gen_unknown_codec(tmp_path, source_frames)
    _expect(path, "unsupported_codec")
    with pytest.raises(MERError) as info:
        list(iter_frames(path))
    assert info.value.code == "unsupported_codec"
