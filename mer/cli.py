"""Command line: ``mer analyze VIDEO [--json OUT] [--csv OUT]``, ``mer submit``, ``mer train``,
``mer evaluate`` ... (Typer + Rich).

Importing this module imports no science code (NumPy, OpenCV, PyAV, MediaPipe, torch):
each command imports what it needs when it runs (``bench/cli_startup.py`` measures it).
"""

from __future__ import annotations

import contextlib
import json
import os
import sys
from collections.abc import Iterator
from contextlib import nullcontext
from enum import StrEnum
from pathlib import Path
from typing import Annotated, TextIO

import typer
from rich.console import Console
from rich.progress import BarColumn, Progress, TaskProgressColumn, TextColumn, TimeElapsedColumn

from mer.cli_submit import submit
from mer.cli_synth import synth, synth_long
from mer.serving_cli import model_store_app

app = typer.Typer(help="Facial micro-expression analysis.", no_args_is_help=True)
app.add_typer(model_store_app, name="model-store")
err = Console(stderr=True)


@contextlib.contextmanager
def native_logs_to(sink: TextIO | None, python_too: bool = False) -> Iterator[TextIO]:
    """Send what native libraries write to file descriptor 2 (MediaPipe, TFLite and absl
    log lines) to ``sink``, with wurlitzer.

    Args:
        sink: where they go (e.g. ``os.devnull`` opened for writing); ``None``: left alone.
        python_too: Python's ``sys.stderr`` (warnings, log records) goes to ``sink`` as
            well; otherwise it keeps writing to the real standard error.

    Yields:
        A text stream to the real standard error (for a progress bar), valid inside.
    """
    if sink is None:
        yield sys.stderr
        return
    import wurlitzer

    sys.stderr.flush()
    try:
        fd: int | None = sys.stderr.fileno()
    except (AttributeError, OSError, ValueError):  # not a file (e.g. Typer's CliRunner)
        fd = None
    with (
        os.fdopen(os.dup(fd), "w", buffering=1)
        if fd is not None
        else nullcontext(sys.stderr) as real,
        wurlitzer.pipes(stdout=None, stderr=sink),
        contextlib.redirect_stderr(sink if python_too else real),
    ):
        yield real


class OnlyModel(StrEnum):
    """``--only`` of ``mer train`` / ``mer evaluate``: one of the two models."""

    emotion = "emotion"
    au = "au"


@app.callback()
def _main() -> None:
    """Facial micro-expression analysis: apex spotting, Action Units, emotion."""


