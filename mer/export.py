"""Export an :class:`~mer.schemas.AnalysisResult` as per-frame CSV.

One row per decoded frame, columns exactly :data:`~mer.schemas.CSV_COLUMNS` (OpenFace /
py-feat naming): ``frame, timestamp, success, confidence, apex_score, AU01, ...``.
``timestamp`` is the frame's presentation time in seconds, ``success`` is ``1`` when a face
was tracked in the frame and ``0`` otherwise. AU scores missing from a frame are written as
empty cells. A result with per-frame blendshapes (``include_blendshapes``) gains their 52
columns (MediaPipe / ARKit names, :data:`mer.face.blendshapes.BLENDSHAPE_NAMES`) after the
AUs, empty where no face was found.
"""

from __future__ import annotations

import csv
import io
from typing import TYPE_CHECKING, TextIO

from mer.face.blendshapes import BLENDSHAPE_NAMES
from mer.schemas import AU_NAMES, CSV_COLUMNS, AnalysisResult, FrameResult

if TYPE_CHECKING:  # the service exports stored results without importing the pipeline
    from mer.pipeline.output import CompactResult


def _row(frame: FrameResult, blendshapes: bool = False) -> list[object]:
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
    if blendshapes:
        bs = frame.blendshapes or {}
        row += ["" if bs.get(n) is None else f"{bs[n]:.6f}" for n in BLENDSHAPE_NAMES]
    return row


def write_csv(result: AnalysisResult | CompactResult, fh: TextIO) -> None:
    """Write the per-frame table of ``result`` as CSV to the text stream ``fh``.

    Writes a header row equal to :data:`CSV_COLUMNS` (plus the 52 blendshape names when
    any frame carries blendshapes), then one row per entry of ``result.frames`` in order,
    a row at a time (a :class:`~mer.pipeline.output.CompactResult` builds each frame as it
    is written). Open files with ``newline=""`` as the :mod:`csv` module expects.

    Args:
        result: the analysis to export.
        fh: a writable text stream.
    """
    writer = csv.writer(fh, lineterminator="\n")
    known = getattr(result.frames, "any_blendshapes", None)  # a compact result's table
    with_bs = known if known is not None else any(f.blendshapes is not None for f in result.frames)
    writer.writerow(CSV_COLUMNS + (BLENDSHAPE_NAMES if with_bs else ()))
    for frame in result.frames:
        writer.writerow(_row(frame, with_bs))


def result_to_csv(result: AnalysisResult | CompactResult) -> str:
    """Return the per-frame CSV of ``result`` as a string (see :func:`write_csv`)."""
    buf = io.StringIO()
    write_csv(result, buf)
    return buf.getvalue()
