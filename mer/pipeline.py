"""The analysis pipeline: decode -> landmarks -> stabilised alignment -> optical flow ->
apex spotting -> AU scores -> DSSI + emotion, streaming with bounded memory.

Memory is bounded by the alignment lag (``3 * align_sigma_s`` of grey frames) and the
motion buffer (the largest lag of aligned crops); per-frame outputs are small arrays. The
aligned crops every frame needs for the learned models (16 KiB a frame at 128 px) go to an
anonymous temporary file (:class:`CropStore`), paged in by the OS when read.
Decoding runs in a background thread (PyAV releases the GIL), so decoding overlaps the
landmarker on a second core.
"""

from __future__ import annotations

import bisect
import logging
import queue
import tempfile
import threading
import time
from collections import deque
from collections.abc import Callable, Iterable, Iterator, Mapping
from dataclasses import dataclass, field
from pathlib import Path

import cv2
import numpy as np

from mer import au_rules
from mer.errors import JobCancelledError, NoFaceDetectedError
from mer.face.align import fit_to_template, gaussian_average, landmarks_to_crop, warp_to_crop
from mer.face.landmarks import Face, Landmarker, create_landmarker, iou
from mer.inference import (
    InferenceBackend,
    au_input_u8,
    dssi_u8_from_crops,
    load_inprocess_backend,
    preload_inprocess_backend,
)
from mer.motion import (
    FlowEstimator,
    TwoSidedMotion,
    build_region_masks,
    fuse,
    landmark_two_sided,
    reference_indices,
    region_centroids,
    two_sided,
)
from mer.schemas import (
    AU_NAMES,
    AnalysisResult,
    ApexFrame,
    EmotionPrediction,
    FrameResult,
    Interval,
    ModelInfo,
    VideoInfo,
)
from mer.settings import Settings
from mer.spotting import (
    MICRO_MAX_S,
    SpottingConfig,
    apex_curve,
    apex_score,
    apex_strength,
    spot_intervals,
)
from mer.video import DecodedFrame, DecodeStats, iter_frames, probe_video, sha256_file

log = logging.getLogger(__name__)

ProgressCallback = Callable[[str, float], None]
#: the apex method; with a learned AU detector its activity joins the motion curve
SPOTTING_METHOD = "two-sided-flow-spotting"
SPOTTING_VERSION = "2"
NON_EMOTIONAL = "none"  #: the emotion model's class for speech, blinks and head motion


class CropStore(Mapping[int, np.ndarray]):
    """Aligned grey face crops by frame index, kept in an anonymous temporary file.

    A 10-minute 100 fps video has 60 000 frames: 1 GB of 128 px crops, which the learned
    models need at the end (AU inputs of every face frame, DSSI of the spotted intervals).
    Writes append to the file; the first read maps it (``numpy.memmap``), so the OS pages
    the crops in and out instead of the worker holding them.

    Args:
        size: crop side ``S`` (pixels).

    ``add(index, crop (S, S) uint8)``; ``store[index]`` -> ``(S, S)`` uint8 (read-only view);
    iteration yields the stored frame indices. Raises ``KeyError`` for a frame without a crop.
    """

    def __init__(self, size: int) -> None:
        self.size = size
        # closed by close(), or when the store is collected (an analysis that raised)
        self._file = tempfile.TemporaryFile(prefix="mer-crops-")  # noqa: SIM115
        self._slot: dict[int, int] = {}
        self._map: np.ndarray | None = None

    def add(self, index: int, crop: np.ndarray) -> None:
        """Append ``crop`` ``(S, S)`` uint8 for frame ``index``.

        Raises:
            ValueError: wrong shape.
        """
        if crop.shape != (self.size, self.size):
            raise ValueError(f"expected a ({self.size}, {self.size}) crop, got {crop.shape}")
        self._file.write(np.ascontiguousarray(crop, np.uint8).tobytes())
        self._slot[index] = len(self._slot)
        self._map = None

    def __getitem__(self, index: int) -> np.ndarray:
        slot = self._slot[index]
        if self._map is None:
            self._file.flush()
            shape = (len(self._slot), self.size, self.size)
            self._map = np.memmap(self._file, np.uint8, "r", shape=shape)
        return self._map[slot]

    def __iter__(self) -> Iterator[int]:
        return iter(self._slot)

    def __len__(self) -> int:
        return len(self._slot)

    def close(self) -> None:
        """Drop the map and delete the file."""
        self._map = None
        self._file.close()


