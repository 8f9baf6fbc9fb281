"""Write ``mer/aus/geometry_prior.json``: the lower-lip arch of 102 neutral faces (London Set,
``../shared/data/faces/london/neutral``) as a linear function of the head's pitch proxy.

Landmarks come from the pipeline's own landmarker (MediaPipe FaceMesh, photos mode, refined
478 points); the arch is :func:`mer.aus.geometry.lower_lip_arch`, the pitch
:func:`mer.face.landmarks.pose_ratios`. Least squares ``arch = a + b (pitch - pitch0)`` with
``pitch0`` the median pitch; ``s`` is the residuals' standard deviation.

    .venv/bin/python scripts/geometry_neutral_prior.py
"""

from __future__ import annotations

import argparse
import json
from pathlib import Path

import cv2
import numpy as np

from mer.aus.geometry import lower_lip_arch
from mer.face.landmarks import create_landmarker, pose_ratios
from mer.settings import Settings


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--faces", type=Path, default=Settings().shared_data_dir / "faces/london")
    ap.add_argument("--out", type=Path, default=Path("mer/aus/geometry_prior.json"))
    args = ap.parse_args()
    lm = create_landmarker("mediapipe", static=True, max_faces=1, refine_landmarks=True)
    arch, pitch, yaw = [], [], []
    for f in sorted((args.faces / "neutral").glob("*.jpg")):
        faces = lm.process(cv2.cvtColor(cv2.imread(str(f)), cv2.COLOR_BGR2RGB))
        if faces:
            arch.append(float(lower_lip_arch(faces[0].landmarks)))
            y, p = pose_ratios(faces[0].landmarks)
            pitch.append(float(p))
            yaw.append(float(y))
    x, p = np.asarray(arch), np.asarray(pitch)
    p0 = float(np.median(p))
    b, a = np.polyfit(p - p0, x, 1)
    s = float(np.std(x - (a + b * (p - p0)), ddof=2))
    out = {
        "source": "London Set neutral faces (DeBruine & Jones 2017, CC BY 4.0), "
        "MediaPipe FaceMesh 478 points (mer.face.landmarks, photos mode)",
        "faces": len(arch),
        "lower_lip_arch": {
            "a": round(a, 4),
            "b": round(b, 4),
            "pitch0": round(p0, 4),
            "s": round(s, 4),
        },
        "arch_percentiles": {
            q: round(float(np.percentile(x, int(q[1:]))), 4) for q in ("p1", "p5", "p50", "p95")
        },
        "pitch_percentiles": {
            q: round(float(np.percentile(p, int(q[1:]))), 4) for q in ("p5", "p50", "p95")
        },
        "abs_yaw_p95": round(float(np.percentile(np.abs(yaw), 95)), 4),
        "correlation_arch_pitch": round(float(np.corrcoef(x, p)[0, 1]), 3),
    }
    args.out.write_text(json.dumps(out, indent=1) + "\n")
    print(f"{args.out}: {len(arch)} faces")


if __name__ == "__main__":
    main()
