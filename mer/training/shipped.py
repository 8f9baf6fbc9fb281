"""What ``mer train`` runs: the shipped weights trained on a whole data set, written as
checkpoints with their cards (:mod:`mer.models.cards`) and a ``MODEL_CARD.md`` beside them."""

from __future__ import annotations

import json
import time
from collections.abc import Callable, Sequence
from pathlib import Path
from typing import Literal

from mer.inference import AU_FILE, EMOTION_FILE
from mer.models.cards import au_card, emotion_card
from mer.models.weights import save_checkpoint, sha256_file
from mer.training.config import TrainConfig
from mer.training.data import PreparedClip
from mer.training.loops import train_au, train_emotion
from mer.training.report import device_description

#: Licence and credit of weights trained on the synthetic set (London Set faces).
LONDON_CREDIT = (
    "Trained on synthetic micro-expressions rendered on the Face Research Lab London Set "
    "(DeBruine, L. & Jones, B. (2017), doi:10.6084/m9.figshare.5047666.v5, CC BY 4.0)."
)


def training_data_text(
    dataset: str, clips: Sequence[PreparedClip], roots: Sequence[Path], command: str
) -> str:
    """The cards' ``training_data``: ``"<dataset>: <n> clips, <k> identities from <root
    names>; command: <command>"``."""
    return (
        f"{dataset}: {len(clips)} clips, {len({c.subject for c in clips})} identities from "
        f"{', '.join(d.name for d in roots)}; command: {command}"
    )


def train_shipped_weights(
    clips: Sequence[PreparedClip],
    classes: Sequence[str],
    cfg: TrainConfig,
    out: Path,
    *,
    only: Literal["emotion", "au"] | None = None,
    version: str = "1.0.0",
    training_data: str = "",
    report: Path | None = None,
    credit: str = LONDON_CREDIT,
    log_fn: Callable[[str], None] = print,
) -> dict[str, float]:
    """Train SMA-STN and / or the AU detector on all ``clips`` and write them to ``out``.

    Writes :data:`~mer.inference.EMOTION_FILE` and :data:`~mer.inference.AU_FILE` (each
    with its card: recipe, labels, input parameters, metrics of ``report``, training seconds,
    device, the AU thresholds) and ``MODEL_CARD.md`` (:func:`write_model_card_md`).

    Args:
        clips: prepared clips (:func:`~mer.training.data.prepare_roots`).
        classes: emotion classes, in output order.
        cfg: the recipe.
        out: the model folder (created).
        only: train one model (``"emotion"`` or ``"au"``); None: both.
        version: the weights version.
        training_data: the cards' data description (:func:`training_data_text`).
        report: ``report.json`` of ``mer evaluate`` whose metrics the cards record (UF1 and
            UAR; AU macro-F1 and the relative apex MAE); its ``report.md``, when beside it,
            goes into ``MODEL_CARD.md``.
        credit: the licence and credit text.
        log_fn: progress lines.

    Returns:
        training seconds by model, ``{"emotion": s, "au": s}`` (0 for a model not trained).

    Raises:
        OSError, json.JSONDecodeError, KeyError: ``report`` cannot be read or has no
            ``main``.
    """
    rep = json.loads(report.read_text()) if report else {}
    metrics, apex = (rep["main"], rep.get("apex", {})) if report else ({}, {})
    out.mkdir(parents=True, exist_ok=True)
    common = {"training_data": training_data, "version": version, "license": credit}
    seconds = {"emotion": 0.0, "au": 0.0}
    if only in (None, "emotion"):
        t0 = time.perf_counter()
        emo = train_emotion(clips, classes, cfg, log_fn=log_fn)
        seconds["emotion"] = time.perf_counter() - t0
        save_checkpoint(out / EMOTION_FILE, emo, emotion_card(
            cfg, classes, metrics={k: metrics[k] for k in ("uf1", "uar") if k in metrics},
            extra={"train_seconds": round(seconds["emotion"], 1),
                   "device": device_description()}, **common,
        ))  # fmt: skip
    if only in (None, "au"):
        t0 = time.perf_counter()
        au = train_au(clips, cfg, log_fn=log_fn)
        seconds["au"] = time.perf_counter() - t0
        save_checkpoint(out / AU_FILE, au, au_card(
            cfg, metrics={k: metrics[k] for k in ("au_macro_f1",) if k in metrics} | (
                {"apex_mae_rel": apex["mae_rel"]} if apex else {}),
            extra={"train_seconds": round(seconds["au"], 1), "device": device_description(),
                   "au_thresholds": getattr(au, "au_thresholds", {})}, **common,
        ))  # fmt: skip
    write_model_card_md(out, cfg, classes, training_data=training_data, credit=credit,
                        seconds=seconds, version=version, report=report)  # fmt: skip
    return seconds


def write_model_card_md(
    out: Path,
    cfg: TrainConfig,
    classes: Sequence[str],
    *,
    training_data: str,
    credit: str,
    seconds: dict[str, float],
    version: str,
    report: Path | None = None,
) -> Path:
    """Write ``out/MODEL_CARD.md``: the files and their sha256 (``"(not in this folder)"``
    for one missing), inputs, training data and command, training seconds
    (``seconds["emotion"]``, ``seconds["au"]``) and device, licence, limits, and the
    evaluation (``report``'s ``report.md`` when beside it, else its main metrics as JSON).
    Returns the path written."""
    au_flow = f" + optical flow between them, DIS at {cfg.flow_size} px" if cfg.au_flow else ""

    def sha(name: str) -> str:
        return sha256_file(out / name) if (out / name).is_file() else "(not in this folder)"

    lines = [
        f"# Model card — shipped weights v{version}", "",
        f"- `{EMOTION_FILE}`: SMA-STN, classes {', '.join(classes)}; DSSI "
        f"{cfg.n_segments} segments x {cfg.frames_per_segment} frames + global "
        f"{cfg.global_frames}{' + optical-flow channels (u, v)' if cfg.flow else ''}; sha256 "
        f"`{sha(EMOTION_FILE)}`",
        f"- `{AU_FILE}`: AU detector (frame + local neutral reference{au_flow}); sha256 "
        f"`{sha(AU_FILE)}`",
        f"- Training data: {training_data}",
        f"- Training time: {seconds['emotion']:.0f} s (SMA-STN) + {seconds['au']:.0f} s "
        f"(AU detector) on {device_description()}",
        f"- Licence and credit: {credit}",
        "- Limits: synthetic training data only (2-D warps of real faces); no licensed "
        "micro-expression data set was seen. Treat predictions on real video accordingly.",
    ]  # fmt: skip
    if report is not None:
        md = report.parent / "report.md"
        lines += ["", "## Evaluation (subject-grouped CV, pooled over folds)", "",
                  md.read_text() if md.is_file()
                  else json.dumps(json.loads(report.read_text())["main"])]  # fmt: skip
    path = out / "MODEL_CARD.md"
    path.write_text("\n".join(lines) + "\n")
    return path
