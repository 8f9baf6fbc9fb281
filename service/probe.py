"""Content checks on an upload before a job is created (PyAV, never the file name or the
declared content type).

:func:`inspect_upload` runs :func:`mer.video.probe_video` (container, stream, codec and
limit checks with their codes) and adds what an API must refuse up front:

* a stream FFmpeg recognises but cannot decode (no codec context) -> 415
  ``unsupported_codec`` (checked first: ``probe_video`` would fail on it unexpectedly);
* a still image (PNG, JPEG, ... read by FFmpeg's image demuxers) -> 415 ``not_a_video``;
* fewer than :data:`MIN_FRAMES` decodable frames -> 422 ``too_few_frames`` (motion
  analysis compares frames).
"""

from __future__ import annotations

import contextlib
from pathlib import Path

import av

from mer.errors import UnsupportedCodecError
from mer.settings import Settings
from mer.video import VideoProbe, probe_video
from service.errors import NotAVideoError, TooFewFramesError

#: Fewest decodable frames an accepted video must have.
MIN_FRAMES = 2
#: Packets read at most while looking for :data:`MIN_FRAMES` frames.
_MAX_PACKETS = 512


def _is_image_format(name: str) -> bool:
    """FFmpeg demuxers that read single images (``png_pipe``, ``image2``, ...)."""
    return name.endswith("_pipe") or name in {"image2", "image2pipe"}


def inspect_upload(path: Path, settings: Settings) -> VideoProbe:
    """Check that ``path`` holds a decodable video within ``settings``'s limits.

    Returns:
        The :class:`~mer.video.VideoProbe`.

    Raises:
        MERError: with one of the documented codes (``empty_upload``, ``invalid_video``,
            ``no_video_stream``, ``unsupported_codec``, ``not_a_video``, limits,
            ``truncated_video``, ``too_few_frames``).
    """
    container = None
    with contextlib.suppress(av.error.FFmpegError, OSError):
        container = av.open(str(path), mode="r")
    if container is not None:
        with container:
            fmt = container.format.name if container.format else ""
            if container.streams.video:
                stream = container.streams.video[0]
                if stream.codec_context is None:
                    raise UnsupportedCodecError(
                        "the video stream's codec is not one this service can decode"
                    )
            if _is_image_format(fmt):
                raise NotAVideoError(f"the upload is a still image ({fmt}), not a video")
    probe = probe_video(path, settings)
    if _count_frames(path, MIN_FRAMES) < MIN_FRAMES:
        raise TooFewFramesError(
            f"the video has fewer than {MIN_FRAMES} decodable frames; motion analysis "
            "needs at least two"
        )
    return probe


def _count_frames(path: Path, wanted: int) -> int:
    """Decode until ``wanted`` frames are found (or the file ends); return the count."""
    found = 0
    with av.open(str(path), mode="r") as container:
        stream = container.streams.video[0]
        for packets, packet in enumerate(container.demux(stream), start=1):
            with contextlib.suppress(av.error.FFmpegError):
                found += len(packet.decode())
            if found >= wanted or packets >= _MAX_PACKETS:
                break
    return found
