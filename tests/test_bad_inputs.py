"""Bad-input corpus: every case is generated here at test time (no binaries committed),
uploaded through the API (auth on, embedded runner, the real pipeline) and must get its
documented code -- synchronously (``status``, ``code``) or as the job's outcome -- or a
correct result. Afterwards the same runner still analyses a valid video.

==============================  ===========================================================
case                            expected
==============================  ===========================================================
zero_bytes                      422 ``empty_upload``
random_bytes                    422 ``invalid_video``
text_file                       422 ``invalid_video``
html_named_mp4                  422 ``invalid_video``
json_file                       422 ``invalid_video``
elf_binary                      422 ``invalid_video``
zip_archive                     422 ``invalid_video``
mp4_header_only                 422 ``no_video_stream`` (64 bytes of a real MP4: ftyp only)
truncated_mp4                   422 ``invalid_video`` (cut at 40 %, its index is at the end)
truncated_faststart_mp4         job succeeds on the frames before the cut, warning 'truncated file'
still_png                       415 ``not_a_video`` (an image, not a video)
still_jpeg                      415 ``not_a_video``
audio_only_m4a                  422 ``no_video_stream``
audio_only_wav                  422 ``no_video_stream``
one_frame_video                 422 ``too_few_frames`` (motion needs at least 2 frames)
absurd_resolution_y4m           422 ``resolution_too_large`` (16000x16000 in the header)
impossible_resolution_y4m       422 ``invalid_video`` (100000x100000: FFmpeg refuses it)
absurd_resolution_mkv           422 ``resolution_too_large`` (raw video, header patched)
tiny_resolution                 422 ``resolution_too_small`` (16x16)
too_long                        422 ``video_too_long`` (70 s; limit 60 s here)
too_many_frames                 422 ``too_many_frames`` (700 frames; limit 600 here)
too_large                       413 ``file_too_large`` (5 MiB; limit 4 MiB here)
unknown_codec                   415 ``unsupported_codec`` (unknown fourcc and object type)
corrupt_frames_mid_stream       job succeeds; the damaged packets are reported in warnings
variable_frame_rate             job succeeds; the result keeps the real, uneven timestamps
rotated_90                      job succeeds upright: stored 360x640, shown 640x360, 90 deg
wrong_extension_and_type        job succeeds (``clip.txt``, ``text/plain``: content decides)
no_face                         job fails ``no_face_detected``
several_faces                   job succeeds (the main face is tracked)
face_leaves_and_returns         job succeeds; the frames without the face say ``face: false``
==============================  ===========================================================
"""

from __future__ import annotations

import io
import struct
import wave
import zipfile
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import av
import cv2
import numpy as np
import pytest
from fastapi.testclient import TestClient
from helpers import check_single_face_result, upload, wait_finished

from service.main import create_app
from service.settings import ServiceSettings

pytestmark = [pytest.mark.media]

Frames = list[np.ndarray]


# -- generators ---------------------------------------------------------------------------


def encode(
    path: Path,
    frames: Frames,
    *,
    codec: str = "mpeg4",
    rate: int = 25,
    pts_ms: list[int] | None = None,
    rotation: int = 0,
    options: dict[str, str] | None = None,
    container_options: dict[str, str] | None = None,
) -> Path:
    """Encode RGB ``frames`` with PyAV; ``pts_ms`` gives each frame's time (VFR)."""
    h, w = frames[0].shape[:2]
    with av.open(str(path), mode="w", options=container_options or {}) as out:
        stream = out.add_stream(codec, rate=rate, options=options or {})
        stream.width, stream.height, stream.pix_fmt = w, h, "yuv420p"
        stream.bit_rate = 1_500_000
        if pts_ms is not None:
            from fractions import Fraction

            stream.codec_context.time_base = Fraction(1, 1000)
        if rotation:
            stream.set_display_rotation(rotation)
        for i, img in enumerate(frames):
            frame = av.VideoFrame.from_ndarray(np.ascontiguousarray(img), format="rgb24")
            if pts_ms is not None:
                from fractions import Fraction

                frame.pts, frame.time_base = pts_ms[i], Fraction(1, 1000)
            for packet in stream.encode(frame):
                out.mux(packet)
        for packet in stream.encode():
            out.mux(packet)
    return path


