"""Landmark and blendshape cost on a real clip, ms/frame, beside a baseline of the same run.

    .venv/bin/python bench/landmarks_speed.py [VIDEO] [--repeat N]

Measures, on the same decoded frames (decode excluded), interleaved, median of ``--repeat``
(graphs built once; each run continues tracking where the previous one stopped):
  * MediaPipe FaceMesh alone: 1 face vs 3 faces (``max_num_faces``), refine_landmarks off/on;
  * ``MediaPipeLandmarker`` as the pipeline builds it (max_faces=3) with detect_every 5 / 15,
    refine off/on (FaceMesh + scans + conversion to pixel arrays);
  * MediaPipe's blendshape model (``BlendshapeModel.predict``): one batch of all frames vs one
    call per frame, 1 vs 2 LiteRT threads.
Ratios are to the baseline ``FaceMesh max_faces=3 refine=off`` (the mesh the pipeline ran
before ``MediaPipeLandmarker`` tracked one face). Prints figures; asserts nothing.
"""

from __future__ import annotations

import argparse
import os
import statistics
import time
from collections.abc import Callable
from pathlib import Path

import numpy as np

from mer.face.blendshapes import BlendshapeModel
from mer.face.landmarks import MediaPipeLandmarker
from mer.video import iter_frames

DEFAULT = Path(__file__).resolve().parents[2] / "shared/data/videos/single_face.mp4"


def _mesh_runner(max_faces: int, refine: bool) -> Callable[[list[np.ndarray]], None]:
    import mediapipe as mp

    mesh = mp.solutions.face_mesh.FaceMesh(
        static_image_mode=False, max_num_faces=max_faces, refine_landmarks=refine
    )

    def run(frames: list[np.ndarray]) -> None:
        for f in frames:
            mesh.process(f)

    return run


def _landmarker_runner(detect_every: int, refine: bool) -> Callable[[list[np.ndarray]], None]:
    lm = MediaPipeLandmarker(max_faces=3, detect_every=detect_every, refine_landmarks=refine)

    def run(frames: list[np.ndarray]) -> None:
        for f in frames:
            lm.process(f)

    return run


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("video", nargs="?", type=Path, default=DEFAULT)
    ap.add_argument("--repeat", type=int, default=5)
    args = ap.parse_args()
    frames = [np.ascontiguousarray(f.image) for f in iter_frames(args.video)]
    n = len(frames)

    lm = MediaPipeLandmarker(max_faces=1, refine_landmarks=True)
    pts = np.stack([lm.process(f)[0].landmarks for f in frames])  # needs a face in each frame
    lm.close()
    models = {t: BlendshapeModel(num_threads=t) for t in (1, 2)}

    runs: dict[str, Callable[[list[np.ndarray]], object]] = {}
    for mf in (1, 3):
        for refine in (False, True):
            runs[f"FaceMesh max_faces={mf} refine={'on' if refine else 'off'}"] = _mesh_runner(
                mf, refine
            )
    for every in (5, 15):
        for refine in (False, True):
            name = f"MediaPipeLandmarker detect_every={every} refine={'on' if refine else 'off'}"
            runs[name] = _landmarker_runner(every, refine)
    for t, m in models.items():
        runs[f"blendshapes batch of {n}, {t} thread(s)"] = lambda _f, m=m: m.predict(pts)
        runs[f"blendshapes one call per frame, {t} thread(s)"] = lambda _f, m=m: [
            m.predict(p) for p in pts
        ]

    for run in runs.values():  # warm-up: graph construction
        run(frames[:5])
    ms: dict[str, list[float]] = {k: [] for k in runs}
    cpu: dict[str, list[float]] = {k: [] for k in runs}
    for _ in range(args.repeat):
        for k, run in runs.items():
            t0, c0 = time.perf_counter(), time.process_time()
            run(frames)
            ms[k].append((time.perf_counter() - t0) / n * 1e3)
            cpu[k].append((time.process_time() - c0) / n * 1e3)

    base = "FaceMesh max_faces=3 refine=off"
    b, bc = statistics.median(ms[base]), statistics.median(cpu[base])
    print(
        f"clip: {args.video.name}, {n} frames {frames[0].shape[1]}x{frames[0].shape[0]};"
        f" {os.cpu_count()} CPU cores; median of {args.repeat} interleaved runs; decode excluded"
    )
    print(f"{'':<56} {'ms/frame':>9} {'/ base':>7} {'CPU ms/frame':>13} {'/ base':>7}")
    for k in runs:
        m, c = statistics.median(ms[k]), statistics.median(cpu[k])
        print(f"{k:<56} {m:9.2f} {m / b:7.3f} {c:13.2f} {c / bc:7.3f}")
    print(
        f"baseline: {base}; CPU ms = process CPU time (all threads) per frame, steadier than"
        " wall time on a loaded machine"
    )


if __name__ == "__main__":
    main()
