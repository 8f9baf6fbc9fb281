"""Write long multi-event clips as videos with labels in the real dev set's format.

Layout of ``OUT``::

    OUT/labels.json             one entry per clip, the format of
                                ../shared/data/dev/labels.json (README there)
    OUT/synth_long_000.mp4 ...  H.264 (libx264, CRF 18, yuv420p) or MPEG-4 Part 2 via PyAV
    OUT/gt/synth_long_000.npz   per-frame ground truth: au_intensity (T, 14) IOD fractions
                                in AU_NAMES order, closure (T,), gaze (T, 2), head (T, 5)
    OUT/README.md               command, identities, credit

Label conventions: frame indices are 0-based in decode order and inclusive; ``onset`` is the
last frame before the movement starts, ``offset`` the last frame before it has ended
(``floor`` of the course's end), ``apex`` the middle of the plateau and ``apex_range`` the
plateau (speech: the whole span, as the real labels do). Expression AUs are those rendered
(``AU25`` / ``AU26`` for speech; its small lip AUs are named in ``desc``); ``intensity`` is
``subtle`` below 3 % IOD, ``moderate`` below 7 %, ``strong`` above (peak displacement of the
primary AU). ``confidence`` is ``high`` (rendered ground truth). ``blinks`` lists the frame
of each blink's fullest closure.

Identities: ``held_out_fold`` keeps the identities that :func:`mer.training.group_folds`
puts in that test fold when ``mer evaluate --folds FOLDS`` (seed 0) runs on a full London
synthetic set such as synth_v4 (subject keys ``synth/subNN``): that fold's models never saw
these faces. The shipped weights were trained on all identities, so no London face is
unseen by them.
"""

from __future__ import annotations

import json
import math
import time
from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path

import numpy as np

from mer.synth.faces import CREDIT, list_identities, load_london_faces
from mer.synth.long_render import LongRendered, LongRig, apex_frame, render_long_clip
from mer.synth.long_spec import LongClipConfig, LongClipSpec, TimelineEvent
from mer.synth.long_timeline import sample_long_clip
from mer.synth.render import FaceRig
from mer.video_writer import write_video  # noqa: F401  (re-exported; the synthetic clips' encoder)

LABELS_FILE = "labels.json"
GT_DIR = "gt"
#: ``good_for`` tag of a clip holding a segment of this kind.
GOOD_FOR = {"speech": "speech_confound", "head_turn": "head_motion", "gaze": "gaze_shift",
            "eyes": "eye_closure"}  # fmt: skip


def _intensity(amp: float) -> str:
    return "subtle" if amp < 0.03 else "moderate" if amp < 0.07 else "strong"


def event_label(ev: TimelineEvent, fps: float) -> dict:
    """One ``events`` entry of the real-label format for a segment.

    Args:
        ev: the segment.
        fps: frame rate, frames/s.

    Returns:
        ``{onset, apex, offset, apex_range, aus, emotion, intensity, confidence, kind,
        apex_scoreable, desc}`` (ints for frames, AU names like ``"AU12"``).
    """
    onset, offset = int(math.floor(ev.onset)), int(math.floor(ev.offset))
    apex = apex_frame(ev)
    a0 = int(math.ceil(ev.peak_start))
    a1 = max(a0, int(math.floor(ev.peak_end)))
    dur = (offset - onset) / fps
    if ev.kind == "expression":
        side = {0: "", -1: ", subject's right side only", 1: ", subject's left side only"}
        desc = (
            f"{ev.scale} {ev.name} ({dur:.2f} s): "
            + "+".join(f"AU{a:02d}" for a in ev.aus)
            + f"{side[ev.side]}, peak {100 * ev.amplitude:.1f} % IOD; rise {onset}-{a0}, "
            f"plateau {a0}-{a1}, fall {a1}-{offset}"
        )
        aus = sorted(f"AU{a:02d}" for a in ev.aus)
        intensity = _intensity(ev.amplitude)
    elif ev.kind == "speech":
        desc = (
            f"{ev.name}, {len(ev.syllables)} syllables, jaw {100 * ev.amplitude:.1f} % IOD, "
            "lip AUs " + "+".join(f"AU{a:02d}" for a in ev.aus[2:]) + "; no emotion"
        )
        aus, intensity, a0, a1 = ["AU25", "AU26"], _intensity(ev.amplitude), onset, offset
    elif ev.kind == "gaze":
        desc = f"{ev.name}, irises shift {100 * ev.amplitude:.1f} % IOD; face neutral"
        aus, intensity = [], "moderate"
    elif ev.kind == "eyes":
        desc = f"{ev.name} (AU43, out of set), closed {a0}-{a1}; face neutral"
        aus, intensity = [], "moderate"
    else:
        r, ls, sx, sy, sq = ev.head
        desc = (
            f"{ev.name}: roll {r:+.1f} deg, scale {100 * math.expm1(ls):+.1f} %, shift "
            f"{100 * sx:+.1f} / {100 * sy:+.1f} % of the frame, squash {100 * sq:.1f} %; "
            "face neutral"
        )
        aus, intensity = [], "moderate"
    return {
        "onset": onset,
        "apex": apex,
        "offset": offset,
        "apex_range": [a0, a1],
        "aus": aus,
        "emotion": ev.emotion,
        "intensity": intensity,
        "confidence": "high",
        "kind": ev.kind,
        "apex_scoreable": ev.kind == "expression",
        "desc": desc,
    }


