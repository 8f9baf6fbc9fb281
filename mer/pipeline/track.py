"""Stage 1, tracking and alignment: landmarks of the main face in every frame, a similarity
fit to the canonical template smoothed over time, and the aligned grey crops.

The per-frame similarity (Umeyama on stable points, :func:`mer.face.align.fit_to_template`)
is smoothed with a zero-phase Gaussian of ``align_sigma_s`` seconds, so each frame is
aligned ``3 * align_sigma_s`` seconds after it arrives: that lag of grey frames is the only
image data held in memory. Every aligned crop goes to the :class:`CropStore` and to
``on_crop`` (the motion stage); per frame, the track keeps about 0.5 kB of compact rows
(:class:`FaceTrack`, 0.3 kB more with blendshapes).
"""

from __future__ import annotations

import bisect
import threading
import time
from collections import deque
from collections.abc import Callable, Iterator
from dataclasses import dataclass, field, fields
from typing import Any

import cv2
import numpy as np
from numpy.typing import DTypeLike

from mer.aus.geometry import lower_lip_arch
from mer.face.align import fit_to_template, gaussian_average, landmarks_to_crop, warp_to_crop
from mer.face.blendshapes import N_BLENDSHAPES, BlendshapeModel
from mer.face.landmarks import Face, Landmarker, create_landmarker, iou, pose_ratios
from mer.motion import REGION_NAMES, region_centroids
from mer.pipeline.config import AnalysisConfig
from mer.pipeline.crops import CropStore
from mer.pipeline.timing import StageTimer
from mer.video import DecodedFrame

#: called with ``(frame index, aligned (S, S) uint8 crop or None without a face)`` in order
CropSink = Callable[[int, "np.ndarray | None"], None]


class MainFaceTracker:
    """Follows the main face: the one overlapping the previous main face, else the largest.

    A new face is adopted only when the tracked one is lost.

    Args:
        min_iou: bounding-box IoU with the previous main face needed to keep following it.
    """

    def __init__(self, min_iou: float = 0.3) -> None:
        self.min_iou = min_iou
        self._box: tuple[float, float, float, float] | None = None

    def select(self, faces: list[Face]) -> Face | None:
        """Pick the main face of one frame, or None."""
        if not faces:
            return None
        if self._box is not None:
            best = max(faces, key=lambda f: iou(f.bbox, self._box))
            if iou(best.bbox, self._box) >= self.min_iou:
                self._box = best.bbox
                return best
        best = max(faces, key=lambda f: f.area * f.confidence)
        self._box = best.bbox
        return best


_local = threading.local()


def thread_landmarker(name: str, cfg: AnalysisConfig) -> Landmarker:
    """One landmarker per thread (MediaPipe graphs are not thread safe), reset per video.

    Args:
        name: landmarker backend (:func:`mer.face.landmarks.create_landmarker`).
        cfg: its options (``max_faces``, ``detect_every``; the 478-point mesh when
            ``blendshapes`` is on).
    """
    lm = getattr(_local, "landmarker", None)
    key = (name, cfg.max_faces, cfg.detect_every, cfg.blendshapes)
    if lm is None or getattr(_local, "key", None) != key:
        if lm is not None:
            lm.close()
        lm = create_landmarker(
            name,
            max_faces=cfg.max_faces,
            detect_every=cfg.detect_every,
            refine_landmarks=cfg.blendshapes,
        )
        _local.landmarker, _local.key = lm, key
    else:
        lm.reset()
    return lm


def thread_blendshape_model() -> BlendshapeModel:
    """One blendshape model per thread (a LiteRT interpreter is not thread safe).

    Raises:
        ModelUnavailableError: the vendored model is missing or corrupt.
    """
    model = getattr(_local, "blendshapes", None)
    if model is None:
        model = _local.blendshapes = BlendshapeModel()
    return model


