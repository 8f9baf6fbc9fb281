"""Rendering speed of the long multi-event clips (`mer synth-long`) on one core, with the
short-clip renderer of `mer synth` measured in the same run as the baseline.

    .venv/bin/python bench/synth_long_speed.py [--duration 20] [--size 320] [--identity 001]

Prints frames/s of rendering (no encoding), the encode time of the H.264 writer, the time
of a whole clip, and the ratio long / short frames/s (per output pixel too: the long clips
are 320 px, the short ones 256 px by default). BLAS and OpenCV are held to one thread.
Asserts nothing (no timed assertions).
"""

from __future__ import annotations

import argparse
import os
import tempfile
import time

os.environ.setdefault("OMP_NUM_THREADS", "1")
os.environ.setdefault("OPENBLAS_NUM_THREADS", "1")


def main() -> None:
    """Render one long clip and a batch of short clips; print figures and ratios."""
    import cv2
    import numpy as np

    from mer.synth import SynthConfig, load_london_faces
    from mer.synth.long_dataset import write_video
    from mer.synth.long_render import LongRig, render_long_clip
    from mer.synth.long_spec import LongClipConfig
    from mer.synth.long_timeline import sample_long_clip
    from mer.synth.render import FaceRig, render_clip
    from mer.synth.sampling import sample_clip_spec

    ap = argparse.ArgumentParser(description=__doc__)
    ap.add_argument("--duration", type=float, default=20.0)
    ap.add_argument("--size", type=int, default=320)
    ap.add_argument("--identity", default="001")
    ap.add_argument("--short-clips", type=int, default=20)
    a = ap.parse_args()
    cv2.setNumThreads(1)
    with tempfile.TemporaryDirectory() as tmp:
        faces = load_london_faces(None, [a.identity], cache_path=os.path.join(tmp, "lm.npz"))
        face = faces[a.identity]
        cfg = LongClipConfig(duration_s=a.duration, out_size=a.size)
        spec = sample_long_clip(np.random.default_rng(0), a.identity, cfg)
        rig = LongRig(FaceRig(face))
        t0 = time.perf_counter()
        r = render_long_clip(spec, rig, cfg)
        t1 = time.perf_counter()
        write_video(os.path.join(tmp, "c.mp4"), r.frames, cfg.fps)
        t2 = time.perf_counter()
        long_fps = len(r.frames) / (t1 - t0)
        print(f"long clip: {len(r.frames)} frames {a.size} px, {len(spec.events)} events; "
              f"render {t1 - t0:.1f} s = {long_fps:.1f} frames/s (incl. first-use AU fields), "
              f"encode {t2 - t1:.1f} s, clip total {t2 - t0:.1f} s")  # fmt: skip
        scfg = SynthConfig(max_frames=32)
        srig = FaceRig(face)
        rng = np.random.default_rng(1)
        n, ts = 0, time.perf_counter()
        for _ in range(a.short_clips):
            n += len(render_clip(sample_clip_spec(rng, a.identity, 100.0, scfg), srig, scfg).frames)
        short_fps = n / (time.perf_counter() - ts)
        print(f"short clips (mer synth baseline): {n} frames {scfg.out_size} px, "
              f"{short_fps:.1f} frames/s")  # fmt: skip
        px = (a.size / scfg.out_size) ** 2
        print(f"ratio long / short: {long_fps / short_fps:.2f} frames/s, "
              f"{long_fps * px / short_fps:.2f} output pixels/s")  # fmt: skip


if __name__ == "__main__":
    main()
