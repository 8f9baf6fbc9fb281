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


@pytest.mark.parametrize(("blendshapes", "floor"), [(False, 1.0), (True, 1.5)])
def test_a_still_face_scores_nothing(
    smile_frames: list[DecodedFrame], blendshapes: bool, floor: float
) -> None:
    still = [DecodedFrame(i, i / 30, smile_frames[0].image) for i in range(30)]
    s = run_streaming(still, AnalysisConfig(blendshapes=blendshapes))
    try:
        # under the FACS rules' noise floor (IOD); the 478-point mesh the blendshapes need
        # settles over its first frames (0.0043 at frame 3, then falling)
        assert s.motion.strength.max() < floor * au_rules.LOW
        assert s.motion.score.max() < 0.2
    finally:
        s.crops.close()
