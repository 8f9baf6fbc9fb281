"""Streaming video decoding with PyAV (FFmpeg), with limits and clear error codes.

Frames are yielded one at a time (the whole video is never held in memory), with their
real presentation timestamps in seconds (variable-frame-rate safe) and the stream's
display rotation applied. H.264, HEVC, MPEG-1 and anything else the linked FFmpeg decodes
work. Corrupt packets mid-stream are skipped and counted, never silently: the count goes
into the result's ``warnings``.
"""

from __future__ import annotations

import os
from collections.abc import Iterator
from dataclasses import dataclass, field
from pathlib import Path

import av
import numpy as np

from mer.errors import (
    EmptyUploadError,
    InvalidVideoError,
    NoVideoStreamError,
    TruncatedVideoError,
    UnsupportedCodecError,
    VideoLimitError,
)
from mer.hashing import sha256_file  # noqa: F401  (re-exported)
from mer.settings import Settings


@dataclass(frozen=True)
class VideoProbe:
    """Container-level facts read without decoding every frame.

    Attributes:
        codec: FFmpeg decoder name (``h264``, ``hevc``, ``mpeg1video`` ...).
        width, height: display size in pixels, rotation applied.
        fps: the stream's average frame rate (frames/s); 0.0 when unknown.
        duration_s: container or stream duration in seconds; 0.0 when unknown.
        frame_count: frames declared by the container; 0 when unknown.
        rotation_deg: counter-clockwise display rotation applied to decoded frames
            (0, 90, 180, 270).
        has_audio: whether an audio stream is present.
    """

    codec: str
    width: int
    height: int
    fps: float
    duration_s: float
    frame_count: int
    rotation_deg: int
    has_audio: bool


@dataclass
class DecodedFrame:
    """One decoded frame.

    Attributes:
        index: 0-based index in decode order.
        timestamp_s: presentation time in seconds from the stream start.
        image: ``(H, W, 3)`` uint8 RGB, rotation applied.
    """

    index: int
    timestamp_s: float
    image: np.ndarray


@dataclass
class DecodeStats:
    """Counters filled while decoding; read them after the iterator ends.

    Attributes:
        frames: frames decoded.
        corrupt_packets: packets skipped because they did not decode (or demux).
        decoded_s: seconds covered by the decoded frames (last timestamp minus the first,
            plus one frame period).
        expected_frames: frames the container declares (0 when it does not say).
        expected_s: duration the container declares in seconds (0.0 when unknown).
        truncated: the file ends before its declared end (see :func:`is_truncated`).
        warnings: human-readable notes for the result's ``warnings``.
    """

    frames: int = 0
    corrupt_packets: int = 0
    decoded_s: float = 0.0
    expected_frames: int = 0
    expected_s: float = 0.0
    truncated: bool = False
    warnings: list[str] = field(default_factory=list)


#: Declared frames the decoder may fall short of before a file counts as truncated:
#: the larger of this many frames and :data:`TRUNCATION_FRACTION` of the declared count.
TRUNCATION_MIN_FRAMES = 3
TRUNCATION_FRACTION = 0.02
#: Without a declared frame count: seconds short of the declared duration (plus 5 %).
TRUNCATION_MIN_S = 0.25


def is_truncated(stats: DecodeStats) -> bool:
    """Whether the decoded frames fall short of what the container declares.

    With a declared frame count (MP4, MOV, MKV ...): fewer than ``expected_frames -
    max(TRUNCATION_MIN_FRAMES, TRUNCATION_FRACTION * expected_frames)`` frames decoded.
    Otherwise (MPEG-PS, some AVI) with a declared duration: ``decoded_s`` short of
    ``expected_s`` by more than ``TRUNCATION_MIN_S`` + 5 % (durations estimated from the
    bit rate are rough). Unknown both ways: ``False``.
    """
    if stats.expected_frames > 0:
        slack = max(TRUNCATION_MIN_FRAMES, TRUNCATION_FRACTION * stats.expected_frames)
        return stats.frames < stats.expected_frames - slack
    if stats.expected_s > 0:
        return stats.decoded_s < stats.expected_s * 0.95 - TRUNCATION_MIN_S
    return False


def _open(path: str | os.PathLike[str]) -> av.container.InputContainer:
    p = Path(path)
    if not p.exists():
        raise InvalidVideoError(f"file not found: {p.name}", code="file_not_found")
    if p.stat().st_size == 0:
        raise EmptyUploadError("the upload is empty (0 bytes)")
    try:
        return av.open(str(p), mode="r")
    except av.error.FFmpegError as exc:
        raise InvalidVideoError(
            f"not a readable video container ({exc.__class__.__name__}: {exc.strerror})"
        ) from exc


