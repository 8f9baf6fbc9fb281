"""``mer synth OUT_DIR`` (short clips, CASME II layout) and ``mer synth-long OUT_DIR`` (long
multi-event videos with labels.json): the synthetic data sets on the London Set faces.

The one implementation of the synth command line: ``python -m mer.synth`` forwards here
(:mod:`mer.synth.__main__`). Its defaults are :func:`mer.synth.generate_dataset`'s (those of
:class:`mer.synth.SynthConfig`) except the clip count. Kept apart from :mod:`mer.cli`, and
like it imports no science code until a command runs.
"""

from __future__ import annotations

import sys
from enum import StrEnum
from pathlib import Path
from typing import Annotated

import typer
from rich.console import Console

err = Console(stderr=True)


class SynthKind(StrEnum):
    """``--kind`` of ``mer synth``: micro, macro or a mix (30 % macro)."""

    micro = "micro"
    macro = "macro"
    mixed = "mixed"


def synth(
    out_dir: Annotated[Path, typer.Argument(help="Where to write the CASME II-layout set.")],
    clips: Annotated[int, typer.Option(help="Number of clips.")] = 200,
    seed: Annotated[int, typer.Option(help="Random seed.")] = 0,
    fps: Annotated[
        list[float] | None,
        typer.Option(help="Frame rate drawn per clip (repeatable; default 25 30 60 100 200)."),
    ] = None,
    identities: Annotated[
        list[str] | None, typer.Option(help="London id to use, e.g. 001 (repeatable).")
    ] = None,
    size: Annotated[int, typer.Option(help="Output crop side (pixels).")] = 256,
    max_frames: Annotated[int, typer.Option(help="Most frames written per clip.")] = 32,
    kind: Annotated[SynthKind, typer.Option(help="micro | macro | mixed")] = SynthKind.micro,
    workers: Annotated[
        int | None, typer.Option(help="Processes (default min(CPU count, 8)).")
    ] = None,
    grayscale: Annotated[bool, typer.Option("--grayscale", help="Grey frames (SAMM).")] = False,
    nonemotional_fraction: Annotated[
        float,
        typer.Option(
            help="Share of non-emotional clips (speech, blink, head movement; emotion 'none')."
        ),
    ] = 0.2,
    emotions: Annotated[
        list[str] | None,
        typer.Option(
            help="Draw only this CASME II emotion (equal weights; repeatable), e.g. happiness."
        ),
    ] = None,
    open_mouth_smile: Annotated[
        float,
        typer.Option(
            help="Share of macro happiness clips drawn as open-mouth smiles (AU6+12+25+26)."
        ),
    ] = 0.0,
    london_root: Annotated[Path | None, typer.Option(help="London Set folder.")] = None,
    overwrite: Annotated[
        bool, typer.Option("--overwrite", help="Replace a data set already in OUT_DIR.")
    ] = False,
    progress: Annotated[bool, typer.Option(help="Show a progress bar.")] = True,
) -> None:
    """Render synthetic micro-expressions on the London Set neutral faces (CC BY 4.0)."""
    from mer.synth.dataset import DEFAULT_FPS, generate_dataset

    try:
        s = generate_dataset(
            out_dir,
            clips,
            seed=seed,
            fps_choices=fps or DEFAULT_FPS,
            identities=identities,
            workers=workers,
            london_root=london_root,
            overwrite=overwrite,
            progress=progress,
            out_size=size,
            max_frames=max_frames,
            kind=str(kind),
            grayscale=grayscale,
            nonemotional_fraction=nonemotional_fraction,
            open_mouth_smile=open_mouth_smile,
            **({"emotion_weights": dict.fromkeys(emotions, 1.0)} if emotions else {}),
        )
    except (FileExistsError, FileNotFoundError, ValueError) as exc:
        err.print(f"[red]{exc}[/red]")
        raise typer.Exit(code=2) from exc
    err.print(str(s))


def synth_long(
    out_dir: Annotated[Path, typer.Argument(help="Folder for the videos and labels.json.")],
    clips: Annotated[int, typer.Option(help="Number of clips.")] = 12,
    seed: Annotated[int, typer.Option(help="Random seed.")] = 0,
    duration: Annotated[float, typer.Option(help="Clip length, seconds.")] = 20.0,
    fps: Annotated[float, typer.Option(help="Frames per second.")] = 30.0,
    size: Annotated[int, typer.Option(help="Frame side, pixels (even).")] = 320,
    held_out_fold: Annotated[
        int | None,
        typer.Option(
            help="Only the London identities of this test fold (0-based) of `mer evaluate "
            "--folds FOLDS` on a full synthetic set (e.g. synth_v4): faces that fold's "
            "models never saw."
        ),
    ] = None,
    folds: Annotated[int, typer.Option(help="Fold count of --held-out-fold.")] = 3,
    identity: Annotated[
        list[str] | None, typer.Option(help="London id to use (repeatable; default all).")
    ] = None,
    gaze: Annotated[bool, typer.Option(help="Gaze-shift segments (iris movement).")] = True,
    london_root: Annotated[Path | None, typer.Option(help="London Set folder.")] = None,
) -> None:
    """Long clips with several micro / macro expressions, speech, blinks, gaze shifts and head
    turns on the London faces; labels in the real dev set's format (labels.json)."""
    from mer.synth.long_dataset import generate_long_clips
    from mer.synth.long_spec import LongClipConfig

    if size % 2 or size < 64:
        raise typer.BadParameter("--size must be even and at least 64")
    cfg = LongClipConfig(duration_s=duration, fps=fps, out_size=size, gaze=gaze)
    try:
        s = generate_long_clips(
            out_dir, clips, seed=seed, cfg=cfg, identities=identity,
            held_out_fold=held_out_fold, folds=folds, london_root=london_root,
            command="mer synth-long " + " ".join(sys.argv[2:]),
        )  # fmt: skip
    except (FileNotFoundError, ValueError) as exc:
        err.print(f"[red]{exc}[/red]")
        raise typer.Exit(code=2) from exc
    err.print(str(s))
