"""Generate a synthetic micro-expression data set in the CASME II layout.

Output (``ROOT`` = ``out_dir``)::

    ROOT/sub01/EP02_01/img46.jpg ...    frames, 1-based recording frame numbers; clips with
                                        more than ``max_frames`` frames are written every
                                        ``frame_step`` frames (onset/apex/offset included)
    ROOT/CASME2-coding.csv              Subject, Filename, OnsetFrame, ApexFrame, OffsetFrame,
                                        Action Units, Estimated Emotion (CASME II columns);
                                        non-emotional clips (``nonemotional_fraction``,
                                        folders ``EP08_*``): emotion ``none``, AU cell
                                        ``25+26+...`` (speech) or empty (blink, head)
    ROOT/synth_meta.csv                 per clip: fps, frame_step, identity, mode (au,
                                        smile, speech, blink, head), kind, MEGC class,
                                        amplitude, AU peaks, blinks, noise, JPEG
    ROOT/synth_frames.csv               per written frame: expression course, blink closure
                                        and the displacement of each AU (IOD fraction)
    ROOT/london_landmarks.npz           landmark cache of the London photos
    ROOT/CREDITS.txt                    attribution of the face photos (CC BY 4.0)

One subject = one London identity (``sub01`` = face ``001``), so leave-one-subject-out
leaves identities out. :func:`mer.datasets.load_casme2` reads the result (fps from
``synth_meta.csv``). Everything is deterministic given ``seed``: the clip specifications are
drawn in order from one random stream in the main process; each clip renders from its own
seed, so the output does not depend on the number of worker processes. This module plans
the clips and runs the workers; the frames and sheets are written by :mod:`mer.synth.writer`
(its names stay importable from here).
"""

from __future__ import annotations

import logging
import os
import shutil
import time
from collections import Counter
from collections.abc import Callable, Sequence
from concurrent.futures import ProcessPoolExecutor, as_completed
from dataclasses import dataclass, field, replace
from multiprocessing import get_context
from pathlib import Path
from typing import Any

import numpy as np

from mer.synth.faces import LondonFace, load_london_faces
from mer.synth.sampling import assign_names, sample_clip_spec
from mer.synth.spec import ClipSpec, SynthConfig
from mer.synth.writer import (
    CACHE_NAME,
    FRAMES_NAME,
    META_COLUMNS,
    META_NAME,
    SHEET_COLUMNS,
    SHEET_NAME,
    ClipRecord,
    _sort_key,
    clip_dir,
    render_and_write,
    write_frames,
    write_sheets,
)

__all__ = [
    "CACHE_NAME",
    "DEFAULT_FPS",
    "FRAMES_NAME",
    "META_COLUMNS",
    "META_NAME",
    "SHEET_COLUMNS",
    "SHEET_NAME",
    "ClipRecord",
    "SynthSummary",
    "clip_dir",
    "generate_dataset",
    "plan_clips",
    "render_and_write",
    "write_frames",
    "write_sheets",
]

log = logging.getLogger(__name__)
DEFAULT_FPS: tuple[float, ...] = (25.0, 30.0, 60.0, 100.0, 200.0)


@dataclass
class SynthSummary:
    """Result of :func:`generate_dataset`.

    Attributes:
        out_dir: the data set root.
        n_clips: clips written.
        n_frames: frames written.
        seconds: wall time of the run.
        sheet: path of ``CASME2-coding.csv``.
        specs: the clip specifications, in sheet order.
    """

    out_dir: Path
    n_clips: int
    n_frames: int
    seconds: float
    sheet: Path
    specs: list[ClipSpec] = field(repr=False)

    def __str__(self) -> str:
        kinds = Counter(s.emotion for s in self.specs)
        return (
            f"{self.n_clips} clips, {self.n_frames} frames, "
            f"{len({s.subject for s in self.specs})} subjects in {self.seconds:.1f} s -> "
            f"{self.out_dir} (emotions: {dict(kinds.most_common())})"
        )


def _prepare_out_dir(root: Path, overwrite: bool) -> None:
    if root.exists() and any(root.iterdir()):
        ours = [p for p in root.iterdir() if p.name.startswith("sub") and p.is_dir()]
        ours += [root / n for n in (SHEET_NAME, META_NAME, FRAMES_NAME, "CREDITS.txt")]
        if not overwrite:
            if any(p.exists() for p in ours):
                raise FileExistsError(f"{root} already holds a data set (pass overwrite=True)")
            return
        for p in ours:
            if p.is_dir():
                shutil.rmtree(p)
            elif p.exists():
                p.unlink()
    root.mkdir(parents=True, exist_ok=True)


def plan_clips(
    faces: dict[str, LondonFace],
    n_clips: int,
    seed: int,
    fps_choices: Sequence[float],
    cfg: SynthConfig,
) -> list[ClipSpec]:
    """Draw the specifications of ``n_clips`` clips (deterministic by ``seed``).

    Identities and frame rates are drawn uniformly; see
    :func:`mer.synth.sampling.sample_clip_spec` for the rest.

    Raises:
        ValueError: no faces, no frame rates, or ``n_clips < 1``.
    """
    if not faces:
        raise ValueError("no usable London faces")
    if not fps_choices:
        raise ValueError("fps_choices is empty")
    if n_clips < 1:
        raise ValueError("n_clips must be >= 1")
    rng = np.random.default_rng(seed)
    ids = sorted(faces)
    geos = {i: faces[i].smile_geometry() for i in ids}
    specs = []
    for _ in range(n_clips):
        ident = ids[int(rng.integers(len(ids)))]
        fps = float(fps_choices[int(rng.integers(len(fps_choices)))])
        geo = geos[ident]
        specs.append(
            sample_clip_spec(
                rng,
                ident,
                fps,
                cfg,
                smile_corner=geo.corner if geo is not None else None,
                smile_lip_gap=geo.lip_gap if geo is not None else 0.0,
            )
        )
    return assign_names(specs)


