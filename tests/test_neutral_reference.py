"""The person's neutral given by the client (:mod:`mer.aus.reference`): a stretch of the
video the AU evidence is read against, in the library, the pipeline and on real clips."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest

from mer.aus.blendshapes import au_evidence
from mer.aus.geometry import arch_z, geometry_prior
from mer.aus.reference import NeutralSpan, reference_level
from mer.errors import NeutralReferenceError
from mer.face.blendshapes import BLENDSHAPE_NAMES
from mer.schemas import AU_NAMES

A = {a: j for j, a in enumerate(AU_NAMES)}
DOWN = [BLENDSHAPE_NAMES.index("browDownLeft"), BLENDSHAPE_NAMES.index("browDownRight")]
SMILE = [BLENDSHAPE_NAMES.index("mouthSmileLeft"), BLENDSHAPE_NAMES.index("mouthSmileRight")]


def test_a_span_is_checked_and_selects_its_frames() -> None:
    t = 0.5 + np.arange(10) / 10  # a stream that starts at 0.5 s
    assert np.flatnonzero(NeutralSpan(0.7, 0.9).mask(t)).tolist() == [2, 3, 4]
    assert np.flatnonzero(NeutralSpan(2, 4, "frame").mask(t)).tolist() == [2, 3, 4]
    assert not NeutralSpan(0.0, 0.4).mask(t).any()
    for bad in ((-1.0, 1.0, "s"), (2.0, 1.0, "s"), (float("nan"), 1.0, "s"), (0, 1, "ms")):
        with pytest.raises(NeutralReferenceError):
            NeutralSpan(*bad)  # type: ignore[arg-type]
    assert NeutralSpan(0, 6, "frame").describe() == "frames 0-6"


def test_the_reference_level_is_the_median_of_its_face_frames() -> None:
    x = np.array([[0.1, 0.5], [0.3, 0.7], [np.nan, np.nan], [0.9, 0.9]])
    assert reference_level(x, np.array([True, True, True, False])).tolist() == [0.2, 0.6]
    with pytest.raises(NeutralReferenceError):
        reference_level(x, np.array([False, False, True, False]))  # no face in it


def _low_browed_clip(seconds: float = 4.0) -> tuple[np.ndarray, np.ndarray]:
    """A person resting with browDown 0.75 (above every neutral face of the population),
    raising the brows for a moment (1-1.3 s: browDown 0.3; the brows stay above the
    population's range in over 90 % of the frames, as a frown held throughout would),
    frowning 3-3.5 s (0.98) and smiling 2.5-3 s."""
    t = np.arange(int(seconds * 30)) / 30
    bs = np.zeros((len(t), len(BLENDSHAPE_NAMES)), np.float32)
    bs[:, DOWN] = 0.75
    bs[(t >= 1) & (t < 1.3), DOWN[0]] = bs[(t >= 1) & (t < 1.3), DOWN[1]] = 0.3
    bs[(t >= 3) & (t < 3.5), DOWN[0]] = bs[(t >= 3) & (t < 3.5), DOWN[1]] = 0.98
    bs[np.ix_((t >= 2.5) & (t < 3), SMILE)] = 0.9
    return bs, t


def test_a_low_browed_rest_read_against_the_reference_is_no_au04() -> None:
    bs, t = _low_browed_clip()
    rest = t < 0.5
    est = au_evidence(bs, BLENDSHAPE_NAMES, t, AU_NAMES)
    ref = au_evidence(bs, BLENDSHAPE_NAMES, t, AU_NAMES, neutral_frames=rest)
    # estimated: the rest reads as a brow lowerer (the error the reference removes)
    assert est[rest, A["AU04"]].min() > 0.5
    assert ref[rest | (t >= 3.6), A["AU04"]].max() == 0.0  # his rest, before and after
    assert ref[(t >= 1) & (t < 1.3), A["AU04"]].max() == 0.0  # raised brows are no AU04
    assert ref[(t >= 3.1) & (t < 3.4), A["AU04"]].min() > 0.5  # the frown still is
    assert ref[(t >= 2.6) & (t < 2.9), A["AU12"]].min() > 0.9  # and the smile
    with pytest.raises(NeutralReferenceError):
        nan = bs.copy()
        nan[rest] = np.nan  # no face in the stretch
        au_evidence(nan, BLENDSHAPE_NAMES, t, AU_NAMES, neutral_frames=rest)


def test_the_lip_arch_is_judged_against_the_reference_arch() -> None:
    pose = np.zeros((4, 2))
    pose[:, 1] = geometry_prior()["pitch0"]  # the population's typical pitch
    arch = np.array([0.02, 0.02, 0.02, 0.18])  # a flat resting arch, then a neutral one
    pop = arch_z(arch, pose)
    own = arch_z(arch, pose, np.array([True, True, False, False]))
    assert pop[0] < -2.0 < own[0]  # flat against the population, neutral against himself
    assert own[0] == pytest.approx(0.0) and own[3] > 2.0


@pytest.mark.slow
def test_the_crema_d_neutral_sentence_against_his_rest_has_no_emotional_interval(
    dev_dir: Path,
) -> None:
    from mer.pipeline import AnalysisConfig, analyze_video

    # actor 1001 rests with browDown 0.69-0.78, above every neutral face of the population;
    # labelled rest: frames 0-6 (NEU), 0-3 (DIS)
    neu = analyze_video(
        dev_dir / "cremad_1001_DFA_NEU_XX.flv",
        config=AnalysisConfig(neutral=NeutralSpan(0.0, 0.2)),
    )
    assert neu.neutral is not None and neu.neutral.source == "reference"
    assert neu.neutral.frames is not None and 4 <= neu.neutral.frames <= 7
    emotional = [iv for iv in neu.intervals if iv.kind in ("micro", "macro")]
    assert emotional == [], [(iv.onset, iv.offset, iv.kind) for iv in neu.intervals]
    assert any(iv.kind == "speech" for iv in neu.intervals)
    # his disgust face (13-69, brows lowered below his rest, upper lip raised) still is one
    dis = analyze_video(
        dev_dir / "cremad_1001_DFA_DIS_XX.flv",
        config=AnalysisConfig(neutral=NeutralSpan(0, 3, "frame")),
    )
    hits = [
        iv for iv in dis.intervals if iv.kind in ("micro", "macro") and iv.onset <= 42 <= iv.offset
    ]
    assert len(hits) == 1 and hits[0].emotion is not None
    assert hits[0].emotion.label == "negative" and hits[0].offset >= 60
    with pytest.raises(NeutralReferenceError, match="5-6 s"):  # past the 2-s clip's end
        analyze_video(
            dev_dir / "cremad_1001_DFA_NEU_XX.flv",
            config=AnalysisConfig(neutral=NeutralSpan(5.0, 6.0)),
        )


@pytest.mark.slow
def test_analyze_cli_takes_the_neutral_stretch(dev_dir: Path, tmp_path: Path) -> None:
    import json

    from typer.testing import CliRunner

    from mer.cli import app

    clip = str(dev_dir / "cremad_1001_DFA_NEU_XX.flv")
    out = tmp_path / "r.json"
    r = CliRunner().invoke(app, ["analyze", clip, "--neutral", "0:0.2", "--json", str(out), "-q"])
    assert r.exit_code == 0, r.output
    assert json.loads(out.read_text())["neutral"]["source"] == "reference"
    r = CliRunner().invoke(app, ["analyze", clip, "--neutral", "zero", "-q"])
    assert r.exit_code == 2 and "invalid_neutral_reference" in r.output


def test_a_neutral_stretch_without_blendshapes_is_reported_unused(sample_video: Path) -> None:
    from mer.pipeline import AnalysisConfig, analyze_video

    cfg = AnalysisConfig(blendshapes=False, neutral=NeutralSpan(0.2, 0.5))
    r = analyze_video(sample_video, config=cfg)
    assert r.neutral is None
    assert any("neutral stretch 0.2-0.5 s was not used" in w for w in r.warnings), r.warnings
