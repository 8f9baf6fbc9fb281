"""Pipeline speed on a real clip: ms/frame per stage and end-to-end frames/s, beside the
decode-only and landmark-only rates measured in the same run.

    .venv/bin/python bench/pipeline_speed.py [VIDEO] [--repeat N] [--versus MODEL_DIR]
        [--blendshapes]

The landmark-only rate is the floor of the pipeline: on the same frames (decoded once, kept in
memory), the landmarker built as the pipeline builds it (``create_landmarker`` with
``AnalysisConfig``'s ``max_faces``, ``detect_every`` and, once the pipeline has them,
``refine_landmarks``), reset as per video, ``MainFaceTracker`` choosing the main face, plus
MediaPipe's blendshape model over the main face's landmarks when blendshapes are on
(``AnalysisConfig.blendshapes`` once the pipeline has it, or ``--blendshapes``, which also
turns refine_landmarks on). The ratio end to end / landmark only is the share of the time
the pipeline spends at that floor (target >= 0.6 with blendshapes on).

``--versus`` also runs the pipeline with the checkpoints of another folder (e.g. an older
model store, ``git worktree`` or ``git show`` of it), interleaved with the default store, and
prints the ratio of the two (what a model change costs end to end).

Prints figures and ratios; asserts nothing (see DEVELOPERS guide: no timed assertions).
"""

from __future__ import annotations

import argparse
import os
import statistics
import time
from collections.abc import Callable
from pathlib import Path

import numpy as np

from mer.face.landmarks import create_landmarker
from mer.pipeline import AnalysisConfig, MainFaceTracker, analyze_video
from mer.settings import Settings
from mer.video import iter_frames

DEFAULT = Path(__file__).resolve().parents[2] / "shared/data/videos/single_face.mp4"


def landmark_only_runner(
    blendshapes: bool, settings: Settings, cfg: AnalysisConfig
) -> tuple[Callable[[list[np.ndarray]], int], dict[str, object]]:
    """A callable running the pipeline's landmark step alone on frames; returns faces found."""
    refine = blendshapes or bool(getattr(cfg, "refine_landmarks", False))
    options: dict[str, object] = {"max_faces": cfg.max_faces, "detect_every": cfg.detect_every}
    if refine:
        options["refine_landmarks"] = True
    lm = create_landmarker(settings.landmarker, **options)
    model = None
    if blendshapes:
        from mer.face.blendshapes import BlendshapeModel

        model = BlendshapeModel()

    def run(frames: list[np.ndarray]) -> int:
        lm.reset()  # as the pipeline does per video
        tracker = MainFaceTracker()
        main = [tracker.select(lm.process(f)) for f in frames]
        pts = [f.landmarks for f in main if f is not None]
        if model is not None and pts:
            model.predict(np.stack(pts))
        return len(pts)

    return run, {**options, "blendshapes": blendshapes}


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("video", nargs="?", type=Path, default=DEFAULT)
    ap.add_argument("--repeat", type=int, default=5)
    ap.add_argument("--versus", type=Path, default=None, help="another model folder")
    ap.add_argument(
        "--blendshapes",
        action="store_true",
        help="landmark-only rate with refine_landmarks and the blendshape model on",
    )
    args = ap.parse_args()

    settings, cfg = Settings(), AnalysisConfig()
    blendshapes = args.blendshapes or bool(getattr(cfg, "blendshapes", False))
    lm_run, lm_options = landmark_only_runner(blendshapes, settings, cfg)
    frames = [fr.image for fr in iter_frames(args.video)]

    decode_fps, e2e_fps, lm_fps, stage_ms = [], [], [], []
    versus_fps: list[float] = []
    versus_au: list[float] = []
    analyze_video(args.video)  # warm-up: graph construction, imports
    lm_run(frames[:10])
    for _ in range(args.repeat):
        t0 = time.perf_counter()
        n = sum(1 for _ in iter_frames(args.video))
        decode_fps.append(n / (time.perf_counter() - t0))
        t0 = time.perf_counter()
        lm_run(frames)
        lm_fps.append(len(frames) / (time.perf_counter() - t0))
        t0 = time.perf_counter()
        r = analyze_video(args.video)
        e2e_fps.append(len(r.frames) / (time.perf_counter() - t0))
        stage_ms.append({k: v / len(r.frames) for k, v in r.timings_ms.items()})
        if args.versus is not None:
            t0 = time.perf_counter()
            rv = analyze_video(args.video, settings=Settings(model_dir=args.versus))
            versus_fps.append(len(rv.frames) / (time.perf_counter() - t0))
            versus_au.append(rv.timings_ms.get("au", 0.0) / len(rv.frames))
    v = r.video
    print(
        f"clip: {args.video.name} {v.width}x{v.height} {v.fps:.2f} fps, {v.frame_count} frames;"
        f" {os.cpu_count()} CPU cores; median of {args.repeat} runs"
    )
    print(f"decode only (PyAV -> RGB): {statistics.median(decode_fps):8.1f} frames/s")
    e2e, dec = statistics.median(e2e_fps), statistics.median(decode_fps)
    print(
        f"end to end (analyze_video): {e2e:8.1f} frames/s  (ratio to decode-only {e2e / dec:.3f})"
    )
    lmf = statistics.median(lm_fps)
    print(
        f"landmark only ({', '.join(f'{k}={v}' for k, v in lm_options.items())}):"
        f" {lmf:8.1f} frames/s"
    )
    print(f"end to end / landmark only: {e2e / lmf:.3f}  (target >= 0.6 with blendshapes on)")
    if blendshapes and not getattr(cfg, "blendshapes", False):
        print("  note: the pipeline does not run the blendshape model yet; end to end excludes it")
    print(
        "ms per frame by stage (summed stage time / frames; decode, and blendshapes +"
        " alignment + motion, run in threads beside the landmarks):"
    )
    for k in stage_ms[0]:
        print(f"  {k:<12} {statistics.median(s[k] for s in stage_ms):7.2f}")
    if versus_fps:
        vf = statistics.median(versus_fps)
        print(
            f"versus {args.versus}: {vf:8.1f} frames/s end to end, AU stage "
            f"{statistics.median(versus_au):.2f} ms/frame; default store / versus = {e2e / vf:.3f}"
        )


if __name__ == "__main__":
    main()
