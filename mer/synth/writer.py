"""Write synthetic clips in the CASME II layout: the JPEG frames of each clip (in worker
processes, with a small per-identity rig cache) and the three sheets of the set.

The layout is described in :mod:`mer.synth.dataset`.
"""

from __future__ import annotations

import csv
from collections import OrderedDict
from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path

import cv2
import numpy as np

from mer.schemas import AU_NAMES
from mer.synth.faces import CREDIT, LondonFace
from mer.synth.render import FaceRig, render_clip
from mer.synth.spec import ClipSpec, SynthConfig

SHEET_NAME = "CASME2-coding.csv"
META_NAME = "synth_meta.csv"
FRAMES_NAME = "synth_frames.csv"
CACHE_NAME = "london_landmarks.npz"
SHEET_COLUMNS: tuple[str, ...] = (
    "Subject", "Filename", "OnsetFrame", "ApexFrame", "OffsetFrame", "Action Units",
    "Estimated Emotion",
)  # fmt: skip
META_COLUMNS: tuple[str, ...] = (
    "Subject", "Filename", "fps", "frame_step", "first_frame", "last_frame", "n_frames",
    "identity", "mode", "kind", "emotion", "megc3", "amplitude_iod", "au_peak_iod",
    "smile_alpha", "blink", "noise_sigma", "jpeg_quality", "seed",
)  # fmt: skip


@dataclass
class ClipRecord:
    """What the writer needs from one rendered clip.

    Attributes:
        spec: the clip's specification.
        frame_numbers: ``(T,)`` written frame numbers.
        intensity: ``(T,)`` expression (or non-emotional movement) course in [0, 1].
        au_intensity: ``(T, len(AU_NAMES))`` AU displacements, IOD fraction.
        blink: ``(T,)`` lid closure.
    """

    spec: ClipSpec
    frame_numbers: list[int]
    intensity: np.ndarray
    au_intensity: np.ndarray
    blink: np.ndarray


def clip_dir(root: Path, spec: ClipSpec) -> Path:
    """``root/sub{subject}/{filename}``."""
    return root / f"sub{spec.subject}" / spec.filename


def write_frames(
    folder: Path, numbers: Sequence[int], frames: Sequence[np.ndarray], quality: int
) -> None:
    """Write ``img{n}.jpg`` files (RGB or grey uint8 arrays) at JPEG ``quality``.

    Raises:
        OSError: encoding or writing failed.
    """
    folder.mkdir(parents=True, exist_ok=True)
    params = [cv2.IMWRITE_JPEG_QUALITY, int(quality)]
    for n, img in zip(numbers, frames, strict=True):
        arr = img if img.ndim == 2 else cv2.cvtColor(img, cv2.COLOR_RGB2BGR)
        ok, buf = cv2.imencode(".jpg", arr, params)
        if not ok:
            raise OSError(f"JPEG encoding failed for {folder}/img{n}.jpg")
        (folder / f"img{n}.jpg").write_bytes(buf.tobytes())


# ---- worker side ---------------------------------------------------------------------------
_RIGS: OrderedDict[str, FaceRig] = OrderedDict()
_MAX_RIGS = 3


def _rig(face: LondonFace) -> FaceRig:
    rig = _RIGS.get(face.identity)
    if rig is None:
        rig = FaceRig(face)
        _RIGS[face.identity] = rig
        while len(_RIGS) > _MAX_RIGS:
            _RIGS.popitem(last=False)
    else:
        _RIGS.move_to_end(face.identity)
    return rig


def render_and_write(
    specs: list[ClipSpec], face: LondonFace, cfg: SynthConfig, root: str
) -> list[ClipRecord]:
    """Render and write the clips of one identity (runs in a worker process).

    Args:
        specs: clips of ``face``'s identity, with names assigned.
        face: the identity.
        cfg: rendering options.
        root: the data set root.

    Returns:
        one :class:`ClipRecord` per clip, in order.
    """
    cv2.setNumThreads(1)
    rig = _rig(face)
    out = []
    for spec in specs:
        r = render_clip(spec, rig, cfg)
        write_frames(
            clip_dir(Path(root), spec), r.frame_numbers, r.frames, spec.nuisance.jpeg_quality
        )
        out.append(ClipRecord(spec, r.frame_numbers, r.intensity, r.au_intensity, r.blink))
    return out


# ---- sheets -----------------------------------------------------------------------------


def _sort_key(rec: ClipRecord) -> tuple[int, str, str]:
    s = rec.spec.subject
    return (int(s) if s.isdigit() else 10**9, s, rec.spec.filename)


def write_sheets(root: Path, records: Sequence[ClipRecord]) -> Path:
    """Write ``CASME2-coding.csv``, ``synth_meta.csv`` and ``synth_frames.csv``.

    Returns:
        the coding sheet's path.
    """
    recs = sorted(records, key=_sort_key)
    sheet = root / SHEET_NAME
    with sheet.open("w", newline="", encoding="utf-8") as fh:
        w = csv.writer(fh)
        w.writerow(SHEET_COLUMNS)
        for r in recs:
            s = r.spec
            w.writerow([s.subject, s.filename, s.onset, s.apex, s.offset, s.au_string, s.emotion])
    with (root / META_NAME).open("w", newline="", encoding="utf-8") as fh:
        w = csv.writer(fh)
        w.writerow(META_COLUMNS)
        for r in recs:
            s = r.spec
            peaks = r.au_intensity.max(axis=0)
            au_peak = ";".join(f"{AU_NAMES[i]}:{peaks[i]:.5f}" for i in np.flatnonzero(peaks > 0))
            w.writerow(
                [
                    s.subject,
                    s.filename,
                    f"{s.fps:g}",
                    s.frame_step,
                    s.first,
                    s.last,
                    len(r.frame_numbers),
                    s.identity,
                    s.mode,
                    s.kind,
                    s.emotion,
                    s.megc3 or "",
                    f"{s.amplitude:.5f}",
                    au_peak,
                    f"{s.smile_alpha:.4f}",
                    len(s.blinks),
                    f"{s.nuisance.noise_sigma:.3f}",
                    s.nuisance.jpeg_quality,
                    s.seed,
                ]
            )
    with (root / FRAMES_NAME).open("w", newline="", encoding="utf-8") as fh:
        w = csv.writer(fh)
        w.writerow(["Subject", "Filename", "Frame", "intensity", "blink", *AU_NAMES])
        for r in recs:
            for k, n in enumerate(r.frame_numbers):
                w.writerow(
                    [
                        r.spec.subject,
                        r.spec.filename,
                        n,
                        f"{r.intensity[k]:.4f}",
                        f"{r.blink[k]:.4f}",
                        *(f"{v:.5f}" for v in r.au_intensity[k]),
                    ]
                )
    (root / "CREDITS.txt").write_text(
        "Synthetic micro-expressions generated by mer.synth.\n" + CREDIT + "\n"
        "Licence of the face photos: https://creativecommons.org/licenses/by/4.0/\n",
        encoding="utf-8",
    )
    return sheet
