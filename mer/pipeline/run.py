"""The pipeline end to end: :func:`analyze_video` (a file) and :func:`analyze_frames` (any
stream of decoded frames), running the stages in order with progress and cancellation.

Their ``*_compact`` forms return a :class:`~mer.pipeline.output.CompactResult`: the same
result with its per-frame part as arrays, written as JSON without ever holding every
frame's object (what the CLI and the worker use; memory flat in video length).
"""

from __future__ import annotations

import time
from collections.abc import Callable, Iterable
from pathlib import Path
from typing import Any

from mer.errors import JobCancelledError, NoFaceDetectedError
from mer.inference import InferenceBackend, load_inprocess_backend, preload_inprocess_backend
from mer.pipeline.assemble import SourceInfo, assemble
from mer.pipeline.aus import score_aus
from mer.pipeline.config import AnalysisConfig
from mer.pipeline.crops import CropStore
from mer.pipeline.decode import threaded
from mer.pipeline.emotion import classify_intervals
from mer.pipeline.motion import MotionStage
from mer.pipeline.output import CompactResult
from mer.pipeline.serial import SerialWorker
from mer.pipeline.spotting import spot
from mer.pipeline.timing import StageTimer
from mer.pipeline.track import TrackAlign, thread_blendshape_model, thread_landmarker
from mer.schemas import AnalysisResult, ModelInfo
from mer.settings import Settings
from mer.video import DecodedFrame, DecodeStats, iter_frames, probe_video, sha256_file

ProgressCallback = Callable[[str, float], None]


