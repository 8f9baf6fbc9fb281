"""Loaders of CASME II, SAMM, SMIC-HS, CAS(ME)^3 and the MEGC 2019 composite, on fixtures
built in their exact layouts (see ``fixtures_datasets.py``)."""

from __future__ import annotations

import logging
from pathlib import Path

import pytest
from fixtures_datasets import make_casme2, make_casme3, make_samm, make_smic

from mer.datasets import (
    load_casme2,
    load_casme3_part_a,
    load_dataset,
    load_megc2019,
    load_samm,
    load_smic_hs,
    megc3_label,
    parse_au_codes,
    parse_aus,
)
from mer.datasets.common import frame_number, list_frames, parse_frame, read_sheet
from mer.datasets.megc import summarize


# ---- AU strings -------------------------------------------------------------------------------
@pytest.mark.parametrize(
    ("text", "expected"),
    [
        ("4+7", [4, 7]),
        ("L4+R7", [4, 7]),
        ("4+7+R10", [4, 7, 10]),
        ("12(?)", [12]),
        ("12?", [12]),
        ("AU4", [4]),
        ("AU 4 + AU 7", [4, 7]),
        ("L AU4", [4]),
        ("R12C", [12]),
        ("R14A+L14A", [14]),
        ("(R2)", [2]),
        ("1, 2; 25/26", [1, 2, 25, 26]),
        ("R12 L14", [12, 14]),
        ("12 and 15", [12, 15]),
        ("4.0", [4]),
        (4.0, [4]),
        (12, [12]),
        ("7+4+4", [4, 7]),
        ("25+ blink?", [25]),
        ("/", []),
        ("-", []),
        ("", []),
        (None, []),
        (float("nan"), []),
        ("none", []),
    ],
)
def test_parse_aus(text: object, expected: list[int]) -> None:
    assert parse_aus(text) == expected


def test_parse_au_codes_keeps_side_intensity_and_doubt() -> None:
    codes = parse_au_codes("L4+R12C+25(?)")
    assert [(c.au, c.side, c.intensity, c.uncertain) for c in codes] == [
        (4, "L", None, False),
        (12, "R", "C", False),
        (25, None, None, True),
    ]
    assert codes[0].name == "AU04"


def test_frame_numbers_sort_numerically(tmp_path: Path) -> None:
    for name in ["img10.jpg", "img2.jpg", "img1.jpg", "notes.txt", "thumbs.jpg"]:
        (tmp_path / name).write_bytes(b"x")
    assert [n for n, _ in list_frames(tmp_path)] == [1, 2, 10]
    assert frame_number("006_05562.jpg") == 5562
    assert frame_number("reg_img46.jpg") == 46
    assert parse_frame("-1") is None and parse_frame("/") is None and parse_frame("") is None
    assert parse_frame("46.0") == 46 and parse_frame(0) == 0


def test_megc3_mapping() -> None:
    assert megc3_label("casme2", "Repression") == "negative"
    assert megc3_label("casme2", "happiness") == "positive"
    for dropped in ("others", "fear", "sadness"):
        assert megc3_label("casme2", dropped) is None
    for neg in ("Anger", "Contempt", "Disgust", "Sadness", "Fear"):
        assert megc3_label("samm", neg) == "negative"
    assert megc3_label("samm", "Other") is None
    assert megc3_label("casme3", "happy") == "positive"
    assert megc3_label("smic", "surprise") == "surprise"
    with pytest.raises(ValueError):
        megc3_label("nope", "happiness")


# ---- CASME II ---------------------------------------------------------------------------------
def _check_casme2(samples: list, dataset: str = "casme2") -> None:
    assert len(samples) == 5  # the fear clip of sub03 has no frames: skipped
    by = {(s.subject, s.clip): s for s in samples}
    s = by[("sub01", "EP02_01f")]
    assert s.dataset == dataset and s.fps == 200.0
    assert s.frame_numbers == (8, 9, 10, 11, 12)  # img9 before img10
    assert [p.name for p in s.frame_paths][:3] in (
        ["img8.jpg", "img9.jpg", "img10.jpg"],
        ["reg_img8.jpg", "reg_img9.jpg", "reg_img10.jpg"],
    )
    assert (s.onset, s.apex, s.offset) == (8, 10, 12)
    assert (s.onset_index, s.apex_index, s.offset_index) == (0, 2, 4)
    assert s.apex_annotated
    assert s.aus == (4, 7) and s.au_names == ("AU04", "AU07")
    assert s.emotion == "disgust" and s.megc3 == "negative"
    assert s.subject_key == f"{dataset}/sub01"
    assert s.timestamps_s[-1] == pytest.approx(4 / 200)
    slash = by[("sub01", "EP03_02")]
    assert slash.apex == 3 and not slash.apex_annotated  # "/" -> midpoint (1 + 6) // 2
    assert slash.megc3 is None and slash.aus == (4, 7)
    minus = by[("sub02", "EP19_05f")]
    assert minus.apex == 100 and minus.apex_index == 5 and not minus.apex_annotated
    assert minus.aus == (12,) and minus.megc3 == "positive"
    assert by[("sub02", "EP01_01")].megc3 == "negative"
    sur = by[("sub11", "EP05_03")]
    assert sur.aus == (1, 2, 25) and sur.megc3 == "surprise"


def test_casme2_csv(tmp_path: Path, caplog: pytest.LogCaptureFixture) -> None:
    root = make_casme2(tmp_path / "CASME2", sheet="csv")
    with caplog.at_level(logging.WARNING):
        samples = load_casme2(root)
    _check_casme2(samples)
    assert "sub03/EP07_01" in caplog.text


def test_casme2_xlsx(tmp_path: Path) -> None:
    root = make_casme2(tmp_path / "CASME2", sheet="xlsx")
    _check_casme2(load_casme2(root))


