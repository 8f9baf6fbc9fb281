"""Shared pieces of the data set loaders: the :class:`Sample` record, AU-string parsing,
emotion label mappings, coding-sheet reading (xlsx or CSV) and frame listing.

Sources of the conventions implemented here:

- CASME II: Yan et al., "CASME II: An Improved Spontaneous Micro-Expression Database and the
  Baseline Evaluation", PLoS ONE 9(1), 2014 (200 fps; coding sheet with Subject, Filename,
  OnsetFrame, ApexFrame, OffsetFrame, Action Units, Estimated Emotion).
- SAMM: Davison et al., "SAMM: A Spontaneous Micro-Facial Movement Dataset", IEEE TAFFC 9(1),
  2018 (200 fps, grey; sheet header on row 12).
- SMIC: Li et al., "A Spontaneous Micro-expression Database: Inducement, collection and
  baseline", FG 2013 (HS camera 100 fps; no apex annotation).
- CAS(ME)^3: Li et al., "CAS(ME)^3: A Third Generation Facial Spontaneous Micro-Expression
  Database with Depth Information and High Ecological Validity", IEEE TPAMI 45(3), 2023.
- MEGC 2019 composite 3-class mapping: See et al., "MEGC 2019 - The Second Facial
  Micro-Expressions Grand Challenge", FG 2019.
"""

from __future__ import annotations

import csv
import logging
import re
from collections.abc import Iterable, Sequence
from dataclasses import dataclass, field
from pathlib import Path

log = logging.getLogger(__name__)

#: Image file suffixes recognised as frames (lower case).
FRAME_SUFFIXES: tuple[str, ...] = (".jpg", ".jpeg", ".png", ".bmp", ".tif", ".tiff")

#: MEGC 2019 composite classes, in the order used by the models.
MEGC3_CLASSES: tuple[str, ...] = ("negative", "positive", "surprise")

#: CASME II ``Estimated Emotion`` -> MEGC 2019 3-class (others / fear / sadness dropped).
CASME2_TO_MEGC3: dict[str, str | None] = {
    "disgust": "negative",
    "repression": "negative",
    "happiness": "positive",
    "surprise": "surprise",
    "others": None,
    "fear": None,
    "sadness": None,
}

#: SAMM ``Estimated Emotion`` -> MEGC 2019 3-class (``other`` dropped).
SAMM_TO_MEGC3: dict[str, str | None] = {
    "anger": "negative",
    "contempt": "negative",
    "disgust": "negative",
    "sadness": "negative",
    "fear": "negative",
    "happiness": "positive",
    "surprise": "surprise",
    "other": None,
    "others": None,
}

#: CAS(ME)^3 ``emotion`` -> 3 classes. Not part of MEGC 2019 (CAS(ME)^3 came later); this is
#: our extension by the same rule as SAMM (every negative emotion -> negative, ``others``
#: dropped), as in the MEGC 2022+ unseen-data protocol.
CASME3_TO_MEGC3: dict[str, str | None] = {
    "anger": "negative",
    "disgust": "negative",
    "fear": "negative",
    "sad": "negative",
    "sadness": "negative",
    "happy": "positive",
    "happiness": "positive",
    "surprise": "surprise",
    "others": None,
    "other": None,
}

#: CASME II 5-class protocol (SMA-STN and most papers): fear and sadness dropped.
CASME2_5CLASS: tuple[str, ...] = ("happiness", "disgust", "repression", "surprise", "others")
#: SAMM 5-class protocol: classes with at least 10 clips.
SAMM_5CLASS: tuple[str, ...] = ("anger", "contempt", "happiness", "surprise", "other")

#: Spelling variants seen in the public sheets -> canonical lower-case label.
_EMOTION_ALIASES: dict[str, str] = {
    "happy": "happiness",
    "happiness": "happiness",
    "sad": "sadness",
    "sadness": "sadness",
    "others": "others",
    "other": "other",
    "repression": "repression",
    "disgust": "disgust",
    "surprise": "surprise",
    "fear": "fear",
    "anger": "anger",
    "contempt": "contempt",
}


def normalize_emotion(label: str) -> str:
    """Lower-case, strip and unify a few spellings (``Happy`` -> ``happiness``).

    ``other`` and ``others`` are kept apart (SAMM says ``Other``, CASME II ``others``); the
    mapping tables accept both.
    """
    key = label.strip().lower()
    return _EMOTION_ALIASES.get(key, key)


