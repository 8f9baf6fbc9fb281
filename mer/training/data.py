"""Data preparation: clips turned into model inputs exactly as at inference.

:func:`mer.preprocess.align_frames` crops (128 px), :func:`mer.model_inputs.dssi_u8_from_crops`
DSSI and :func:`mer.model_inputs.au_input_u8` AU inputs (frame, local neutral reference, flow
between them) as :mod:`mer.pipeline` forms them; cached per data set as ``.npz`` + JSON.
"""

from __future__ import annotations

import json
import logging
import multiprocessing as mp
from collections.abc import Sequence
from concurrent.futures import ProcessPoolExecutor
from dataclasses import dataclass, replace
from pathlib import Path

import cv2
import numpy as np
from rich.progress import track

from mer.datasets.common import Sample
from mer.model_inputs import au_input_u8, dssi_needed, dssi_u8_from_crops
from mer.schemas import AU_NAMES, EMOTION_CLASSES_MEGC, NO_EMOTION
from mer.training.config import TrainConfig

log = logging.getLogger(__name__)


@dataclass
class PreparedClip:
    """One clip turned into model inputs.

    Attributes:
        subject: the grouping key (``dataset/subject``).
        clip: clip id.
        label: emotion class (MEGC 3-class or ``"none"``) or None (dropped for emotion).
        aus: AU names present in the clip (restricted to :data:`AU_NAMES`).
        dssi: ``(S+1, C, M, M)`` uint8 (:func:`mer.model_inputs.dssi_u8_from_crops`).
        pairs: ``(P, K, 1, M, M)`` uint8 AU inputs (:func:`mer.model_inputs.au_input_u8`:
            frame, reference (, flow u, v)).
        pair_targets: ``(P, len(AU_NAMES))`` float32 in {0, 1}.
    """

    subject: str
    clip: str
    label: str | None
    aus: tuple[str, ...]
    dssi: np.ndarray
    pairs: np.ndarray
    pair_targets: np.ndarray


def read_rgb(path: Path) -> np.ndarray:
    """An image file -> ``(H, W, 3)`` uint8 RGB.

    Raises:
        ValueError: the file cannot be read as an image.
    """
    img = cv2.imread(str(path), cv2.IMREAD_COLOR)
    if img is None:
        raise ValueError(f"cannot read {path}")
    return cv2.cvtColor(img, cv2.COLOR_BGR2RGB)


def clip_label(sample: Sample) -> str | None:
    """Emotion class for training: MEGC 3-class, ``"none"`` for non-emotional clips."""
    if sample.emotion in {NO_EMOTION, "nonemotional", "non-emotional"}:
        return NO_EMOTION
    return sample.megc3


def prepare_clip(
    sample: Sample,
    landmarker,
    dssi_params: dict[str, int | bool | str],
    pair_params: dict[str, int | bool | str] | None = None,
) -> PreparedClip:
    """Align the frames a clip needs and build its DSSI and AU pairs.

    Pairs (frame, reference) -> targets: (apex, onset) and (apex, offset) -> the clip's
    AUs; (onset, first frame), (offset, last frame) -> none (neutral vs neutral); (onset,
    apex) -> none (the aftermath direction the pipeline's two-sided reference avoids).

    Raises:
        ValueError: no face found in the clip's frames.
    """
    from mer.preprocess import align_frames

    on, ap, off = sample.onset_index, sample.apex_index, sample.offset_index
    last = sample.n_frames - 1
    need = set(dssi_needed(on, off, dssi_params)) | {0, on, ap, off, last}
    order = sorted(need)
    images = [read_rgb(sample.frame_paths[i]) for i in order]
    ts = [sample.timestamps_s[i] for i in order]
    crops, _ = align_frames(images, ts, landmarker)
    by = dict(zip(order, crops, strict=True))
    dssi = dssi_u8_from_crops(by, on, off, dssi_params)
    present = [a for a in sample.au_names if a in AU_NAMES]
    target = np.array([1.0 if a in present else 0.0 for a in AU_NAMES], np.float32)
    zero = np.zeros_like(target)
    # non-emotional clips keep their AUs (speech shows AU25/AU26 and lip AUs): FACS codes
    # the movement, whatever its meaning
    spec = [((ap, on), target), ((ap, off), target), ((on, 0), zero), ((off, last), zero),
            ((on, ap), zero)]  # fmt: skip
    pairs = np.stack([au_input_u8(by[a], by[b], pair_params or {}) for (a, b), _ in spec])
    targets = np.stack([t for _, t in spec])
    return PreparedClip(
        subject=sample.subject_key, clip=sample.clip, label=clip_label(sample),
        aus=tuple(present), dssi=dssi, pairs=pairs, pair_targets=targets,
    )  # fmt: skip


def _prepare_or_reason(sample: Sample, landmarker, dssi_params, pair_params):
    """:func:`prepare_clip`, or the reason the clip is skipped (str)."""
    try:
        return prepare_clip(sample, landmarker, dssi_params, pair_params)
    except ValueError as exc:
        return f"skipping {sample.subject}/{sample.clip}: {exc}"


_worker_lm = None  # the landmarker of a preparation worker process


def _prepare_in_worker(args):  # -> PreparedClip | str
    global _worker_lm
    from mer.face.landmarks import create_landmarker

    if _worker_lm is None:
        _worker_lm = create_landmarker(max_faces=1)
    return _prepare_or_reason(args[0], _worker_lm, *args[1:])


