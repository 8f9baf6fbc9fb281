"""SMIC-HS loader (Li et al., FG 2013): 100 fps, 16 subjects, 164 micro-expression clips.

Layout::

    ROOT/HS/s1/micro/negative/s1_ne_01/image0xxxxx.bmp ...

(``ROOT`` may also be the ``HS`` folder itself.) Labels come from the folder names
(``negative`` / ``positive`` / ``surprise``, already the MEGC 2019 classes). The clips are cut
from onset to offset and SMIC has no apex annotation: onset = first frame, offset = last
frame, apex = midpoint (``apex_annotated=False``). SMIC has no AU coding (``aus=()``).
"""

from __future__ import annotations

import logging
import re
from pathlib import Path

from mer.datasets.emotion_labels import MEGC3_CLASSES
from mer.datasets.frames import list_frames
from mer.datasets.sample import Sample, build_sample

log = logging.getLogger(__name__)

SMIC_HS_FPS = 100.0


def _hs_root(root: Path) -> Path:
    if (root / "HS").is_dir():
        return root / "HS"
    if (root / "SMIC_all_raw" / "HS").is_dir():
        return root / "SMIC_all_raw" / "HS"
    return root


def _subject_key(name: str) -> tuple[int, str]:
    m = re.search(r"(\d+)", name)
    return (int(m.group(1)) if m else 10**9, name)


def load_smic_hs(
    root: Path | str,
    fps: float = SMIC_HS_FPS,
    emotions: tuple[str, ...] = MEGC3_CLASSES,
) -> list[Sample]:
    """Load every SMIC-HS micro clip under ``HS/{subject}/micro/{emotion}/{clip}/``.

    Args:
        root: folder holding ``HS`` (or ``HS`` itself).
        fps: 100 for the HS camera.
        emotions: emotion folders to read.

    Returns:
        samples sorted by subject number, emotion, clip; ``dataset="smic"``,
        ``megc3 = emotion``.

    Raises:
        FileNotFoundError: no subject folder with a ``micro`` subfolder.
    """
    hs = _hs_root(Path(root))
    subjects = (
        sorted(
            (d for d in hs.iterdir() if d.is_dir() and (d / "micro").is_dir()),
            key=lambda d: _subject_key(d.name),
        )
        if hs.is_dir()
        else []
    )
    if not subjects:
        raise FileNotFoundError(f"no SMIC-HS subject folders ({{s}}/micro/) under {hs}")
    samples: list[Sample] = []
    for sd in subjects:
        for emo in emotions:
            ed = sd / "micro" / emo
            if not ed.is_dir():
                continue
            for cd in sorted(d for d in ed.iterdir() if d.is_dir()):
                frames = list_frames(cd)
                if not frames:
                    log.warning("SMIC %s/%s: no frames", sd.name, cd.name)
                    continue
                samples.append(
                    build_sample(
                        dataset="smic",
                        subject=sd.name,
                        clip=cd.name,
                        frames=frames,
                        onset=frames[0][0],
                        apex=None,
                        offset=frames[-1][0],
                        fps=fps,
                        au_raw="",
                        emotion=emo,
                    )
                )
    return samples