@app.command()
def analyze(
    video: Annotated[Path, typer.Argument(help="Video file (mp4, mpg, mov, ...).")],
    json_out: Annotated[
        Path | None, typer.Option("--json", help="Write the result JSON here ('-' = stdout).")
    ] = None,
    csv_out: Annotated[
        Path | None, typer.Option("--csv", help="Write the per-frame CSV here (OpenFace names).")
    ] = None,
    quiet: Annotated[
        bool, typer.Option("--quiet", "-q", help="No progress, summary or log lines.")
    ] = False,
    verbose: Annotated[
        bool,
        typer.Option("--verbose", "-v", help="Also show the MediaPipe / TFLite / absl log lines."),
    ] = False,
    blendshapes: Annotated[
        bool,
        typer.Option(
            "--blendshapes", help="Also report the 52 blendshapes per frame (JSON and CSV)."
        ),
    ] = False,
) -> None:
    """Analyse VIDEO on the embedded in-process pipeline and report apex, intervals and AUs."""
    from mer.errors import MERError
    from mer.export import write_csv
    from mer.pipeline import AnalysisConfig, analyze_video_compact
    from mer.settings import get_settings

    show = not quiet and err.is_terminal
    try:
        with (
            open(os.devnull, "w") as devnull,
            native_logs_to(None if verbose and not quiet else devnull, quiet) as stderr,
            Progress(
                TextColumn("[bold]{task.description:<10}"),
                BarColumn(),
                TaskProgressColumn(),
                TimeElapsedColumn(),
                console=Console(file=stderr) if show else err,
                disable=not show,
            ) as bar,
        ):
            task = bar.add_task("probe", total=100)

            def progress(stage: str, pct: float) -> None:
                bar.update(task, description=stage, completed=pct)

            result = analyze_video_compact(
                video,
                settings=get_settings(),
                config=AnalysisConfig(include_blendshapes=blendshapes),
                progress=progress,
            )
    except MERError as exc:
        err.print(f"[red]error[/red] {exc.code}: {exc.message}")
        raise typer.Exit(code=2) from exc

    if json_out is not None:  # written a chunk of frames at a time (bounded memory)
        if str(json_out) == "-":
            sys.stdout.flush()
            result.write_json(sys.stdout.buffer, indent=2)
            sys.stdout.buffer.write(b"\n")
            sys.stdout.buffer.flush()
        else:
            with json_out.open("wb") as fh:
                result.write_json(fh, indent=2)
    if csv_out is not None:
        with csv_out.open("w", newline="") as fh:
            write_csv(result, fh)
    if quiet:
        return
    from rich.table import Table

    out = Console(stderr=str(json_out) == "-")
    v = result.video
    out.print(
        f"[bold]{v.filename}[/bold]: {v.frame_count} frames, {v.fps:.2f} fps, "
        f"{v.width}x{v.height}, {v.codec}; face in "
        f"{result.frames.n_face} frames; "
        f"{result.timings_ms.get('total', 0) / 1000:.2f} s"
    )
    if result.apex is not None:
        a = result.apex
        out.print(f"apex frame {a.frame} at {a.timestamp_s:.3f} s (score {a.score:.2f})")
    table = Table("onset", "apex", "offset", "seconds", "kind", "score", "top AUs", "emotion")
    for iv in result.intervals:
        table.add_row(
            str(iv.onset), str(iv.apex), str(iv.offset),
            f"{iv.onset_s:.2f}-{iv.offset_s:.2f}", iv.kind, f"{iv.score:.2f}",
            " ".join(iv.top_aus) or "-",
            iv.emotion.label if iv.emotion else "-",
        )  # fmt: skip
    out.print(table)
    if result.emotion is None:
        out.print(f"emotion: none ({result.emotion_reason})")
    else:
        out.print(f"emotion: {result.emotion.label} ({result.emotion.score:.2f})")
    for w in result.warnings:
        out.print(f"[yellow]warning[/yellow] {w}")
    if json_out is None and csv_out is None:
        out.print("(use --json OUT / --csv OUT to save the full per-frame result)")


@app.command("evaluate-real")
def evaluate_real_cmd(
    labels: Annotated[list[Path], typer.Argument(help="Label JSON files (dev-set format).")],
    out: Annotated[Path, typer.Option(help="Report folder (report.json/.md, a PNG per clip).")],
    videos: Annotated[
        list[Path] | None,
        typer.Option(help="Folder searched for clips after the label file's own (repeatable)."),
    ] = None,
    quiet: Annotated[bool, typer.Option("--quiet", "-q", help="No progress or summary.")] = False,
    verbose: Annotated[
        bool,
        typer.Option("--verbose", "-v", help="Also show the MediaPipe / TFLite / absl log lines."),
    ] = False,
) -> None:
    """Analyse every hand-labelled real clip with the shipped pipeline and score it
    (MEGC spotting, apex, AUs at the apex, emotion); writes a JSON/Markdown/PNG report."""
    from mer.errors import MERError
    from mer.evaluation import evaluate_real

    show = not quiet and err.is_terminal
    try:
        with (
            open(os.devnull, "w") as devnull,
            native_logs_to(None if verbose and not quiet else devnull, quiet) as stderr,
            Progress(
                TextColumn("[bold]{task.description:<40}"), BarColumn(), TaskProgressColumn(),
                TimeElapsedColumn(), console=Console(file=stderr) if show else err,
                disable=not show,
            ) as bar,
        ):  # fmt: skip
            task = bar.add_task("clips", total=None)

            def progress(done: int, total: int, name: str) -> None:
                bar.update(task, description=name or "done", completed=done, total=total)

            report = evaluate_real(labels, videos or [], out, progress=progress)
    except MERError as exc:
        err.print(f"[red]error[/red] {exc.code}: {exc.message}")
        raise typer.Exit(code=2) from exc
    if not quiet:
        from mer.evaluation.report import summary_lines

        typer.echo("\n".join(summary_lines(report.to_json())))
        typer.echo(f"report: {out / 'report.md'}")