def megc3_label(dataset: str, emotion: str) -> str | None:
    """MEGC 2019 3-class label of an emotion of ``dataset``; None when the class is dropped.

    Args:
        dataset: ``"casme2"``, ``"synth"`` (CASME II terms), ``"samm"``, ``"smic"``
            (already negative / positive / surprise) or ``"casme3"``.
        emotion: the data set's own label (any case).

    Raises:
        ValueError: unknown data set.
    """
    e = normalize_emotion(emotion)
    if dataset in ("casme2", "synth"):
        return CASME2_TO_MEGC3.get(e)
    if dataset == "samm":
        return SAMM_TO_MEGC3.get(e)
    if dataset == "smic":
        return e if e in MEGC3_CLASSES else None
    if dataset == "casme3":
        return CASME3_TO_MEGC3.get(e)
    raise ValueError(f"unknown data set {dataset!r}")


# ------------------------------------------------------------------------------------------
# Action Unit strings
# ------------------------------------------------------------------------------------------


@dataclass(frozen=True)
class AUCode:
    """One parsed FACS code.

    Attributes:
        au: Action Unit number (``4`` for ``L4``).
        side: ``"L"``, ``"R"`` (unilateral), ``"T"``/``"B"`` (top / bottom, used for AU 12/14
            asymmetries in some sheets), or None (bilateral / unspecified).
        intensity: FACS intensity letter ``A``-``E`` when given (``12C``), else None.
        uncertain: the coder marked it with ``?`` (``12(?)``).
    """

    au: int
    side: str | None = None
    intensity: str | None = None
    uncertain: bool = False

    @property
    def name(self) -> str:
        """OpenFace / py-feat spelling: ``AU04``."""
        return au_name(self.au)


_AU_TOKEN = re.compile(
    r"""^\(?\s*
        (?:AU)?\s*                # optional 'AU' prefix
        (?P<side>[LRTBU])?\s*     # laterality / position prefix
        (?:AU)?\s*                # 'LAU4' and 'L AU4' both seen in the wild
        (?P<num>\d{1,3})(?:\.0+)? # the number (Excel may hand '4.0')
        \s*(?P<int>[A-Ea-e])?     # intensity letter
        \s*(?P<q>\(\s*\?\s*\)|\?)?
        \s*\)?$""",
    re.VERBOSE | re.IGNORECASE,
)


def au_name(au: int) -> str:
    """``4`` -> ``"AU04"`` (OpenFace / py-feat spelling, two digits at least)."""
    return f"AU{au:02d}"


def parse_au_codes(text: object) -> list[AUCode]:
    """Parse a coding-sheet AU cell into :class:`AUCode` records, in order of appearance.

    Accepted forms (all seen in CASME II, SAMM, CAS(ME)^3 sheets): ``4+7``, ``L4+R7``,
    ``4+7+R10``, ``12(?)``, ``12?``, ``AU4``, ``AU 4``, ``R12C``, ``L AU4``, ``4.0`` (numeric
    Excel cell), separators ``+``, ``,``, ``;``, ``/``, ``&``, ``and`` and white space. Empty
    cells and placeholders (``-``, ``/``, ``none``, ``nan``) give ``[]``. Tokens that are not
    AU codes (free-text remarks) are skipped with a debug log entry; the same AU number may
    appear twice (``L4+R4``) and is kept twice here (see :func:`parse_aus`).

    Args:
        text: the cell value (str, int, float or None).

    Returns:
        list of :class:`AUCode`.
    """
    if text is None:
        return []
    if isinstance(text, float):
        if text != text:  # NaN
            return []
        if text.is_integer():
            text = int(text)
    s = str(text).strip()
    if s.lower() in ("", "-", "/", "none", "nan", "n/a", "na", "null"):
        return []
    codes: list[AUCode] = []
    s = re.sub(r"\band\b", "+", s, flags=re.IGNORECASE)
    for tok in re.split(r"[+,;/&]|\s{2,}", s):
        tok = tok.strip()
        if not tok:
            continue
        m = _AU_TOKEN.match(tok)
        if m is None:
            # e.g. 'R12 L14' (single space): retry on single spaces
            parts = tok.split()
            if len(parts) > 1 and all(_AU_TOKEN.match(p) for p in parts):
                for p in parts:
                    codes.append(_code_from_match(_AU_TOKEN.match(p)))  # type: ignore[arg-type]
                continue
            log.debug("skipping non-AU token %r in %r", tok, s)
            continue
        codes.append(_code_from_match(m))
    return codes


def _code_from_match(m: re.Match[str]) -> AUCode:
    side = m.group("side")
    inten = m.group("int")
    return AUCode(
        au=int(m.group("num")),
        side=side.upper() if side else None,
        intensity=inten.upper() if inten else None,
        uncertain=m.group("q") is not None,
    )


