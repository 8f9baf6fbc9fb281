"""Build the canonical face template ``mer/face/template.npy`` from real neutral faces.

The template is the generalised-Procrustes (similarity) mean of MediaPipe FaceMesh
landmarks on the 102 neutral faces of the Face Research Lab London Set (DeBruine & Jones
2017, CC BY 4.0), scaled into the unit square of the aligned crop: ``(468, 2)`` float32,
x and y in [0, 1]. Run once: ``python scripts/make_face_template.py [DATA_DIR]``.
"""

from __future__ import annotations

import sys
from pathlib import Path

import cv2
import numpy as np

from mer.face.align import umeyama_similarity
from mer.face.landmarks import STABLE_POINTS, create_landmarker


def main(data_dir: Path) -> None:
    lm = create_landmarker(static=True, max_faces=1)
    shapes = []
    for img_path in sorted((data_dir / "faces/london/neutral").glob("*.jpg")):
        img = cv2.cvtColor(cv2.imread(str(img_path)), cv2.COLOR_BGR2RGB)
        faces = lm.process(img)
        if faces:
            shapes.append(faces[0].landmarks.astype(np.float64))
    print(f"{len(shapes)} faces")
    mean = shapes[0].copy()
    for _ in range(5):
        aligned = []
        for s in shapes:
            m = umeyama_similarity(s[list(STABLE_POINTS)], mean[list(STABLE_POINTS)])
            aligned.append(s @ m[:, :2].T + m[:, 2])
        mean = np.mean(aligned, axis=0)
    # normalise: face bounding box to [0.1, 0.9] x [0.06, 0.94] of the crop, aspect kept
    lo, hi = mean.min(axis=0), mean.max(axis=0)
    scale = min(0.8 / (hi[0] - lo[0]), 0.88 / (hi[1] - lo[1]))
    centre = (lo + hi) / 2
    template = (mean - centre) * scale + 0.5
    out = Path(__file__).resolve().parent.parent / "mer/face/template.npy"
    np.save(out, template.astype(np.float32))
    print("saved", out, template.min(axis=0), template.max(axis=0))


if __name__ == "__main__":
    default = Path(__file__).resolve().parents[2] / "shared/data"
    main(Path(sys.argv[1]) if len(sys.argv) > 1 else default)
