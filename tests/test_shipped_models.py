"""The shipped weights in model_store/ on real face video (not a tiny test model).

single_face.mp4 (a smile): its interval is `positive` and AU12 is among the top AUs at
the apex. GRID talking heads and the Carphone clip (talking): no interval gets an emotion
other than `none` with high confidence, and the video's top-level emotion is null with a
reason (`none`, or below MER_EMOTION_MIN_SCORE).
"""

from pathlib import Path

import pytest

from mer.inference import AU_FILE, EMOTION_FILE
from mer.models.weights import load_checkpoint, sha256_file
from mer.pipeline import analyze_video
from mer.schemas import AnalysisResult
from mer.settings import REPO_ROOT

STORE = REPO_ROOT / "model_store"


def test_shipped_checkpoints_carry_their_metadata() -> None:
    for name in (EMOTION_FILE, AU_FILE):
        assert (STORE / name).is_file(), f"model_store/{name} is missing"
        assert (STORE / name).stat().st_size < 10_000_000
    _, emo = load_checkpoint(STORE / EMOTION_FILE)
    assert emo.labels == ["negative", "positive", "surprise", "none"]
    assert emo.metrics["uf1"] > 0.5 and "London Set" in emo.license
    _, au = load_checkpoint(STORE / AU_FILE)
    assert "AU12" in au.labels and au.label_kind == "aus"
    assert (STORE / "MODEL_CARD.md").is_file()


@pytest.fixture(scope="module")
def smile(single_face_video: Path) -> AnalysisResult:
    return analyze_video(single_face_video)


def test_smile_is_positive_with_au12(smile: AnalysisResult) -> None:
    strongest = max(smile.intervals, key=lambda iv: iv.score)
    assert strongest.emotion is not None and strongest.emotion.label == "positive"
    assert smile.emotion is not None and smile.emotion.label == "positive"
    assert "AU12" in strongest.top_aus
    learned = {m.task: m for m in smile.models if m.method == "learned"}
    assert learned["emotion"].sha256 == sha256_file(STORE / EMOTION_FILE)
    assert learned["au"].sha256 == sha256_file(STORE / AU_FILE)
    # the apex used the learned detector's activity; it lies in the smile, AU12 up there
    (apex_method,) = [m.name for m in smile.models if m.task == "apex"]
    assert apex_method == "blendshape-segments+flow+au-activity"
    assert smile.apex is not None and 20 <= smile.apex.frame <= 68
    assert smile.frames[smile.apex.frame].au["AU12"] >= 0.5


#: known failure of the blendshape spotting (issue 12 open): carphone's brows and lids go up
#: with a jaw drop for 0.5 s just before he speaks (55-69), read as a confident surprise
_KNOWN = pytest.mark.xfail(
    reason="blendshape surprise before speech read as an emotion (issue 12)", strict=True
)


@pytest.mark.parametrize(
    "name",
    ["grid_bbaf2n.mpg", "grid_lbax4n.mpg",
     "grid_pwij3p.mpg", "grid_sbwe5n.mpg",
     pytest.param("carphone_pristine.mp4", marks=_KNOWN)],
)  # fmt: skip
def test_talking_is_not_reported_as_an_emotion(shared_data: Path, name: str) -> None:
    r = analyze_video(shared_data / "videos" / name)
    for iv in r.intervals:
        assert iv.emotion is not None
        assert iv.emotion.label == "none" or iv.emotion.score < 0.8, (name, iv)
    assert r.emotion is None and r.emotion_reason, (name, r.emotion)


def test_top_level_emotion_needs_the_minimum_score(single_face_video: Path) -> None:
    from mer.settings import Settings

    r = analyze_video(single_face_video, settings=Settings(emotion_min_score=1.0))
    strongest = max(r.intervals, key=lambda iv: iv.score)
    assert strongest.emotion is not None and strongest.emotion.label == "positive"
    assert r.emotion is None and "MER_EMOTION_MIN_SCORE" in (r.emotion_reason or "")


def test_the_smile_mirrored_is_one_positive_interval(tmp_path: Path) -> None:
    # the repo's sample mirrored (MediaPipe is not mirror-symmetric): its browInnerUp drops
    # while he smiles (frames 18-70, most of the clip), which read his 18 neutral frames as
    # AU01 and made them a second "positive" interval before the smile, until the neutral
    # was estimated again without the smile's frames
    from mer.evaluation.variants import VARIANTS
    from mer.video import iter_frames
    from mer.video_writer import write_video

    sample = REPO_ROOT / "samples" / "single_face.mp4"
    frames = [VARIANTS["mirrored"].transform(f.image) for f in iter_frames(sample)]
    write_video(tmp_path / "mirrored.mp4", frames, 30.0, crf=18)
    r = analyze_video(tmp_path / "mirrored.mp4")
    emotional = [iv for iv in r.intervals if iv.kind in ("micro", "macro")]
    spans = [(iv.onset, iv.offset, iv.kind) for iv in r.intervals]
    assert len(emotional) == 1, spans
    (iv,) = emotional
    assert iv.emotion is not None and iv.emotion.label == "positive"
    assert 14 <= iv.onset <= 22 and iv.offset >= 64, spans