class Column:
    """A growable array of per-frame rows, list-like (``append``, ``len``, indexing,
    iteration) and an array to NumPy (``np.asarray(column)`` is ``(T, *row_shape)``).

    Per-frame values of a long video as compact rows of one array (capacity doubles as it
    fills) rather than one Python object per frame: 18 000 frames of 4 float64 take 576 kB
    instead of 2.6 MB of small arrays.

    Args:
        row_shape: the shape of one row (``()`` for scalars).
        dtype: the rows' dtype.
    """

    def __init__(self, row_shape: tuple[int, ...] = (), dtype: DTypeLike = float):
        self._data = np.empty((64, *row_shape), dtype)
        self._n = 0

    def append(self, row: object) -> None:
        """Add one row (anything NumPy casts to ``row_shape``)."""
        if self._n == len(self._data):
            grown = np.empty((2 * len(self._data), *self._data.shape[1:]), self._data.dtype)
            grown[: self._n] = self._data
            self._data = grown
        self._data[self._n] = row
        self._n += 1

    @classmethod
    def of(cls, rows: object, row_shape: tuple[int, ...], dtype: DTypeLike) -> Column:
        """A column holding ``rows`` (a sequence or array of ``row_shape`` rows)."""
        data = np.asarray(rows, dtype).reshape(-1, *row_shape)
        col = cls(row_shape, dtype)
        col._data, col._n = data.copy(), len(data)
        if not len(data):
            col._data = np.empty((64, *row_shape), dtype)
        return col

    @property
    def values(self) -> np.ndarray:
        """``(T, *row_shape)`` view of the rows (valid until the next append)."""
        return self._data[: self._n]

    @property
    def row_shape(self) -> tuple[int, ...]:
        """The shape of one row."""
        return self._data.shape[1:]

    @property
    def dtype(self) -> np.dtype:
        """The rows' dtype."""
        return self._data.dtype

    def __len__(self) -> int:
        return self._n

    def __bool__(self) -> bool:
        return self._n > 0

    def __getitem__(self, index: int | slice) -> Any:
        return self.values[index]

    def __setitem__(self, index: int | slice, value: object) -> None:
        self.values[index] = value

    def __iter__(self) -> Iterator[Any]:
        return iter(self.values)

    def __array__(self, dtype: DTypeLike = None, copy: bool | None = None) -> np.ndarray:
        out = self.values if dtype is None else self.values.astype(dtype, copy=False)
        return out.copy() if copy else out


@dataclass
class FaceTrack:
    """What tracking and alignment found, one row per decoded frame (``T`` frames), each
    field a :class:`Column` (``np.asarray(track.valid)`` is ``(T,)`` bool).

    Attributes:
        timestamps_s: ``(T,)`` float64 presentation time of each frame (seconds).
        valid: ``(T,)`` bool, a face was found.
        confidence: ``(T,)`` float64 face detection score in [0, 1] (0 without a face).
        lip_gap: ``(T,)`` float64 inner-lip gap (landmarks 13-14) in fractions of the IOD
            (NaN without face).
        params: ``(T, 4)`` float64 raw (unsmoothed) similarity ``(a, b, tx, ty)`` of each
            frame's template fit (:func:`mer.face.align.fit_to_template`; NaN without
            face): the head's pose.
        blendshapes: ``(T, 52)`` float32 blendshape coefficients (NaN rows without face),
            when the blendshape model ran; else empty.
        centroids: ``(T, R, 2)`` float32 FACS-region centroids in aligned-crop pixels
            (NaN without face).
        pose: ``(T, 2)`` float32 out-of-plane head pose proxies ``(yaw, pitch)``
            (:func:`mer.face.landmarks.pose_ratios`; NaN without face).
        lip_arch: ``(T,)`` float32 lower-lip arch, dimensionless
            (:func:`mer.aus.geometry.lower_lip_arch`; NaN without face): AU15 / AU17
            evidence against the neutral population.
        size: ``(width, height)`` of the frames (pixels).
    """

    timestamps_s: Column = field(default_factory=lambda: Column((), np.float64))
    valid: Column = field(default_factory=lambda: Column((), bool))
    confidence: Column = field(default_factory=lambda: Column((), np.float64))
    lip_gap: Column = field(default_factory=lambda: Column((), np.float64))
    params: Column = field(default_factory=lambda: Column((4,), np.float64))
    blendshapes: Column = field(default_factory=lambda: Column((N_BLENDSHAPES,), np.float32))
    centroids: Column = field(default_factory=lambda: Column((len(REGION_NAMES), 2), np.float32))
    pose: Column = field(default_factory=lambda: Column((2,), np.float32))
    lip_arch: Column = field(default_factory=lambda: Column((), np.float32))
    size: tuple[int, int] = (0, 0)

    def __post_init__(self) -> None:
        # plain sequences given to the constructor (tests, tools) become columns
        for f in fields(self):
            value = getattr(self, f.name)
            if f.name != "size" and not isinstance(value, Column):
                empty = f.default_factory()  # type: ignore[misc]
                setattr(self, f.name, Column.of(value, empty.row_shape, empty.dtype))

    @property
    def n_frames(self) -> int:
        """Number of frames seen."""
        return len(self.timestamps_s)

    def blendshape_array(self) -> np.ndarray | None:
        """``(T, 52)`` float32 blendshapes (NaN rows without face), or None if not computed."""
        return np.array(self.blendshapes) if self.blendshapes else None

    @property
    def n_face(self) -> int:
        """Number of frames with a face."""
        return int(np.count_nonzero(self.valid.values))


