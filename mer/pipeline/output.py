"""The result of one video with its per-frame part kept as arrays (:class:`CompactResult`),
written as JSON in a stream.

A 10-minute 30 fps video has 18 000 frames: as :class:`mer.schemas.FrameResult` objects
(a dict of 14 AU scores each) they take 34 MB of Python objects (about 87 MB with the 52
blendshapes), and their JSON 6-9 MB more. :class:`FrameTable` keeps the same values as the
stages' arrays (about 90 bytes a frame, 300 with blendshapes) and builds the per-frame
objects a chunk at a time, when they are written (:meth:`CompactResult.write_json`, the
CLI and the worker) or asked for (:meth:`CompactResult.to_result`, the Python API).
"""

from __future__ import annotations

from collections.abc import Iterator
from dataclasses import dataclass
from typing import Any, BinaryIO

import numpy as np
from pydantic import TypeAdapter

from mer.face.blendshapes import BLENDSHAPE_NAMES
from mer.schemas import AU_NAMES, AnalysisResult, FrameResult

#: frames serialised per step when streaming the JSON
FRAME_CHUNK = 512
_FRAME_LIST: TypeAdapter[list[FrameResult]] = TypeAdapter(list[FrameResult])


@dataclass(frozen=True)
class FrameTable:
    """Per-frame outputs of a video of ``T`` frames, as arrays; a sequence of
    :class:`mer.schemas.FrameResult` built on access (``len``, ``table[i]``, iteration).

    Attributes:
        timestamps_s: ``(T,)`` float presentation times (seconds).
        face: ``(T,)`` bool, a face was tracked.
        confidence: ``(T,)`` float face tracking confidence in [0, 1].
        apex_score: ``(T,)`` float apex score in [0, 1].
        au: ``(T, len(AU_NAMES))`` float AU scores in [0, 1], columns :data:`AU_NAMES`.
        blendshapes: ``(T, 52)`` float blendshape coefficients (NaN rows without a face;
            :data:`mer.face.blendshapes.BLENDSHAPE_NAMES`), or None when not reported.

    Values are rounded as the result reports them (times to 1 µs, confidence to 4
    decimals, scores to 5) when each frame is built.
    """

    timestamps_s: np.ndarray
    face: np.ndarray
    confidence: np.ndarray
    apex_score: np.ndarray
    au: np.ndarray
    blendshapes: np.ndarray | None = None

    def __len__(self) -> int:
        return len(self.timestamps_s)

    @property
    def n_face(self) -> int:
        """Frames with a face."""
        return int(np.count_nonzero(self.face))

    @property
    def any_blendshapes(self) -> bool:
        """Some frame carries its blendshapes (a row without NaN)."""
        bs = self.blendshapes
        return bs is not None and bool((~np.isnan(bs).any(axis=1)).any())

    def __getitem__(self, i: int) -> FrameResult:
        """Frame ``i`` (negative counts from the end).

        Raises:
            IndexError: ``i`` out of range.
        """
        n = len(self)
        if not -n <= i < n:
            raise IndexError(f"frame {i} of {n}")
        i %= n
        bs = None
        if self.blendshapes is not None and not np.isnan(self.blendshapes[i]).any():
            values = self.blendshapes[i].tolist()
            bs = {k: round(v, 5) for k, v in zip(BLENDSHAPE_NAMES, values, strict=True)}
        return FrameResult(
            frame=i,
            timestamp_s=round(float(self.timestamps_s[i]), 6),
            face=bool(self.face[i]),
            confidence=round(float(self.confidence[i]), 4),
            apex_score=round(float(self.apex_score[i]), 5),
            au={k: round(v, 5) for k, v in zip(AU_NAMES, self.au[i].tolist(), strict=True)},
            blendshapes=bs,
        )

    def __iter__(self) -> Iterator[FrameResult]:
        for chunk in self.chunks():
            yield from chunk

    def chunks(self, size: int = FRAME_CHUNK) -> Iterator[list[FrameResult]]:
        """The frames, ``size`` at a time (each list is built when asked for)."""
        for lo in range(0, len(self), size):
            yield [self[i] for i in range(lo, min(lo + size, len(self)))]


def _frames_marker(indent: int | None) -> str:
    return '"frames": []' if indent is not None else '"frames":[]'


class CompactResult:
    """One video's :class:`mer.schemas.AnalysisResult` with its per-frame part as a
    :class:`FrameTable`: what :func:`mer.pipeline.analyze_video_compact` returns.

    ``frames`` is the table (a sequence of :class:`FrameResult` built on access); every
    other field of :class:`AnalysisResult` reads through to ``head`` (``result.video``,
    ``result.intervals``, ``result.timings_ms`` ...). :meth:`model_dump_json` and
    :meth:`write_json` give the same JSON as :meth:`to_result` would, byte for byte,
    without ever holding every frame's object.

    Args:
        head: the result without frames (``head.frames == []``).
        frames: the per-frame table.

    Raises:
        ValueError: ``head`` has frames.
    """

    def __init__(self, head: AnalysisResult, frames: FrameTable) -> None:
        if head.frames:
            raise ValueError("the head of a compact result holds no frames")
        self.head = head
        self.frames = frames

    def __getattr__(self, name: str) -> Any:
        if name in AnalysisResult.model_fields:
            return getattr(self.head, name)
        raise AttributeError(name)

    def to_result(self) -> AnalysisResult:
        """The full :class:`AnalysisResult` (every frame's object in memory)."""
        return self.head.model_copy(update={"frames": list(self.frames)})

    def write_json(self, fh: BinaryIO, indent: int | None = None) -> int:
        """Write the result's JSON (UTF-8) to the binary stream ``fh``, a chunk of
        :data:`FRAME_CHUNK` frames at a time; the bytes equal
        ``to_result().model_dump_json(indent=indent).encode()``.

        Returns:
            The number of bytes written.
        """
        head = self.head.model_dump_json(indent=indent)
        marker = _frames_marker(indent)
        cut = head.index(marker) + len(marker) - 1  # at the list's closing bracket
        size = fh.write(head[:cut].encode())
        if len(self.frames):
            pad = b"\n" + b" " * (indent or 0)
            for k, chunk in enumerate(self.frames.chunks()):
                raw = _FRAME_LIST.dump_json(chunk, indent=indent)
                body = raw[1:-2] if indent is not None else raw[1:-1]  # no brackets
                if indent is not None:  # one level deeper: inside the result object
                    body = body.replace(b"\n", pad)
                size += fh.write((b"," if k else b"") + body)
            if indent is not None:
                size += fh.write(pad)
        size += fh.write(head[cut:].encode())
        return size

    def model_dump_json(self, indent: int | None = None) -> str:
        """The result's JSON as a string, as :meth:`AnalysisResult.model_dump_json` gives it
        (only the string is held whole, never the frames' objects)."""
        parts = _Parts()
        self.write_json(parts, indent)  # type: ignore[arg-type]
        return b"".join(parts.chunks).decode()


class _Parts:
    """A write-only sink collecting the chunks of :meth:`CompactResult.write_json`."""

    def __init__(self) -> None:
        self.chunks: list[bytes] = []

    def write(self, data: bytes) -> int:
        self.chunks.append(data)
        return len(data)