app.command("submit")(submit)  # mer/cli_submit.py
app.command("synth")(synth)  # mer/cli_synth.py
app.command("synth-long")(synth_long)

_DATASETS = "casme2 | samm | smic | casme3 | synth"


def _load(dataset: str, data_dir: Path):
    from mer.datasets import load_dataset

    samples = load_dataset(dataset, data_dir)
    if not samples:
        err.print(f"[red]no clips found in {data_dir} for {dataset}[/red]")
        raise typer.Exit(code=2)
    return samples


@app.command()
def evaluate(
    data_dir: Annotated[Path, typer.Argument(help="Data set root.")],
    dataset: Annotated[str, typer.Option(help=_DATASETS)] = "synth",
    out: Annotated[Path, typer.Option(help="Report folder.")] = Path("reports/eval"),
    folds: Annotated[int, typer.Option(help="Subject-grouped folds; 0 = LOSO.")] = 0,
    ablations: Annotated[
        bool,
        typer.Option(help="Also: no flow, no AU flow, no STMA, no DE-Loss, S=2/5 (all groups)."),
    ] = False,
    ablate: Annotated[
        list[str] | None,
        typer.Option(
            help="One ablation group: flow | au-flow | stma | de | segments (repeatable)."
        ),
    ] = None,
    apex_clips: Annotated[int, typer.Option(help="Clips for the apex MAE (0 = skip).")] = 40,
    epochs: Annotated[int, typer.Option(help="SMA-STN epochs (fixed, not tuned).")] = 25,
    au_epochs: Annotated[int, typer.Option(help="AU detector epochs.")] = 12,
    seed: Annotated[int, typer.Option()] = 0,
    workers: Annotated[int, typer.Option(help="Processes preparing the clips.")] = 2,
    extra_data: Annotated[
        list[Path] | None,
        typer.Option(
            help="Another root of the same data-set kind whose clips join each fold's "
            "training (never a test identity's; never scored; repeatable)."
        ),
    ] = None,
    only: Annotated[
        OnlyModel | None, typer.Option(help="Train and score one model (default both).")
    ] = None,
) -> None:
    """Subject-grouped cross-validation with metrics pooled over folds; JSON/MD/PNG report."""
    from dataclasses import replace

    from mer.training import (
        Report,
        TrainConfig,
        apex_mae,
        cross_validate,
        fold_backends,
        without_flow,
    )

    samples = _load(dataset, data_dir)
    cfg = TrainConfig(emotion_epochs=epochs, au_epochs=au_epochs, seed=seed)
    classes = _classes(samples)
    k = folds or None
    groups = {
        "flow": {"no flow channels (DSSI only)": replace(cfg, flow=False)},
        "au-flow": {"AU detector without flow channels": replace(cfg, au_flow=False)},
        "stma": {"no STMA": replace(cfg, use_stma=False)},
        "de": {"no DE-Loss": replace(cfg, lambda_de=0.0)},
        "segments": {"segments=2": replace(cfg, n_segments=2),
                     "segments=5": replace(cfg, n_segments=5)},
    }  # fmt: skip
    chosen = list(groups) if ablations else list(ablate or [])
    unknown = set(chosen) - set(groups)
    if unknown:
        err.print(f"[red]unknown ablation {sorted(unknown)}; use {list(groups)}[/red]")
        raise typer.Exit(code=2)

    extra = [(d, _load(dataset, d)) for d in extra_data or []]

    def prepare(c: TrainConfig):  # -> (scored clips, training-only clips)
        return _prepare_roots(samples, extra, c, _prep_cache(out, c), workers)

    clips, extra_clips = prepare(cfg)
    fold_models: list = []  # (test subjects, AU detector): the apex uses the held-out fold's
    main = cross_validate(clips, classes, cfg, k, train_aus=only != "emotion",
                          fit_emotion=only != "au", log_fn=err.print, train_only=extra_clips,
                          on_fold=lambda test, au: fold_models.append((test, au)))  # fmt: skip
    more = f"; training also on {', '.join(map(str, extra_data))}" if extra_data else ""
    report = Report(dataset=f"{dataset} ({data_dir}{more})", main=main, device=_device())
    if "without_flip_tta" in main:
        report.ablations["no flip TTA (same models)"] = main.pop("without_flip_tta")
    if chosen:
        variants = {name: v for g in chosen for name, v in groups[g].items()}
        for name, vcfg in variants.items():
            err.print(f"ablation: {name}")
            vclips, vextra = clips, extra_clips
            if (vcfg.dssi_params, vcfg.pair_params) != (cfg.dssi_params, cfg.pair_params):
                same_frames = (vcfg.n_segments, vcfg.flow_size) == (cfg.n_segments, cfg.flow_size)
                drop_dssi, drop_au = cfg.flow and not vcfg.flow, cfg.au_flow and not vcfg.au_flow
                if same_frames and (drop_dssi or drop_au):
                    vclips = without_flow(clips, dssi=drop_dssi, au=drop_au)
                    vextra = without_flow(extra_clips, dssi=drop_dssi, au=drop_au)
                else:
                    vclips, vextra = prepare(vcfg)
            au_only = vcfg.au_flow != cfg.au_flow  # the AU input changed, not the emotion's
            report.ablations[name] = cross_validate(
                vclips,
                classes,
                vcfg,
                k,
                train_aus=au_only,
                fit_emotion=not au_only,
                train_only=vextra,
            )
    if report.ablations:
        report.ablations["full (reference)"] = {
            key: main[key] for key in ("uf1", "uar", "emotional", "au_macro_f1") if key in main
        }
    if apex_clips:
        backends = fold_backends(fold_models, cfg) if fold_models else None
        report.apex = apex_mae(samples, n=apex_clips, seed=seed, backends=backends)
    report.write(out)
    err.print((out / "report.md").read_text())


