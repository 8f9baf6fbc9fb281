"""Write real multi-event clips made of dev clips of one person played back to back, with
their labels shifted into one label file (the format of ``shared/data/dev/README.md``).

The dev set holds mostly one or two expressions per clip; these are its multi-event clips
of real faces (what the hidden test clips are like): the same person's expressions follow
each other with speech between them.

- ``fexmetrica_multi.mp4``: fex-metrica's smile1 + surp1 + smile1 (one person, 14 fps,
  six expressions).
- ``cremad_1001_multi.mp4``: CREMA-D actor 1001's six sentences (neutral, happy, angry,
  sad, disgusted, fearful; 30 fps, five expressions and six stretches of speech); the
  actor's brows rest low and rise while he talks.

    .venv/bin/python scripts/concat_dev_clips.py OUT_DIR
    .venv/bin/mer evaluate-real OUT_DIR/labels.json --videos OUT_DIR --out reports/real_multi

Raises SystemExit when the dev folder is missing.
"""

from __future__ import annotations

import argparse
import json
from pathlib import Path

from mer.evaluation.concat import concatenate_clips
from mer.settings import Settings

#: output clip -> (its frame rate, the dev clips in order)
CLIPS: dict[str, tuple[int, tuple[str, ...]]] = {
    "fexmetrica_multi.mp4": (
        14,
        ("fexmetrica_ex_smile1.mov", "fexmetrica_ex_surp1.mov", "fexmetrica_ex_smile1.mov"),
    ),
    "cremad_1001_multi.mp4": (
        30,
        tuple(f"cremad_1001_DFA_{e}_XX.flv" for e in ("NEU", "HAP", "ANG", "SAD", "DIS", "FEA")),
    ),
}


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("out", type=Path, help="folder for the clips and labels.json")
    ap.add_argument("--dev", type=Path, default=Settings().shared_data_dir / "dev")
    args = ap.parse_args()
    if not (args.dev / "labels.json").is_file():
        raise SystemExit(f"no dev set at {args.dev}")
    labels = json.loads((args.dev / "labels.json").read_text())
    args.out.mkdir(parents=True, exist_ok=True)
    entries = {}
    for name, (fps, parts) in CLIPS.items():
        entries[name] = concatenate_clips(args.dev, parts, args.out / name, fps, labels)
        print(f"{name}: {entries[name]['frames']} frames, {len(entries[name]['events'])} events")
    (args.out / "labels.json").write_text(json.dumps(entries, indent=1) + "\n")


if __name__ == "__main__":
    main()
