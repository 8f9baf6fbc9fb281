"""Stage 2, motion: two-sided optical-flow displacements of the FACS regions, fused with
landmark displacements for large movements, and the apex score they give.

See :mod:`mer.motion` (DIS optical flow on the aligned crops, references ``k`` frames before
and after each frame, the smaller displacement kept) and :mod:`mer.spotting` (strength and
score). The flow runs while frames stream in (:meth:`MotionStage.push`, fed by the tracking
stage); :meth:`MotionStage.finish` combines everything once the video has ended, a chunk
of frames at a time. Per frame, the stage keeps its displacements only: ``(K, R, 2)``
float32 past, future and fused (2 kB with 4 lags and 21 regions).
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np

from mer.motion import (
    FlowEstimator,
    RegionMasks,
    TwoSidedMotion,
    build_region_masks,
    fuse,
    landmark_two_sided,
    reference_indices,
    two_sided,
)
from mer.pipeline.config import AnalysisConfig
from mer.pipeline.track import FaceTrack
from mer.spotting import apex_score, apex_strength

#: frames fused per step at the end (flow and landmark displacements, their magnitudes):
#: the temporaries of one step, whatever the video's length
MOTION_CHUNK = 512


@dataclass
class MotionResult:
    """Per-frame movement of a video of ``T`` frames (``K`` lags, ``R`` regions).

    Attributes:
        disp_best: ``(T, R, 2)`` float32 two-sided region displacements at each frame's
            best lag, fractions of the IOD (NaN without a face); the other lags are not
            kept (a 10-minute video's ``(T, K, R, 2)`` would hold 13 MB to the end).
        strength: ``(T,)`` float movement strength above the clip's noise floor (IOD).
        best: ``(T,)`` int index of the lag that moves most.
        score: ``(T,)`` float apex score in [0, 1] (0 without a face).
        refs: ``(T,)`` int local neutral reference frame of each frame (the AU models' input).
        lags: the lags in frames.
    """

    disp_best: np.ndarray
    strength: np.ndarray
    best: np.ndarray
    score: np.ndarray
    refs: np.ndarray
    lags: tuple[int, ...]

    def at_best_lag(self) -> np.ndarray:
        """``(T, R, 2)`` displacements at each frame's best lag."""
        return self.disp_best


class MotionStage:
    """Optical flow of the aligned crops, streamed; the fused displacements at the end.

    Args:
        cfg: ``crop_size``, ``lags_s`` (seconds), ``flow_preset``, ``fuse_low/high`` and the
            spotting parameters.
        fps: nominal frame rate (frames/s) that turns the lags into frames.
    """

    def __init__(self, cfg: AnalysisConfig, fps: float) -> None:
        self.cfg = cfg
        self.masks: RegionMasks = build_region_masks(cfg.crop_size)
        lags = tuple(max(1, int(round(s * fps))) for s in cfg.lags_s)
        self.motion = TwoSidedMotion(self.masks, lags, FlowEstimator(cfg.flow_preset))

    def push(self, index: int, crop: np.ndarray | None) -> None:
        """Feed frame ``index``'s aligned ``(S, S)`` uint8 crop (None without a face)."""
        self.motion.push(index, crop)

    def finish(self, track: FaceTrack) -> MotionResult:
        """Fuse flow and landmark displacements; strength, apex score and references."""
        cfg = self.cfg
        past, future = self.motion.finish_lazy()
        n = track.n_frames
        iod = self.masks.interocular
        cen = np.asarray(track.centroids, np.float32)
        # total past / future movement of each frame at each lag (the reference side)
        moved = np.empty((2, n, len(self.motion.lags)), np.float32)
        for lo in range(0, n, MOTION_CHUNK):  # the temporaries of one chunk at a time
            rows = slice(lo, min(n, lo + MOTION_CHUNK))
            fut = future.rows(rows)  # before past[rows] changes: it reads them
            for side, d in enumerate((past[rows], fut)):
                moved[side, rows] = np.nan_to_num(np.linalg.norm(d, axis=-1)).sum(-1)
            lm_past, lm_future = landmark_two_sided(cen, self.motion.lags, rows)
            fused = fuse(
                two_sided(past[rows], fut), two_sided(lm_past, lm_future),
                cfg.fuse_low * iod, cfg.fuse_high * iod,
            )  # fmt: skip
            past[rows] = fused  # the fused displacements take the past ones' place
        disp = past
        del past, future  # before the strength's own temporaries
        disp /= iod
        t = np.asarray(track.timestamps_s)
        valid = np.asarray(track.valid)
        strength, best = apex_strength(disp, cfg.spotting.top_k, cfg.spotting.floor_percentile)
        score = apex_score(strength, t, cfg.spotting)
        score[~valid] = 0.0
        pm, fm = moved[:, np.arange(n), best]
        refs = reference_indices(valid, self.motion.lags, best, pm <= fm)
        disp_best = disp[np.arange(n), best]
        del disp
        return MotionResult(disp_best, strength, best, score, refs, self.motion.lags)