def _prepare_roots(samples, extra: list, cfg, cache: Path, workers: int) -> tuple[list, list]:
    """Prepared clips of the main root and of the extra roots (``[(root, samples)]``), each
    cached on its own (``cache``, ``cache`` + ``_<root name>``); returns ``(main, extra)``."""
    from mer.training import prepare_dataset

    def prep(smp, path: Path) -> list:
        return prepare_dataset(smp, cfg.dssi_params, cache=path, pair_params=cfg.pair_params,
                               workers=workers)  # fmt: skip

    main = prep(samples, cache)
    more = [prep(smp, cache.with_name(f"{cache.name}_{d.name}")) for d, smp in extra]
    return main, [c for clips in more for c in clips]


def _prep_cache(out: Path, cfg) -> Path:
    """Prepared-inputs cache of one input configuration under ``out/cache``."""
    return out / "cache" / f"prep_s{cfg.n_segments}_flow{int(cfg.flow)}_au{int(cfg.au_flow)}"


def _classes(samples) -> list[str]:
    from mer.schemas import EMOTION_CLASSES_MEGC, NO_EMOTION
    from mer.training import clip_label

    classes = list(EMOTION_CLASSES_MEGC)
    if any(clip_label(s) == NO_EMOTION for s in samples):
        classes.append(NO_EMOTION)
    return classes


def _device() -> str:
    import platform

    import torch

    return f"cpu ({platform.processor() or platform.machine()}, {torch.get_num_threads()} threads)"