def _blank(n: int, w: int = 64, h: int = 64) -> Frames:
    rng = np.random.default_rng(0)
    return [rng.integers(0, 255, (h, w, 3), dtype=np.uint8) for _ in range(n)]


def _find_box(data: bytes, box: bytes) -> int:
    i = data.find(box)
    assert i > 4, f"no {box!r} box"
    return i - 4  # start of the box (size field)


def gen_absurd_mkv(tmp: Path, faces: Frames) -> Path:
    """Raw video in Matroska (the size lives in the header only), 256x256 patched to
    16000x16000 in the PixelWidth/PixelHeight elements."""
    path = tmp / "raw.mkv"
    encode(path, [np.zeros((256, 256, 3), np.uint8)] * 3, codec="rawvideo")
    data = bytearray(path.read_bytes())
    for element in (b"\xb0", b"\xba"):  # PixelWidth, PixelHeight: 2-byte value 0x0100
        at = data.find(element + b"\x82\x01\x00")
        assert at >= 0, element
        struct.pack_into(">H", data, at + 2, 16000)
    out = tmp / "absurd.mkv"
    out.write_bytes(bytes(data))
    return out


def gen_unknown_codec(tmp: Path, faces: Frames) -> Path:
    """A valid MP4 whose sample entry and decoder config name a codec nobody knows."""
    data = bytearray(encode(tmp / "small.mp4", faces[:10]).read_bytes())
    entry = _find_box(data, b"mp4v")
    data[entry + 4 : entry + 8] = b"zzzz"
    esds = _find_box(data, b"esds")
    tag = data.index(b"\x04", esds + 12)  # DecoderConfigDescriptor
    at = tag + 1
    while data[at] & 0x80:  # variable-length size
        at += 1
    data[at + 1] = 0xC0  # objectTypeIndication: user private
    out = tmp / "unknown.mp4"
    out.write_bytes(bytes(data))
    return out


def gen_corrupt_mid_stream(tmp: Path, faces: Frames) -> Path:
    """Two 4 KiB runs of noise written over the middle of the media data."""
    data = bytearray(encode(tmp / "ok.mp4", faces).read_bytes())
    mdat = _find_box(data, b"mdat")
    size = struct.unpack(">I", data[mdat : mdat + 4])[0]
    rng = np.random.default_rng(1)
    for frac in (0.45, 0.6):
        at = mdat + int(size * frac)
        data[at : at + 4096] = rng.integers(0, 256, 4096, dtype=np.uint8).tobytes()
    out = tmp / "corrupt.mp4"
    out.write_bytes(bytes(data))
    return out


def gen_truncated_faststart(tmp: Path, faces: Frames) -> Path:
    src = encode(tmp / "fs.mp4", faces, container_options={"movflags": "faststart"})
    data = src.read_bytes()
    out = tmp / "cut.mp4"
    out.write_bytes(data[: int(len(data) * 0.6)])
    return out


def gen_audio_m4a(tmp: Path, faces: Frames) -> Path:
    path = tmp / "audio.m4a"
    with av.open(str(path), mode="w") as out:
        stream = out.add_stream("aac", rate=44100)
        t = np.arange(44100) / 44100
        samples = (0.2 * np.sin(2 * np.pi * 440 * t)).astype(np.float32)[None, :]
        frame = av.AudioFrame.from_ndarray(samples, format="fltp", layout="mono")
        frame.sample_rate = 44100
        for packet in stream.encode(frame):
            out.mux(packet)
        for packet in stream.encode():
            out.mux(packet)
    return path


def gen_wav(tmp: Path, faces: Frames) -> Path:
    path = tmp / "audio.wav"
    with wave.open(str(path), "wb") as w:
        w.setnchannels(1)
        w.setsampwidth(2)
        w.setframerate(16000)
        w.writeframes((np.sin(np.arange(16000) / 5) * 3000).astype("<i2").tobytes())
    return path


