"""The pipeline's background threads: decoding started ahead (mer.pipeline.decode) and the
per-frame tracking work beside the landmarker (mer.pipeline.serial), and the landmarker
kept per thread and reset per video (mer.pipeline.track.thread_landmarker)."""

from __future__ import annotations

import gc
import json
import threading
import time
from collections.abc import Iterator
from pathlib import Path

import numpy as np
import pytest

from mer.face.landmarks import create_landmarker
from mer.pipeline import run as run_module
from mer.pipeline.config import AnalysisConfig
from mer.pipeline.decode import threaded
from mer.pipeline.run import analyze_frames_compact, analyze_video_compact
from mer.pipeline.serial import SerialWorker
from mer.pipeline.track import thread_landmarker
from mer.settings import Settings
from mer.video import DecodedFrame, iter_frames


def _wait_for(cond: object, timeout_s: float = 10.0) -> bool:
    """Poll ``cond()`` until true or ``timeout_s`` (a bound, not a timing assertion)."""
    end = time.monotonic() + timeout_s
    while time.monotonic() < end:
        if cond():  # type: ignore[operator]
            return True
        time.sleep(0.005)
    return False


# ---- SerialWorker ---------------------------------------------------------------------


def test_serial_worker_runs_calls_in_order_in_one_other_thread() -> None:
    seen: list[tuple[int, str]] = []
    with SerialWorker(maxsize=2) as worker:
        for i in range(50):
            worker.submit(lambda i=i: seen.append((i, threading.current_thread().name)))
        worker.join()
    assert [i for i, _ in seen] == list(range(50))
    names = {n for _, n in seen}
    assert len(names) == 1 and threading.current_thread().name not in names


def test_serial_worker_reraises_the_first_failure_and_skips_later_calls() -> None:
    ran: list[int] = []

    def fail() -> None:
        raise ValueError("boom")

    worker = SerialWorker()
    worker.submit(ran.append, 1)
    worker.submit(fail)
    for i in range(2, 5):
        try:
            worker.submit(ran.append, i)
        except ValueError:
            break
    with pytest.raises(ValueError, match="boom"):
        worker.join()
    assert ran == [1]
    with pytest.raises(ValueError, match="boom"):
        worker.submit(ran.append, 9)


def test_serial_worker_close_drops_queued_calls_and_ends_the_thread() -> None:
    gate = threading.Event()
    ran: list[int] = []
    worker = SerialWorker(maxsize=8)
    worker.submit(gate.wait)  # the worker is busy until the gate opens
    for i in range(5):
        worker.submit(ran.append, i)
    closer = threading.Thread(target=worker.close)
    closer.start()
    assert _wait_for(lambda: worker._skip)
    gate.set()
    closer.join()
    assert ran == [] and not worker._thread.is_alive()
    with pytest.raises(RuntimeError):
        worker.submit(ran.append, 9)


# ---- threaded decoding ----------------------------------------------------------------


def test_threaded_starts_producing_before_the_first_next() -> None:
    produced: list[int] = []

    def source() -> Iterator[int]:
        for i in range(3):
            produced.append(i)
            yield i

    it = threaded(source())
    assert _wait_for(lambda: len(produced) == 3)  # nobody has asked for an item yet
    assert list(it) == [0, 1, 2]
    assert not it._thread.is_alive()


def test_threaded_close_stops_the_thread_and_closes_the_source() -> None:
    closed = threading.Event()

    def endless() -> Iterator[int]:
        try:
            i = 0
            while True:
                yield i
                i += 1
        finally:
            closed.set()

    with threaded(endless(), maxsize=2) as it:
        assert next(it) == 0 and next(it) == 1
    assert not it._thread.is_alive() and closed.is_set()
    with pytest.raises(StopIteration):
        next(it)


def test_a_dropped_threaded_iterator_stops_its_thread() -> None:
    """Dropped without close (e.g. a caller that stops iterating): collected, its thread
    ends and the source is closed, as a generator's cleanup would have done."""
    closed = threading.Event()

    def endless() -> Iterator[int]:
        try:
            while True:
                yield 0
        finally:
            closed.set()

    it = threaded(endless(), maxsize=2)
    next(it)
    thread = it._thread
    del it
    gc.collect()
    assert _wait_for(lambda: not thread.is_alive()) and closed.is_set()


def test_threaded_reraises_the_source_error() -> None:
    def bad() -> Iterator[int]:
        yield 1
        raise OSError("broken stream")

    it = threaded(bad())
    assert next(it) == 1
    with pytest.raises(OSError, match="broken stream"):
        next(it)
    assert not it._thread.is_alive()


