"""Stage 4, spotting: onset / apex / offset intervals and the video's apex curve.

The intervals come from the apex score (:func:`mer.spotting.spot_intervals`); each apex,
and the video's, is the maximum of the motion strength scaled to 1 plus the learned AU
detector's activity where that detector ran (:func:`mer.spotting.apex_curve`).
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np

from mer.pipeline.aus import AUResult
from mer.pipeline.motion import MotionResult
from mer.pipeline.track import FaceTrack
from mer.schemas import ModelInfo
from mer.spotting import SpottedInterval, SpottingConfig, apex_curve, spot_intervals

#: the apex method; with a learned AU detector its activity joins the motion curve
SPOTTING_METHOD = "two-sided-flow-spotting"
SPOTTING_VERSION = "2"


@dataclass
class SpottingResult:
    """Intervals and the apex curve of ``T`` frames.

    Attributes:
        intervals: spotted intervals (frame indices, inclusive), in time order.
        curve: ``(T,)`` float apex curve (its maximum is the apex).
        model: the spotting method as reported in ``models``.
    """

    intervals: list[SpottedInterval]
    curve: np.ndarray
    model: ModelInfo

    def apex_frame(self, valid: np.ndarray) -> int:
        """The video's apex: the curve's maximum over frames with a face (``valid`` (T,))."""
        return int(np.argmax(np.where(valid, self.curve, -1.0)))


def spot(
    track: FaceTrack, motion: MotionResult, aus: AUResult, cfg: SpottingConfig
) -> SpottingResult:
    """Spot the intervals of one video.

    Args:
        track: timestamps (seconds).
        motion: apex score and strength.
        aus: the learned detector's activity (or None).
        cfg: spotting parameters (seconds, fractions of the IOD).
    """
    t = np.asarray(track.timestamps_s)
    curve = apex_curve(motion.strength, t, cfg, aus.activity)
    intervals = spot_intervals(motion.score, t, cfg, curve=curve)
    with_au = aus.activity is not None and cfg.au_weight > 0
    name = SPOTTING_METHOD + ("+au-activity" if with_au else "")
    model = ModelInfo(name=name, version=SPOTTING_VERSION, task="apex", method="rules")
    return SpottingResult(intervals, curve, model)
