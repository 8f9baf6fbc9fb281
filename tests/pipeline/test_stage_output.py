"""Stage: the compact result (mer.pipeline.output): per-frame arrays, JSON streamed a chunk
of frames at a time, byte for byte the JSON of the full AnalysisResult."""

from __future__ import annotations

import io
import json
from pathlib import Path

import numpy as np
import pytest

from mer.export import result_to_csv
from mer.face.blendshapes import BLENDSHAPE_NAMES
from mer.pipeline import output as output_module
from mer.pipeline.output import CompactResult, FrameTable
from mer.pipeline.run import analyze_frames_compact
from mer.schemas import AU_NAMES, AnalysisResult, ApexFrame, FrameResult, VideoInfo
from mer.settings import Settings
from mer.video import DecodedFrame


def _table(n: int, blendshapes: bool, seed: int = 0) -> FrameTable:
    rng = np.random.default_rng(seed)
    face = rng.random(n) > 0.2
    bs = None
    if blendshapes:
        bs = rng.random((n, len(BLENDSHAPE_NAMES))).astype(np.float32)
        bs[~face] = np.nan
    return FrameTable(
        timestamps_s=np.arange(n) / 29.97 + 1e-7 * rng.random(n),
        face=face,
        confidence=np.where(face, rng.random(n), 0.0),
        apex_score=rng.random(n) ** 3,  # tiny values: exponent notation in JSON
        au=rng.random((n, len(AU_NAMES))).astype(np.float32),
        blendshapes=bs,
    )


def _head(n: int, filename: str) -> AnalysisResult:
    return AnalysisResult(
        video=VideoInfo(
            filename=filename, sha256="ab", fps=29.97, frame_count=n, width=640, height=360,
            duration_s=n / 29.97, codec="h264",
        ),
        frames=[],
        apex=ApexFrame(frame=0, timestamp_s=0.0, score=1.0),
        intervals=[],
        au_method="test",
        models=[],
        timings_ms={"total": 1.5, "frames": 2.0},
        warnings=['a "frames": [] inside a string'],
    )  # fmt: skip


@pytest.mark.parametrize("n", [0, 1, 7, 12])
@pytest.mark.parametrize("blendshapes", [False, True])
@pytest.mark.parametrize("indent", [None, 2])
def test_streamed_json_is_the_full_results_json(
    n: int, blendshapes: bool, indent: int | None, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setattr(output_module, "FRAME_CHUNK", 5)  # several chunks, a partial last one
    table = _table(n, blendshapes)
    compact = CompactResult(_head(n, 'clip "frames": [] ü.mp4'), table)
    full = compact.to_result()
    assert len(full.frames) == n
    want = full.model_dump_json(indent=indent)
    buf = io.BytesIO()
    assert compact.write_json(buf, indent=indent) == len(buf.getvalue())
    assert buf.getvalue() == want.encode()
    assert compact.model_dump_json(indent=indent) == want
    assert AnalysisResult.model_validate_json(want) == full


def test_frame_table_builds_each_frame_as_the_result_reports_it() -> None:
    table = _table(6, blendshapes=True)
    frames = list(table)
    assert [f.frame for f in frames] == list(range(6)) and len(table) == 6
    assert all(isinstance(f, FrameResult) for f in frames)
    assert table[-1] == frames[5] and table.n_face == int(table.face.sum())
    for i, f in enumerate(frames):
        assert f.face == bool(table.face[i])
        assert f.au["AU12"] == round(float(table.au[i, AU_NAMES.index("AU12")]), 5)
        assert f.timestamp_s == round(float(table.timestamps_s[i]), 6)
        assert (f.blendshapes is None) == (not table.face[i])  # NaN rows: no coefficients
    with pytest.raises(IndexError):
        table[6]
    compact = CompactResult(_head(6, "x.mp4"), table)
    assert compact.video.frame_count == 6 and compact.timings_ms["total"] == 1.5
    with pytest.raises(AttributeError):
        compact.no_such_field  # noqa: B018
    with pytest.raises(ValueError):
        CompactResult(compact.to_result(), table)  # a head with frames


def test_a_real_clip_streams_the_json_of_its_full_result(
    smile_frames: list[DecodedFrame], tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setattr(output_module, "FRAME_CHUNK", 16)
    compact = analyze_frames_compact(
        smile_frames, fps=30, expected_frames=72, settings=Settings(model_dir=tmp_path)
    )
    assert isinstance(compact.frames, FrameTable) and len(compact.frames) == 72
    full = compact.to_result()
    out = tmp_path / "r.json"
    with out.open("wb") as fh:
        compact.write_json(fh, indent=2)
    assert out.read_text() == full.model_dump_json(indent=2)
    data = json.loads(out.read_text())
    assert len(data["frames"]) == 72 and data["intervals"]
    assert data["frames"][40]["au"] == full.frames[40].au


@pytest.mark.parametrize("blendshapes", [False, True])
def test_csv_of_a_compact_result_is_the_full_results(blendshapes: bool) -> None:
    compact = CompactResult(_head(9, "x.mp4"), _table(9, blendshapes))
    assert compact.frames.any_blendshapes == blendshapes
    assert result_to_csv(compact) == result_to_csv(compact.to_result())
    header = result_to_csv(compact).splitlines()[0].split(",")
    assert ("mouthSmileLeft" in header) == blendshapes
