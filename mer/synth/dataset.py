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
seed, so the output does not depend on the number of worker processes.
"""

from __future__ import annotations

import csv
import logging
import os
import shutil
import time
from collections import Counter, OrderedDict
from collections.abc import Callable, Sequence
from concurrent.futures import ProcessPoolExecutor, as_completed
from dataclasses import dataclass, field, replace
from multiprocessing import get_context
from pathlib import Path
from typing import Any

import cv2
import numpy as np

from mer.schemas import AU_NAMES
from mer.synth.faces import CREDIT, LondonFace, load_london_faces
from mer.synth.render import FaceRig, render_clip
from mer.synth.sampling import assign_names, sample_clip_spec
from mer.synth.spec import ClipSpec, SynthConfig

log = logging.getLogger(__name__)

SHEET_NAME = "CASME2-coding.csv"
META_NAME = "synth_meta.csv"
FRAMES_NAME = "synth_frames.csv"
CACHE_NAME = "london_landmarks.npz"
SHEET_COLUMNS: tuple[str, ...] = (
    "Subject", "Filename", "OnsetFrame", "ApexFrame", "OffsetFrame", "Action Units",
    "Estimated Emotion",
)  # fmt: skip
META_COLUMNS: tuple[str, ...] = (
    "Subject", "Filename", "fps", "frame_step", "first_frame", "last_frame", "n_frames",
    "identity", "mode", "kind", "emotion", "megc3", "amplitude_iod", "au_peak_iod",
    "smile_alpha", "blink", "noise_sigma", "jpeg_quality", "seed",
)  # fmt: skip
DEFAULT_FPS: tuple[float, ...] = (25.0, 30.0, 60.0, 100.0, 200.0)


@dataclass
class ClipRecord:
    """What the writer needs from one rendered clip.

    Attributes:
        spec: the clip's specification.
        frame_numbers: ``(T,)`` written frame numbers.
        intensity: ``(T,)`` expression (or non-emotional movement) course in [0, 1].
        au_intensity: ``(T, len(AU_NAMES))`` AU displacements, IOD fraction.
        blink: ``(T,)`` lid closure.
    """

    spec: ClipSpec
    frame_numbers: list[int]
    intensity: np.ndarray
    au_intensity: np.ndarray
    blink: np.ndarray


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


def clip_dir(root: Path, spec: ClipSpec) -> Path:
    """``root/sub{subject}/{filename}``."""
    return root / f"sub{spec.subject}" / spec.filename


def write_frames(
    folder: Path, numbers: Sequence[int], frames: Sequence[np.ndarray], quality: int
) -> None:
    """Write ``img{n}.jpg`` files (RGB or grey uint8 arrays) at JPEG ``quality``.

    Raises:
        OSError: encoding or writing failed.
    """
    folder.mkdir(parents=True, exist_ok=True)
    params = [cv2.IMWRITE_JPEG_QUALITY, int(quality)]
    for n, img in zip(numbers, frames, strict=True):
        arr = img if img.ndim == 2 else cv2.cvtColor(img, cv2.COLOR_RGB2BGR)
        ok, buf = cv2.imencode(".jpg", arr, params)
        if not ok:
            raise OSError(f"JPEG encoding failed for {folder}/img{n}.jpg")
        (folder / f"img{n}.jpg").write_bytes(buf.tobytes())


# ---- worker side ---------------------------------------------------------------------------
_RIGS: OrderedDict[str, FaceRig] = OrderedDict()
_MAX_RIGS = 3


def _rig(face: LondonFace) -> FaceRig:
    rig = _RIGS.get(face.identity)
    if rig is None:
        rig = FaceRig(face)
        _RIGS[face.identity] = rig
        while len(_RIGS) > _MAX_RIGS:
            _RIGS.popitem(last=False)
    else:
        _RIGS.move_to_end(face.identity)
    return rig


def render_and_write(
    specs: list[ClipSpec], face: LondonFace, cfg: SynthConfig, root: str
) -> list[ClipRecord]:
    """Render and write the clips of one identity (runs in a worker process).

    Args:
        specs: clips of ``face``'s identity, with names assigned.
        face: the identity.
        cfg: rendering options.
        root: the data set root.

    Returns:
        one :class:`ClipRecord` per clip, in order.
    """
    cv2.setNumThreads(1)
    rig = _rig(face)
    out = []
    for spec in specs:
        r = render_clip(spec, rig, cfg)
        write_frames(
            clip_dir(Path(root), spec), r.frame_numbers, r.frames, spec.nuisance.jpeg_quality
        )
        out.append(ClipRecord(spec, r.frame_numbers, r.intensity, r.au_intensity, r.blink))
    return out


# ---- sheets -----------------------------------------------------------------------------


def _sort_key(rec: ClipRecord) -> tuple[int, str, str]:
    s = rec.spec.subject
    return (int(s) if s.isdigit() else 10**9, s, rec.spec.filename)


def write_sheets(root: Path, records: Sequence[ClipRecord]) -> Path:
    """Write ``CASME2-coding.csv``, ``synth_meta.csv`` and ``synth_frames.csv``.

    Returns:
        the coding sheet's path.
    """
    recs = sorted(records, key=_sort_key)
    sheet = root / SHEET_NAME
    with sheet.open("w", newline="", encoding="utf-8") as fh:
        w = csv.writer(fh)
        w.writerow(SHEET_COLUMNS)
        for r in recs:
            s = r.spec
            w.writerow([s.subject, s.filename, s.onset, s.apex, s.offset, s.au_string, s.emotion])
    with (root / META_NAME).open("w", newline="", encoding="utf-8") as fh:
        w = csv.writer(fh)
        w.writerow(META_COLUMNS)
        for r in recs:
            s = r.spec
            peaks = r.au_intensity.max(axis=0)
            au_peak = ";".join(f"{AU_NAMES[i]}:{peaks[i]:.5f}" for i in np.flatnonzero(peaks > 0))
            w.writerow(
                [
                    s.subject,
                    s.filename,
                    f"{s.fps:g}",
                    s.frame_step,
                    s.first,
                    s.last,
                    len(r.frame_numbers),
                    s.identity,
                    s.mode,
                    s.kind,
                    s.emotion,
                    s.megc3 or "",
                    f"{s.amplitude:.5f}",
                    au_peak,
                    f"{s.smile_alpha:.4f}",
                    len(s.blinks),
                    f"{s.nuisance.noise_sigma:.3f}",
                    s.nuisance.jpeg_quality,
                    s.seed,
                ]
            )
    with (root / FRAMES_NAME).open("w", newline="", encoding="utf-8") as fh:
        w = csv.writer(fh)
        w.writerow(["Subject", "Filename", "Frame", "intensity", "blink", *AU_NAMES])
        for r in recs:
            for k, n in enumerate(r.frame_numbers):
                w.writerow(
                    [
                        r.spec.subject,
                        r.spec.filename,
                        n,
                        f"{r.intensity[k]:.4f}",
                        f"{r.blink[k]:.4f}",
                        *(f"{v:.5f}" for v in r.au_intensity[k]),
                    ]
                )
    (root / "CREDITS.txt").write_text(
        "Synthetic micro-expressions generated by mer.synth.\n" + CREDIT + "\n"
        "Licence of the face photos: https://creativecommons.org/licenses/by/4.0/\n",
        encoding="utf-8",
    )
    return sheet


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
