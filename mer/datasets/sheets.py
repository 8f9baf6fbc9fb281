"""Coding sheets (xlsx or CSV): finding the file, the header row and the cells of each row."""

from __future__ import annotations

import csv
import re
from collections.abc import Iterable, Sequence
from pathlib import Path


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
