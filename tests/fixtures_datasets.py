"""Tiny data sets in the exact distributed layouts, built at test time, and media helpers.

Nothing here is licensed data: frames are 4x4 grey JPEG/BMP files, coding sheets are
written by the builders with the real column names (and the SAMM header on row 12).
"""

from __future__ import annotations

import csv
import os
from pathlib import Path

import cv2
import numpy as np
import pytest

from mer.synth.faces import default_london_root

LONDON = default_london_root()  # under MER_SHARED_DATA_DIR


def require_london() -> Path:
    """The London Set folder; skip the test when missing (fail under ``CI``)."""
    if not (LONDON / "neutral" / "001.jpg").is_file():
        msg = f"shared face data missing: {LONDON} (see ../shared/data/README.md)"
        if os.environ.get("CI"):
            pytest.fail(msg)
        pytest.skip(msg)
    return LONDON


def _frame(path: Path, value: int) -> None:
    path.parent.mkdir(parents=True, exist_ok=True)
    img = np.full((4, 4), value % 256, np.uint8)
    assert cv2.imwrite(str(path), img)


def _write_csv(path: Path, rows: list[list[object]]) -> None:
    with path.open("w", newline="", encoding="utf-8") as fh:
        csv.writer(fh).writerows(rows)


def _write_xlsx(path: Path, rows: list[list[object]]) -> None:
    openpyxl = pytest.importorskip("openpyxl")
    wb = openpyxl.Workbook()
    ws = wb.active
    for r in rows:
        ws.append(r)
    wb.save(path)


def write_table(path: Path, rows: list[list[object]]) -> None:
    """Write rows as ``.csv`` or ``.xlsx`` by the path's suffix."""
    if path.suffix == ".xlsx":
        _write_xlsx(path, rows)
    else:
        _write_csv(path, rows)


# ---- CASME II -------------------------------------------------------------------------------
CASME2_HEADER = ["Subject", "Filename", "OnsetFrame", "ApexFrame", "OffsetFrame",
                 "Action Units", "Estimated Emotion"]  # fmt: skip
#: (subject cell, clip, frame numbers, onset, apex, offset, AUs, emotion)
CASME2_CLIPS: list[tuple[object, str, range | None, object, object, object, str, str]] = [
    ("1", "EP02_01f", range(8, 13), 8, 10, 12, "4+7", "disgust"),
    ("01", "EP03_02", range(1, 7), 1, "/", 6, "L4+R7", "others"),
    (2, "EP19_05f", range(95, 106), 95, -1, 105, "12(?)", "happiness"),
    ("02", "EP01_01", range(40, 46), 40, 43, 45, "AU14", "repression"),
    ("11", "EP05_03", range(3, 9), 3, 5, 8, "1+2+R25", "surprise"),
    ("3", "EP07_01", None, 1, 2, 3, "4+7+R10", "fear"),  # listed, but no frames on disk
]


def make_casme2(root: Path, sheet: str = "csv", cropped: bool = False) -> Path:
    """CASME II: ``sub01/EP02_01f/img46.jpg`` (or ``Cropped/.../reg_img46.jpg``) + sheet."""
    root.mkdir(parents=True, exist_ok=True)
    rows: list[list[object]] = [CASME2_HEADER]
    for subj, clip, frames, on, ap, off, aus, emo in CASME2_CLIPS:
        rows.append([subj, clip, on, ap, off, aus, emo])
        if frames is None:
            continue
        folder = f"sub{int(subj):02d}"
        for n in frames:
            if cropped:
                _frame(root / "Cropped" / folder / clip / f"reg_img{n}.jpg", n)
            else:
                _frame(root / folder / clip / f"img{n}.jpg", n)
    write_table(root / f"CASME2-coding-20140508.{sheet}", rows)
    return root


# ---- SAMM -----------------------------------------------------------------------------------
SAMM_HEADER = ["Subject", "Filename", "Inducement Code", "Onset Frame", "Apex Frame",
               "Offset Frame", "Duration", "Micro", "Action Units", "Notes",
               "Estimated Emotion", "Objective Classes"]  # fmt: skip
