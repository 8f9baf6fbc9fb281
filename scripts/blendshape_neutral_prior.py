"""Write ``mer/aus/neutral_prior.json``: per blendshape, the 50th and 90th percentiles over
the 102 neutral faces of the London Set (``../shared/data/faces/london/neutral``).

The 90th percentile caps each person's neutral baseline (:mod:`mer.aus.blendshapes`).
Blendshapes come from MediaPipe's own FaceLandmarker task (IMAGE mode) on the vendored
``face_landmarker.task``, the reference our in-process blendshape model is tested against.

    .venv/bin/python scripts/blendshape_neutral_prior.py --task PATH/face_landmarker.task
"""

from __future__ import annotations

import argparse
import json
from pathlib import Path

import numpy as np

from mer.settings import Settings


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--task", type=Path, required=True, help="face_landmarker.task")
    ap.add_argument("--faces", type=Path, default=Settings().shared_data_dir / "faces/london")
    ap.add_argument("--out", type=Path, default=Path("mer/aus/neutral_prior.json"))
    args = ap.parse_args()
    import mediapipe as mp
    from mediapipe.tasks.python import BaseOptions, vision

    opts = vision.FaceLandmarkerOptions(
        base_options=BaseOptions(model_asset_path=str(args.task)),
        running_mode=vision.RunningMode.IMAGE,
        output_face_blendshapes=True,
        num_faces=1,
    )
    rows, names = [], []
    with vision.FaceLandmarker.create_from_options(opts) as lm:
        for f in sorted((args.faces / "neutral").glob("*.jpg")):
            r = lm.detect(mp.Image.create_from_file(str(f)))
            if r.face_blendshapes:
                names = [c.category_name for c in r.face_blendshapes[0]]
                rows.append([c.score for c in r.face_blendshapes[0]])
    x = np.asarray(rows)
    out = {
        "source": "London Set neutral faces (DeBruine & Jones 2017, CC BY 4.0), "
        "MediaPipe FaceLandmarker V2 blendshapes",
        "faces": len(rows),
        "p50": {n: round(float(v), 4) for n, v in zip(names, np.percentile(x, 50, 0), strict=True)},
        "p90": {n: round(float(v), 4) for n, v in zip(names, np.percentile(x, 90, 0), strict=True)},
    }
    args.out.write_text(json.dumps(out, indent=1) + "\n")
    print(f"{args.out}: {len(rows)} faces")


if __name__ == "__main__":
    main()
