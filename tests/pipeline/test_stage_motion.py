"""Stage: motion (mer.pipeline.motion)."""

from __future__ import annotations

from dataclasses import replace

import numpy as np
import pytest

from mer.aus import rules as au_rules
from mer.motion import REGION_NAMES, TwoSidedMotion, landmark_two_sided
from mer.pipeline import motion as motion_module
from mer.pipeline.config import AnalysisConfig
from mer.pipeline.motion import MotionResult, MotionStage
from mer.video import DecodedFrame
from tests.pipeline.streaming import Streamed, run_streaming


def test_the_smile_moves_and_rest_does_not(smile_streamed: Streamed) -> None:
    m = smile_streamed.motion
    n_lags = len(smile_streamed.cfg.lags_s)
    assert len(m.lags) == n_lags and m.best.max() < n_lags
    assert m.lags == (6, 15, 36, 75)  # 0.2, 0.5, 1.2, 2.5 s at 30 fps
    assert m.score[30:60].min() > 0.5 and m.score[:3].max() < 0.2
    assert np.all((m.score >= 0) & (m.score <= 1))
    assert m.at_best_lag().shape == (72, len(REGION_NAMES), 2)


def test_references_of_smiling_frames_are_neutral(smile_streamed: Streamed) -> None:
    m = smile_streamed.motion
    # the local neutral reference of a frame in the smile lies before its onset or after
    # its offset (neutral until ~18 and again at 71)
    for i in range(35, 55):
        assert m.refs[i] < 22 or m.refs[i] > 66, (i, m.refs[i])


@pytest.mark.parametrize("blendshapes", [False, True])
def test_a_still_face_scores_nothing(smile_frames: list[DecodedFrame], blendshapes: bool) -> None:
    still = [DecodedFrame(i, i / 30, smile_frames[0].image) for i in range(30)]
    s = run_streaming(still, AnalysisConfig(blendshapes=blendshapes))
    try:
        # MediaPipe's tracking settles over the first frames on a still image (a transient
        # of 0.002-0.004 IOD, larger with the 478-point mesh the blendshapes need); after
        # that a still face is under the FACS rules' noise floor and scores ~0
        settled = slice(8, None)
        assert s.motion.strength[settled].max() < au_rules.LOW
        assert s.motion.score[settled].max() < 0.1
        assert s.motion.strength.max() < 1.5 * au_rules.LOW
        assert s.motion.score.max() < 0.35
    finally:
        s.crops.close()


def test_stored_rows_and_chunked_fusion_give_the_same_motion(
    smile_streamed: Streamed, monkeypatch: pytest.MonkeyPatch
) -> None:
    """The past displacements stored in blocks and the fusion run a chunk of frames at a
    time (bounded temporaries on long videos) give what one block and one chunk give,
    also with frames without a face at the block and chunk edges."""
    s = smile_streamed
    no_face = {15, 16, 32, 33, 34, 47}
    centroids = np.array(s.track.centroids)
    centroids[sorted(no_face)] = np.nan
    track = replace(s.track, valid=[i not in no_face for i in range(72)], centroids=centroids)

    def run(block: int, chunk: int) -> MotionResult:
        monkeypatch.setattr(TwoSidedMotion, "BLOCK", block)
        monkeypatch.setattr(motion_module, "MOTION_CHUNK", chunk)
        stage = MotionStage(s.cfg, 30.0)
        for i in range(72):
            stage.push(i, None if i in no_face else s.crops[i])
        return stage.finish(track)

    whole, parts = run(4096, 4096), run(16, 16)
    assert not whole.score[sorted(no_face)].any() and whole.score.max() > 0.5
    for name in ("disp_best", "strength", "best", "score", "refs"):
        assert np.array_equal(getattr(parts, name), getattr(whole, name), equal_nan=True), name
    past, future = landmark_two_sided(np.asarray(track.centroids), whole.lags)
    for lo in range(0, 72, 16):
        p, f = landmark_two_sided(np.asarray(track.centroids), whole.lags, slice(lo, lo + 16))
        assert np.array_equal(p, past[lo : lo + 16], equal_nan=True)
        assert np.array_equal(f, future[lo : lo + 16], equal_nan=True)