def parse_aus(text: object) -> list[int]:
    """AU numbers of a coding-sheet cell: sorted, unique, laterality and intensity dropped.

    ``"L4+R7"`` -> ``[4, 7]``; ``"4+7+R10"`` -> ``[4, 7, 10]``; ``"12(?)"`` -> ``[12]``;
    ``"AU4"`` -> ``[4]``; ``"L4+R4"`` -> ``[4]``. Uncertain codes are kept (the coder saw
    the movement but was unsure of the unit). See :func:`parse_au_codes` for the grammar.
    """
    return sorted({c.au for c in parse_au_codes(text)})


# ------------------------------------------------------------------------------------------
# The sample record
# ------------------------------------------------------------------------------------------


@dataclass(frozen=True)
class Sample:
    """One annotated micro-expression clip of a data set.

    Frame numbers are the data set's own (``img46.jpg`` is frame 46; SAMM and CAS(ME)^3
    number frames absolutely within the recording). ``frame_paths`` and ``frame_numbers``
    are sorted by frame number (``img2`` before ``img10``); the ``*_index`` fields index
    into them. When the annotated frame number is not among the files (synthetic sets
    written with a frame step, or a missing file) the index of the nearest listed frame is
    used.

    Attributes:
        dataset: ``"casme2"``, ``"samm"``, ``"smic"``, ``"casme3"`` or ``"synth"``.
        subject: subject id as the data set spells its folder (``"sub01"``, ``"006"``,
            ``"s1"``, ``"spNO.1"``).
        clip: clip id (``"EP02_01f"``, ``"006_1_2"``, ``"s1_ne_01"``, ``"a_175"``).
        frame_paths: paths of the clip's frames, sorted by frame number.
        frame_numbers: ``(T,)`` the frame number of each path.
        onset, apex, offset: annotated frame numbers (apex = midpoint when missing).
        onset_index, apex_index, offset_index: indices into ``frame_paths``.
        apex_annotated: False when the apex was missing and the midpoint was used.
        fps: recording frame rate (frames/s).
        aus: FACS AU numbers, sorted, unique.
        au_raw: the sheet's AU cell as written.
        emotion: the data set's emotion label, lower case (``"happiness"``, ``"other"``).
        megc3: MEGC 2019 3-class label or None when the class is dropped.
        extra: other columns kept verbatim (objective class, inducement code, ...).
    """

    dataset: str
    subject: str
    clip: str
    frame_paths: tuple[Path, ...]
    frame_numbers: tuple[int, ...]
    onset: int
    apex: int
    offset: int
    onset_index: int
    apex_index: int
    offset_index: int
    apex_annotated: bool
    fps: float
    aus: tuple[int, ...]
    au_raw: str
    emotion: str
    megc3: str | None
    extra: dict[str, str] = field(default_factory=dict, compare=False)

    @property
    def au_names(self) -> tuple[str, ...]:
        """AUs in OpenFace / py-feat spelling: ``("AU04", "AU07")``."""
        return tuple(au_name(a) for a in self.aus)

    @property
    def subject_key(self) -> str:
        """Subject id unique across data sets (``"casme2/sub01"``), the LOSO group."""
        return f"{self.dataset}/{self.subject}"

    @property
    def n_frames(self) -> int:
        """Number of listed frames."""
        return len(self.frame_paths)

    @property
    def timestamps_s(self) -> tuple[float, ...]:
        """``(T,)`` seconds of each listed frame from the first one (frame numbers / fps)."""
        f0 = self.frame_numbers[0]
        return tuple((n - f0) / self.fps for n in self.frame_numbers)

    @property
    def duration_s(self) -> float:
        """Onset-to-offset duration in seconds."""
        return (self.offset - self.onset) / self.fps


# ------------------------------------------------------------------------------------------
# Frames
# ------------------------------------------------------------------------------------------

_LAST_INT = re.compile(r"(\d+)(?!.*\d)")


def frame_number(path: Path | str) -> int | None:
    """The last integer in a file's stem: ``img46.jpg`` -> 46, ``006_05562.jpg`` -> 5562.

    Returns None when the stem holds no digits.
    """
    m = _LAST_INT.search(Path(path).stem)
    return int(m.group(1)) if m else None


