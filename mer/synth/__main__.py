"""``python -m mer.synth OUT_DIR --clips 2000 --seed 0``: generate a synthetic data set."""

from __future__ import annotations

import argparse
import sys

from mer.synth.dataset import DEFAULT_FPS, generate_dataset


def main(argv: list[str] | None = None) -> int:
    """Parse arguments, generate, print a one-line summary. Returns the exit status."""
    ap = argparse.ArgumentParser(prog="python -m mer.synth", description=__doc__)
    ap.add_argument("out_dir")
    ap.add_argument("--clips", type=int, default=200, help="number of clips")
    ap.add_argument("--seed", type=int, default=0)
    ap.add_argument("--fps", type=float, nargs="+", default=list(DEFAULT_FPS))
    ap.add_argument("--identities", nargs="+", default=None, help="London ids, e.g. 001 002")
    ap.add_argument("--size", type=int, default=256, help="output crop side (pixels)")
    ap.add_argument("--max-frames", type=int, default=32, help="most frames written per clip")
    ap.add_argument("--kind", choices=("micro", "macro", "mixed"), default="micro")
    ap.add_argument("--workers", type=int, default=None)
    ap.add_argument("--grayscale", action="store_true")
    ap.add_argument(
        "--nonemotional-fraction",
        type=float,
        default=0.2,
        help="share of non-emotional clips (speech, blink, head movement; emotion 'none')",
    )
    ap.add_argument(
        "--emotions",
        nargs="+",
        default=None,
        help="draw only these CASME II emotions (equal weights), e.g. happiness",
    )
    ap.add_argument(
        "--open-mouth-smile",
        type=float,
        default=0.0,
        help="share of macro happiness clips drawn as open-mouth smiles (AU6+12+25+26)",
    )
    ap.add_argument("--london-root", default=None)
    ap.add_argument("--overwrite", action="store_true")
    ap.add_argument("--no-progress", action="store_true")
    a = ap.parse_args(argv)
    s = generate_dataset(
        a.out_dir,
        a.clips,
        seed=a.seed,
        fps_choices=a.fps,
        identities=a.identities,
        workers=a.workers,
        london_root=a.london_root,
        overwrite=a.overwrite,
        progress=not a.no_progress,
        out_size=a.size,
        max_frames=a.max_frames,
        kind=a.kind,
        grayscale=a.grayscale,
        nonemotional_fraction=a.nonemotional_fraction,
        open_mouth_smile=a.open_mouth_smile,
        **({"emotion_weights": dict.fromkeys(a.emotions, 1.0)} if a.emotions else {}),
    )
    print(f"{s.n_clips} clips, {s.n_frames} frames in {s.seconds:.1f} s -> {s.sheet}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
