"""CAS(ME)^3 part A loader (Li et al., IEEE TPAMI 2023): 30 fps, micro-expressions.

Layout::

    ROOT/cas(me)3_part_A_ME_label_JpgIndex_v2.xlsx   (any *.xlsx / *.csv with the columns)
    ROOT/.../spNO.1/b/color/175.jpg ...               (``{subject}/{video}/color/{n}.jpg``)

The frame folder of a video holds the whole recording, numbered absolutely; one sheet row
(Subject, Filename, Onset, Apex, Offset, AU, Objective class, emotion) is one clip: the
frames from onset to offset. The ``spNO.*`` folders are searched for up to three levels
below ``ROOT`` (the distribution nests them as ``part_A/data/part_A/``). Apex missing ->
midpoint. Emotions (``happy``, ``disgust``, ``fear``, ``anger``, ``sad``, ``surprise``,
``others``) are normalised (``happy`` -> ``happiness``, ``sad`` -> ``sadness``); the
3-class mapping is :data:`mer.datasets.emotion_labels.CASME3_TO_MEGC3`.
"""

from __future__ import annotations

import logging
from pathlib import Path

from mer.datasets.frames import list_frames
from mer.datasets.sample import Sample, build_sample
from mer.datasets.sheets import cell, find_dir_containing, locate_sheet, parse_frame, read_sheet

log = logging.getLogger(__name__)

CASME3_FPS = 30.0
CASME3_COLUMNS: tuple[str, ...] = (
    "Subject", "Filename", "Onset", "Apex", "Offset", "AU", "Objective class", "emotion",
)  # fmt: skip
_REQUIRED: tuple[str, ...] = ("Subject", "Filename", "Onset", "Apex", "Offset", "AU", "emotion")


def load_casme3_part_a(
    root: Path | str,
    sheet: Path | str | None = None,
    fps: float = CASME3_FPS,
    pad_frames: int = 0,
    strict: bool = False,
) -> list[Sample]:
    """Load the CAS(ME)^3 part A micro-expression clips.

    Args:
        root: the data set folder.
        sheet: label sheet; None finds ``*part_A*ME*.xlsx`` / ``.csv`` (else any ``*.xlsx``
            / ``*.csv``) in ``root``.
        fps: 30 for part A.
        pad_frames: also list this many frames before onset and after offset (context for
            spotting models); the onset/offset indices still point at the annotation.
        strict: raise on a row whose frames are missing instead of skipping it.

    Returns:
        samples in sheet order, ``dataset="casme3"``, clip id ``"{Filename}_{Onset}"``;
        ``extra["objective_class"]`` holds the Objective class cell.

    Raises:
        FileNotFoundError: no sheet or no ``spNO.*`` folders; with ``strict``, missing frames.
        ValueError: required columns missing.
    """
    root = Path(root)
    sheet_path = locate_sheet(
        root,
        sheet,
        ("*part_A*ME*.xlsx", "*part_A*ME*.csv", "*.xlsx", "*.csv"),
        "CAS(ME)^3 part A label sheet",
    )
    rows = read_sheet(sheet_path, _REQUIRED)
    frames_root = find_dir_containing(root, "spNO.*", max_depth=3)
    if frames_root is None:
        raise FileNotFoundError(f"no spNO.* subject folders under {root}")
    cache: dict[Path, list[tuple[int, Path]]] = {}
    samples: list[Sample] = []
    for r in rows:
        subj = cell(r, "Subject")
        video = cell(r, "Filename")
        onset = parse_frame(cell(r, "Onset"))
        offset = parse_frame(cell(r, "Offset"))
        folder = frames_root / subj / video / "color"
        if folder not in cache:
            cache[folder] = list_frames(folder)
        all_frames = cache[folder]
        lo = (onset if onset is not None else -(10**9)) - pad_frames
        hi = (
            offset if offset is not None and onset is not None and offset > onset else 10**12
        ) + pad_frames
        frames = [(n, p) for n, p in all_frames if lo <= n <= hi]
        if not frames or onset is None:
            msg = f"CAS(ME)^3 {subj}/{video} onset {onset}: no frames in {folder}"
            if strict:
                raise FileNotFoundError(msg)
            log.warning(msg)
            continue
        samples.append(
            build_sample(
                dataset="casme3",
                subject=subj,
                clip=f"{video}_{onset}",
                frames=frames,
                onset=onset,
                apex=parse_frame(cell(r, "Apex")),
                offset=offset,
                fps=fps,
                au_raw=cell(r, "AU"),
                emotion=cell(r, "emotion"),
                extra={"objective_class": cell(r, "Objective class"), "video": video},
            )
        )
    return samples
