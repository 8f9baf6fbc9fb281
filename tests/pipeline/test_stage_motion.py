"""Stage: motion (mer.pipeline.motion)."""

from __future__ import annotations

import numpy as np
import pytest

from mer.aus import rules as au_rules
from mer.pipeline.config import AnalysisConfig
from mer.video import DecodedFrame
from tests.pipeline.streaming import Streamed, run_streaming


def test_the_smile_moves_and_rest_does_not(smile_streamed: Streamed) -> None:
    m = smile_streamed.motion
    n_lags = len(smile_streamed.cfg.lags_s)
    assert m.disp.shape[:2] == (72, n_lags) and m.disp.shape[-1] == 2
    assert m.lags == (6, 15, 36, 75)  # 0.2, 0.5, 1.2, 2.5 s at 30 fps
    assert m.score[30:60].min() > 0.5 and m.score[:3].max() < 0.2
    assert np.all((m.score >= 0) & (m.score <= 1))
    assert m.at_best_lag().shape == (72, m.disp.shape[2], 2)


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