def list_frames(directory: Path, prefix: str | None = None) -> list[tuple[int, Path]]:
    """Image files of a folder sorted numerically by frame number.

    Args:
        directory: the clip's folder.
        prefix: keep only files whose name starts with it (``"reg_img"``); None keeps all.

    Returns:
        ``[(frame_number, path), ...]`` ascending; files without digits are skipped.
    """
    out: list[tuple[int, Path]] = []
    if not directory.is_dir():
        return out
    for p in directory.iterdir():
        if p.suffix.lower() not in FRAME_SUFFIXES or not p.is_file():
            continue
        if prefix is not None and not p.name.startswith(prefix):
            continue
        n = frame_number(p)
        if n is not None:
            out.append((n, p))
    out.sort(key=lambda t: (t[0], t[1].name))
    return out


def nearest_index(numbers: Sequence[int], target: int) -> int:
    """Index of the frame number closest to ``target`` (ties -> the earlier frame)."""
    if not numbers:
        raise ValueError("no frames")
    best, best_d = 0, abs(numbers[0] - target)
    for i, n in enumerate(numbers):
        d = abs(n - target)
        if d < best_d:
            best, best_d = i, d
    return best


# ------------------------------------------------------------------------------------------
# Coding sheets
# ------------------------------------------------------------------------------------------


def norm_col(name: object) -> str:
    """Column key: lower case, letters and digits only (``"Onset Frame"`` -> ``onsetframe``)."""
    return re.sub(r"[^a-z0-9]", "", str(name).lower()) if name is not None else ""


def cell_str(value: object) -> str:
    """A sheet cell as text: None -> ``""``, ``46.0`` -> ``"46"``, strings stripped."""
    if value is None:
        return ""
    if isinstance(value, float):
        if value != value:
            return ""
        if value.is_integer():
            return str(int(value))
    return str(value).strip()


def parse_frame(value: object) -> int | None:
    """A frame-number cell: int, or None for missing markers (``-1``, ``/``, ``""``, ``nan``).

    Negative numbers and 0-like placeholders other than a literal ``0`` count as missing.
    """
    s = cell_str(value)
    if s in ("", "/", "-", "nan", "NaN", "none", "None", "n/a"):
        return None
    try:
        v = float(s)
    except ValueError:
        return None
    if v < 0 or v != v:
        return None
    return int(round(v))


def _read_rows(path: Path, sheet_name: str | None = None) -> list[list[object]]:
    """All rows of a CSV or the first (or named) worksheet of an xlsx, as lists of cells."""
    suffix = path.suffix.lower()
    if suffix in (".xlsx", ".xlsm"):
        try:
            import openpyxl
        except ImportError as exc:  # pragma: no cover - depends on the environment
            raise ImportError(
                f"reading {path.name} needs openpyxl (pip install openpyxl), or save the "
                "sheet as CSV"
            ) from exc
        wb = openpyxl.load_workbook(path, read_only=True, data_only=True)
        try:
            ws = wb[sheet_name] if sheet_name else wb.worksheets[0]
            return [list(r) for r in ws.iter_rows(values_only=True)]
        finally:
            wb.close()
    if suffix in (".csv", ".txt", ".tsv"):
        text = path.read_text(encoding="utf-8-sig", errors="replace")
        dialect: type[csv.Dialect] | csv.Dialect
        try:
            dialect = csv.Sniffer().sniff(text[:4096], delimiters=",;\t")
        except csv.Error:
            dialect = csv.excel
        return [list(r) for r in csv.reader(text.splitlines(), dialect)]
    raise ValueError(f"unsupported coding sheet format: {path.name} (use .xlsx or .csv)")


def cell(row: dict[str, str], name: str, default: str = "") -> str:
    """A row's value for column ``name``, matched by :func:`norm_col` (``"Onset Frame"``
    finds ``"OnsetFrame"``); ``default`` when absent."""
    key = norm_col(name)
    for k, v in row.items():
        if norm_col(k) == key:
            return v
    return default


