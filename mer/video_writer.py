"""Video encoding with PyAV (FFmpeg): :func:`write_video`, the one writer of the project's
own clips (the synthetic sets, the concatenated real clips, test media); decoding is
:mod:`mer.video`.
"""

from __future__ import annotations

from collections.abc import Sequence
from fractions import Fraction
from pathlib import Path

import av
import numpy as np


def write_video(
    path: Path,
    frames: Sequence[np.ndarray],
    fps: float,
    crf: int = 18,
    codec: str | None = None,
    bit_rate: int = 8_000_000,
) -> str:
    """Encode RGB frames with PyAV: H.264 (libx264, yuv420p, CRF ``crf``, one thread, no
    macroblock tree, so that the same frames give the same bytes) when available, else
    MPEG-4 Part 2 at ``bit_rate``.

    Args:
        path: output ``.mp4``.
        frames: ``(H, W, 3)`` uint8 RGB, H and W even.
        fps: frames/s.
        crf: x264 constant rate factor (lower = better).
        codec: ``"libx264"`` or ``"mpeg4"``; None picks as above.
        bit_rate: MPEG-4 Part 2 bit rate (bits/s); the default is high enough for micro
            movements, smaller test media take less.

    Returns:
        the codec used.
    """
    if codec is None:
        codec = "libx264" if "libx264" in av.codecs_available else "mpeg4"
    # mbtree off: x264's macroblock-tree rate control read memory it had not written here
    # (the same frames gave up to six different files in one process, depending on what the
    # freed heap held, as after rendering a clip); constant-rate-factor without it does not
    opts = (
        {"crf": str(crf), "preset": "medium", "threads": "1", "x264-params": "mbtree=0"}
        if codec == "libx264"
        else {}
    )
    with av.open(str(path), mode="w") as container:
        rate = Fraction(fps).limit_denominator(1001)
        stream = container.add_stream(codec, rate=rate, options=opts)
        h, w = frames[0].shape[:2]
        stream.width, stream.height, stream.pix_fmt = w, h, "yuv420p"
        if codec != "libx264":
            stream.bit_rate = bit_rate
        for f in frames:
            for packet in stream.encode(av.VideoFrame.from_ndarray(f, format="rgb24")):
                container.mux(packet)
        for packet in stream.encode():
            container.mux(packet)
    return codec
