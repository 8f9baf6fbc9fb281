"""Export an :class:`~mer.schemas.AnalysisResult` as per-frame CSV.

One row per decoded frame, columns exactly :data:`~mer.schemas.CSV_COLUMNS` (OpenFace /
py-feat naming): ``frame, timestamp, success, confidence, apex_score, AU01, ...``.
``timestamp`` is the frame's presentation time in seconds, ``success`` is ``1`` when a face
was tracked in the frame and ``0`` otherwise. AU scores missing from a frame are written as
empty cells.
"""

from __future__ import annotations

import csv
import io
from typing import TextIO

from mer.schemas import AU_NAMES, CSV_COLUMNS, AnalysisResult, FrameResult


def _row(frame: FrameResult) -> list[object]:
    """One CSV row for one frame, in :data:`CSV_COLUMNS` order."""
    row: list[object] = [
        frame.frame,
        f"{frame.timestamp_s:.6f}",
        1 if frame.face else 0,
        f"{frame.confidence:.6f}",
        f"{frame.apex_score:.6f}",
    ]
    for name in AU_NAMES:
        value = frame.au.get(name)
        row.append("" if value is None else f"{value:.6f}")
    return row


def write_csv(result: AnalysisResult, fh: TextIO) -> None:
    """Write the per-frame table of ``result`` as CSV to the text stream ``fh``.

    Writes a header row equal to :data:`CSV_COLUMNS`, then one row per entry of
    ``result.frames`` in order. Open files with ``newline=""`` as the :mod:`csv` module
    expects.

    Args:
        result: the analysis to export.
        fh: a writable text stream.
    """
    writer = csv.writer(fh, lineterminator="\n")
    writer.writerow(CSV_COLUMNS)
    for frame in result.frames:
        writer.writerow(_row(frame))


def result_to_csv(result: AnalysisResult) -> str:
    """Return the per-frame CSV of ``result`` as a string (see :func:`write_csv`)."""
    buf = io.StringIO()
    write_csv(result, buf)
    return buf.getvalue()