def clip_labels(spec: LongClipSpec, size: int, note: str = "") -> dict:
    """The labels entry of one clip (format of ``../shared/data/dev/labels.json``)."""
    events = [event_label(ev, spec.fps) for ev in spec.events]
    blinks = [int(math.floor(b[0] + b[1] + 0.5 * b[2] + 0.5)) for b in spec.blinks]
    n_expr = sum(e["kind"] == "expression" for e in events)
    kinds = sorted({e["kind"] for e in events})
    return {
        "fps": spec.fps,
        "frames": spec.n_frames,
        "resolution": [size, size],
        "rest_frames": [spec.rest[0], spec.rest[1]],
        "events": events,
        "blinks": blinks,
        "no_face_frames": [],
        "no_face_detail": [],
        "notes": (
            f"Synthetic (mer synth-long), London identity {spec.identity}, seed {spec.seed}: "
            f"{n_expr} expressions among {len(events)} events ({', '.join(kinds)}), "
            f"{len(blinks)} blinks, head micro-motion throughout. {note}{CREDIT}"
        ),
        "good_for": ["multi_event_spotting", "synthetic"]
        + [GOOD_FOR[k] for k in kinds if k in GOOD_FOR],
    }


def heldout_identities(fold: int, folds: int = 3, identities: Sequence[str] | None = None,
                       seed: int = 0) -> list[str]:  # fmt: skip
    """London ids in test fold ``fold`` of ``mer evaluate --folds FOLDS`` on a synthetic set
    of ``identities`` (default all detected London ids; keys ``synth/subNN``).

    Raises:
        ValueError: fold outside ``0 .. folds - 1``.
    """
    from mer.datasets.casme2 import subject_folder
    from mer.training import group_folds

    if not 0 <= fold < folds:
        raise ValueError(f"fold {fold} outside 0..{folds - 1}")
    ids = list(identities) if identities is not None else list_identities()
    key = {f"synth/{subject_folder(f'{int(i):02d}')}": i for i in ids}
    return sorted(key[k] for k in group_folds(list(key), folds, seed)[fold])


@dataclass(frozen=True)
class LongSummary:
    """What :func:`generate_long_clips` wrote: clips, frames, seconds spent rendering (without
    encoding), frames/s of rendering and the labels file."""

    n_clips: int
    n_frames: int
    render_seconds: float
    total_seconds: float
    labels: Path

    @property
    def render_fps(self) -> float:
        """Rendered frames per second of rendering time (one core)."""
        return self.n_frames / max(self.render_seconds, 1e-9)

    def __str__(self) -> str:
        return (
            f"{self.n_clips} clips, {self.n_frames} frames; rendering {self.render_seconds:.1f} s "
            f"({self.render_fps:.1f} frames/s), total {self.total_seconds:.1f} s -> {self.labels}"
        )


