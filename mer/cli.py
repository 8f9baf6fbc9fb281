"""Command line: ``mer analyze VIDEO [--json OUT] [--csv OUT]``, ``mer submit``, ``mer train``,
``mer evaluate`` ... (Typer + Rich).

Importing this module imports no science code (NumPy, OpenCV, PyAV, MediaPipe, torch):
each command imports what it needs when it runs (``bench/cli_startup.py`` measures it).
"""

from __future__ import annotations

import contextlib
import os
import sys
from collections.abc import Iterator
from contextlib import nullcontext
from enum import StrEnum
from pathlib import Path
from typing import TYPE_CHECKING, Annotated, TextIO

import typer
from rich.console import Console
from rich.progress import BarColumn, Progress, TaskProgressColumn, TextColumn, TimeElapsedColumn

from mer.cli_submit import NeutralOption, parse_neutral_s, submit
from mer.cli_synth import synth, synth_long
from mer.serving_cli import model_store_app

if TYPE_CHECKING:
    from mer.aus.reference import NeutralSpan

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


@contextlib.contextmanager
def progress_bar(quiet: bool, verbose: bool, width: int) -> Iterator[Progress]:
    """The Rich progress bar of a long command, on standard error when it is a terminal and
    not ``quiet``; the native libraries' log lines hidden unless ``verbose`` (and not
    ``quiet``), Python's warnings too when ``quiet`` (:func:`native_logs_to`).

    Args:
        quiet: no bar, no log lines.
        verbose: keep the MediaPipe / TFLite / absl log lines.
        width: characters of the task description column.

    Yields:
        The :class:`rich.progress.Progress` (disabled when not shown).
    """
    show = not quiet and err.is_terminal
    with (
        open(os.devnull, "w") as devnull,
        native_logs_to(None if verbose and not quiet else devnull, quiet) as stderr,
        Progress(
            TextColumn(f"[bold]{{task.description:<{width}}}"), BarColumn(), TaskProgressColumn(),
            TimeElapsedColumn(), console=Console(file=stderr) if show else err, disable=not show,
        ) as bar,
    ):  # fmt: skip
        yield bar


class OnlyModel(StrEnum):
    """``--only`` of ``mer train`` / ``mer evaluate``: one of the two models."""

    emotion = "emotion"
    au = "au"


@app.callback()
def _main() -> None:
    """Facial micro-expression analysis: apex spotting, Action Units, emotion."""


def _neutral_span(text: str | None) -> NeutralSpan | None:
    """``--neutral START:END`` (seconds) as a :class:`NeutralSpan`.

    Raises:
        NeutralReferenceError: not two numbers separated by a colon, or a bad stretch.
    """
    if text is None:
        return None
    from mer.aus.reference import NeutralSpan
    from mer.errors import NeutralReferenceError

    try:
        return NeutralSpan(*parse_neutral_s(text))
    except ValueError as exc:
        raise NeutralReferenceError(str(exc)) from exc


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
    neutral: NeutralOption = None,
) -> None:
    """Analyse VIDEO on the embedded in-process pipeline and report apex, intervals and AUs."""
    from mer.errors import MERError
    from mer.export import write_csv
    from mer.pipeline import AnalysisConfig, analyze_video_compact
    from mer.settings import get_settings

    try:
        config = AnalysisConfig(include_blendshapes=blendshapes, neutral=_neutral_span(neutral))
        with progress_bar(quiet, verbose, width=10) as bar:
            task = bar.add_task("probe", total=100)

            def progress(stage: str, pct: float) -> None:
                bar.update(task, description=stage, completed=pct)

            result = analyze_video_compact(
                video,
                settings=get_settings(),
                config=config,
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
    n = result.neutral
    if n is not None and n.source == "reference":
        out.print(f"neutral: the reference {n.start_s:.3f}-{n.end_s:.3f} s ({n.frames} frames)")
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
    neutral_from_labels: Annotated[
        bool,
        typer.Option(
            "--neutral-from-labels",
            help="Analyse clips with a labelled rest_frames against that stretch as the "
            "person's neutral (as a client who knows it would); default: estimated.",
        ),
    ] = False,
) -> None:
    """Analyse every hand-labelled real clip with the shipped pipeline and score it
    (MEGC spotting, apex, AUs at the apex, emotion); writes a JSON/Markdown/PNG report."""
    from mer.errors import MERError
    from mer.evaluation import evaluate_real

    try:
        with progress_bar(quiet, verbose, width=40) as bar:
            task = bar.add_task("clips", total=None)

            def progress(done: int, total: int, name: str) -> None:
                bar.update(task, description=name or "done", completed=done, total=total)

            report = evaluate_real(
                labels, videos or [], out, progress=progress,
                neutral_from_labels=neutral_from_labels,
            )  # fmt: skip
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
    from mer.training import TrainConfig, dataset_classes
    from mer.training.evaluate import ABLATION_GROUPS, ablation_configs, evaluate_cv

    samples = _load(dataset, data_dir)
    cfg = TrainConfig(emotion_epochs=epochs, au_epochs=au_epochs, seed=seed)
    chosen = list(ABLATION_GROUPS) if ablations else list(ablate or [])
    try:
        ablation_configs(cfg, chosen)
    except ValueError as exc:
        err.print(f"[red]{exc}[/red]")
        raise typer.Exit(code=2) from exc
    extra = [(d, _load(dataset, d)) for d in extra_data or []]
    more = f"; training also on {', '.join(map(str, extra_data))}" if extra_data else ""
    report = evaluate_cv(
        samples, dataset_classes(samples), cfg, out, folds=folds or None, extra=extra,
        ablations=chosen, only=only.value if only else None, apex_clips=apex_clips,
        workers=workers, dataset=f"{dataset} ({data_dir}{more})", log_fn=err.print,
    )  # fmt: skip
    report.write(out)
    err.print((out / "report.md").read_text())


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
    from mer.inference import AU_FILE, EMOTION_FILE
    from mer.training import TrainConfig, dataset_classes, prepare_roots
    from mer.training.shipped import train_shipped_weights, training_data_text

    samples = _load(dataset, data_dir)
    cfg = TrainConfig(emotion_epochs=epochs, au_epochs=au_epochs, seed=seed)
    extra = [(d, _load(dataset, d)) for d in extra_data or []]
    main_clips, extra_clips = prepare_roots(samples, extra, cfg, out / ".cache" / "prep", workers)
    clips = main_clips + extra_clips
    roots = " ".join(f"--extra-data {d}" for d in extra_data or [])
    command = (
        f"mer train {data_dir} {roots + ' ' if roots else ''}--dataset {dataset} --epochs "
        f"{epochs} --au-epochs {au_epochs} --seed {seed}{' --only ' + only if only else ''}"
    )
    seconds = train_shipped_weights(
        clips, dataset_classes(samples), cfg, out, only=only.value if only else None,
        version=version, report=report, log_fn=err.print,
        training_data=training_data_text(dataset, clips, [data_dir, *(extra_data or [])],
                                         command),
    )  # fmt: skip
    wrote = [str(out / f) for f, m in ((EMOTION_FILE, "emotion"), (AU_FILE, "au"))
             if only in (None, m)]  # fmt: skip
    err.print(f"wrote {' and '.join(wrote)} in {sum(seconds.values()):.0f} s")


if __name__ == "__main__":  # pragma: no cover - after every command is defined
    app()
