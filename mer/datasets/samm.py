"""SAMM loader (Davison et al., IEEE TAFFC 2018): 200 fps, grey, 32 subjects, 159 MEs.

Layout::

    ROOT/SAMM_Micro_FACS_Codes_v2.xlsx        (any *.xlsx / *.csv with the columns below)
    ROOT/006/006_1_2/006_05562.jpg ...         (``{subject}/{clip}/``; frame numbers
                                               absolute within the recording)

``ROOT/SAMM/006/...`` is accepted too. The coding sheet has 11 rows of preamble and its
header on row 12: Subject, Filename, Inducement Code, Onset Frame, Apex Frame, Offset Frame,
Duration, Micro, Action Units, Notes, Estimated Emotion, Objective Classes. The header row is
found automatically (first row holding the required columns) unless ``header_row`` is
given. Apex missing (``-1``, ``/``, empty) -> midpoint.

The clip folder holds exactly the frames from onset to offset in the distributed set; when
a folder holds more, all its frames are listed and the onset/offset indices point into them.
"""

from __future__ import annotations

import logging
import re
from pathlib import Path

from mer.datasets.frames import list_frames
from mer.datasets.sample import Sample, build_sample
from mer.datasets.sheets import cell, locate_sheet, parse_frame, read_sheet

log = logging.getLogger(__name__)

SAMM_FPS = 200.0
SAMM_HEADER_ROW = 12
SAMM_COLUMNS: tuple[str, ...] = (
    "Subject", "Filename", "Inducement Code", "Onset Frame", "Apex Frame", "Offset Frame",
    "Duration", "Micro", "Action Units", "Notes", "Estimated Emotion", "Objective Classes",
)  # fmt: skip
_REQUIRED: tuple[str, ...] = (
    "Subject", "Filename", "Onset Frame", "Apex Frame", "Offset Frame", "Action Units",
    "Estimated Emotion",
)  # fmt: skip


def samm_subject(value: str) -> str:
    """Sheet ``Subject`` cell -> folder name: ``6``, ``"006"`` -> ``"006"``."""
    v = value.strip()
    return f"{int(v):03d}" if re.fullmatch(r"\d+", v) else v


def load_samm(
    root: Path | str,
    sheet: Path | str | None = None,
    header_row: int | None = None,
    fps: float = SAMM_FPS,
    strict: bool = False,
) -> list[Sample]:
    """Load the SAMM micro-movement clips listed in the coding sheet.

    Args:
        root: the data set folder.
        sheet: coding sheet; None finds ``SAMM*.xlsx`` / ``SAMM*.csv`` (else any ``*.xlsx``
            / ``*.csv``) in ``root``.
        header_row: 1-based header row (12 in the distributed sheet); None detects it.
        fps: 200 for SAMM.
        strict: raise on a listed clip without frames instead of skipping it.

    Returns:
        samples in sheet order, ``dataset="samm"``; ``extra`` holds Inducement Code,
        Duration, Micro, Notes and Objective Classes.

    Raises:
        FileNotFoundError: no sheet; with ``strict``, a clip without frames.
        ValueError: required columns missing.
    """
    root = Path(root)
    sheet_path = locate_sheet(
        root,
        sheet,
        ("SAMM*.xlsx", "SAMM*.csv", "*.xlsx", "*.csv"),
        "SAMM coding sheet (*.xlsx / *.csv)",
    )
    rows = read_sheet(sheet_path, _REQUIRED, header_row=header_row)
    frames_root = root / "SAMM" if (root / "SAMM").is_dir() else root
    keep_extra = ("Inducement Code", "Duration", "Micro", "Notes", "Objective Classes")
    samples: list[Sample] = []
    for r in rows:
        subj = samm_subject(cell(r, "Subject"))
        clip = cell(r, "Filename")
        if not clip:
            continue
        folder = frames_root / subj / clip
        frames = list_frames(folder)
        if not frames:
            msg = f"SAMM {subj}/{clip}: no frames in {folder}"
            if strict:
                raise FileNotFoundError(msg)
            log.warning(msg)
            continue
        samples.append(
            build_sample(
                dataset="samm",
                subject=subj,
                clip=clip,
                frames=frames,
                onset=parse_frame(cell(r, "Onset Frame")),
                apex=parse_frame(cell(r, "Apex Frame")),
                offset=parse_frame(cell(r, "Offset Frame")),
                fps=fps,
                au_raw=cell(r, "Action Units"),
                emotion=cell(r, "Estimated Emotion"),
                extra={k: cell(r, k) for k in keep_extra},
            )
        )
    return samples
