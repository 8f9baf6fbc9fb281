"""CASME II loader (Yan et al., PLoS ONE 2014), and the synthetic sets written in its layout.

Layout (what the licence holder receives)::

    ROOT/CASME2-coding-20140508.xlsx          (or any CASME2-coding*.xlsx / *.csv)
    ROOT/CASME2_RAW_selected/sub01/EP02_01f/img46.jpg ...   (raw, 640x480, 200 fps)
    ROOT/Cropped/sub01/EP02_01f/reg_img46.jpg ...           (cropped and registered faces)

``ROOT/sub01/...`` directly (no ``CASME2_RAW_selected``) is accepted too; that is also the
layout of :mod:`mer.synth`, which adds ``synth_meta.csv`` (``Filename``, ``fps``, ...) next to
``CASME2-coding.csv``: when that sidecar is present the frame rate of each clip comes from it
and the samples are labelled ``dataset="synth"``.

Coding sheet columns: Subject, Filename, OnsetFrame, ApexFrame, OffsetFrame, Action Units,
Estimated Emotion. A few apex values are missing in the original sheet (``-1`` or ``/``):
the midpoint ``(onset + offset) // 2`` is used and ``apex_annotated`` is False.
"""

from __future__ import annotations

import logging
import re
from pathlib import Path

from mer.datasets.frames import list_frames
from mer.datasets.sample import Sample, build_sample
from mer.datasets.sheets import cell, locate_sheet, parse_frame, read_sheet

log = logging.getLogger(__name__)

CASME2_FPS = 200.0
CASME2_COLUMNS: tuple[str, ...] = (
    "Subject", "Filename", "OnsetFrame", "ApexFrame", "OffsetFrame",
    "Action Units", "Estimated Emotion",
)  # fmt: skip
#: Sidecar written by :mod:`mer.synth` (per-clip frame rate and rendering facts).
SYNTH_META = "synth_meta.csv"


def subject_folder(value: str) -> str:
    """Sheet ``Subject`` cell -> folder name: ``"1"``, ``"01"``, ``"sub01"`` -> ``"sub01"``."""
    v = value.strip()
    m = re.fullmatch(r"(?:sub)?0*(\d+)", v, flags=re.IGNORECASE)
    if m is None:
        return v
    return f"sub{int(m.group(1)):02d}"


def _frames_root(root: Path, cropped: bool) -> Path:
    if cropped:
        c = root / "Cropped"
        return c if c.is_dir() else root
    for name in ("CASME2_RAW_selected", "CASME2_RAW", "CASME2-RAW"):
        if (root / name).is_dir():
            return root / name
    return root


def _read_meta(path: Path) -> dict[tuple[str, str], dict[str, str]]:
    rows = read_sheet(path, required=("Filename", "fps"))
    out: dict[tuple[str, str], dict[str, str]] = {}
    for r in rows:
        subj = cell(r, "Subject")
        out[(subject_folder(subj) if subj else "", cell(r, "Filename"))] = r
    return out


def load_casme2(
    root: Path | str,
    sheet: Path | str | None = None,
    cropped: bool = False,
    fps: float = CASME2_FPS,
    strict: bool = False,
) -> list[Sample]:
    """Load the CASME II clips listed in the coding sheet.

    Args:
        root: the data set folder (see the module docstring for the accepted layouts).
        sheet: coding sheet path; None finds ``CASME2-coding*.xlsx`` or ``*.csv`` in ``root``.
        cropped: read ``Cropped/subNN/EP../reg_img*.jpg`` instead of the raw frames.
        fps: frame rate when no ``synth_meta.csv`` sidecar gives one (CASME II: 200).
        strict: raise when a listed clip has no frames, instead of skipping it with a
            warning.

    Returns:
        samples in sheet order (``dataset="casme2"``, or ``"synth"`` with the sidecar).

    Raises:
        FileNotFoundError: no coding sheet; with ``strict``, a clip folder without frames.
        ValueError: the sheet lacks a required column.
    """
    root = Path(root)
    sheet_path = locate_sheet(
        root,
        sheet,
        ("CASME2-coding*.xlsx", "CASME2-coding*.csv", "CASME2*.xlsx"),
        "CASME II coding sheet (CASME2-coding*.xlsx/.csv)",
    )
    rows = read_sheet(sheet_path, CASME2_COLUMNS)
    meta_path = root / SYNTH_META
    meta = _read_meta(meta_path) if meta_path.is_file() else None
    dataset = "synth" if meta is not None else "casme2"
    frames_root = _frames_root(root, cropped)
    prefix = "reg_img" if cropped and frames_root.name == "Cropped" else None
    samples: list[Sample] = []
    for r in rows:
        subj = subject_folder(cell(r, "Subject"))
        clip = cell(r, "Filename")
        folder = frames_root / subj / clip
        frames = list_frames(folder, prefix=prefix)
        if not frames and prefix is not None:
            frames = list_frames(folder)
        if not frames:
            msg = f"CASME II {subj}/{clip}: no frames in {folder}"
            if strict:
                raise FileNotFoundError(msg)
            log.warning(msg)
            continue
        clip_fps = fps
        extra: dict[str, str] = {}
        if meta is not None:
            m = meta.get((subj, clip)) or meta.get(("", clip))
            if m is None:
                log.warning("synth %s/%s: not in %s; fps=%s assumed", subj, clip, SYNTH_META, fps)
            else:
                clip_fps = float(cell(m, "fps"))
                extra = {k: v for k, v in m.items() if k not in ("Subject", "Filename", "fps")}
        samples.append(
            build_sample(
                dataset=dataset,
                subject=subj,
                clip=clip,
                frames=frames,
                onset=parse_frame(cell(r, "OnsetFrame")),
                apex=parse_frame(cell(r, "ApexFrame")),
                offset=parse_frame(cell(r, "OffsetFrame")),
                fps=clip_fps,
                au_raw=cell(r, "Action Units"),
                emotion=cell(r, "Estimated Emotion"),
                extra=extra,
            )
        )
    return samples