def prepare_dataset(
    samples: Sequence[Sample],
    dssi_params: dict[str, int | bool | str],
    cache: Path | None = None,
    progress: bool = True,
    pair_params: dict[str, int | bool | str] | None = None,
    workers: int = 1,
) -> list[PreparedClip]:
    """Prepare every clip (cached in ``cache`` as ``.npz`` + JSON, keyed by subject/clip).

    Clips without a face are skipped with a warning (counted in the log).

    Args:
        samples: the data set's clips.
        dssi_params: :attr:`TrainConfig.dssi_params`.
        cache: path stem of the cache files; reused when its DSSI and pair parameters and
            clip count match.
        progress: show a progress bar.
        pair_params: :attr:`TrainConfig.pair_params` (None: no flow, the v1.1 pairs).
        workers: processes (each with its own landmarker); 1 prepares in-process.
    """
    pair_params = dict(pair_params or {})
    if cache is not None and cache.with_suffix(".json").is_file():
        meta = json.loads(cache.with_suffix(".json").read_text())
        if (meta.get("dssi") == dssi_params and meta.get("pair", {}) == pair_params
                and meta.get("n") == len(samples)):  # fmt: skip
            arr = np.load(cache.with_suffix(".npz"))
            return [
                PreparedClip(m["subject"], m["clip"], m["label"], tuple(m["aus"]),
                             arr[f"d{i}"], arr[f"p{i}"], arr[f"t{i}"])
                for i, m in enumerate(meta["clips"])
            ]  # fmt: skip
    tasks = [(s, dssi_params, pair_params) for s in samples]
    if workers > 1 and len(tasks) > 1:
        pool = ProcessPoolExecutor(workers, mp_context=mp.get_context("spawn"))
        results = pool.map(_prepare_in_worker, tasks, chunksize=8)
    else:
        from mer.face.landmarks import create_landmarker

        lm = create_landmarker(max_faces=1)
        pool = None
        results = (_prepare_or_reason(s, lm, dssi_params, pair_params) for s in samples)
    out: list[PreparedClip] = []
    skipped = 0
    try:
        if progress:
            results = track(results, total=len(tasks), description="preparing clips")
        for r in results:
            if isinstance(r, str):
                skipped += 1
                log.warning("%s", r)
            else:
                out.append(r)
    finally:
        if pool is not None:
            pool.shutdown()
    if skipped:
        log.warning("%d of %d clips skipped (no face)", skipped, len(samples))
    if cache is not None:
        cache.parent.mkdir(parents=True, exist_ok=True)
        arrays = {}
        for i, c in enumerate(out):
            arrays[f"d{i}"], arrays[f"p{i}"], arrays[f"t{i}"] = c.dssi, c.pairs, c.pair_targets
        np.savez_compressed(cache.with_suffix(".npz"), **arrays)
        meta = {"dssi": dssi_params, "pair": pair_params, "n": len(samples), "clips": [
            {"subject": c.subject, "clip": c.clip, "label": c.label, "aus": list(c.aus)}
            for c in out]}  # fmt: skip
        cache.with_suffix(".json").write_text(json.dumps(meta))
    return out


def without_flow(clips: Sequence[PreparedClip], dssi: bool, au: bool) -> list[PreparedClip]:
    """The clips as prepared without the flow channels of the DSSI (``dssi``) and / or of
    the AU inputs (``au``): the flow channels come after the images, so dropping them gives
    exactly the inputs of the flow-free configuration (ablations need no new alignment)."""
    return [
        replace(c, dssi=c.dssi[:, :1] if dssi else c.dssi, pairs=c.pairs[:, :2] if au else c.pairs)
        for c in clips
    ]


def dataset_classes(samples: Sequence[Sample]) -> list[str]:
    """The emotion classes trained on ``samples``: the MEGC 3 classes, plus ``"none"`` when
    a clip is non-emotional (:func:`clip_label`)."""
    classes = list(EMOTION_CLASSES_MEGC)
    if any(clip_label(s) == NO_EMOTION for s in samples):
        classes.append(NO_EMOTION)
    return classes


def prep_cache_path(out: Path, cfg: TrainConfig) -> Path:
    """The prepared-inputs cache stem of one input configuration under ``out/cache``
    (``prep_s<segments>_flow<0|1>_au<0|1>``)."""
    return out / "cache" / f"prep_s{cfg.n_segments}_flow{int(cfg.flow)}_au{int(cfg.au_flow)}"


def prepare_roots(
    samples: Sequence[Sample],
    extra: Sequence[tuple[Path, Sequence[Sample]]],
    cfg: TrainConfig,
    cache: Path,
    workers: int,
) -> tuple[list[PreparedClip], list[PreparedClip]]:
    """Prepared clips of a main data-set root and of extra roots, each cached on its own.

    Args:
        samples: the main root's clips (cached at ``cache``).
        extra: ``[(root, its clips)]``; each cached at ``cache`` + ``_<root name>``.
        cfg: the recipe (:attr:`TrainConfig.dssi_params`, :attr:`TrainConfig.pair_params`).
        cache: path stem of the main root's cache files (:func:`prepare_dataset`).
        workers: processes preparing the clips.

    Returns:
        ``(main clips, the extra roots' clips in one list)``.
    """

    def prep(smp: Sequence[Sample], path: Path) -> list[PreparedClip]:
        return prepare_dataset(smp, cfg.dssi_params, cache=path, pair_params=cfg.pair_params,
                               workers=workers)  # fmt: skip

    main = prep(samples, cache)
    more = [prep(smp, cache.with_name(f"{cache.name}_{d.name}")) for d, smp in extra]
    return main, [c for clips in more for c in clips]