@app.command()
def train(
    data_dir: Annotated[Path, typer.Argument(help="Data set root.")],
    dataset: Annotated[str, typer.Option(help=_DATASETS)] = "synth",
    out: Annotated[Path, typer.Option(help="Where the checkpoints go.")] = Path("model_store"),
    report: Annotated[
        Path | None, typer.Option(help="report.json of `mer evaluate` to record in the card.")
    ] = None,
    epochs: Annotated[int, typer.Option()] = 25,
    au_epochs: Annotated[int, typer.Option()] = 12,
    seed: Annotated[int, typer.Option()] = 0,
    version: Annotated[str, typer.Option(help="Weights version.")] = "1.0.0",
    workers: Annotated[int, typer.Option(help="Processes preparing the clips.")] = 2,
    extra_data: Annotated[
        list[Path] | None,
        typer.Option(
            help="Another root of the same data-set kind whose clips join the training and "
            "the folds (grouped by subject with the main set; repeatable)."
        ),
    ] = None,
    only: Annotated[OnlyModel | None, typer.Option(help="Train one model (default both).")] = None,
) -> None:
    """Train SMA-STN and the AU detector on the whole set and write the shipped weights."""
    import time

    from mer.inference import AU_FILE, EMOTION_FILE
    from mer.models.cards import au_card, emotion_card
    from mer.models.weights import save_checkpoint
    from mer.training import TrainConfig, train_au, train_emotion

    samples = _load(dataset, data_dir)
    cfg = TrainConfig(emotion_epochs=epochs, au_epochs=au_epochs, seed=seed)
    classes = _classes(samples)
    extra = [(d, _load(dataset, d)) for d in extra_data or []]
    main_clips, extra_clips = _prepare_roots(samples, extra, cfg, out / ".cache" / "prep", workers)
    clips = main_clips + extra_clips
    metrics = json.loads(report.read_text())["main"] if report else {}
    apex = json.loads(report.read_text()).get("apex", {}) if report else {}
    credit = (
        "Trained on synthetic micro-expressions rendered on the Face Research Lab London Set "
        "(DeBruine, L. & Jones, B. (2017), doi:10.6084/m9.figshare.5047666.v5, CC BY 4.0)."
    )
    roots = " ".join(f"--extra-data {d}" for d in extra_data or [])
    data_desc = (
        f"{dataset}: {len(clips)} clips, {len({c.subject for c in clips})} identities from "
        f"{', '.join(d.name for d in [data_dir, *(extra_data or [])])}; command: mer train "
        f"{data_dir} {roots + ' ' if roots else ''}--dataset {dataset} --epochs {epochs} "
        f"--au-epochs {au_epochs} --seed {seed}{' --only ' + only if only else ''}"
    )
    out.mkdir(parents=True, exist_ok=True)
    common = {"training_data": data_desc, "version": version, "license": credit}
    t_emo = t_au = 0.0
    if only in (None, "emotion"):
        t0 = time.perf_counter()
        emo = train_emotion(clips, classes, cfg, log_fn=err.print)
        t_emo = time.perf_counter() - t0
        save_checkpoint(out / EMOTION_FILE, emo, emotion_card(
            cfg, classes, metrics={k: metrics[k] for k in ("uf1", "uar") if k in metrics},
            extra={"train_seconds": round(t_emo, 1), "device": _device()}, **common,
        ))  # fmt: skip
    if only in (None, "au"):
        t0 = time.perf_counter()
        au = train_au(clips, cfg, log_fn=err.print)
        t_au = time.perf_counter() - t0
        save_checkpoint(out / AU_FILE, au, au_card(
            cfg, metrics={k: metrics[k] for k in ("au_macro_f1",) if k in metrics} | (
                {"apex_mae_rel": apex["mae_rel"]} if apex else {}),
            extra={"train_seconds": round(t_au, 1), "device": _device(),
                   "au_thresholds": getattr(au, "au_thresholds", {})}, **common,
        ))  # fmt: skip
    _write_model_card(out, report, data_desc, credit, classes, cfg, t_emo, t_au, version)
    wrote = [str(out / f) for f, m in ((EMOTION_FILE, "emotion"), (AU_FILE, "au"))
             if only in (None, m)]  # fmt: skip
    err.print(f"wrote {' and '.join(wrote)} in {t_emo + t_au:.0f} s")


def _write_model_card(
    out: Path, report: Path | None, data_desc: str, credit: str, classes: list[str], cfg,
    t_emo: float, t_au: float, version: str,
) -> None:  # fmt: skip
    """``MODEL_CARD.md`` beside the checkpoints: data, command, metrics, licence."""
    from mer.inference import AU_FILE, EMOTION_FILE
    from mer.models.weights import sha256_file

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
        f"- Training data: {data_desc}",
        f"- Training time: {t_emo:.0f} s (SMA-STN) + {t_au:.0f} s (AU detector) on "
        f"{_device()}",
        f"- Licence and credit: {credit}",
        "- Limits: synthetic training data only (2-D warps of real faces); no licensed "
        "micro-expression data set was seen. Treat predictions on real video accordingly.",
    ]  # fmt: skip
    if report is not None:
        lines += ["", "## Evaluation (subject-grouped CV, pooled over folds)", "",
                  (report.parent / "report.md").read_text() if (report.parent / "report.md")
                  .is_file() else json.dumps(json.loads(report.read_text())["main"])]  # fmt: skip
    (out / "MODEL_CARD.md").write_text("\n".join(lines) + "\n")


if __name__ == "__main__":  # pragma: no cover - after every command is defined
    app()