#: (subject cell, clip, frames, onset, apex, offset, AUs, emotion, objective class)
SAMM_CLIPS: list[tuple[object, str, range, int, int, int, str, str, int]] = [
    (6, "006_1_2", range(5562, 5571), 5562, 5566, 5570, "4+7", "Anger", 1),
    (6, "006_1_5", range(998, 1003), 998, -1, 1002, "R12", "Happiness", 2),
    ("007", "007_3_1", range(95, 105), 95, 99, 104, "L2+R2", "Surprise", 3),
    (7, "007_6_1", range(10, 15), 10, 12, 14, "14", "Contempt", 6),
    (11, "011_2_3", range(1, 6), 1, 3, 5, "R14A+25", "Other", 7),
]


def make_samm(root: Path, sheet: str = "xlsx") -> Path:
    """SAMM: ``006/006_1_2/006_05562.jpg`` and a sheet with its header on row 12."""
    root.mkdir(parents=True, exist_ok=True)
    rows: list[list[object]] = [["SAMM Micro FACS Codes"], ["Version 2"]]
    rows += [[f"note line {i}"] if i % 2 else [] for i in range(3, 12)]
    assert len(rows) == 11
    rows.append(SAMM_HEADER)
    for subj, clip, frames, on, ap, off, aus, emo, obj in SAMM_CLIPS:
        rows.append([subj, clip, "1_2", on, ap, off, off - on + 1, "Micro - 1/2", aus, "",
                     emo, obj])  # fmt: skip
        sdir = f"{int(subj):03d}"
        for n in frames:
            _frame(root / sdir / clip / f"{sdir}_{n:05d}.jpg", n)
    write_table(root / f"SAMM_Micro_FACS_Codes_v2.{sheet}", rows)
    return root


# ---- SMIC-HS --------------------------------------------------------------------------------
#: (subject, emotion, clip, frame numbers)
SMIC_CLIPS: list[tuple[str, str, str, range]] = [
    ("s1", "negative", "s1_ne_01", range(8, 13)),
    ("s1", "positive", "s1_po_01", range(98, 103)),
    ("s2", "surprise", "s2_sur_01", range(1, 4)),
    ("s10", "negative", "s10_ne_02", range(5, 12)),
]


def make_smic(root: Path) -> Path:
    """SMIC-HS: ``HS/s1/micro/negative/s1_ne_01/image{n}.bmp`` (no sheet)."""
    for subj, emo, clip, frames in SMIC_CLIPS:
        for n in frames:
            _frame(root / "HS" / subj / "micro" / emo / clip / f"image{n}.bmp", n)
    (root / "HS" / "s2" / "macro").mkdir(parents=True, exist_ok=True)
    return root


# ---- CAS(ME)^3 part A -------------------------------------------------------------------------
CASME3_HEADER = ["Subject", "Filename", "Onset", "Apex", "Offset", "AU", "Objective class",
                 "emotion"]  # fmt: skip
#: (subject, video, onset, apex, offset, AU, objective class, emotion)
CASME3_ROWS: list[tuple[str, str, int, object, int, str, int, str]] = [
    ("spNO.1", "b", 98, 101, 110, "L1+L2", 2, "happy"),
    ("spNO.1", "b", 115, "/", 125, "AU4", 1, "disgust"),
    ("spNO.2", "a", 5, 8, 12, "4+7", 5, "others"),
    ("spNO.2", "a", 20, 22, 24, "R12", 3, "sad"),
]


def make_casme3(root: Path, sheet: str = "xlsx") -> Path:
    """CAS(ME)^3 part A: ``part_A/data/part_A/spNO.1/b/color/175.jpg`` + label sheet."""
    base = root / "part_A" / "data" / "part_A"
    for n in range(90, 131):
        _frame(base / "spNO.1" / "b" / "color" / f"{n}.jpg", n)
    for n in range(1, 30):
        _frame(base / "spNO.2" / "a" / "color" / f"{n}.jpg", n)
    rows: list[list[object]] = [CASME3_HEADER] + [list(r) for r in CASME3_ROWS]
    write_table(root / f"cas(me)3_part_A_ME_label_JpgIndex_v2.{sheet}", rows)
    return root