def gen_image(ext: str) -> Callable[[Path, Frames], Path]:
    def make(tmp: Path, faces: Frames) -> Path:
        path = tmp / f"still{ext}"
        cv2.imwrite(str(path), cv2.cvtColor(faces[30], cv2.COLOR_RGB2BGR))
        return path

    return make


def gen_y4m(size: int) -> Callable[[Path, Frames], Path]:
    def make(tmp: Path, faces: Frames) -> Path:
        path = tmp / "absurd.y4m"
        header = f"YUV4MPEG2 W{size} H{size} F25:1 Ip A1:1 C420jpeg\nFRAME\n".encode()
        path.write_bytes(header + b"\x80" * 4096)
        return path

    return make


def gen_zip(tmp: Path, faces: Frames) -> Path:
    buf = io.BytesIO()
    with zipfile.ZipFile(buf, "w") as z:
        z.writestr("video.mp4", b"not really" * 100)
    path = tmp / "archive.mp4"
    path.write_bytes(buf.getvalue())
    return path


def gen_vfr(tmp: Path, faces: Frames) -> Path:
    pts, t = [], 0
    for i in range(len(faces)):
        pts.append(t)
        t += (20, 60, 33)[i % 3]  # 50, ~17 and 30 frames/s in turn
    return encode(tmp / "vfr.mkv", faces, pts_ms=pts)


def gen_rotated(tmp: Path, faces: Frames) -> Path:
    """Stored on its side (like a phone held upright), displayed upright by the matrix."""
    stored = [np.rot90(f, -1) for f in faces]
    return encode(tmp / "rotated.mp4", stored, codec="libx264", rotation=90)


def gen_no_face(tmp: Path, faces: Frames) -> Path:
    h, w = faces[0].shape[:2]
    frames = []
    for i in range(48):
        img = np.zeros((h, w, 3), np.uint8)
        img[..., 0] = (np.arange(w) + i * 4) % 256
        img[..., 2] = (np.arange(h)[:, None] * 2) % 256
        frames.append(img)
    return encode(tmp / "noface.mp4", frames)