def test_a_failed_analysis_stops_its_decoding_thread(
    single_face_video: Path, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    made: list = []

    def recording(it: Iterator[DecodedFrame], maxsize: int = 16) -> object:
        made.append(threaded(it, maxsize))
        return made[-1]

    monkeypatch.setattr(run_module, "threaded", recording)
    with pytest.raises(RuntimeError, match="stop"):
        analyze_video_compact(
            single_face_video, settings=Settings(model_dir=tmp_path),
            progress=lambda stage, pct: _raise_at(stage, "landmarks"),
        )  # fmt: skip
    assert len(made) == 1 and not made[0]._thread.is_alive()


def _raise_at(stage: str, at: str) -> None:
    if stage == at:
        raise RuntimeError("stop")


# ---- the worker thread gives the results of running every stage in one thread --------


class _Inline:
    """A stand-in for SerialWorker running each call at once in the caller's thread."""

    def __init__(self, *args: object, **kwargs: object) -> None:
        pass

    def submit(self, fn: object, *args: object) -> None:
        fn(*args)  # type: ignore[operator]

    def join(self) -> None:
        pass

    def __enter__(self) -> _Inline:
        return self

    def __exit__(self, *exc: object) -> None:
        pass


def _result_json(frames: list[DecodedFrame], model_dir: Path) -> dict:
    r = analyze_frames_compact(frames, fps=30, settings=Settings(model_dir=model_dir))
    d = json.loads(r.to_result().model_dump_json())
    d.pop("timings_ms")
    return d


def test_the_worker_thread_gives_the_single_thread_result(
    smile_frames: list[DecodedFrame], tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """Blendshapes, alignment and motion in the worker thread: the very same result (every
    frame's values, the intervals) as with all of them in the landmarker's thread."""
    threaded_result = _result_json(smile_frames, tmp_path)
    monkeypatch.setattr(run_module, "SerialWorker", _Inline)
    inline_result = _result_json(smile_frames, tmp_path)
    assert threaded_result == inline_result
    assert threaded_result["frames"] and threaded_result["intervals"]


def test_a_failure_in_the_worker_thread_reaches_the_caller(
    smile_frames: list[DecodedFrame], tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """An error in the per-frame work of the worker thread (here the motion stage) is
    raised by the analysis, whose worker thread then ends."""
    from mer.pipeline.motion import MotionStage

    push = MotionStage.push

    def failing(self: MotionStage, index: int, crop: object) -> None:
        if index == 10:
            raise FloatingPointError("flow failed")
        push(self, index, crop)  # type: ignore[arg-type]

    monkeypatch.setattr(MotionStage, "push", failing)
    with pytest.raises(FloatingPointError, match="flow failed"):
        analyze_frames_compact(smile_frames, fps=30, settings=Settings(model_dir=tmp_path))
    assert not [t for t in threading.enumerate() if t.name == "mer-track"]


# ---- the landmarker, kept per thread, is reset per video ------------------------------


def test_the_cached_landmarker_is_reset_per_video(
    smile_frames: list[DecodedFrame], shared_data: Path
) -> None:
    """A second video through the thread's cached landmarker gets the landmarks a fresh
    landmarker gives it: no tracking state carries over from the first video."""
    cfg = AnalysisConfig()
    other = [fr.image for fr in iter_frames(shared_data / "videos" / "carphone_pristine.mp4")]
    other = other[:20]
    lm = thread_landmarker("mediapipe", cfg)
    for fr in smile_frames:
        lm.process(fr.image)
    assert lm._count == len(smile_frames)
    again = thread_landmarker("mediapipe", cfg)
    assert again is lm and lm._count == 0  # the same graphs, reset
    cached = [lm.process(im) for im in other]
    fresh_lm = create_landmarker(
        "mediapipe", max_faces=cfg.max_faces, detect_every=cfg.detect_every,
        refine_landmarks=cfg.blendshapes,
    )  # fmt: skip
    try:
        fresh = [fresh_lm.process(im) for im in other]
    finally:
        fresh_lm.close()
    assert [len(f) for f in cached] == [len(f) for f in fresh] and any(cached)
    for a, b in zip(cached, fresh, strict=True):
        for fa, fb in zip(a, b, strict=True):
            np.testing.assert_array_equal(fa.landmarks, fb.landmarks)
            assert fa.confidence == fb.confidence