def generate_dataset(
    out_dir: Path | str,
    n_clips: int,
    seed: int = 0,
    fps_choices: Sequence[float] = DEFAULT_FPS,
    identities: Sequence[str] | None = None,
    *,
    config: SynthConfig | None = None,
    workers: int | None = None,
    london_root: Path | str | None = None,
    landmark_cache: Path | str | None = None,
    progress: bool = True,
    overwrite: bool = False,
    chunk_size: int = 4,
    on_clip: Callable[[ClipRecord], None] | None = None,
    nonemotional_fraction: float | None = None,
    **options: Any,
) -> SynthSummary:
    """Render ``n_clips`` synthetic micro-expression clips into ``out_dir`` (CASME II layout).

    Args:
        out_dir: data set root (created).
        n_clips: number of clips.
        seed: master seed; same seed and options -> identical files.
        fps_choices: frame rates drawn uniformly per clip (frames/s).
        identities: London ids to use (``["001", "002"]``); None uses all 102.
        config: rendering / sampling options; keyword ``options`` override its fields
            (e.g. ``out_size=128, kind="macro"``).
        workers: processes; None uses ``min(os.cpu_count(), 8)``; 1 renders in-process.
        london_root: the London Set folder (default ``../shared/data/faces/london``).
        landmark_cache: landmark cache file (default ``out_dir/london_landmarks.npz``).
        progress: show a rich progress bar.
        overwrite: replace a data set already in ``out_dir``.
        chunk_size: clips per worker task (clips of one identity share a task).
        on_clip: called in the main process with each finished clip's record.
        nonemotional_fraction: share of non-emotional clips (emotion ``"none"``: speech,
            blink or head movement); None keeps the config's (default 0.2).

    Returns:
        a :class:`SynthSummary`.

    Raises:
        FileExistsError: ``out_dir`` already holds a data set and ``overwrite`` is False.
        FileNotFoundError: the London Set is missing.
        ValueError: bad arguments.
    """
    t0 = time.perf_counter()
    if nonemotional_fraction is not None:
        options["nonemotional_fraction"] = float(nonemotional_fraction)
    cfg = replace(config or SynthConfig(), **options)
    if not 0.0 <= cfg.nonemotional_fraction <= 1.0:
        raise ValueError(f"nonemotional_fraction {cfg.nonemotional_fraction} not in [0, 1]")
    root = Path(out_dir)
    _prepare_out_dir(root, overwrite)
    cache = Path(landmark_cache) if landmark_cache is not None else root / CACHE_NAME
    faces = load_london_faces(
        london_root, list(identities) if identities is not None else None, cache_path=cache
    )
    specs = plan_clips(faces, n_clips, seed, fps_choices, cfg)

    by_id: dict[str, list[ClipSpec]] = {}
    for s in specs:
        by_id.setdefault(s.identity, []).append(s)
    tasks = [
        (lst[i : i + chunk_size], faces[ident])
        for ident, lst in sorted(by_id.items())
        for i in range(0, len(lst), max(1, chunk_size))
    ]
    n_workers = workers if workers is not None else min(os.cpu_count() or 1, 8)
    n_workers = max(1, min(n_workers, len(tasks)))
    records: list[ClipRecord] = []

    bar = None
    task_id = None
    if progress:
        from rich.progress import (
            BarColumn,
            MofNCompleteColumn,
            Progress,
            TextColumn,
            TimeElapsedColumn,
            TimeRemainingColumn,
        )

        bar = Progress(
            TextColumn("[bold]synth[/bold] {task.description}"),
            BarColumn(),
            MofNCompleteColumn(),
            TimeElapsedColumn(),
            TimeRemainingColumn(),
        )
        bar.start()
        task_id = bar.add_task(f"{root.name} ({n_workers} proc)", total=len(specs))

    def done(recs: list[ClipRecord]) -> None:
        records.extend(recs)
        if on_clip is not None:
            for r in recs:
                on_clip(r)
        if bar is not None and task_id is not None:
            bar.advance(task_id, len(recs))

    try:
        if n_workers == 1:
            for chunk, face in tasks:
                done(render_and_write(chunk, face, cfg, str(root)))
        else:
            ctx = get_context("spawn")
            with ProcessPoolExecutor(max_workers=n_workers, mp_context=ctx) as pool:
                futs = [pool.submit(render_and_write, c, f, cfg, str(root)) for c, f in tasks]
                for fut in as_completed(futs):
                    done(fut.result())
    finally:
        if bar is not None:
            bar.stop()
    sheet = write_sheets(root, records)
    recs = sorted(records, key=_sort_key)
    return SynthSummary(
        out_dir=root,
        n_clips=len(recs),
        n_frames=sum(len(r.frame_numbers) for r in recs),
        seconds=time.perf_counter() - t0,
        sheet=sheet,
        specs=[r.spec for r in recs],
    )
