"""MediaPipeLandmarker: 468/478 points, confidences, several faces, on real images."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest

from mer.face.landmarks import N_POINTS, N_POINTS_REFINED, MediaPipeLandmarker
from mer.pipeline import MainFaceTracker
from mer.video import iter_frames


@pytest.fixture(scope="module")
def frames(single_face_video: Path) -> list[np.ndarray]:
    return [np.ascontiguousarray(f.image) for f in iter_frames(single_face_video)][:30]


@pytest.fixture(scope="module")
def two_faces(shared_data: Path) -> np.ndarray:
    """A 1000x480 frame: a large face (photo 440 px) and a smaller one (300 px), real photos."""
    import cv2

    root = shared_data / "faces" / "london" / "neutral"
    paths = [root / "002.jpg", root / "003.jpg"]
    if not all(p.is_file() for p in paths):
        pytest.skip(f"London face photos missing under {root}")
    big, small = (
        cv2.resize(cv2.cvtColor(cv2.imread(str(p)), cv2.COLOR_BGR2RGB), (s, s))
        for p, s in zip(paths, (440, 300), strict=True)
    )
    canvas = np.full((480, 1000, 3), 128, np.uint8)
    canvas[90:390, 20:320] = small
    canvas[20:460, 520:960] = big
    return canvas


@pytest.mark.parametrize("refine", [False, True])
def test_points_and_confidence_on_video(frames: list[np.ndarray], refine: bool) -> None:
    lm = MediaPipeLandmarker(refine_landmarks=refine, detect_every=5)
    faces = [lm.process(f) for f in frames]
    lm.close()
    n = N_POINTS_REFINED if refine else N_POINTS
    assert all(len(fs) == 1 for fs in faces)
    for fs in faces:
        f = fs[0]
        assert f.landmarks.shape == (n, 2) and f.landmarks.dtype == np.float32
        assert 0.5 < f.confidence <= 1.0  # BlazeFace's score, not the 0.5 fallback
        assert 0 <= f.bbox[0] < f.bbox[2] <= 640 and 0 <= f.bbox[1] < f.bbox[3] <= 360
    # one face: the detector runs once per detect_every frames, never a multi-face mesh
    assert lm.stats["scans"] == len(frames) // 5 and lm.stats["multi"] == 0


def test_refined_points_keep_the_mesh_points(frames: list[np.ndarray]) -> None:
    """With the iris points, points 0-467 are the same mesh points (within 7 % of the IOD)."""
    a, b = MediaPipeLandmarker(refine_landmarks=True), MediaPipeLandmarker()
    for f in frames[::6]:
        pa, pb = a.process(f)[0].landmarks, b.process(f)[0].landmarks
        iod = np.linalg.norm(pb[33] - pb[263])
        assert np.linalg.norm(pa[:N_POINTS] - pb, axis=1).max() < 0.07 * iod
        # the iris centres (468, 473) lie between the eye corners of each eye
        for centre, (c0, c1) in ((468, (33, 133)), (473, (362, 263))):
            lo, hi = sorted((pa[c0, 0], pa[c1, 0]))
            assert lo < pa[centre, 0] < hi
    a.close()
    b.close()


def test_several_faces_the_largest_is_tracked(two_faces: np.ndarray) -> None:
    """Scans return both faces; between scans the largest one is the one tracked."""
    lm = MediaPipeLandmarker(max_faces=3, detect_every=5)
    tracker = MainFaceTracker()
    counts, main_areas, first_areas = [], [], []
    for _ in range(11):
        faces = lm.process(two_faces)
        main = tracker.select(faces)
        counts.append(len(faces))
        main_areas.append(main.area)
        first_areas.append(faces[0].area)
        assert all(f.confidence > 0.5 for f in faces)
    assert counts == [2, 1, 1, 1, 1, 2, 1, 1, 1, 1, 2]
    assert lm.stats["multi"] == 3
    assert main_areas == first_areas  # the tracked face is the main face
    assert main.bbox[0] > 520  # ... and it is the large one, on the right
    lm.close()


def test_max_faces_one_returns_the_tracked_face_only(two_faces: np.ndarray) -> None:
    lm = MediaPipeLandmarker(max_faces=1)
    assert all(len(lm.process(two_faces)) == 1 for _ in range(6))
    assert lm.stats["multi"] == 0
    lm.close()


def test_static_photos(two_faces: np.ndarray) -> None:
    lm = MediaPipeLandmarker(static=True, max_faces=3, refine_landmarks=True)
    faces = lm.process(two_faces)
    assert len(faces) == 2 and all(f.landmarks.shape == (478, 2) for f in faces)
    lm.close()


def test_rejects_non_rgb() -> None:
    lm = MediaPipeLandmarker()
    with pytest.raises(ValueError, match="uint8"):
        lm.process(np.zeros((10, 10), np.uint8))
    lm.close()


def test_steering_locks_the_tracker_on_a_chosen_face(two_faces: np.ndarray) -> None:
    """The restart on a masked copy of the frame (used when a new track is not the largest
    face) makes the one-face tracker follow the chosen face on the next, unmasked frames.
    Called directly: on our media MediaPipe's detector picks up the larger face first, so a
    video never needs it."""
    lm = MediaPipeLandmarker(max_faces=3, detect_every=100)
    faces = lm.process(two_faces)
    small = min(faces, key=lambda f: f.area)
    assert faces[0].area > small.area  # tracking the large face
    steered = lm._steer(two_faces, small.bbox)
    assert steered is not None and steered.bbox[2] < 400  # the small face, on the left
    lm._prev_box = steered.bbox
    for _ in range(4):
        (f,) = lm.process(two_faces)
        assert f.bbox[2] < 400
    assert lm.stats["steers"] == 1
    lm.close()


def test_pipeline_geometry_accepts_478_points(frames: list[np.ndarray]) -> None:
    """Alignment and region centroids read only mesh points: 478 points give the same result."""
    from mer.face.align import fit_to_template
    from mer.motion import region_centroids

    lm = MediaPipeLandmarker(refine_landmarks=True)
    pts = lm.process(frames[0])[0].landmarks
    lm.close()
    np.testing.assert_array_equal(fit_to_template(pts, 128), fit_to_template(pts[:N_POINTS], 128))
    np.testing.assert_array_equal(region_centroids(pts), region_centroids(pts[:N_POINTS]))
