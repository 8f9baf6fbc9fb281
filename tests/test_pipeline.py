"""End to end on real face video: the science checks of the pipeline and the CLI."""

import json
from pathlib import Path

import numpy as np
import pytest
from typer.testing import CliRunner

from mer.cli import app
from mer.errors import NoFaceDetectedError
from mer.pipeline import AnalysisConfig, analyze_video
from mer.schemas import AU_NAMES, CSV_COLUMNS, AnalysisResult
from mer.settings import Settings

#: single_face.mp4: neutral until ~frame 18, smiling ~20-68, neutral again at 71 (checked
#: by eye on a contact sheet of the frames)
SMILE = range(20, 69)


@pytest.fixture(scope="module")
def smile_result(
    single_face_video: Path, tmp_path_factory: pytest.TempPathFactory
) -> AnalysisResult:
    # the training-free flow path (no checkpoints in model_dir, no blendshapes): FACS
    # rules, no emotion
    empty = tmp_path_factory.mktemp("no_models")
    return analyze_video(
        single_face_video,
        settings=Settings(model_dir=empty),
        config=AnalysisConfig(blendshapes=False),
    )


def test_apex_inside_the_smile(smile_result: AnalysisResult) -> None:
    r = smile_result
    assert r.apex is not None and r.apex.frame in SMILE
    assert len(r.frames) == 72 and all(f.face for f in r.frames)
    assert any(iv.onset <= r.apex.frame <= iv.offset for iv in r.intervals)
    scores = np.array([f.apex_score for f in r.frames])
    assert scores[:3].max() < 0.2 and scores[30:60].min() > 0.5


def test_au12_rises_at_the_apex(smile_result: AnalysisResult) -> None:
    r = smile_result
    au12 = [f.au["AU12"] for f in r.frames]
    assert au12[r.apex.frame] >= max(au12[:5]) + 0.5
    strongest = max(r.intervals, key=lambda iv: iv.score)
    assert "AU12" in strongest.top_aus
    assert set(r.frames[0].au) == set(AU_NAMES)


def test_result_contract(smile_result: AnalysisResult) -> None:
    data = json.loads(smile_result.model_dump_json())
    again = AnalysisResult.model_validate(data)
    assert again.video.frame_count == 72 and again.video.codec == "h264"
    assert again.emotion is None and again.emotion_reason
    assert {m.task for m in again.models} >= {"landmarks", "apex", "au"}
    # no learned AU detector: the apex is the motion's alone
    assert [m.name for m in again.models if m.task == "apex"] == ["two-sided-flow-spotting"]
    assert again.au_method == "facs-rules-v1"
    assert {"landmarks", "motion", "total"} <= set(again.timings_ms)


@pytest.mark.parametrize("name", ["grid_bbaf2n.mpg", "grid_sbwe5n.mpg", "carphone_pristine.mp4"])
def test_other_real_clips_analyze(shared_data: Path, name: str) -> None:
    r = analyze_video(shared_data / "videos" / name)
    assert sum(f.face for f in r.frames) >= 0.9 * len(r.frames)
    assert r.video.frame_count == len(r.frames) > 50


def test_no_face(no_face_video: Path) -> None:
    with pytest.raises(NoFaceDetectedError) as info:
        analyze_video(no_face_video)
    assert info.value.code == "no_face_detected"


def test_cli_writes_json_and_csv(single_face_video: Path, tmp_path: Path) -> None:
    out_json, out_csv = tmp_path / "r.json", tmp_path / "r.csv"
    res = CliRunner().invoke(
        app, ["analyze", str(single_face_video), "--json", str(out_json), "--csv", str(out_csv)]
    )
    assert res.exit_code == 0, res.output
    r = AnalysisResult.model_validate_json(out_json.read_text())
    assert r.apex.frame in SMILE
    lines = out_csv.read_text().splitlines()
    assert lines[0].split(",") == list(CSV_COLUMNS) and len(lines) == 73


def test_cli_reports_error_code(no_face_video: Path) -> None:
    res = CliRunner().invoke(app, ["analyze", str(no_face_video)])
    assert res.exit_code == 2 and "no_face_detected" in res.output