@dataclass(frozen=True)
class AnalysisConfig:
    """Pipeline parameters. Times are seconds; sizes are pixels of the aligned crop."""

    crop_size: int = 128
    lags_s: tuple[float, ...] = (0.2, 0.5, 1.2, 2.5)
    fuse_low: float = 0.02  #: landmark displacement (fraction of IOD) below which flow rules
    fuse_high: float = 0.05  #: ... and above which landmarks rule
    #: movement strength (fraction of IOD) up to which the learned AU detector scores alone
    #: (its synthetic training movements are mostly below ~3 %) and from which the FACS
    #: rules do; linear blend in between
    au_blend_low: float = 0.03
    au_blend_high: float = 0.06
    align_sigma_s: float = 0.1
    flow_preset: str = "ultrafast"
    max_faces: int = 3
    detect_every: int = 5
    spotting: SpottingConfig = field(default_factory=SpottingConfig)


class MainFaceTracker:
    """Follows the main face: the one overlapping the previous main face, else the largest.

    A new face is adopted only when the tracked one is lost.
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


def _thread_landmarker(settings: Settings, cfg: AnalysisConfig) -> Landmarker:
    """One landmarker per thread (MediaPipe graphs are not thread safe), reset per video."""
    lm = getattr(_local, "landmarker", None)
    if lm is None:
        lm = create_landmarker(
            settings.landmarker, max_faces=cfg.max_faces, detect_every=cfg.detect_every
        )
        _local.landmarker = lm
    else:
        lm.reset()
    return lm


def _threaded(it: Iterator[DecodedFrame], maxsize: int = 16) -> Iterator[DecodedFrame]:
    """Run an iterator in a background thread; re-raise its exception in the consumer."""
    q: queue.Queue = queue.Queue(maxsize=maxsize)
    stop = threading.Event()
    done = object()

    def work() -> None:
        try:
            for item in it:
                if stop.is_set():
                    return
                q.put(item)
            q.put(done)
        except BaseException as exc:  # noqa: BLE001 - forwarded to the consumer
            q.put(exc)

    th = threading.Thread(target=work, name="mer-decode", daemon=True)
    th.start()
    try:
        while True:
            item = q.get()
            if item is done:
                return
            if isinstance(item, BaseException):
                raise item
            yield item
    finally:
        stop.set()
        while th.is_alive():
            try:
                q.get_nowait()
            except queue.Empty:
                th.join(0.05)


class _Timer:
    def __init__(self) -> None:
        self.ms: dict[str, float] = {}

    def add(self, stage: str, t0: float) -> float:
        t1 = time.perf_counter()
        self.ms[stage] = self.ms.get(stage, 0.0) + (t1 - t0) * 1000
        return t1


def analyze_video(
    path: str | Path,
    *,
    settings: Settings | None = None,
    config: AnalysisConfig | None = None,
    filename: str | None = None,
    progress: ProgressCallback | None = None,
    should_cancel: Callable[[], bool] | None = None,
    backend: InferenceBackend | None = None,
) -> AnalysisResult:
    """Analyse one video file.

    Args:
        path: the video file (any container/codec FFmpeg decodes).
        settings: limits and model locations; default :class:`Settings()`.
        config: pipeline parameters; default :class:`AnalysisConfig()`.
        filename: the name to report (the client's), default the file's name.
        progress: called with ``(stage, percent 0..100)``.
        should_cancel: polled between frames; True aborts with ``JobCancelledError``.
        backend: runs the learned models (e.g. TorchServe); default: the in-process
            backend over ``settings.model_dir`` when its checkpoints exist, else the
            training-free AU rules and no emotion.

    Returns:
        :class:`mer.schemas.AnalysisResult`.

    Raises:
        MERError subclasses: input errors of :func:`mer.video.probe_video`,
        ``NoFaceDetectedError`` (fewer than ``settings.min_face_fraction`` of the frames
        show a face), ``JobCancelledError``.
    """
    settings = settings or Settings()
    path = Path(path)
    t0 = time.perf_counter()
    if progress is not None:
        progress("probe", 0.0)
    probe = probe_video(path, settings)
    sha = sha256_file(path)
    probe_ms = (time.perf_counter() - t0) * 1000
    stats = DecodeStats()
    fps = probe.fps if probe.fps > 0 else 30.0
    return analyze_frames(
        _threaded(iter_frames(path, settings, stats, label=filename or path.name)),
        fps=fps,
        expected_frames=probe.frame_count or max(1, int(probe.duration_s * fps)),
        filename=filename or path.name,
        sha256=sha,
        codec=probe.codec,
        rotation_deg=probe.rotation_deg,
        duration_s=probe.duration_s,
        decode_stats=stats,
        settings=settings,
        config=config,
        progress=progress,
        should_cancel=should_cancel,
        backend=backend,
        extra_timings_ms={"probe": probe_ms},
    )


def analyze_frames(
    frames: Iterable[DecodedFrame],
    *,
    fps: float,
    expected_frames: int = 0,
    filename: str = "frames",
    sha256: str = "",
    codec: str = "raw",
    rotation_deg: int = 0,
    duration_s: float = 0.0,
    decode_stats: DecodeStats | None = None,
    settings: Settings | None = None,
    config: AnalysisConfig | None = None,
    progress: ProgressCallback | None = None,
    should_cancel: Callable[[], bool] | None = None,
    backend: InferenceBackend | None = None,
    extra_timings_ms: dict[str, float] | None = None,
) -> AnalysisResult:
    """Analyse a stream of decoded frames (what :func:`analyze_video` does after probing).

    Also used on image sequences (data sets, synthetic clips).

    Args:
        frames: :class:`mer.video.DecodedFrame` items in order, indices from 0.
        fps: nominal frame rate (frames/s); the temporal lags are rounded with it.
        expected_frames: for progress; 0 when unknown.
        filename, sha256, codec, rotation_deg, duration_s: reported in ``video``.
        decode_stats: decoder counters whose warnings go into the result.
        Others: as :func:`analyze_video`.

    Returns:
        :class:`mer.schemas.AnalysisResult`.

    Raises:
        NoFaceDetectedError, JobCancelledError.
    """
    settings = settings or Settings()
    cfg = config or AnalysisConfig()
    timer = _Timer()
    timer.ms.update(extra_timings_ms or {})
    t_start = time.perf_counter()
    stats = decode_stats if decode_stats is not None else DecodeStats()
    fps_nominal = fps if fps > 0 else 30.0
    expected = max(1, expected_frames)
    sha = sha256

    def report(stage: str, pct: float) -> None:
        if progress is not None:
            progress(stage, float(min(100.0, max(0.0, pct))))

    def check_cancel() -> None:
        if should_cancel is not None and should_cancel():
            raise JobCancelledError("the job was cancelled")

    lags = tuple(max(1, int(round(s * fps_nominal))) for s in cfg.lags_s)

    lm = _thread_landmarker(settings, cfg)
    if backend is None and settings.inference_backend == "inprocess":
        preload_inprocess_backend(settings.model_dir)  # torch loads while frames decode
    tracker = MainFaceTracker()
    masks = build_region_masks(cfg.crop_size)
    motion = TwoSidedMotion(masks, lags, FlowEstimator(cfg.flow_preset))
    S = cfg.crop_size

    ts: list[float] = []
    raw: list[np.ndarray] = []
    valid: list[bool] = []
    conf: list[float] = []
    gap: list[float] = []
    centroids: dict[int, np.ndarray] = {}  # region centroids: image px, then crop px
    crops = CropStore(cfg.crop_size)  # aligned crops of the face frames (learned models)
    smoothed: list[np.ndarray] = []
    lag_buf: deque[tuple[int, np.ndarray]] = deque()
    lag_s = 3 * cfg.align_sigma_s
    vts: list[float] = []  # timestamps of valid frames (for the smoothing window)
    vparams: list[np.ndarray] = []
    size = (0, 0)

    def emit(idx: int, gray: np.ndarray | None) -> None:
        t1 = time.perf_counter()
        if not valid[idx] or gray is None:
            smoothed.append(np.full(4, np.nan))
            timer.add("alignment", t1)
            motion.push(idx, None)
            return
        lo = bisect.bisect_left(vts, ts[idx] - lag_s)
        hi = bisect.bisect_right(vts, ts[idx] + lag_s)
        p = gaussian_average(vparams[lo:hi], vts[lo:hi], ts[idx], cfg.align_sigma_s)
        smoothed.append(p)
        centroids[idx] = landmarks_to_crop(centroids[idx], p)
        crop = warp_to_crop(gray, p, S)
        crops.add(idx, crop)
        t2 = timer.add("alignment", t1)
        motion.push(idx, crop)
        timer.add("motion", t2)

    report("landmarks", 2.0)
    t_wait = time.perf_counter()
    for fr in frames:
        timer.add("decode_wait", t_wait)
        if fr.index % 16 == 0:
            check_cancel()
            report("landmarks", 2.0 + 86.0 * min(1.0, fr.index / expected))
        size = fr.image.shape[1], fr.image.shape[0]
        t1 = time.perf_counter()
        face = tracker.select(lm.process(fr.image))
        t1 = timer.add("landmarks", t1)
        ts.append(fr.timestamp_s)
        if face is not None:
            p = fit_to_template(face.landmarks, S)
            raw.append(p)
            valid.append(True)
            conf.append(face.confidence)
            gap.append(
                float(np.linalg.norm(face.landmarks[13] - face.landmarks[14]))
                / max(face.interocular, 1e-6)
            )
            centroids[fr.index] = region_centroids(face.landmarks)
            vts.append(fr.timestamp_s)
            vparams.append(p)
            gray = cv2.cvtColor(fr.image, cv2.COLOR_RGB2GRAY)
        else:
            raw.append(np.full(4, np.nan))
            valid.append(False)
            conf.append(0.0)
            gap.append(np.nan)
            gray = None
        lag_buf.append((fr.index, gray))
        timer.add("alignment", t1)
        while lag_buf and ts[-1] - ts[lag_buf[0][0]] >= lag_s:
            emit(*lag_buf.popleft())
        t_wait = time.perf_counter()
    while lag_buf:
        emit(*lag_buf.popleft())
    timer.ms["decode"] = timer.ms.pop("decode_wait", 0.0)

    n = len(ts)
    n_face = int(sum(valid))
    if n_face == 0 or n_face < settings.min_face_fraction * n:
        raise NoFaceDetectedError(
            f"a face was found in {n_face} of {n} frames; at least "
            f"{settings.min_face_fraction:.0%} are needed"
        )

    report("spotting", 90.0)
    t1 = time.perf_counter()
    past, future = motion.finish()
    t1 = timer.add("motion", t1)
    iod = masks.interocular
    cen = np.full((n, len(masks.names), 2), np.nan, np.float32)
    for i, c in centroids.items():
        cen[i] = c
    lm_past, lm_future = landmark_two_sided(cen, motion.lags)
    disp = (
        fuse(
            two_sided(past, future),
            two_sided(lm_past, lm_future),
            cfg.fuse_low * iod,
            cfg.fuse_high * iod,
        )
        / iod
    )  # (T, K, R, 2) fractions of IOD
    tarr = np.asarray(ts)
    strength, best = apex_strength(disp, cfg.spotting.top_k, cfg.spotting.floor_percentile)
    score = apex_score(strength, tarr, cfg.spotting)
    score[~np.asarray(valid)] = 0.0
    t1 = timer.add("spotting", t1)

    report("au", 93.0)
    valid_a = np.asarray(valid)
    rows = np.arange(n)
    pm = np.nan_to_num(np.linalg.norm(past[rows, best], axis=-1)).sum(-1)
    fm = np.nan_to_num(np.linalg.norm(future[rows, best], axis=-1)).sum(-1)
    refs = reference_indices(valid_a, motion.lags, best, pm <= fm)
    if backend is None and settings.inference_backend == "inprocess":
        backend = load_inprocess_backend(settings.model_dir)
    au_model = getattr(backend, "au", None) if backend is not None else None
    models = [
        ModelInfo(name=lm.name, version=lm.version, task="landmarks", method="external"),
    ]
    au = au_rules.au_scores(disp[rows, best], np.asarray(gap))
    au_method = au_rules.METHOD_NAME
    models.append(ModelInfo(name=au_method, version="1", task="au", method="rules"))
    au_activity: np.ndarray | None = None  # (T,) largest learned AU probability
    if backend is not None and (au_model is not None or not hasattr(backend, "au")):
        learned = np.zeros((n, len(AU_NAMES)), np.float32)
        face_idx = np.flatnonzero(valid_a)
        pair = au_model.meta.pair if au_model is not None else {}
        pairs = np.stack(
            [au_input_u8(crops[i], crops[refs[i]], pair) for i in face_idx]
        )  # (F, K, 1, M, M) uint8
        probs = backend.predict_au(pairs)
        labels = list(au_model.meta.labels) if au_model is not None else list(AU_NAMES)
        for j, name in enumerate(AU_NAMES):
            if name in labels:
                learned[face_idx, j] = probs[:, labels.index(name)]
        # the learned detector knows the subtle range it was trained on; large movements
        # (open-mouth smiles, speech) are scored by the FACS rules, blended in between
        w = np.clip(
            (strength - cfg.au_blend_low) / (cfg.au_blend_high - cfg.au_blend_low), 0.0, 1.0
        )[:, None]
        au = ((1.0 - w) * learned + w * au).astype(np.float32)
        au_activity = learned.max(axis=1)
        name = au_model.info.name + "-" + au_model.info.version if au_model else backend.name
        au_method = f"{name}+{au_rules.METHOD_NAME} (blended by movement size)"
        if au_model is not None:
            models.append(au_model.info)
    t1 = timer.add("au", t1)

    # intervals and apices: motion and, where a learned AU detector ran, its activity
    curve = apex_curve(strength, tarr, cfg.spotting, au_activity)
    spotted = spot_intervals(score, tarr, cfg.spotting, curve=curve)
    with_au = au_activity is not None and cfg.spotting.au_weight > 0
    apex_name = SPOTTING_METHOD + ("+au-activity" if with_au else "")
    models.insert(
        1, ModelInfo(name=apex_name, version=SPOTTING_VERSION, task="apex", method="rules")
    )
    t1 = timer.add("spotting", t1)

    report("emotion", 96.0)
    emo_model = getattr(backend, "emotion", None) if backend is not None else None
    emotions: list[EmotionPrediction | None] = [None] * len(spotted)
    emotion_reason: str | None = None
    if backend is not None and emo_model is not None and spotted:
        dssi_u8 = np.stack(
            [dssi_u8_from_crops(crops, iv.onset, iv.offset, emo_model.meta.dssi) for iv in spotted]
        )
        probs = backend.predict_emotion(dssi_u8)
        labels = list(emo_model.meta.labels)
        name = f"{emo_model.info.name}-{emo_model.info.version}"
        for i, p in enumerate(probs):
            j = int(np.argmax(p))
            emotions[i] = EmotionPrediction(
                label=labels[j], score=round(float(p[j]), 5),
                probabilities={c: round(float(v), 5) for c, v in zip(labels, p, strict=True)},
                model=name,
            )  # fmt: skip
        models.append(emo_model.info)
    elif emo_model is None:
        emotion_reason = (
            "no trained emotion model is installed (model_store/sma_stn.pt); see the README's "
            "training command"
        )
    else:
        emotion_reason = "no movement interval was spotted"
    timer.add("emotion", t1)
    crops.close()
    warnings = list(stats.warnings)
    if n_face < n:
        warnings.append(f"no face in {n - n_face} of {n} frames (scored 0)")

    frames_out = [
        FrameResult(
            frame=i,
            timestamp_s=round(ts[i], 6),
            face=valid[i],
            confidence=round(float(conf[i]), 4),
            apex_score=round(float(score[i]), 5),
            au={name: round(float(au[i, j]), 5) for j, name in enumerate(AU_NAMES)},
        )
        for i in range(n)
    ]
    intervals = []
    for iv in spotted:
        order = np.argsort(-au[iv.apex])
        top = [AU_NAMES[j] for j in order if au[iv.apex, j] >= 0.5]
        dur = ts[iv.offset] - ts[iv.onset]
        intervals.append(
            Interval(
                onset=iv.onset,
                apex=iv.apex,
                offset=iv.offset,
                onset_s=round(ts[iv.onset], 6),
                apex_s=round(ts[iv.apex], 6),
                offset_s=round(ts[iv.offset], 6),
                duration_s=round(dur, 6),
                kind="micro" if dur <= MICRO_MAX_S else "macro",
                score=round(iv.score, 5),
                top_aus=top,
                emotion=emotions[len(intervals)],
            )
        )
    top_emotion = None
    if intervals:
        strongest = max(intervals, key=lambda iv: iv.score)
        top_emotion = strongest.emotion
        if top_emotion is not None and top_emotion.label == NON_EMOTIONAL:
            top_emotion = None
            emotion_reason = (
                "the strongest movement is not emotional (speech, blink or head motion)"
            )
        elif top_emotion is not None and top_emotion.score < settings.emotion_min_score:
            emotion_reason = (
                f"the strongest movement's emotion ({top_emotion.label}, p = "
                f"{top_emotion.score:.2f}) is below MER_EMOTION_MIN_SCORE = "
                f"{settings.emotion_min_score:g}; see the intervals"
            )
            top_emotion = None
    apex_i = int(np.argmax(np.where(np.asarray(valid), curve, -1.0)))
    apex = ApexFrame(
        frame=apex_i, timestamp_s=round(ts[apex_i], 6), score=round(float(score[apex_i]), 5)
    )
    duration = duration_s or (ts[-1] - ts[0] + 1.0 / fps_nominal)
    fps = (n - 1) / (ts[-1] - ts[0]) if n > 1 and ts[-1] > ts[0] else fps_nominal
    timer.ms["total"] = (time.perf_counter() - t_start) * 1000
    report("done", 100.0)
    return AnalysisResult(
        video=VideoInfo(
            filename=filename,
            sha256=sha,
            fps=round(fps, 4),
            frame_count=n,
            width=size[0],
            height=size[1],
            duration_s=round(duration, 6),
            codec=codec,
            rotation_deg=rotation_deg,
        ),
        frames=frames_out,
        apex=apex,
        intervals=intervals,
        emotion=top_emotion,
        emotion_reason=emotion_reason if top_emotion is None else None,
        au_method=au_method,
        models=models,
        timings_ms={k: round(v, 2) for k, v in timer.ms.items()},
        warnings=warnings,
    )


__all__ = ["AnalysisConfig", "MainFaceTracker", "analyze_frames", "analyze_video"]
