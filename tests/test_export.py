"""mer.export: per-frame CSV with exactly CSV_COLUMNS."""

from __future__ import annotations

import csv
import io

from helpers import fake_result

from mer.export import result_to_csv, write_csv
from mer.schemas import AU_NAMES, CSV_COLUMNS


def test_csv_header_and_rows() -> None:
    result = fake_result(frames=4)
    rows = list(csv.reader(io.StringIO(result_to_csv(result))))
    assert tuple(rows[0]) == CSV_COLUMNS
    assert len(rows) == 1 + 4
    body = [dict(zip(rows[0], r, strict=True)) for r in rows[1:]]
    assert [int(r["frame"]) for r in body] == [0, 1, 2, 3]
    assert [r["success"] for r in body] == ["1", "0", "1", "1"]
    assert float(body[2]["timestamp"]) == 0.2
    assert float(body[3]["apex_score"]) == 1.0
    assert float(body[1]["confidence"]) == 0.0
    for name in AU_NAMES:
        assert float(body[3][name]) == 0.3


def test_write_csv_to_stream_and_missing_au() -> None:
    result = fake_result(frames=1)
    del result.frames[0].au["AU12"]
    buf = io.StringIO()
    write_csv(result, buf)
    header, row = list(csv.reader(io.StringIO(buf.getvalue())))
    assert row[header.index("AU12")] == ""