def _save_gt(path: Path, r: LongRendered) -> None:
    path.parent.mkdir(parents=True, exist_ok=True)
    np.savez_compressed(path, au_intensity=r.au_intensity.astype(np.float32),
                        closure=r.closure.astype(np.float32), gaze=r.gaze.astype(np.float32),
                        head=r.head.astype(np.float32))  # fmt: skip


def generate_long_clips(
    out_dir: Path | str,
    n_clips: int,
    seed: int = 0,
    cfg: LongClipConfig | None = None,
    identities: Sequence[str] | None = None,
    held_out_fold: int | None = None,
    folds: int = 3,
    london_root: Path | str | None = None,
    landmark_cache: Path | str | None = None,
    plan: Sequence[str] | None = None,
    command: str = "",
) -> LongSummary:
    """Render ``n_clips`` long multi-event clips with labels (see the module notes).

    Clip ``i`` uses its own stream ``default_rng([seed, i])`` and identity ``i`` of a
    seed-shuffled list (cycled), so a clip does not depend on how many are made.

    Args:
        out_dir: output folder (created; existing clips of the same names are replaced).
        n_clips: number of clips.
        seed: random seed.
        cfg: clip options (default :class:`LongClipConfig`).
        identities: London ids; None uses all, or the held-out fold's.
        held_out_fold: keep only the identities of this test fold (0-based) of
            ``mer evaluate --folds FOLDS`` (:func:`heldout_identities`).
        folds: fold count of that split.
        london_root: the London Set folder (default ``<shared data>/faces/london``).
        landmark_cache: landmark cache file (default ``out_dir/london_landmarks.npz``).
        plan: segment kinds of every clip (:func:`mer.synth.long_timeline.sample_long_clip`).
        command: the command line, recorded in ``README.md``.

    Returns:
        the summary.

    Raises:
        FileNotFoundError: the London Set is missing.
        ValueError: no identities, bad fold, or a plan that does not fit.
    """
    cfg = cfg or LongClipConfig()
    t0 = time.perf_counter()
    root = Path(out_dir)
    root.mkdir(parents=True, exist_ok=True)
    ids = list(identities) if identities is not None else list_identities(london_root)
    if held_out_fold is not None:
        ids = heldout_identities(held_out_fold, folds, ids)
    if not ids:
        raise ValueError("no identities")
    cache = Path(landmark_cache) if landmark_cache is not None else root / "london_landmarks.npz"
    order = [ids[i] for i in np.random.default_rng(seed).permutation(len(ids))]
    chosen = [order[i % len(order)] for i in range(n_clips)]
    faces = load_london_faces(london_root, sorted(set(chosen)), cache_path=cache)
    labels: dict[str, dict] = {}
    rigs: dict[str, LongRig] = {}
    n_frames, render_s = 0, 0.0
    split = f"held-out fold {held_out_fold} of {folds}" if held_out_fold is not None else ""
    for i, ident in enumerate(chosen):
        if ident not in faces:
            raise ValueError(f"London {ident}: no face detected in the neutral photo")
        spec = sample_long_clip(np.random.default_rng([seed, i]), ident, cfg, plan)
        rig = rigs.setdefault(ident, LongRig(FaceRig(faces[ident])))
        r = render_long_clip(spec, rig, cfg)
        name = f"synth_long_{i:03d}.mp4"
        write_video(root / name, r.frames, cfg.fps)
        _save_gt(root / GT_DIR / f"{Path(name).stem}.npz", r)
        labels[name] = clip_labels(spec, cfg.out_size, f"{split}. " if split else "")
        n_frames += len(r.frames)
        render_s += r.seconds
    path = root / LABELS_FILE
    path.write_text(json.dumps(labels, indent=1) + "\n", encoding="utf-8")
    (root / "README.md").write_text(
        "# Synthetic long multi-event clips (mer synth-long)\n\n"
        f"Command: `{command or 'generate_long_clips(...)'}`\n\n"
        f"Identities: {', '.join(sorted(set(chosen)))} ({split or 'all identities'}).\n\n"
        "Labels: labels.json (format of ../shared/data/dev/labels.json); per-frame ground truth "
        "in gt/*.npz (see mer/synth/long_dataset.py).\n\n" + CREDIT + "\n",
        encoding="utf-8",
    )
    return LongSummary(len(chosen), n_frames, render_s, time.perf_counter() - t0, path)
