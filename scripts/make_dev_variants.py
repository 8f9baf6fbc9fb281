"""Write altered copies of the labelled real clips with their labels, and evaluate them.

The variants (:mod:`mer.evaluation.variants`): re-encoded, mirrored, half and third size,
tilted, dark, compressed, half frame rate. With ``--report`` each copy is evaluated
(``mer evaluate-real``, no plots) and a summary written.

    .venv/bin/python scripts/make_dev_variants.py /work/data/variants \
        --report reports/real_dev_variants

OUT/<variant>/ holds the copies and labels.json; REPORT/<variant>/ each evaluation's
report.json / report.md; REPORT/summary.md the figures side by side with the originals'.
Raises SystemExit when the labelled clips are missing.
"""

from __future__ import annotations

import argparse
import json
from pathlib import Path

from mer.evaluation import evaluate_real
from mer.evaluation.labels import find_video, load_label_files
from mer.evaluation.variants import VARIANTS, write_variant
from mer.settings import Settings


def _row(name: str, description: str, m: dict) -> str:
    s, e, a = m["spotting"], m["emotion"], m["au"]
    ne = m["non_expression"]
    return (
        f"| {name} | {description} | {s['f1']:.2f} | {s['precision']:.2f} / {s['recall']:.2f} "
        f"| {s['tp']} of {s['n_events']} | {s['fp']} | {e.get('accuracy') or 0:.2f} / "
        f"{e.get('uar') or 0:.2f} | {a.get('macro_f1') or 0:.2f} | "
        f"{ne['with_emotional_interval']} of {ne['n_events']} |"
    )


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("out", type=Path, help="folder for the copies (one sub-folder a variant)")
    shared = Settings().shared_data_dir
    ap.add_argument(
        "--labels", type=Path, nargs="+",
        default=[shared / "dev" / "labels.json", shared / "dev" / "labels_shared_videos.json"],
    )  # fmt: skip
    ap.add_argument("--videos", type=Path, nargs="*", default=[shared / "videos"])
    ap.add_argument("--variants", nargs="+", choices=sorted(VARIANTS), default=list(VARIANTS))
    ap.add_argument("--report", type=Path, help="evaluate each variant and write reports here")
    args = ap.parse_args()
    if not all(p.is_file() for p in args.labels):
        raise SystemExit(f"label files missing: {[str(p) for p in args.labels]}")
    clips = load_label_files(args.labels)
    videos = [find_video(c, args.videos) for c in clips]
    raw: dict[str, dict] = {}
    for path in args.labels:
        raw.update(json.loads(path.read_text()))
    rows = []
    if args.report is not None:
        base = evaluate_real(args.labels, args.videos, args.report / "original", plots=False)
        rows.append(_row("original", "the clips as they are", base.metrics))
    for name in args.variants:
        variant = VARIANTS[name]
        entries = {}
        for clip, video in zip(clips, videos, strict=True):
            file, entries[file] = write_variant(video, raw[clip.name], variant, args.out / name)
        labels = args.out / name / "labels.json"
        labels.write_text(json.dumps(entries, indent=1) + "\n")
        print(f"{name}: {len(entries)} clips in {args.out / name}", flush=True)
        if args.report is not None:
            rep = evaluate_real([labels], [], args.report / name, plots=False)
            rows.append(_row(name, variant.description, rep.metrics))
    if args.report is not None:
        head = (
            "| variant | what | spotting F1 | P / R | events matched | false intervals "
            "| emotion acc / UAR | AU macro-F1 | speech etc. under an emotional interval |\n"
            "|---|---|---|---|---|---|---|---|---|"
        )
        text = (
            "# The real dev clips and altered copies of them\n\n"
            "`scripts/make_dev_variants.py` (see its docstring); each row is "
            "`mer evaluate-real` on one variant (its report in the folder of that name).\n\n"
            + head + "\n" + "\n".join(rows) + "\n"
        )  # fmt: skip
        (args.report / "summary.md").write_text(text)
        print(text)


if __name__ == "__main__":
    main()