def read_sheet(
    path: Path,
    required: Iterable[str],
    header_row: int | None = None,
    sheet_name: str | None = None,
    max_scan: int = 40,
) -> list[dict[str, str]]:
    """Read a coding sheet into one dict per data row, keyed by the header's column names.

    Column names are compared normalised (:func:`norm_col`: case, spaces and punctuation
    ignored); read values with :func:`cell`.

    Args:
        path: ``.xlsx`` (needs openpyxl) or ``.csv`` file.
        required: column names that must be present (any spelling).
        header_row: 1-based row of the header (SAMM: 12); None finds the first row among
            the first ``max_scan`` that contains all ``required`` columns.
        sheet_name: worksheet of an xlsx; None takes the first.
        max_scan: rows scanned for the header when ``header_row`` is None.

    Returns:
        one dict per non-empty data row: ``{column name as written (stripped): text}``
        (:func:`cell_str`); unnamed columns are dropped.

    Raises:
        ValueError: header not found or a required column missing.
    """
    req = [norm_col(c) for c in required]
    rows = _read_rows(path, sheet_name)
    if header_row is not None:
        hi = header_row - 1
        if hi >= len(rows):
            raise ValueError(f"{path.name}: header row {header_row} beyond the sheet end")
    else:
        hi = -1
        for i, r in enumerate(rows[:max_scan]):
            keys = {norm_col(c) for c in r}
            if all(k in keys for k in req):
                hi = i
                break
        if hi < 0:
            raise ValueError(f"{path.name}: no header row with columns {list(required)}")
    header = [cell_str(c) for c in rows[hi]]
    normed = [norm_col(c) for c in header]
    missing = [c for c, k in zip(required, req, strict=True) if k not in normed]
    if missing:
        raise ValueError(f"{path.name}: missing columns {missing} in header {rows[hi]}")
    out: list[dict[str, str]] = []
    for r in rows[hi + 1 :]:
        if not any(cell_str(c) for c in r):
            continue
        d: dict[str, str] = {}
        for name, v in zip(header, r, strict=False):
            if name and name not in d:
                d[name] = cell_str(v)
        out.append(d)
    return out


def find_sheet(root: Path, patterns: Sequence[str]) -> Path | None:
    """First file in ``root`` (not recursive) matching one of the glob ``patterns``.

    Patterns are tried in order; within a pattern the names are sorted, so the choice is
    deterministic. Excel lock files (``~$...``) are ignored.
    """
    for pat in patterns:
        hits = sorted(p for p in root.glob(pat) if p.is_file() and not p.name.startswith("~$"))
        if hits:
            return hits[0]
    return None


def locate_sheet(root: Path, sheet: str | Path | None, patterns: Sequence[str], what: str) -> Path:
    """The label sheet of a data set: ``sheet`` when given, else :func:`find_sheet`.

    Raises:
        FileNotFoundError: no such file; the message names ``what`` and ``root``.
    """
    path = Path(sheet) if sheet is not None else find_sheet(root, patterns)
    if path is None or not path.is_file():
        raise FileNotFoundError(f"no {what} in {root}")
    return path


def find_dir_containing(root: Path, pattern: str, max_depth: int = 3) -> Path | None:
    """``root`` or the shallowest folder below it holding a child folder matching ``pattern``.

    Breadth-first, at most ``max_depth`` levels; ties resolved by sorted name.
    """
    level = [root]
    for _ in range(max_depth + 1):
        nxt: list[Path] = []
        for d in level:
            if any(c.is_dir() for c in d.glob(pattern)):
                return d
            nxt.extend(sorted(c for c in d.iterdir() if c.is_dir()))
        level = nxt
    return None


def build_sample(
    *,
    dataset: str,
    subject: str,
    clip: str,
    frames: list[tuple[int, Path]],
    onset: int | None,
    apex: int | None,
    offset: int | None,
    fps: float,
    au_raw: str,
    emotion: str,
    extra: dict[str, str] | None = None,
) -> Sample:
    """Assemble a :class:`Sample`, applying the documented fall-backs.

    - onset missing -> first listed frame; offset missing or not after onset -> last listed
      frame;
    - apex missing (``-1``, ``/``, empty) or outside [onset, offset] -> midpoint
      ``(onset + offset) // 2`` and ``apex_annotated = False``;
    - indices: exact match of the frame number, else the nearest listed frame.

    Args:
        frames: ``[(frame_number, path)]`` sorted ascending, not empty.

    Raises:
        ValueError: ``frames`` is empty.
    """
    if not frames:
        raise ValueError(f"{dataset} {subject}/{clip}: no frames")
    numbers = [n for n, _ in frames]
    on = onset if onset is not None else numbers[0]
    off = offset if offset is not None and offset > on else numbers[-1]
    annotated = apex is not None and on <= apex <= off
    ap = apex if annotated and apex is not None else (on + off) // 2
    emo = normalize_emotion(emotion)
    return Sample(
        dataset=dataset,
        subject=subject,
        clip=clip,
        frame_paths=tuple(p for _, p in frames),
        frame_numbers=tuple(numbers),
        onset=on,
        apex=ap,
        offset=off,
        onset_index=nearest_index(numbers, on),
        apex_index=nearest_index(numbers, ap),
        offset_index=nearest_index(numbers, off),
        apex_annotated=annotated,
        fps=float(fps),
        aus=tuple(parse_aus(au_raw)),
        au_raw=au_raw,
        emotion=emo,
        megc3=megc3_label(dataset, emo),
        extra=dict(extra or {}),
    )