def _rotation_of(stream: av.video.stream.VideoStream) -> int:
    """Counter-clockwise display rotation in degrees from the legacy ``rotate`` tag, or 0.

    The ``rotate`` tag of older muxers is clockwise; modern files carry a display matrix
    that PyAV exposes per frame (:attr:`av.VideoFrame.rotation`, counter-clockwise).
    """
    tag = stream.metadata.get("rotate")
    try:
        return (-int(tag)) % 360 if tag else 0
    except ValueError:
        return 0


def _frame_rotation(frame: av.VideoFrame, fallback: int) -> int:
    """Counter-clockwise rotation (0, 90, 180, 270) that makes ``frame`` display upright."""
    rot = getattr(frame, "rotation", 0) or 0
    return int(round(rot / 90.0)) * 90 % 360 if rot else fallback


def upright(image: np.ndarray, rotation_ccw: int) -> np.ndarray:
    """Apply a counter-clockwise display rotation (multiple of 90 degrees) to an image."""
    k = (rotation_ccw // 90) % 4
    return np.ascontiguousarray(np.rot90(image, k=k)) if k else image


def probe_video(path: str | os.PathLike[str], settings: Settings | None = None) -> VideoProbe:
    """Open a file, check it holds a decodable video within the limits, and describe it.

    Decodes one frame to prove the codec works.

    Args:
        path: the video file.
        settings: limits (``max_upload_bytes``, ``max_width``, ``max_height``,
            ``max_duration_s``, ``max_frames``); defaults to :class:`Settings()`.

    Returns:
        A :class:`VideoProbe`.

    Raises:
        EmptyUploadError: 0 bytes (``empty_upload``).
        VideoLimitError: ``file_too_large`` (413), ``resolution_too_large``,
            ``video_too_long``, ``too_many_frames``, ``resolution_too_small``.
        InvalidVideoError: not a container (``invalid_video``).
        NoVideoStreamError: no video stream (``no_video_stream``).
        UnsupportedCodecError: no decoder (``unsupported_codec``).
        TruncatedVideoError: no frame decodes (``truncated_video``).
    """
    settings = settings or Settings()
    p = Path(path)
    if p.exists() and p.stat().st_size > settings.max_upload_bytes:
        raise VideoLimitError(
            f"file is {p.stat().st_size} bytes; the limit is {settings.max_upload_bytes}",
            code="file_too_large",
        )
    container = _open(p)
    try:
        if not container.streams.video:
            raise NoVideoStreamError("the file holds no video stream")
        stream = container.streams.video[0]
        if stream.codec_context is None:  # FFmpeg has no decoder for this stream
            raise UnsupportedCodecError("the video stream's codec cannot be decoded here")
        codec = stream.codec_context.name
        width, height = int(stream.width or 0), int(stream.height or 0)
        if width <= 0 or height <= 0:
            raise InvalidVideoError("the video stream declares no frame size")
        if width > settings.max_width or height > settings.max_height:
            raise VideoLimitError(
                f"resolution {width}x{height} exceeds the limit "
                f"{settings.max_width}x{settings.max_height}",
                code="resolution_too_large",
            )
        if min(width, height) < 32:
            raise VideoLimitError(
                f"resolution {width}x{height} is too small for face analysis (min 32 px)",
                code="resolution_too_small",
            )
        fps = float(stream.average_rate or stream.guessed_rate or 0.0)
        duration_s = _declared_duration_s(container, stream)
        if duration_s > settings.max_duration_s:
            raise VideoLimitError(
                f"duration {duration_s:.1f} s exceeds the limit {settings.max_duration_s:.0f} s",
                code="video_too_long",
            )
        frames = int(stream.frames or 0)
        if frames > settings.max_frames:
            raise VideoLimitError(
                f"{frames} frames exceed the limit {settings.max_frames}", code="too_many_frames"
            )
        try:
            first = next(iter(_decode_packets(container, stream, DecodeStats())), None)
        except av.error.DecoderNotFoundError as exc:
            raise UnsupportedCodecError(f"no decoder for codec {codec!r}") from exc
        if first is None:
            raise TruncatedVideoError("no frame could be decoded (truncated or corrupt file)")
        rotation = _frame_rotation(first, _rotation_of(stream))
        if rotation in (90, 270):
            width, height = height, width
        return VideoProbe(
            codec=codec,
            width=width,
            height=height,
            fps=fps,
            duration_s=duration_s,
            frame_count=frames,
            rotation_deg=rotation,
            has_audio=bool(container.streams.audio),
        )
    finally:
        container.close()


def _declared_duration_s(
    container: av.container.InputContainer, stream: av.video.stream.VideoStream
) -> float:
    """The stream's declared duration in seconds, else the container's; 0.0 if unknown."""
    if stream.duration is not None and stream.time_base is not None:
        return float(stream.duration * stream.time_base)
    if container.duration is not None:
        return container.duration / 1_000_000
    return 0.0


def _decode_packets(
    container: av.container.InputContainer,
    stream: av.video.stream.VideoStream,
    stats: DecodeStats,
) -> Iterator[av.VideoFrame]:
    """Demux and decode packet by packet, skipping (and counting) corrupt packets."""
    try:
        packets = container.demux(stream)
        while True:
            try:
                packet = next(packets)
            except StopIteration:
                break
            except av.error.FFmpegError:
                stats.corrupt_packets += 1
                break  # the demuxer itself broke: the file ends here (truncated)
            try:
                yield from packet.decode()
            except av.error.DecoderNotFoundError:
                raise
            except av.error.FFmpegError:
                stats.corrupt_packets += 1
    finally:
        pass


def iter_frames(
    path: str | os.PathLike[str],
    settings: Settings | None = None,
    stats: DecodeStats | None = None,
    stream_threads: bool = True,
    label: str | None = None,
) -> Iterator[DecodedFrame]:
    """Decode a video frame by frame, streaming.

    Args:
        path: the video file.
        settings: limits, checked while decoding (``max_frames``, ``max_duration_s``).
        stats: filled with frame and corrupt-packet counts and warnings.
        stream_threads: let FFmpeg decode with frame/slice threads.
        label: the file's name in warnings (an upload's client-side name); default the
            name of ``path``.

    Yields:
        :class:`DecodedFrame` with ``(H, W, 3)`` uint8 RGB images (rotation applied) and
        strictly increasing ``timestamp_s`` (seconds).

    Raises:
        The errors of :func:`probe_video`'s opening step; ``VideoLimitError`` when a limit
        is crossed mid-stream; ``TruncatedVideoError`` if no frame decodes.
    """
    settings = settings or Settings()
    stats = stats if stats is not None else DecodeStats()
    container = _open(path)
    try:
        if not container.streams.video:
            raise NoVideoStreamError("the file holds no video stream")
        stream = container.streams.video[0]
        if stream.codec_context is None:
            raise UnsupportedCodecError("the video stream's codec cannot be decoded here")
        if stream_threads:
            stream.thread_type = "AUTO"
        rotation = _rotation_of(stream)
        fps_guess = float(stream.average_rate or stream.guessed_rate or 25.0)
        stats.expected_frames = int(stream.frames or 0)
        stats.expected_s = _declared_duration_s(container, stream)
        last_t = -1.0
        first_t: float | None = None
        index = 0
        for frame in _decode_packets(container, stream, stats):
            t = frame.time
            if t is None:
                t = index / fps_guess
            if t <= last_t:  # repair missing / non-monotonic timestamps (keep order)
                t = last_t + 1e-6
            if t - (stream.start_time or 0) * float(stream.time_base or 0) > (
                settings.max_duration_s
            ):
                raise VideoLimitError(
                    f"video runs past the {settings.max_duration_s:.0f} s limit",
                    code="video_too_long",
                )
            if index >= settings.max_frames:
                raise VideoLimitError(
                    f"video has more than {settings.max_frames} frames", code="too_many_frames"
                )
            img = upright(frame.to_ndarray(format="rgb24"), _frame_rotation(frame, rotation))
            yield DecodedFrame(index=index, timestamp_s=float(t), image=img)
            first_t = t if first_t is None else first_t
            last_t = t
            index += 1
        stats.frames = index
        if index == 0:
            raise TruncatedVideoError("no frame could be decoded (truncated or corrupt file)")
        stats.decoded_s = float(last_t - (first_t or 0.0)) + 1.0 / fps_guess
        if stats.corrupt_packets:
            stats.warnings.append(
                f"{stats.corrupt_packets} corrupt or unreadable packet(s) were skipped"
            )
        stats.truncated = is_truncated(stats)
        if stats.truncated:
            of = f" of {stats.expected_frames}" if stats.expected_frames else ""
            stats.warnings.append(
                f"truncated file: {label or Path(path).name} ends before its declared end; decoded "
                f"{stats.frames}{of} frames ({stats.decoded_s:.2f} s of "
                f"{stats.expected_s:.2f} s); the result covers the decoded part only"
            )
    finally:
        container.close()