class TrackAlign:
    """Streaming tracking and alignment: :meth:`push` each decoded frame, then :meth:`finish`.

    :meth:`push` is :meth:`locate` (the landmarker) then :meth:`add` (everything else); the
    pipeline calls the two in different threads, one frame after another in each.

    Args:
        landmarker: finds faces (``(H, W, 3)`` uint8 RGB -> faces with ``(468, 2)`` pixels).
        cfg: ``crop_size`` (pixels), ``align_sigma_s`` (seconds).
        crops: receives each aligned ``(S, S)`` uint8 crop of a face frame.
        on_crop: the next stage; receives every frame's crop (None without a face).
        timer: adds ``landmarks``, ``blendshapes`` and ``alignment`` times (the sink's own
            time is its own).
        blendshapes: the blendshape model run on each face's 478 landmarks, or None.
    """

    def __init__(
        self,
        landmarker: Landmarker,
        cfg: AnalysisConfig,
        crops: CropStore,
        on_crop: CropSink,
        timer: StageTimer | None = None,
        blendshapes: BlendshapeModel | None = None,
    ) -> None:
        self.landmarker = landmarker
        self.blendshape_model = blendshapes
        self.cfg = cfg
        self.crops = crops
        self.on_crop = on_crop
        self.timer = timer or StageTimer()
        self.tracker = MainFaceTracker()
        self.track = FaceTrack()
        self._lag_s = 3 * cfg.align_sigma_s
        self._pending: deque[tuple[int, np.ndarray | None]] = deque()
        # timestamps and raw similarity parameters of the face frames in the smoothing window
        self._vts: list[float] = []
        self._vparams: list[np.ndarray] = []

    def push(self, fr: DecodedFrame) -> None:
        """Track the main face in one frame; align the frames that left the lag window
        (:meth:`add` of :meth:`locate`)."""
        self.add(fr, self.locate(fr))

    def locate(self, fr: DecodedFrame) -> Face | None:
        """The main face of one frame (the landmarker and the tracker; ``landmarks`` time).

        The first half of :meth:`push`: call it on every frame in order, and :meth:`add`
        with its face in the same order (possibly in another thread, one call at a time:
        :func:`mer.pipeline.analyze_frames` overlaps them).
        """
        t1 = time.perf_counter()
        face = self.tracker.select(self.landmarker.process(fr.image))
        self.timer.add("landmarks", t1)
        return face

    def add(self, fr: DecodedFrame, face: Face | None) -> None:
        """Record one frame's face (from :meth:`locate`): its blendshapes, template fit and
        track rows; align the frames that left the lag window and pass them to ``on_crop``."""
        tr = self.track
        tr.size = fr.image.shape[1], fr.image.shape[0]
        t1 = time.perf_counter()
        tr.timestamps_s.append(fr.timestamp_s)
        gray = None
        if self.blendshape_model is not None:
            bs = np.full(N_BLENDSHAPES, np.nan, np.float32)
            if face is not None and len(face.landmarks) >= 478:
                bs = self.blendshape_model.predict(face.landmarks[None])[0]
            tr.blendshapes.append(bs)
            t1 = self.timer.add("blendshapes", t1)
        if face is not None:
            p = fit_to_template(face.landmarks, self.cfg.crop_size)
            tr.params.append(p)
            tr.valid.append(True)
            tr.confidence.append(face.confidence)
            gap = np.linalg.norm(face.landmarks[13] - face.landmarks[14])
            tr.lip_gap.append(float(gap) / max(face.interocular, 1e-6))
            tr.centroids.append(region_centroids(face.landmarks))
            tr.pose.append(pose_ratios(face.landmarks))
            tr.lip_arch.append(lower_lip_arch(face.landmarks))
            self._vts.append(fr.timestamp_s)
            self._vparams.append(p)
            gray = cv2.cvtColor(fr.image, cv2.COLOR_RGB2GRAY)
        else:
            tr.valid.append(False)
            tr.confidence.append(0.0)
            tr.lip_gap.append(np.nan)
            tr.params.append(np.nan)
            tr.centroids.append(np.nan)
            tr.pose.append(np.nan)
            tr.lip_arch.append(np.nan)
        self._pending.append((fr.index, gray))
        self.timer.add("alignment", t1)
        pending = self._pending
        while pending and fr.timestamp_s - tr.timestamps_s[pending[0][0]] >= self._lag_s:
            self._emit(*pending.popleft())

    def finish(self) -> FaceTrack:
        """Align the frames still in the lag window; return the track."""
        while self._pending:
            self._emit(*self._pending.popleft())
        return self.track

    def _emit(self, idx: int, gray: np.ndarray | None) -> None:
        t1 = time.perf_counter()
        tr = self.track
        if not tr.valid[idx] or gray is None:
            self.timer.add("alignment", t1)
            self.on_crop(idx, None)
            return
        t = tr.timestamps_s[idx]
        lo = bisect.bisect_left(self._vts, t - self._lag_s)
        hi = bisect.bisect_right(self._vts, t + self._lag_s)
        p = gaussian_average(self._vparams[lo:hi], self._vts[lo:hi], t, self.cfg.align_sigma_s)
        # frames are emitted in time order: the window never reaches back before t - lag
        del self._vts[:lo], self._vparams[:lo]
        tr.centroids[idx] = landmarks_to_crop(tr.centroids[idx], p)
        crop = warp_to_crop(gray, p, self.cfg.crop_size)
        self.crops.add(idx, crop)
        self.timer.add("alignment", t1)
        self.on_crop(idx, crop)