def gen_several_faces(tmp: Path, faces: Frames) -> Path:
    """Two copies of the face side by side (the second mirrored and delayed)."""
    h, w = faces[0].shape[:2]
    crop = slice(w // 4, w // 4 + w // 2)
    frames = []
    for i, f in enumerate(faces):
        other = faces[max(0, i - 20)][:, crop][:, ::-1]
        frames.append(np.concatenate([f[:, crop], other], axis=1))
    return encode(tmp / "two.mp4", frames)


def gen_face_leaves(tmp: Path, faces: Frames) -> Path:
    """The face slides out of the frame (frames 30-44 show only background), then back."""
    frames = []
    w = faces[0].shape[1]
    for i, f in enumerate(faces):
        if 24 <= i < 50:
            shift = int(w * min(1.0, (min(i - 24, 49 - i) + 1) / 6))
            f = np.roll(f, shift, axis=1)
            f[:, :shift] = 40
        frames.append(f)
    return encode(tmp / "leaves.mp4", frames)


# -- cases --------------------------------------------------------------------------------


@dataclass(frozen=True)
class Case:
    """One corpus entry: how to make it, and what must happen."""

    name: str
    make: Callable[[Path, Frames], Path | bytes]
    status: int = 202
    code: str | None = None  # synchronous error code, or the failed job's code
    state: str | None = None  # the job's final state when accepted
    filename: str | None = None
    content_type: str = "video/mp4"
    check: Callable[[dict[str, Any]], None] | None = None


def _check_warned(job: dict[str, Any]) -> None:
    result = job["result"]
    assert result["warnings"], "the damage should be reported in warnings"
    assert sum(f["face"] for f in result["frames"]) >= 0.8 * len(result["frames"])


def _check_truncated(job: dict[str, Any]) -> None:
    frames = job["result"]["video"]["frame_count"]
    assert 10 <= frames < 72, frames
    note = [w for w in job["result"]["warnings"] if w.startswith("truncated file:")]
    assert len(note) == 1 and f"decoded {frames} of 72 frames" in note[0], note


def _check_vfr(job: dict[str, Any]) -> None:
    ts = np.array([f["timestamp_s"] for f in job["result"]["frames"]])
    steps = np.round(np.diff(ts) * 1000).astype(int)
    assert set(steps[:6].tolist()) == {20, 60, 33}, steps[:6]


def _check_rotated(job: dict[str, Any]) -> None:
    video = job["result"]["video"]
    assert (video["width"], video["height"], video["rotation_deg"]) == (640, 360, 90)
    assert sum(f["face"] for f in job["result"]["frames"]) >= 60


def _check_leaves(job: dict[str, Any]) -> None:
    faces = [f["face"] for f in job["result"]["frames"]]
    assert all(faces[:20]) and all(faces[-15:]), faces
    assert not any(faces[33:41]), faces  # fully out of view


def _check_single(job: dict[str, Any]) -> None:
    check_single_face_result(job["result"])


CASES: list[Case] = [
    Case("zero_bytes", lambda t, f: b"", 422, "empty_upload"),
    Case("random_bytes", lambda t, f: np.random.default_rng(2).bytes(65536), 422, "invalid_video"),
    Case("text_file", lambda t, f: b"just some notes\n" * 200, 422, "invalid_video"),
    Case(
        "html_named_mp4", lambda t, f: b"<!doctype html><html>hi</html>" * 50, 422, "invalid_video"
    ),
    Case("json_file", lambda t, f: b'{"video": true, "frames": []}', 422, "invalid_video"),
    Case("elf_binary", lambda t, f: b"\x7fELF\x02\x01\x01" + bytes(4000), 422, "invalid_video"),
    Case("zip_archive", gen_zip, 422, "invalid_video"),
    Case(
        "mp4_header_only",
        lambda t, f: encode(
            t / "h.mp4", f[:10], container_options={"movflags": "faststart"}
        ).read_bytes()[:64],
        422,
        "no_video_stream",
    ),
    Case(
        "truncated_mp4",
        lambda t, f: (b := encode(t / "full.mp4", f).read_bytes())[: int(len(b) * 0.4)],
        422,
        "invalid_video",
    ),
    Case(
        "truncated_faststart_mp4",
        gen_truncated_faststart,
        state="succeeded",
        check=_check_truncated,
    ),
    Case(
        "still_png",
        gen_image(".png"),
        415,
        "not_a_video",
        filename="face.png",
        content_type="image/png",
    ),
    Case(
        "still_jpeg",
        gen_image(".jpg"),
        415,
        "not_a_video",
        filename="face.jpg",
        content_type="image/jpeg",
    ),
    Case("audio_only_m4a", gen_audio_m4a, 422, "no_video_stream", filename="a.m4a"),
    Case("audio_only_wav", gen_wav, 422, "no_video_stream", filename="a.wav"),
    Case("one_frame_video", lambda t, f: encode(t / "one.mp4", f[30:31]), 422, "too_few_frames"),
    Case("absurd_resolution_y4m", gen_y4m(16000), 422, "resolution_too_large", filename="x.y4m"),
    Case("impossible_resolution_y4m", gen_y4m(100000), 422, "invalid_video", filename="x.y4m"),
    Case("absurd_resolution_mkv", gen_absurd_mkv, 422, "resolution_too_large"),
    Case(
        "tiny_resolution",
        lambda t, f: encode(t / "tiny.mp4", _blank(10, 16, 16)),
        422,
        "resolution_too_small",
    ),
    Case(
        "too_long", lambda t, f: encode(t / "long.mp4", _blank(70), rate=1), 422, "video_too_long"
    ),
    Case(
        "too_many_frames",
        lambda t, f: encode(t / "many.mp4", _blank(700), rate=100),
        422,
        "too_many_frames",
    ),
    Case("too_large", lambda t, f: bytes(5 * 1024 * 1024), 413, "file_too_large"),
    Case("unknown_codec", gen_unknown_codec, 415, "unsupported_codec"),
    Case(
        "corrupt_frames_mid_stream", gen_corrupt_mid_stream, state="succeeded", check=_check_warned
    ),
    Case("variable_frame_rate", gen_vfr, state="succeeded", check=_check_vfr, filename="vfr.mkv"),
    Case("rotated_90", gen_rotated, state="succeeded", check=_check_rotated),
    Case(
        "wrong_extension_and_type",
        lambda t, f: encode(t / "ok.mp4", f),
        state="succeeded",
        filename="clip.txt",
        content_type="text/plain",
        check=_check_single,
    ),
    Case("no_face", gen_no_face, state="failed", code="no_face_detected"),
    Case("several_faces", gen_several_faces, state="succeeded"),
    Case("face_leaves_and_returns", gen_face_leaves, state="succeeded", check=_check_leaves),
]


# -- fixtures and the test -----------------------------------------------------------------


@pytest.fixture(scope="module")
def face_frames(single_face_video: Path) -> Frames:
    """The 72 RGB frames of single_face.mp4 (640x360)."""
    with av.open(str(single_face_video)) as src:
        return [f.to_ndarray(format="rgb24") for f in src.decode(video=0)]


@pytest.fixture(scope="module")
def corpus_client(tmp_path_factory: pytest.TempPathFactory) -> Iterator[TestClient]:
    """One app for the whole corpus (so the runner must survive every case), auth on,
    limits lowered so the limit cases stay small."""
    from service.auth import hash_key

    settings = ServiceSettings(
        _env_file=None,  # type: ignore[call-arg]
        data_dir=tmp_path_factory.mktemp("corpus") / "data",
        broker_url=None,
        redis_url=None,
        api_keys=f"corpus:{hash_key('corpus-key')}",
        rate_limit="none",
        submit_rate_limit="none",
        max_upload_bytes=4 * 1024 * 1024,
        max_duration_s=60.0,
        max_frames=600,
    )
    with TestClient(create_app(settings), headers={"X-API-Key": "corpus-key"}) as client:
        yield client


@pytest.mark.parametrize("case", CASES, ids=[c.name for c in CASES])
def test_bad_input(
    case: Case, corpus_client: TestClient, face_frames: Frames, tmp_path: Path
) -> None:
    made = case.make(tmp_path, face_frames)
    data = made if isinstance(made, bytes) else made.read_bytes()
    name = case.filename or (made.name if isinstance(made, Path) else "upload.mp4")
    r = upload(corpus_client, data=data, name=name, content_type=case.content_type)
    if case.status != 202:
        assert r.status_code == case.status, r.text
        body = r.json()
        assert set(body) == {"code", "message"} and body["code"] == case.code, body
        assert "Traceback" not in body["message"]
        return
    assert r.status_code == 202, r.text
    job = wait_finished(corpus_client, r.json()["job_id"], timeout_s=120)
    assert job["state"] == case.state, job.get("error")
    if case.state == "failed":
        assert job["error"]["code"] == case.code and "Traceback" not in job["error"]["message"]
    if case.check is not None:
        case.check(job)


def test_corpus_is_large_enough() -> None:
    assert len(CASES) >= 25
    assert len({c.name for c in CASES}) == len(CASES)


def test_runner_still_serves_after_the_corpus(
    corpus_client: TestClient, single_face_video: Path
) -> None:
    """Runs after the parametrized cases (same module-scoped app): a valid video still
    succeeds and nothing was left behind by the rejected uploads."""
    r = upload(corpus_client, single_face_video)
    assert r.status_code == 202, r.text
    job = wait_finished(corpus_client, r.json()["job_id"], timeout_s=120)
    assert job["state"] == "succeeded", job
    check_single_face_result(job["result"])
    settings = corpus_client.app.state.settings
    store = corpus_client.app.state.job_store
    uploads = Path(settings.data_dir).resolve() / "uploads"
    assert {p.name for p in uploads.iterdir()} <= set(store.iter_ids())
