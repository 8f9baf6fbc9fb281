"""Command line: ``mer analyze VIDEO [--json OUT] [--csv OUT]`` (Typer + Rich)."""

from __future__ import annotations

import json
import sys
from pathlib import Path
from typing import Annotated

import typer
from rich.console import Console
from rich.progress import BarColumn, Progress, TaskProgressColumn, TextColumn, TimeElapsedColumn
from rich.table import Table

from mer.errors import MERError

app = typer.Typer(help="Facial micro-expression analysis.", no_args_is_help=True)
err = Console(stderr=True)


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
    quiet: Annotated[bool, typer.Option("--quiet", "-q", help="No progress or summary.")] = False,
) -> None:
    """Analyse VIDEO on the embedded in-process pipeline and report apex, intervals and AUs."""
    from mer.export import write_csv
    from mer.pipeline import analyze_video
    from mer.settings import get_settings

    show = not quiet and err.is_terminal
    try:
        with Progress(
            TextColumn("[bold]{task.description:<10}"),
            BarColumn(),
            TaskProgressColumn(),
            TimeElapsedColumn(),
            console=err,
            disable=not show,
        ) as bar:
            task = bar.add_task("probe", total=100)

            def progress(stage: str, pct: float) -> None:
                bar.update(task, description=stage, completed=pct)

            result = analyze_video(video, settings=get_settings(), progress=progress)
    except MERError as exc:
        err.print(f"[red]error[/red] {exc.code}: {exc.message}")
        raise typer.Exit(code=2) from exc

    payload = result.model_dump_json(indent=2)
    if json_out is not None:
        if str(json_out) == "-":
            sys.stdout.write(payload + "\n")
        else:
            json_out.write_text(payload)
    if csv_out is not None:
        with csv_out.open("w", newline="") as fh:
            write_csv(result, fh)
    if quiet:
        return
    out = Console(stderr=str(json_out) == "-")
    v = result.video
    out.print(
        f"[bold]{v.filename}[/bold]: {v.frame_count} frames, {v.fps:.2f} fps, "
        f"{v.width}x{v.height}, {v.codec}; face in "
        f"{sum(f.face for f in result.frames)} frames; "
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
    if json.loads(payload) and json_out is None and csv_out is None:
        out.print("(use --json OUT / --csv OUT to save the full per-frame result)")


if __name__ == "__main__":  # pragma: no cover
    app()
