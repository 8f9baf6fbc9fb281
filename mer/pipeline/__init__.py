"""The analysis pipeline, one stage per module, in the order data flows through them:

1. :mod:`~mer.pipeline.decode` — decoding in a background thread (PyAV, :mod:`mer.video`).
2. :mod:`~mer.pipeline.track` — tracking and alignment: landmarks of the main face, the
   template fit smoothed over time, aligned grey crops (kept in :mod:`~mer.pipeline.crops`);
   the landmarker in the calling thread, the rest of each frame in a worker thread beside it
   (:mod:`~mer.pipeline.serial`).
3. :mod:`~mer.pipeline.motion` — two-sided optical-flow motion of the FACS regions, the
   apex score, each frame's local neutral reference.
4. :mod:`~mer.pipeline.aus` — per-frame Action Unit scores.
5. :mod:`~mer.pipeline.spotting` — onset / apex / offset intervals and the apex.
6. :mod:`~mer.pipeline.emotion` — the emotion of each interval.
7. :mod:`~mer.pipeline.assemble` — the result, its per-frame part as arrays
   (:mod:`~mer.pipeline.output`: :class:`CompactResult`, JSON written in a stream).

:mod:`~mer.pipeline.run` runs them (:func:`analyze_video`, :func:`analyze_frames`);
:mod:`~mer.pipeline.config` holds the parameters. Images in memory are bounded by the
alignment lag (``3 * align_sigma_s`` of grey frames), the motion buffer (the largest lag of
aligned crops), the decoded frames queued for the landmarker (16) and for the tracking
worker (:mod:`~mer.pipeline.serial`, 4) and one chunk of AU-detector inputs; the crops the
learned models need at the end live in a temporary file, read back a crop at a time. What
grows with the video's length is compact per-frame rows (a few kB a frame: track, motion
displacements, scores).
"""

from mer.pipeline.config import AnalysisConfig
from mer.pipeline.crops import CropStore
from mer.pipeline.output import CompactResult, FrameTable
from mer.pipeline.run import (
    ProgressCallback,
    analyze_frames,
    analyze_frames_compact,
    analyze_video,
    analyze_video_compact,
)
from mer.pipeline.spotting import SPOTTING_METHOD, SPOTTING_VERSION
from mer.pipeline.track import MainFaceTracker

__all__ = [
    "SPOTTING_METHOD",
    "SPOTTING_VERSION",
    "AnalysisConfig",
    "CompactResult",
    "CropStore",
    "FrameTable",
    "MainFaceTracker",
    "ProgressCallback",
    "analyze_frames",
    "analyze_frames_compact",
    "analyze_video",
    "analyze_video_compact",
]
