"""Facial landmarks behind one interface.

The default backend is MediaPipe 0.10.21 FaceMesh (468 points; its TFLite models ship inside
the wheel, so it runs offline): Kartynnik et al., "Real-time Facial Surface Geometry from
Monocular Video on Mobile GPUs", CVPR-W 2019. The face confidence comes from MediaPipe's
BlazeFace detector (Bazarevsky et al., 2019), re-run every ``detect_every`` frames.

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


@dataclass
class Face:
    """One face found in one image.

    Attributes:
        landmarks: ``(468, 2)`` float32, pixels.
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
    """MediaPipe FaceMesh (468 points) with BlazeFace confidence.

    Args:
        max_faces: most faces tracked at once.
        static: treat every image independently (photos) instead of tracking (video).
        detect_every: run the BlazeFace detector for confidences every this many frames.
        min_size: images whose short side is smaller (pixels) are upscaled for detection.

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
        self.max_faces = max_faces
        self.static = static
        self.detect_every = max(1, detect_every)
        self.min_size = min_size
        self._mesh = None
        self._det = None
        self._count = 0
        self._scores: list[tuple[tuple[float, ...], float]] = []
        self.reset()

    def reset(self) -> None:
        """Start a fresh tracking state."""
        self.close()
        fm = self._mp.solutions.face_mesh
        self._mesh = fm.FaceMesh(
            static_image_mode=self.static,
            max_num_faces=self.max_faces,
            refine_landmarks=False,
            min_detection_confidence=0.5,
            min_tracking_confidence=0.5,
        )
        self._det = self._mp.solutions.face_detection.FaceDetection(
            model_selection=1, min_detection_confidence=0.3
        )
        self._count = 0
        self._scores = []

    def close(self) -> None:
        """Release the MediaPipe graphs."""
        for g in (self._mesh, self._det):
            if g is not None:
                g.close()
        self._mesh = self._det = None

    def _detect_scores(self, image: np.ndarray) -> list[tuple[tuple[float, ...], float]]:
        h, w = image.shape[:2]
        res = self._det.process(image)
        out = []
        for d in res.detections or []:
            bb = d.location_data.relative_bounding_box
            box = (bb.xmin * w, bb.ymin * h, (bb.xmin + bb.width) * w, (bb.ymin + bb.height) * h)
            out.append((box, float(d.score[0])))
        return out

    def process(self, image: np.ndarray) -> list[Face]:
        """Find faces in one ``(H, W, 3)`` uint8 RGB frame; landmarks in its pixels."""
        import cv2

        if image.ndim != 3 or image.shape[2] != 3 or image.dtype != np.uint8:
            raise ValueError(f"expected (H, W, 3) uint8 RGB, got {image.shape} {image.dtype}")
        h, w = image.shape[:2]
        scale = 1.0
        if min(h, w) < self.min_size:
            scale = self.min_size / min(h, w)
            image = cv2.resize(image, (round(w * scale), round(h * scale)), cv2.INTER_CUBIC)
        ih, iw = image.shape[:2]
        res = self._mesh.process(image)
        faces: list[Face] = []
        if not res.multi_face_landmarks:
            self._count += 1
            return faces
        if self.static or self._count % self.detect_every == 0 or not self._scores:
            self._scores = self._detect_scores(image)
        self._count += 1
        for lm in res.multi_face_landmarks:
            pts = np.array([(p.x * iw, p.y * ih) for p in lm.landmark], dtype=np.float32)
            box = (
                float(pts[:, 0].min()),
                float(pts[:, 1].min()),
                float(pts[:, 0].max()),
                float(pts[:, 1].max()),
            )
            conf = 0.0
            for dbox, score in self._scores:
                if iou(box, dbox) > 0.2:
                    conf = max(conf, score)
            if conf == 0.0:
                # tracked by the mesh but the detector missed it: the mesh's own tracking
                # threshold (0.5) bounds the confidence from below
                conf = 0.5
            if scale != 1.0:
                pts /= scale
                box = tuple(v / scale for v in box)
            faces.append(Face(landmarks=pts, bbox=box, confidence=conf))
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
