"""Facial landmarks behind one interface.

The default backend is MediaPipe 0.10.21 FaceMesh (468 points, or 478 with the 10 iris points
of ``refine_landmarks``; its TFLite models ship inside the wheel, so it runs offline):
Kartynnik et al., "Real-time Facial Surface Geometry from Monocular Video on Mobile GPUs",
CVPR-W 2019; Grishchenko et al., "Attention Mesh", arXiv:2006.10962, 2020 (refined points).
The face confidence comes from MediaPipe's BlazeFace detector (Bazarevsky et al., 2019), re-run
every ``detect_every`` frames, when the landmarker also looks for other faces.

All coordinates are pixels of the image passed in, x to the right, y down.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Protocol

import numpy as np

# ---- landmark indices of the MediaPipe 468-point mesh (subject's right = image left) ------
#: Points that move little with facial Action Units: eye corners, nose bridge and tip.
#: Used to fit the similarity transform to the canonical template.
STABLE_POINTS: tuple[int, ...] = (133, 362, 168, 6, 197, 195, 5, 4, 1)
RIGHT_EYE_OUTER, RIGHT_EYE_INNER, LEFT_EYE_INNER, LEFT_EYE_OUTER = 33, 133, 362, 263
N_POINTS = 468
#: With ``refine_landmarks=True``: the 468 points, then 10 iris points (468-477).
N_POINTS_REFINED = 478


#: face-contour points at the cheeks (subject's right, left) and the nose tip
RIGHT_CHEEK, LEFT_CHEEK, NOSE_TIP = 234, 454, 1


def pose_ratios(landmarks: np.ndarray) -> np.ndarray:
    """Out-of-plane head pose proxies from 2-D landmarks, unchanged by in-plane rotation,
    translation and scale (ratios of distances).

    - ``yaw``: ``(dR - dL) / (dR + dL)`` with ``dR`` / ``dL`` the nose tip's distance to the
      right / left cheek contour (0 when frontal; turning the head moves the nose tip
      toward one cheek in the image);
    - ``pitch``: the nose tip's distance to the line of the outer eye corners over the
      inter-ocular distance (nodding shortens or lengthens the nose's projection). Not
      used for head motion: measured on the dev set, talking and a surprise move it as
      fast (0.14-0.22/s) as the labelled head movements (0.21-0.30/s).

    Args:
        landmarks: ``(468, 2)`` or ``(478, 2)`` float pixels (MediaPipe FaceMesh order).

    Returns:
        ``(2,)`` float32 ``(yaw, pitch)`` (dimensionless).
    """
    p = np.asarray(landmarks, np.float64)
    d_r = np.linalg.norm(p[NOSE_TIP] - p[RIGHT_CHEEK])
    d_l = np.linalg.norm(p[NOSE_TIP] - p[LEFT_CHEEK])
    yaw = (d_r - d_l) / max(d_r + d_l, 1e-6)
    eye = p[LEFT_EYE_OUTER] - p[RIGHT_EYE_OUTER]
    iod = max(float(np.linalg.norm(eye)), 1e-6)
    rel = p[NOSE_TIP] - p[RIGHT_EYE_OUTER]
    pitch = abs(eye[0] * rel[1] - eye[1] * rel[0]) / iod / iod
    return np.array([yaw, pitch], np.float32)


@dataclass
class Face:
    """One face found in one image.

    Attributes:
        landmarks: ``(468, 2)`` float32, pixels (``(478, 2)``: 468 mesh + 10 iris points,
            when the landmarker refines them).
        bbox: ``(x0, y0, x1, y1)`` float pixels, the landmarks' bounding box.
        confidence: face detection score in [0, 1].
    """

    landmarks: np.ndarray
    bbox: tuple[float, float, float, float]
    confidence: float

    @property
    def area(self) -> float:
        """Bounding-box area in square pixels."""
        x0, y0, x1, y1 = self.bbox
        return max(0.0, x1 - x0) * max(0.0, y1 - y0)

    @property
    def interocular(self) -> float:
        """Distance between the outer eye corners, pixels."""
        return float(
            np.linalg.norm(self.landmarks[RIGHT_EYE_OUTER] - self.landmarks[LEFT_EYE_OUTER])
        )


class Landmarker(Protocol):
    """Finds faces and their landmarks in a sequence of frames (may track between calls)."""

    name: str
    version: str

    def process(self, image: np.ndarray) -> list[Face]:
        """Return the faces in an ``(H, W, 3)`` uint8 RGB frame (empty list if none)."""
        ...

    def reset(self) -> None:
        """Forget tracking state (call between unrelated videos)."""
        ...

    def close(self) -> None:
        """Release native resources."""
        ...


def iou(a: tuple[float, ...], b: tuple[float, ...]) -> float:
    """Intersection over union of two ``(x0, y0, x1, y1)`` boxes (pixels)."""
    x0, y0 = max(a[0], b[0]), max(a[1], b[1])
    x1, y1 = min(a[2], b[2]), min(a[3], b[3])
    inter = max(0.0, x1 - x0) * max(0.0, y1 - y0)
    union = (a[2] - a[0]) * (a[3] - a[1]) + (b[2] - b[0]) * (b[3] - b[1]) - inter
    return inter / union if union > 0 else 0.0


class MediaPipeLandmarker:
    """MediaPipe FaceMesh tracking the main face at its floor cost, with BlazeFace confidence.

    Video (``static=False``): a FaceMesh limited to one face tracks the main face; MediaPipe
    runs its face detector only when that face is lost, so each frame costs one landmark
    model run. Every ``detect_every`` frames, and whenever a new face is picked up (the first
    face, or one that does not overlap the previous frame's), a *scan* runs MediaPipe's
    full-range BlazeFace detector on the whole frame: it refreshes the faces' confidences and,
    when it sees faces other than the tracked one (and ``max_faces > 1``), a multi-face
    FaceMesh (static mode) gives their landmarks too, so the frame returns them all. On a new
    track the largest face (bbox area x confidence, the rule of ``mer.pipeline.MainFaceTracker``)
    becomes the tracked one: if the one-face mesh picked up another, it is restarted on a copy
    of the frame where everything outside the largest face's box (plus ``steer_margin``) is
    grey, so that it locks on the largest face. Between scans only the tracked face is
    returned; a face that enters the frame is seen at the next scan (``detect_every`` frames,
    e.g. 5 frames = 0.17 s at 30 fps).

    Photos (``static=True``): every image is independent: FaceMesh in static mode with
    ``max_faces`` faces and the detector on every image, as before.

    Args:
        max_faces: most faces returned by a frame (scans and photos).
        static: treat every image independently (photos) instead of tracking (video).
        detect_every: scan period in frames (detector confidences, other faces).
        min_size: images whose short side is smaller (pixels) are upscaled for detection.
        refine_landmarks: 478 points (the 468 mesh points, then 5 points of each iris, centre
            first) instead of 468, from MediaPipe's attention mesh; the first 468 are the same
            points (refined around eyes and lips). Needed by :mod:`mer.face.blendshapes`.
        steer_margin: margin around the largest face's box kept when steering the tracker, as
            a fraction of the box's width and height on each side.

    Raises:
        ModelUnavailableError: mediapipe is not installed (see README's install step).
    """

    name = "mediapipe-facemesh"

    def __init__(
        self,
        max_faces: int = 3,
        static: bool = False,
        detect_every: int = 5,
        min_size: int = 240,
        refine_landmarks: bool = False,
        steer_margin: float = 0.5,
    ) -> None:
        try:
            import mediapipe as mp
        except ImportError as exc:  # pragma: no cover - install problem
            from mer.errors import ModelUnavailableError

            raise ModelUnavailableError(
                "mediapipe 0.10.21 is not installed (pip install --no-deps mediapipe==0.10.21)"
            ) from exc
        self.version = mp.__version__
        self._mp = mp
        self.max_faces = max(1, max_faces)
        self.static = static
        self.detect_every = max(1, detect_every)
        self.min_size = min_size
        self.refine_landmarks = refine_landmarks
        self.steer_margin = steer_margin
        self.n_points = N_POINTS_REFINED if refine_landmarks else N_POINTS
        self._mesh = None  # tracks the main face (video) / all faces (photos)
        self._multi = None  # multi-face static mesh for scans, built on first need
        self._det = None
        self._count = 0
        self._scores: list[tuple[tuple[float, ...], float]] = []
        self._prev_box: tuple[float, float, float, float] | None = None
        #: how many scans, multi-face mesh runs and tracker restarts since reset (for tests
        #: and bench/pipeline_speed.py)
        self.stats = {"scans": 0, "multi": 0, "steers": 0}
        self.reset()

    def _face_mesh(self, static: bool, max_faces: int) -> object:
        return self._mp.solutions.face_mesh.FaceMesh(
            static_image_mode=static,
            max_num_faces=max_faces,
            refine_landmarks=self.refine_landmarks,
            min_detection_confidence=0.5,
            min_tracking_confidence=0.5,
        )

    def reset(self) -> None:
        """Start a fresh tracking state."""
        self.close()
        self._mesh = self._face_mesh(self.static, self.max_faces if self.static else 1)
        self._det = self._mp.solutions.face_detection.FaceDetection(
            model_selection=1, min_detection_confidence=0.3
        )
        self._count = 0
        self._scores = []
        self._prev_box = None
        self.stats = {"scans": 0, "multi": 0, "steers": 0}

    def close(self) -> None:
        """Release the MediaPipe graphs."""
        for g in (self._mesh, self._multi, self._det):
            if g is not None:
                g.close()
        self._mesh = self._multi = self._det = None

    def _detect_scores(self, image: np.ndarray) -> list[tuple[tuple[float, ...], float]]:
        h, w = image.shape[:2]
        res = self._det.process(image)
        out = []
        for d in res.detections or []:
            bb = d.location_data.relative_bounding_box
            box = (bb.xmin * w, bb.ymin * h, (bb.xmin + bb.width) * w, (bb.ymin + bb.height) * h)
            out.append((box, float(d.score[0])))
        return out

    def _mesh_faces(self, res: object, iw: int, ih: int) -> list[Face]:
        """FaceMesh results -> faces in the (possibly upscaled) image's pixels, confidence 0."""
        faces = []
        for lm in res.multi_face_landmarks or []:
            pts = np.array([(p.x * iw, p.y * ih) for p in lm.landmark], dtype=np.float32)
            box = (
                float(pts[:, 0].min()),
                float(pts[:, 1].min()),
                float(pts[:, 0].max()),
                float(pts[:, 1].max()),
            )
            faces.append(Face(landmarks=pts, bbox=box, confidence=0.0))
        return faces

    def _confidence(self, box: tuple[float, ...]) -> float:
        conf = 0.0
        for dbox, score in self._scores:
            if iou(box, dbox) > 0.2:
                conf = max(conf, score)
        # tracked by the mesh but the detector missed it: the mesh's own tracking
        # threshold (0.5) bounds the confidence from below
        return conf if conf > 0.0 else 0.5

    def _steer(self, image: np.ndarray, box: tuple[float, ...]) -> Face | None:
        """Restart the one-face tracker on ``image`` masked outside ``box`` (+ margin)."""
        ih, iw = image.shape[:2]
        mx = self.steer_margin * (box[2] - box[0])
        my = self.steer_margin * (box[3] - box[1])
        x0, y0 = max(0, int(box[0] - mx)), max(0, int(box[1] - my))
        x1, y1 = min(iw, int(np.ceil(box[2] + mx))), min(ih, int(np.ceil(box[3] + my)))
        masked = np.full_like(image, 128)  # mid grey: on black the detector missed faces
        masked[y0:y1, x0:x1] = image[y0:y1, x0:x1]
        self._mesh.close()
        self._mesh = self._face_mesh(False, 1)
        self.stats["steers"] += 1
        got = self._mesh_faces(self._mesh.process(masked), iw, ih)
        return got[0] if got else None

    def _scan(self, image: np.ndarray, tracked: Face, new_track: bool) -> list[Face]:
        """Detector on the whole frame; other faces' landmarks; steer on a new track."""
        self.stats["scans"] += 1
        self._scores = self._detect_scores(image)
        faces = [tracked]
        others = [b for b, _ in self._scores if iou(b, tracked.bbox) <= 0.2]
        if others and self.max_faces > 1:
            if self._multi is None:
                self._multi = self._face_mesh(True, self.max_faces)
            self.stats["multi"] += 1
            ih, iw = image.shape[:2]
            for f in self._mesh_faces(self._multi.process(image), iw, ih):
                if iou(f.bbox, tracked.bbox) < 0.3 and len(faces) < self.max_faces:
                    faces.append(f)
        for f in faces:
            f.confidence = self._confidence(f.bbox)
        if new_track and len(faces) > 1:
            main = max(faces, key=lambda f: f.area * f.confidence)
            if main is not tracked:
                steered = self._steer(image, main.bbox)
                if steered is not None and iou(steered.bbox, main.bbox) >= 0.3:
                    steered.confidence = main.confidence
                    faces = [steered] + [f for f in faces if f is not main]
        return faces

    def process(self, image: np.ndarray) -> list[Face]:
        """Find faces in one ``(H, W, 3)`` uint8 RGB frame.

        Returns:
            Faces with ``(468, 2)`` float32 landmarks (``(478, 2)`` with ``refine_landmarks``)
            in the pixels of ``image``; the tracked face first. Empty list if none.

        Raises:
            ValueError: not an ``(H, W, 3)`` uint8 image.
        """
        import cv2

        if image.ndim != 3 or image.shape[2] != 3 or image.dtype != np.uint8:
            raise ValueError(f"expected (H, W, 3) uint8 RGB, got {image.shape} {image.dtype}")
        h, w = image.shape[:2]
        scale = 1.0
        if min(h, w) < self.min_size:
            scale = self.min_size / min(h, w)
            image = cv2.resize(image, (round(w * scale), round(h * scale)), cv2.INTER_CUBIC)
        ih, iw = image.shape[:2]
        found = self._mesh_faces(self._mesh.process(image), iw, ih)
        count = self._count
        self._count += 1
        if not found:
            self._prev_box = None
            return []
        if self.static:
            self._scores = self._detect_scores(image)
            faces = found
            for f in faces:
                f.confidence = self._confidence(f.bbox)
        else:
            tracked = found[0]
            new_track = self._prev_box is None or iou(tracked.bbox, self._prev_box) < 0.3
            if new_track or count % self.detect_every == 0:
                faces = self._scan(image, tracked, new_track)
            else:
                tracked.confidence = self._confidence(tracked.bbox)
                faces = [tracked]
            self._prev_box = faces[0].bbox
        if scale != 1.0:
            for f in faces:
                f.landmarks /= scale
                f.bbox = tuple(v / scale for v in f.bbox)
        return faces


def create_landmarker(name: str = "mediapipe", **kwargs: object) -> Landmarker:
    """Build a landmarker by name (``"mediapipe"``).

    Raises:
        ValueError: unknown name.
        ModelUnavailableError: its package is not installed.
    """
    if name == "mediapipe":
        return MediaPipeLandmarker(**kwargs)  # type: ignore[arg-type]
    raise ValueError(f"unknown landmarker {name!r}; available: mediapipe")
