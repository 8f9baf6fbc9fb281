"""Stage: tracking and alignment (mer.pipeline.track)."""

from __future__ import annotations

import numpy as np

from mer.face.landmarks import Face
from mer.motion import REGION_NAMES
from mer.pipeline.config import AnalysisConfig
from mer.pipeline.crops import CropStore
from mer.pipeline.track import Column, FaceTrack, MainFaceTracker, TrackAlign, thread_landmarker
from mer.video import DecodedFrame
from tests.pipeline.streaming import Streamed, run_streaming


def _face(x0: float, y0: float, side: float, conf: float = 0.9) -> Face:
    return Face(np.zeros((468, 2), np.float32), (x0, y0, x0 + side, y0 + side), conf)


def test_tracker_keeps_the_followed_face_over_a_larger_newcomer() -> None:
    tr = MainFaceTracker()
    first = tr.select([_face(0, 0, 100), _face(300, 0, 50)])
    assert first is not None and first.bbox[0] == 0  # the largest to start with
    # a larger face appears elsewhere; the tracked one moved a little: keep following it
    kept = tr.select([_face(400, 0, 200), _face(5, 0, 100)])
    assert kept is not None and kept.bbox[0] == 5
    # the tracked face is gone: adopt the largest
    new = tr.select([_face(400, 0, 200), _face(700, 0, 20)])
    assert new is not None and new.bbox[0] == 400
    assert tr.select([]) is None


def test_every_real_frame_is_tracked_and_aligned(smile_streamed: Streamed) -> None:
    s = smile_streamed
    tr = s.track
    assert tr.n_frames == 72 and tr.n_face == 72 and tr.size == (640, 360)
    assert min(tr.confidence) > 0.4
    # every frame reaches the next stage once, in order, with its crop stored
    assert [e[0] for e in s.emitted] == list(range(72))
    assert all(had for _, had, _ in s.emitted) and sorted(s.crops) == list(range(72))
    assert s.crops[10].shape == (s.cfg.crop_size, s.cfg.crop_size)
    # the region centroids are in aligned-crop pixels
    cen = np.stack([tr.centroids[i] for i in range(72)])
    assert np.all((cen > 0) & (cen < s.cfg.crop_size))
    # the lip gap opens in the smile with teeth (frames ~30-60) and not at rest
    gap = np.asarray(tr.lip_gap)
    assert np.nanmax(gap[30:60]) > 2 * np.nanmax(gap[:5])


def test_alignment_lags_by_three_sigma_only(smile_streamed: Streamed) -> None:
    s = smile_streamed
    lag_frames = int(np.ceil(3 * s.cfg.align_sigma_s * 30)) + 1
    for index, _, pushed in s.emitted:
        if pushed < 72:  # emitted while streaming, not by finish()
            assert pushed - 1 - index <= lag_frames


def test_frames_without_a_face_are_passed_on_as_none(smile_frames: list[DecodedFrame]) -> None:
    black = np.zeros_like(smile_frames[0].image)
    frames = [
        DecodedFrame(i, f.timestamp_s, black if 8 <= i < 12 else f.image)
        for i, f in enumerate(smile_frames[:20])
    ]
    s = run_streaming(frames, AnalysisConfig())
    try:
        assert list(s.track.valid) == [not (8 <= i < 12) for i in range(20)]
        assert [had for _, had, _ in s.emitted] == list(s.track.valid)
        assert 9 not in s.crops and np.isnan(s.track.centroids[9]).all()
        assert not np.isnan(s.track.centroids[7]).any()
        assert np.isnan(s.track.lip_gap[9]) and s.track.confidence[9] == 0.0
    finally:
        s.crops.close()


def test_column_grows_like_a_list_and_reads_as_an_array() -> None:
    c = Column((2,), np.float32)
    assert not c and len(c) == 0 and np.asarray(c).shape == (0, 2)
    for i in range(200):  # past the initial capacity, several times
        c.append([i, -i])
    c.append(np.nan)
    assert c and len(c) == 201 and c[199].tolist() == [199.0, -199.0] and np.isnan(c[200]).all()
    c[3] = [7, 7]
    a = np.asarray(c)
    assert a.shape == (201, 2) and a.dtype == np.float32 and a[3].tolist() == [7.0, 7.0]
    assert [r.tolist() for r in c][:2] == [[0.0, 0.0], [1.0, -1.0]]
    assert np.asarray(c, np.float64).dtype == np.float64
    # plain sequences given to FaceTrack become columns of the documented shapes
    tr = FaceTrack(timestamps_s=[0.0, 0.1, 0.2], valid=[True, False, True])
    assert isinstance(tr.valid, Column) and tr.n_frames == 3 and tr.n_face == 2
    assert np.asarray(tr.timestamps_s).dtype == np.float64 and tr.blendshape_array() is None


def test_the_track_keeps_compact_rows(smile_streamed: Streamed) -> None:
    tr = smile_streamed.track
    assert np.asarray(tr.params).shape == (72, 4)
    assert np.asarray(tr.centroids).shape == (72, len(REGION_NAMES), 2)
    assert np.asarray(tr.valid).dtype == bool and np.asarray(tr.confidence).shape == (72,)
    assert not tr.blendshapes and tr.blendshape_array() is None  # blendshapes off


def test_the_smoothing_window_stays_bounded(smile_frames: list[DecodedFrame]) -> None:
    """Only the face frames within the alignment lag of the frame being aligned are kept
    (not every frame of the video)."""
    cfg = AnalysisConfig()
    lag_frames = 3 * cfg.align_sigma_s * 30
    with CropStore(cfg.crop_size) as crops:
        stage = TrackAlign(thread_landmarker("mediapipe", cfg), cfg, crops, lambda i, c: None)
        held = []
        for fr in smile_frames:
            stage.push(fr)
            held.append(len(stage._vts))
        stage.finish()
        assert len(crops) == 72
    assert max(held) <= 2 * lag_frames + 2 and held[-1] < 72
