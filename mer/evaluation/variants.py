"""Altered copies of labelled clips: the same faces re-encoded, mirrored, smaller, tilted,
darker, more compressed or at half the frame rate, with their labels.

The hidden clips the product is judged on come from other cameras, encoders and lighting
than the dev set. A reading that changes when the same clip is merely written again is a
threshold the data happened to clear, not a finding: evaluating these copies beside the
originals (``mer evaluate-real`` on each, ``scripts/make_dev_variants.py``) shows which
results are robust. Nothing is learned from them; they are a measure, as the dev set is.

Every variant is decoded with :func:`mer.video.iter_frames` (the frame indices of the
labels) and written with :func:`mer.video_writer.write_video` (H.264, deterministic). The
labels keep their frame indices, except ``half_rate``, which keeps every second frame and
halves them (rounded down).
"""

from __future__ import annotations

import json
from collections.abc import Callable, Mapping
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import cv2
import numpy as np

from mer.video import iter_frames, probe_video
from mer.video_writer import write_video

Image = np.ndarray


def _same(img: Image) -> Image:
    return img


def _mirrored(img: Image) -> Image:
    return np.ascontiguousarray(img[:, ::-1])


def _half_size(img: Image) -> Image:
    h, w = img.shape[:2]
    return cv2.resize(img, (w // 2, h // 2), interpolation=cv2.INTER_AREA)


def _third_size(img: Image) -> Image:
    h, w = img.shape[:2]
    return cv2.resize(img, (w // 3, h // 3), interpolation=cv2.INTER_AREA)


def _tilted(img: Image) -> Image:
    h, w = img.shape[:2]
    m = cv2.getRotationMatrix2D((w / 2, h / 2), 10.0, 1.0)
    return cv2.warpAffine(img, m, (w, h), flags=cv2.INTER_LINEAR, borderMode=cv2.BORDER_REFLECT)


def _dark(img: Image) -> Image:
    x = img.astype(np.float32) / 255.0
    return np.clip(255.0 * 0.55 * x**1.3, 0, 255).astype(np.uint8)


@dataclass(frozen=True)
class Variant:
    """One way of altering a clip.

    Attributes:
        name: folder name of the variant.
        description: what it does, for reports.
        transform: ``(H, W, 3)`` uint8 RGB -> uint8 RGB (any even-croppable size).
        frame_step: keep every ``frame_step``-th frame (frame rate divided by it).
        crf: x264 constant rate factor of the copy (18: visually lossless; 35: heavy).
    """

    name: str
    description: str
    transform: Callable[[Image], Image] = _same
    frame_step: int = 1
    crf: int = 18


#: the variants, by name
VARIANTS: dict[str, Variant] = {
    v.name: v
    for v in (
        Variant("reencoded", "decoded and written again (H.264, CRF 18)"),
        Variant("mirrored", "mirrored left-right", _mirrored),
        Variant("half_size", "half the width and height (area downscaling)", _half_size),
        Variant("third_size", "a third of the width and height (area downscaling)", _third_size),
        Variant("tilted", "turned 10 degrees in the image plane (edges mirrored in)", _tilted),
        Variant("dark", "under-exposed: 0.55 x^1.3 of the intensity", _dark),
        Variant("compressed", "heavily compressed (H.264, CRF 35)", crf=35),
        Variant("half_rate", "every second frame, at half the frame rate", frame_step=2),
    )
}


def remap_labels(entry: Mapping[str, Any], step: int, frames: int) -> dict[str, Any]:
    """A clip's label entry (a label file's JSON object) for a copy that keeps every
    ``step``-th frame: frame indices divided by ``step`` (rounded down), ``fps`` too,
    ``frames`` set to the copy's count."""
    out: dict[str, Any] = json.loads(json.dumps(entry))  # a deep copy of plain JSON
    out["frames"] = frames
    if step == 1:
        return out
    out["fps"] = float(entry["fps"]) / step
    for e in out["events"]:
        for key in ("onset", "apex", "offset"):
            e[key] = int(e[key]) // step
        e["apex_range"] = [int(a) // step for a in e["apex_range"]]
    if out.get("rest_frames"):
        out["rest_frames"] = [int(a) // step for a in out["rest_frames"]]
    for key in ("blinks", "no_face_frames"):
        if out.get(key):
            out[key] = [
                [int(a) // step for a in b] if isinstance(b, list) else int(b) // step
                for b in out[key]
            ]
    return out


def write_variant(
    video: Path, entry: Mapping[str, Any], variant: Variant, out_dir: Path
) -> tuple[str, dict[str, Any]]:
    """Write ``variant`` of one labelled clip to ``out_dir`` as ``<clip name>.mp4``.

    Args:
        video: the clip (any format FFmpeg decodes).
        entry: its label entry (the format of ``shared/data/dev/README.md``).
        variant: how to alter it.
        out_dir: where the copy goes (created).

    Returns:
        ``(file name, label entry of the copy)``.

    Raises:
        MERError subclasses of :func:`mer.video.probe_video` for unreadable input.
    """
    fps = probe_video(video).fps or float(entry.get("fps") or 30.0)
    frames = [variant.transform(f.image) for f in iter_frames(video)][:: variant.frame_step]
    h, w = frames[0].shape[:2]
    frames = [f[: h - h % 2, : w - w % 2] for f in frames]  # H.264 4:2:0 needs even sides
    out_dir.mkdir(parents=True, exist_ok=True)
    name = video.name + ".mp4"
    write_video(out_dir / name, frames, fps / variant.frame_step, crf=variant.crf)
    label = remap_labels(entry, variant.frame_step, len(frames))
    label["resolution"] = [frames[0].shape[1], frames[0].shape[0]]
    label["notes"] = f"{variant.description}; from {video.name}. {entry.get('notes') or ''}".strip()
    return name, label