def analyze_video_compact(
    path: str | Path,
    *,
    settings: Settings | None = None,
    config: AnalysisConfig | None = None,
    filename: str | None = None,
    progress: ProgressCallback | None = None,
    should_cancel: Callable[[], bool] | None = None,
    backend: InferenceBackend | None = None,
) -> CompactResult:
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
        :class:`mer.pipeline.output.CompactResult` (``to_result()``: the
        :class:`mer.schemas.AnalysisResult`).

    Raises:
        MERError subclasses: input errors of :func:`mer.video.probe_video`,
        ``NoFaceDetectedError`` (fewer than ``settings.min_face_fraction`` of the frames
        show a face), ``NeutralReferenceError`` (``config.neutral`` starts after the video
        ends, found before decoding, or shows no face), ``JobCancelledError``.
    """
    settings = settings or Settings()
    path = Path(path)
    t0 = time.perf_counter()
    if progress is not None:
        progress("probe", 0.0)
    probe = probe_video(path, settings)
    if config is not None and config.neutral is not None:  # before decoding the whole video
        config.neutral.check_within(probe.duration_s, probe.frame_count)
    stats = DecodeStats()
    fps = probe.fps if probe.fps > 0 else 30.0
    # decoding starts now: the first frames are ready when the stages are
    with threaded(iter_frames(path, settings, stats, label=filename or path.name)) as frames:
        sha = sha256_file(path)
        probe_ms = (time.perf_counter() - t0) * 1000
        return analyze_frames_compact(
            frames,
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


def analyze_frames_compact(
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
) -> CompactResult:
    """Analyse a stream of decoded frames (what :func:`analyze_video_compact` does after
    probing).

    Also used on image sequences (data sets, synthetic clips). Stages, in order
    (:mod:`mer.pipeline`): tracking and alignment with motion streamed alongside, then
    AUs, spotting, emotion and result assembly. While frames stream in, the calling thread
    runs the landmarker (:meth:`TrackAlign.locate`) and a :class:`SerialWorker` thread the
    rest of each frame, in frame order (blendshapes, alignment, optical flow:
    :meth:`TrackAlign.add`), so the two overlap on two cores; ``timings_ms`` adds up each
    stage's own time, so its ``landmarks``, ``blendshapes``, ``alignment`` and ``motion``
    overlap and may sum to more than ``total``.

    Args:
        frames: :class:`mer.video.DecodedFrame` items in order, indices from 0.
        fps: nominal frame rate (frames/s); the temporal lags are rounded with it.
        expected_frames: for progress; 0 when unknown.
        filename, sha256, codec, rotation_deg, duration_s: reported in ``video``.
        decode_stats: decoder counters whose warnings go into the result.
        Others: as :func:`analyze_video`.

    Returns:
        :class:`mer.pipeline.output.CompactResult`.

    Raises:
        NoFaceDetectedError, JobCancelledError.
    """
    settings = settings or Settings()
    cfg = config or AnalysisConfig()
    timer = StageTimer(extra_timings_ms)
    t_start = time.perf_counter()
    stats = decode_stats if decode_stats is not None else DecodeStats()
    fps_nominal = fps if fps > 0 else 30.0
    expected = max(1, expected_frames)

    def report(stage: str, pct: float) -> None:
        if progress is not None:
            progress(stage, float(min(100.0, max(0.0, pct))))

    landmarker = thread_landmarker(settings.landmarker, cfg)
    if backend is None and settings.inference_backend == "inprocess":
        preload_inprocess_backend(settings.model_dir)  # torch loads while frames decode
    motion_stage = MotionStage(cfg, fps_nominal)

    def on_crop(index: int, crop: object) -> None:
        t1 = time.perf_counter()
        motion_stage.push(index, crop)  # type: ignore[arg-type]
        timer.add("motion", t1)

    with CropStore(cfg.crop_size) as crops:
        bs_model = thread_blendshape_model() if cfg.blendshapes else None
        stage = TrackAlign(landmarker, cfg, crops, on_crop, timer, bs_model)
        report("landmarks", 2.0)
        # the landmarker here, the rest of each frame's tracking and the motion stage in
        # the worker, on the second core (in frame order: the same results)
        with SerialWorker(name="mer-track") as worker:
            t_wait = time.perf_counter()
            for fr in frames:
                timer.add("decode", t_wait)
                if fr.index % 16 == 0:
                    if should_cancel is not None and should_cancel():
                        raise JobCancelledError("the job was cancelled")
                    report("landmarks", 2.0 + 86.0 * min(1.0, fr.index / expected))
                worker.submit(stage.add, fr, stage.locate(fr))
                t_wait = time.perf_counter()
            worker.join()
        track = stage.finish()
        n, n_face = track.n_frames, track.n_face
        if n_face == 0 or n_face < settings.min_face_fraction * n:
            raise NoFaceDetectedError(
                f"a face was found in {n_face} of {n} frames; at least "
                f"{settings.min_face_fraction:.0%} are needed"
            )

        report("spotting", 90.0)
        t1 = time.perf_counter()
        motion = motion_stage.finish(track)
        t1 = timer.add("motion", t1)

        report("au", 93.0)
        if backend is None and settings.inference_backend == "inprocess":
            backend = load_inprocess_backend(settings.model_dir)
        aus = score_aus(track, motion, crops, backend, cfg)
        t1 = timer.add("au", t1)

        spotting = spot(
            track, motion, aus, cfg.spotting, cfg.intervals, cfg.crop_size,
            learned_max_strength=cfg.fusion.au_blend_high,
        )  # fmt: skip
        t1 = timer.add("spotting", t1)

        report("emotion", 96.0)
        emotion = classify_intervals(
            spotting.intervals, crops, backend, aus.scores if cfg.blendshapes else None, cfg.emotion
        )
        timer.add("emotion", t1)

    warnings = list(stats.warnings)
    if n_face < n:
        warnings.append(f"no face in {n - n_face} of {n} frames (scored 0)")
    if cfg.neutral is not None and aus.neutral is None:
        warnings.append(
            f"the neutral stretch {cfg.neutral.describe()} was not used: it is read through "
            "the blendshapes, which are off (AnalysisConfig.blendshapes)"
        )
    models = [
        ModelInfo(
            name=landmarker.name, version=landmarker.version, task="landmarks", method="external"
        ),
        spotting.model,
        *aus.models,
        *emotion.models,
    ]
    timer.ms["total"] = (time.perf_counter() - t_start) * 1000
    source = SourceInfo(filename, sha256, codec, rotation_deg, duration_s, fps_nominal)
    result = assemble(
        source, track, motion, aus, spotting, emotion, models, warnings, timer.ms,
        settings.emotion_min_score, cfg.include_blendshapes,
    )  # fmt: skip
    report("done", 100.0)
    return result


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
    """:func:`analyze_video_compact` as a :class:`mer.schemas.AnalysisResult` (every
    frame's :class:`~mer.schemas.FrameResult` in memory: about 2 kB a frame, 5 kB with
    blendshapes). Same arguments and errors."""
    return analyze_video_compact(
        path, settings=settings, config=config, filename=filename, progress=progress,
        should_cancel=should_cancel, backend=backend,
    ).to_result()  # fmt: skip


def analyze_frames(frames: Iterable[DecodedFrame], **kwargs: Any) -> AnalysisResult:
    """:func:`analyze_frames_compact` as a :class:`mer.schemas.AnalysisResult`; same
    arguments (keywords after ``frames``) and errors."""
    return analyze_frames_compact(frames, **kwargs).to_result()