def test_casme2_cropped(tmp_path: Path) -> None:
    root = make_casme2(tmp_path / "CASME2", sheet="csv", cropped=True)
    samples = load_casme2(root, cropped=True)
    _check_casme2(samples)
    assert all(p.name.startswith("reg_img") for s in samples for p in s.frame_paths)


def test_casme2_strict_and_missing_sheet(tmp_path: Path) -> None:
    root = make_casme2(tmp_path / "CASME2")
    with pytest.raises(FileNotFoundError, match="EP07_01"):
        load_casme2(root, strict=True)
    with pytest.raises(FileNotFoundError):
        load_casme2(tmp_path / "empty_dir_missing")


# ---- SAMM -------------------------------------------------------------------------------------
@pytest.mark.parametrize("sheet", ["xlsx", "csv"])
def test_samm(tmp_path: Path, sheet: str) -> None:
    root = make_samm(tmp_path / "SAMM", sheet=sheet)
    samples = load_samm(root)
    assert len(samples) == 5
    by = {s.clip: s for s in samples}
    s = by["006_1_2"]
    assert s.subject == "006" and s.fps == 200.0 and s.dataset == "samm"
    assert s.frame_numbers[0] == 5562 and s.frame_numbers[-1] == 5570
    assert (s.onset_index, s.apex_index, s.offset_index) == (0, 4, 8)
    assert s.megc3 == "negative" and s.emotion == "anger" and s.aus == (4, 7)
    assert s.extra["Objective Classes"] == "1" and s.extra["Inducement Code"] == "1_2"
    happy = by["006_1_5"]
    assert happy.apex == 1000 and not happy.apex_annotated and happy.megc3 == "positive"
    sur = by["007_3_1"]
    assert sur.subject == "007" and sur.aus == (2,) and sur.megc3 == "surprise"
    assert by["007_6_1"].megc3 == "negative"  # contempt
    other = by["011_2_3"]
    assert other.megc3 is None and other.aus == (14, 25)


def test_samm_header_row_12(tmp_path: Path) -> None:
    root = make_samm(tmp_path / "SAMM", sheet="xlsx")
    sheet = next(root.glob("*.xlsx"))
    assert len(load_samm(root, header_row=12)) == 5
    rows = read_sheet(sheet, ["Subject", "Filename"], header_row=12)
    assert rows[0]["Filename"] == "006_1_2"
    with pytest.raises(ValueError, match="missing columns"):
        read_sheet(sheet, ["Subject", "Filename"], header_row=11)


# ---- SMIC-HS ----------------------------------------------------------------------------------
def test_smic_hs(tmp_path: Path) -> None:
    root = make_smic(tmp_path / "SMIC")
    for r in (root, root / "HS"):
        samples = load_smic_hs(r)
        assert [s.clip for s in samples] == ["s1_ne_01", "s1_po_01", "s2_sur_01", "s10_ne_02"]
    s = samples[1]
    assert s.dataset == "smic" and s.fps == 100.0
    assert s.frame_numbers == (98, 99, 100, 101, 102)
    assert (s.onset, s.apex, s.offset) == (98, 100, 102) and not s.apex_annotated
    assert s.apex_index == 2 and s.megc3 == "positive" and s.aus == ()
    assert {x.megc3 for x in samples} == {"negative", "positive", "surprise"}
    with pytest.raises(FileNotFoundError):
        load_smic_hs(tmp_path / "nothing")


# ---- CAS(ME)^3 --------------------------------------------------------------------------------
@pytest.mark.parametrize("sheet", ["xlsx", "csv"])
def test_casme3_part_a(tmp_path: Path, sheet: str) -> None:
    root = make_casme3(tmp_path / "CASME3", sheet=sheet)
    samples = load_casme3_part_a(root)
    assert len(samples) == 4
    a, b, c, d = samples
    assert a.subject == "spNO.1" and a.clip == "b_98" and a.fps == 30.0
    assert a.frame_numbers == tuple(range(98, 111))  # 99 before 100, only onset..offset
    assert a.apex_index == 3 and a.aus == (1, 2) and a.emotion == "happiness"
    assert a.megc3 == "positive" and a.extra["objective_class"] == "2"
    assert b.apex == 120 and not b.apex_annotated and b.megc3 == "negative"
    assert c.megc3 is None and d.megc3 == "negative" and d.emotion == "sadness"
    padded = load_casme3_part_a(root, pad_frames=3)[0]
    assert padded.frame_numbers[0] == 95 and padded.onset_index == 3


# ---- composite ----------------------------------------------------------------------------------
def test_megc2019_composite(tmp_path: Path) -> None:
    c2 = make_casme2(tmp_path / "CASME2")
    sm = make_samm(tmp_path / "SAMM")
    sh = make_smic(tmp_path / "SMIC")
    comp = load_megc2019(c2, sm, sh)
    assert all(s.megc3 in ("negative", "positive", "surprise") for s in comp)
    counts = summarize(comp)
    assert counts["casme2"]["clips"] == 4  # others dropped (and the fear clip has no frames)
    assert counts["samm"]["clips"] == 4  # Other dropped
    assert counts["smic"]["clips"] == 4
    keys = {s.subject_key for s in comp}
    assert "casme2/sub01" in keys and "samm/006" in keys and "smic/s1" in keys
    assert len(load_megc2019(smic_root=sh)) == 4
    with pytest.raises(ValueError):
        load_megc2019()


def test_load_dataset_by_name(tmp_path: Path) -> None:
    root = make_smic(tmp_path / "SMIC")
    assert len(load_dataset("smic", root)) == 4
    with pytest.raises(ValueError, match="unknown data set"):
        load_dataset("fer2013", root)
