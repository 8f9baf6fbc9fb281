"""Training and honest evaluation of SMA-STN and the AU detector.

Protocol (mission doc, "Evaluation"): subject-grouped cross-validation — leave-one-subject-
out (LOSO) on real data sets, ``k`` identity-grouped folds on the synthetic set (no
identity in both train and test) — with a fixed number of epochs (no model selection on
test folds), fixed seeds, and UF1 / UAR computed on the predictions **pooled over all
folds** (not averaged per fold). AU detection: per-AU F1 at 0.5 and their macro mean.

Inputs are made exactly as at inference: :func:`mer.preprocess.align_frames` crops (128 px),
:func:`mer.inference.dssi_u8_from_crops` DSSI and :func:`mer.inference.au_input_u8` AU inputs
(frame, local neutral reference, flow between them) as :mod:`mer.pipeline` forms them.
"""

from __future__ import annotations

import json
import logging
import time
from collections.abc import Callable, Mapping, Sequence
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import TYPE_CHECKING

import numpy as np

from mer.datasets.common import Sample
from mer.inference import (
    AU_FLOW_PRESET,
    FLOW_PRESET,
    FLOW_SIZE,
    au_input_u8,
    dssi_needed,
    dssi_u8_from_crops,
    normalise,
)
from mer.schemas import AU_NAMES

if TYPE_CHECKING:  # the pipeline module imports cv2 / mediapipe: only for the type
    from mer.pipeline import AnalysisConfig

log = logging.getLogger(__name__)

NON_EMOTIONAL = "none"
DSSI_MEAN, DSSI_STD = 128.0, 32.0  #: normalisation of the uint8 DSSI payload
PAIR_MEAN, PAIR_STD = 128.0, 64.0  #: normalisation of the uint8 AU pair payload
#: backbone widths for CPU training at 64x64 (about 4x fewer FLOPs than the defaults)
CHANNELS = (16, 32, 64, 128)


@dataclass
class PreparedClip:
    """One clip turned into model inputs.

    Attributes:
        subject: the grouping key (``dataset/subject``).
        clip: clip id.
        label: emotion class (MEGC 3-class or ``"none"``) or None (dropped for emotion).
        aus: AU names present in the clip (restricted to :data:`AU_NAMES`).
        dssi: ``(S+1, C, M, M)`` uint8 (:func:`mer.inference.dssi_u8_from_crops`).
        pairs: ``(P, K, 1, M, M)`` uint8 AU inputs (:func:`mer.inference.au_input_u8`:
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


def _read_rgb(path: Path) -> np.ndarray:
    import cv2

    img = cv2.imread(str(path), cv2.IMREAD_COLOR)
    if img is None:
        raise ValueError(f"cannot read {path}")
    return cv2.cvtColor(img, cv2.COLOR_BGR2RGB)


def clip_label(sample: Sample) -> str | None:
    """Emotion class for training: MEGC 3-class, ``"none"`` for non-emotional clips."""
    if sample.emotion in {"none", "nonemotional", "non-emotional"}:
        return NON_EMOTIONAL
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
    images = [_read_rgb(sample.frame_paths[i]) for i in order]
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
    from rich.progress import track

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
        import multiprocessing as mp
        from concurrent.futures import ProcessPoolExecutor

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
    from dataclasses import replace

    return [
        replace(c, dssi=c.dssi[:, :1] if dssi else c.dssi, pairs=c.pairs[:, :2] if au else c.pairs)
        for c in clips
    ]


# ---------------------------------------------------------------------------------------
# metrics
# ---------------------------------------------------------------------------------------


def confusion(y_true: np.ndarray, y_pred: np.ndarray, n: int) -> np.ndarray:
    """``(n, n)`` int64 confusion matrix, rows = truth."""
    m = np.zeros((n, n), np.int64)
    np.add.at(m, (y_true, y_pred), 1)
    return m


def uf1_uar(cm: np.ndarray) -> tuple[float, float]:
    """Unweighted (macro) F1 and average recall over classes present in the truth."""
    f1s, recalls = [], []
    for c in range(len(cm)):
        tp = cm[c, c]
        fn = cm[c].sum() - tp
        fp = cm[:, c].sum() - tp
        if cm[c].sum() == 0:
            continue
        recalls.append(tp / (tp + fn))
        f1s.append(2 * tp / (2 * tp + fp + fn) if tp + fp + fn else 0.0)
    return float(np.mean(f1s)), float(np.mean(recalls))


def per_au_f1(targets: np.ndarray, probs: np.ndarray, threshold: float = 0.5) -> dict[str, float]:
    """F1 of each AU with at least one positive, at ``threshold``."""
    out = {}
    pred = probs >= threshold
    for j, name in enumerate(AU_NAMES):
        t = targets[:, j] > 0.5
        if t.sum() == 0:
            continue
        tp = (pred[:, j] & t).sum()
        fp = (pred[:, j] & ~t).sum()
        fn = (~pred[:, j] & t).sum()
        out[name] = float(2 * tp / (2 * tp + fp + fn))
    return out


# ---------------------------------------------------------------------------------------
# training
# ---------------------------------------------------------------------------------------


@dataclass
class TrainConfig:
    """Hyper-parameters (fixed in advance; never tuned on test folds)."""

    emotion_epochs: int = 25
    au_epochs: int = 12
    batch_size: int = 32
    lr: float = 2e-3
    weight_decay: float = 1e-4
    lambda_de: float = 0.1
    de_margin: float = 1.0
    use_stma: bool = True
    n_segments: int = 3
    frames_per_segment: int = 5
    global_frames: int = 9
    flow: bool = True  #: optical-flow channels in the DSSI (our addition; ablated)
    au_flow: bool = True  #: optical-flow channels in the AU detector's input (our addition)
    flow_size: int = FLOW_SIZE  #: aligned-crop side (px) the flow channels are computed at
    #: share of the training identities held out to set each AU's decision threshold (0: all
    #: train, thresholds 0.5); see :func:`calibrate_au_thresholds`
    au_calibration: float = 0.15
    #: SMA-STN averages its logits over the input and its mirror in eval mode (ours; not yet
    #: evaluated, so off; with it on, the CV report also gives the scores without it)
    flip_tta: bool = False
    seed: int = 0
    threads: int = 0

    @property
    def dssi_params(self) -> dict[str, int | bool | str]:
        """DSSI parameters for :func:`mer.inference.dssi_u8_from_crops`."""
        p: dict[str, int | bool | str] = {
            "n_segments": self.n_segments, "frames_per_segment": self.frames_per_segment,
            "global_frames": self.global_frames, "flow": self.flow}  # fmt: skip
        if self.flow:
            p |= {"flow_size": self.flow_size, "flow_preset": FLOW_PRESET}
        return p

    @property
    def pair_params(self) -> dict[str, int | bool | str]:
        """AU-input parameters for :func:`mer.inference.au_input_u8`."""
        if not self.au_flow:
            return {"flow": False}
        return {"flow": True, "flow_size": self.flow_size, "flow_preset": AU_FLOW_PRESET}

    @property
    def emotion_in_chans(self) -> int:
        """Channels of each DSSI image: dynamic image (+ flow u, v)."""
        return 3 if self.flow else 1


def emotion_kwargs(cfg: TrainConfig, n_classes: int) -> dict:
    """Registry kwargs of the SMA-STN trained with ``cfg`` (recorded in the checkpoint)."""
    return {"num_classes": n_classes, "num_segments": cfg.n_segments,
            "in_chans": cfg.emotion_in_chans, "use_stma": cfg.use_stma,
            "channels": list(CHANNELS), "flip_tta": cfg.flip_tta}  # fmt: skip


def au_kwargs(cfg: TrainConfig) -> dict:
    """Registry kwargs of the AU detector trained with ``cfg`` (recorded in the checkpoint)."""
    return {"num_aus": len(AU_NAMES), "in_chans": 1, "channels": list(CHANNELS),
            "flow": cfg.au_flow}  # fmt: skip


def emotion_card(cfg: TrainConfig, classes: Sequence[str], **fields):  # -> ModelCard
    """The :class:`~mer.models.weights.ModelCard` of an SMA-STN trained with ``cfg``: model
    kwargs, labels, input size ``[C, M, M]``, DSSI normalisation and parameters; ``fields``
    add the rest (version, training data, metrics, ...)."""
    from mer.inference import MODEL_SIZE
    from mer.models.weights import ModelCard

    c = cfg.emotion_in_chans
    return ModelCard(
        model_name="sma_stn", model_kwargs=emotion_kwargs(cfg, len(classes)),
        labels=list(classes), label_kind="classes", input_size=[c, MODEL_SIZE, MODEL_SIZE],
        mean=[DSSI_MEAN] * c, std=[DSSI_STD] * c, dssi=cfg.dssi_params, **fields,
    )  # fmt: skip


def au_card(cfg: TrainConfig, **fields):  # -> ModelCard
    """The :class:`~mer.models.weights.ModelCard` of an AU detector trained with ``cfg``
    (:func:`au_kwargs`, :data:`mer.schemas.AU_NAMES`, input normalisation, ``pair``
    parameters of :func:`mer.inference.au_input_u8`) plus ``fields``."""
    from mer.inference import MODEL_SIZE
    from mer.models.weights import ModelCard

    return ModelCard(
        model_name="au_detector", model_kwargs=au_kwargs(cfg), labels=list(AU_NAMES),
        label_kind="aus", input_size=[1, MODEL_SIZE, MODEL_SIZE], mean=[PAIR_MEAN],
        std=[PAIR_STD], pair=cfg.pair_params, **fields,
    )  # fmt: skip


def _setup(cfg: TrainConfig):
    import torch

    torch.manual_seed(cfg.seed)
    if cfg.threads:
        torch.set_num_threads(cfg.threads)
    torch.set_flush_denormal(True)
    return torch


def _augment(x, rng: np.random.Generator, u_index: tuple[int, ...] | None = None):
    """Random horizontal flip of the whole sample (AUs and emotions are symmetric).

    Args:
        x: ``(B, ..., H, W)`` normalised float tensor (flow channels centred on 0).
        u_index: index (after the batch axis) of the horizontal flow channel, negated with
            the flip (a mirrored movement to the right is a movement to the left); None when
            the input has no flow.
    """
    import torch

    flip = torch.from_numpy(rng.random(len(x)) < 0.5)
    x = x.clone()
    xf = torch.flip(x[flip], dims=[-1])
    if u_index is not None:
        xf[(slice(None), *u_index)] *= -1.0
    x[flip] = xf
    return x


def train_emotion(
    clips: Sequence[PreparedClip],
    classes: Sequence[str],
    cfg: TrainConfig,
    log_fn: Callable[[str], None] | None = None,
):  # -> nn.Module
    """Train SMA-STN on the clips whose label is in ``classes``; returns it in eval mode."""
    torch = _setup(cfg)
    from mer.models import create_model
    from mer.models.losses import sma_stn_loss

    data = [c for c in clips if c.label in classes]
    x_all = normalise(np.stack([c.dssi for c in data]), DSSI_MEAN, DSSI_STD)
    y_all = torch.tensor([list(classes).index(c.label) for c in data])
    counts = torch.bincount(y_all, minlength=len(classes)).float().clamp(min=1)
    weights = (counts.sum() / counts)[y_all]  # class-balanced sampling
    model = create_model("sma_stn", **emotion_kwargs(cfg, len(classes)))
    opt = torch.optim.AdamW(model.parameters(), lr=cfg.lr, weight_decay=cfg.weight_decay)
    steps = cfg.emotion_epochs * max(1, len(data) // cfg.batch_size)
    sched = torch.optim.lr_scheduler.OneCycleLR(opt, max_lr=cfg.lr, total_steps=steps)
    rng = np.random.default_rng(cfg.seed)
    gen = torch.Generator().manual_seed(cfg.seed)
    model.train()
    for step in range(steps):
        idx = torch.multinomial(weights, cfg.batch_size, replacement=True, generator=gen)
        xb = _augment(x_all[idx], rng, (slice(None), 1) if cfg.flow else None)
        # every neutral input is the same all-zero DSSI: one row serves the whole batch
        out = sma_stn_loss(model, xb, y_all[idx], lambda_de=cfg.lambda_de,
                           margin=cfg.de_margin, x_neutral=torch.zeros_like(xb[:1]))  # fmt: skip
        opt.zero_grad()
        out["loss"].backward()
        opt.step()
        sched.step()
        if log_fn and (step % 50 == 0 or step == steps - 1):
            log_fn(f"emotion step {step + 1}/{steps} loss {out['loss'].item():.3f} "
                   f"ce {out['ce'].item():.3f} de {out['de'].item():.3f}")  # fmt: skip
    return model.eval()


def calibrate_au_thresholds(model, clips: Sequence[PreparedClip]) -> dict[str, float]:
    """Set each AU's decision threshold on held-out clips and fold it into the classifier.

    For every AU with positives in ``clips``, the threshold in 0.05, 0.10, ..., 0.95 with
    the best F1 (ties: the one nearest 0.5) is found on the model's probabilities; the
    classifier bias is then shifted by ``-logit(threshold)``, so that probability 0.5 of the
    returned model is that threshold (what the pipeline and the F1 at 0.5 use). The class
    balancing of the training loss (``pos_weight``) calibrates every AU to a balanced prior;
    for rare AUs that over-calls at 0.5. Our choice, set on training identities only.

    Args:
        model: an :class:`~mer.models.au_detector.AUDetector` in eval mode (changed in place).
        clips: held-out calibration clips (never test clips).

    Returns:
        AU name -> threshold applied (0.5 where the clips have no positive).
    """
    import torch

    probs = _predict(model, np.concatenate([c.pairs for c in clips]), PAIR_MEAN, PAIR_STD, True)
    targets = np.concatenate([c.pair_targets for c in clips]) > 0.5
    grid = np.round(np.arange(0.05, 0.951, 0.05), 2)
    out: dict[str, float] = {}
    with torch.no_grad():
        for j, name in enumerate(AU_NAMES):
            t = targets[:, j]
            if not t.any():
                out[name] = 0.5
                continue
            pred = probs[:, j][:, None] >= grid[None, :]  # (N, G)
            tp = (pred & t[:, None]).sum(0)
            f1 = 2 * tp / (pred.sum(0) + t.sum())
            best = np.flatnonzero(f1 >= f1.max() - 1e-12)
            thr = float(grid[best[np.argmin(np.abs(grid[best] - 0.5))]])
            out[name] = thr
            model.fc.bias[j] -= float(np.log(thr / (1.0 - thr)))
    return out


def train_au(
    clips: Sequence[PreparedClip], cfg: TrainConfig, log_fn: Callable[[str], None] | None = None
):  # -> nn.Module
    """Train the AU detector on the clips' pairs; returns it in eval mode.

    With ``cfg.au_calibration > 0`` that share of the identities (at least one, when there
    are two or more) is held out of training and sets the AU thresholds
    (:func:`calibrate_au_thresholds`); the applied thresholds are in the returned model's
    ``au_thresholds`` attribute (AU name -> threshold).
    """
    torch = _setup(cfg)
    from mer.models import create_model

    calib: list[PreparedClip] = []
    subjects = sorted({c.subject for c in clips})
    if cfg.au_calibration > 0 and len(subjects) >= 2:
        rng_c = np.random.default_rng(cfg.seed + 1)
        n_cal = min(len(subjects) - 1, max(1, round(cfg.au_calibration * len(subjects))))
        held = {subjects[i] for i in rng_c.permutation(len(subjects))[:n_cal]}
        calib = [c for c in clips if c.subject in held]
        clips = [c for c in clips if c.subject not in held]
    x_all = normalise(np.concatenate([c.pairs for c in clips]), PAIR_MEAN, PAIR_STD)
    t_all = torch.from_numpy(np.concatenate([c.pair_targets for c in clips]))
    pos = t_all.mean(0).clamp(min=1e-3)
    pos_weight = ((1 - pos) / pos).clamp(max=20.0)
    model = create_model("au_detector", **au_kwargs(cfg))
    opt = torch.optim.AdamW(model.parameters(), lr=cfg.lr, weight_decay=cfg.weight_decay)
    steps = cfg.au_epochs * max(1, len(x_all) // cfg.batch_size)
    sched = torch.optim.lr_scheduler.OneCycleLR(opt, max_lr=cfg.lr, total_steps=steps)
    lossf = torch.nn.BCEWithLogitsLoss(pos_weight=pos_weight)
    rng = np.random.default_rng(cfg.seed)
    gen = torch.Generator().manual_seed(cfg.seed)
    model.train()
    for step in range(steps):
        idx = torch.randint(0, len(x_all), (cfg.batch_size,), generator=gen)
        loss = lossf(model(_augment(x_all[idx], rng, (2,) if cfg.au_flow else None)), t_all[idx])
        opt.zero_grad()
        loss.backward()
        opt.step()
        sched.step()
        if log_fn and (step % 100 == 0 or step == steps - 1):
            log_fn(f"au step {step + 1}/{steps} loss {loss.item():.4f}")
    model.eval()
    model.au_thresholds = calibrate_au_thresholds(model, calib) if calib else {}
    if log_fn and calib:
        log_fn(f"AU thresholds on {len(calib)} held-out training clips: {model.au_thresholds}")
    return model


def _predict(model, x_u8: np.ndarray, mean: float, std: float, multilabel: bool) -> np.ndarray:
    import torch

    outs = []
    with torch.inference_mode():
        for i in range(0, len(x_u8), 128):
            logits = model(normalise(x_u8[i : i + 128], mean, std))
            p = torch.sigmoid(logits) if multilabel else torch.softmax(logits, 1)
            outs.append(p.numpy())
    return np.concatenate(outs)


def emotional_metrics(y_true: np.ndarray, probs: np.ndarray, classes: Sequence[str]) -> dict:
    """MEGC 3-class scores of a model that also has the ``"none"`` class.

    Only the clips whose truth is an emotion count, and the prediction is the most probable
    *emotion* (``"none"`` masked out), which is what a 3-class model would answer: the MEGC
    2019 protocol, comparable with the 3-class targets.

    Args:
        y_true: ``(N,)`` int class indices into ``classes``.
        probs: ``(N, len(classes))`` float probabilities.
        classes: class names, including ``"none"``.

    Returns:
        ``{"uf1", "uar", "confusion", "classes", "n_test_clips"}`` over the emotion classes.
    """
    keep = [i for i, c in enumerate(classes) if c != NON_EMOTIONAL]
    mask = np.isin(y_true, keep)
    remap = {c: j for j, c in enumerate(keep)}
    yt = np.array([remap[int(v)] for v in y_true[mask]], np.int64)
    yp = probs[mask][:, keep].argmax(1)
    cm = confusion(yt, yp, len(keep))
    uf1, uar = uf1_uar(cm)
    return {"uf1": uf1, "uar": uar, "confusion": cm.tolist(),
            "classes": [classes[i] for i in keep], "n_test_clips": int(mask.sum())}  # fmt: skip


def group_folds(groups: Sequence[str], k: int | None, seed: int = 0) -> list[set[str]]:
    """Split the distinct groups into ``k`` folds (LOSO when k is None)."""
    uniq = sorted(set(groups))
    if k is None or k >= len(uniq):
        return [{g} for g in uniq]
    rng = np.random.default_rng(seed)
    order = rng.permutation(len(uniq))
    return [{uniq[i] for i in order[f::k]} for f in range(k)]


def cross_validate(
    clips: Sequence[PreparedClip],
    classes: Sequence[str],
    cfg: TrainConfig,
    k: int | None,
    train_aus: bool = True,
    log_fn: Callable[[str], None] | None = None,
    fit_emotion: bool = True,
    train_only: Sequence[PreparedClip] = (),
    on_fold: Callable[[set[str], object], None] | None = None,
) -> dict:
    """Subject-grouped CV; metrics on predictions pooled over all folds.

    ``train_aus`` / ``fit_emotion`` switch either model off (ablations of one model); the
    emotion keys are then absent (AU keys likewise). ``train_only`` clips (another data set
    of the same subjects) join each fold's training when their subject is not tested in
    that fold; they are never scored, so the metrics stay those of ``clips``.
    ``on_fold(test_subjects, au_model)`` is called with each fold's AU detector (trained
    without the fold's test subjects; :attr:`PreparedClip.subject` keys), e.g. to spot the
    apex of those subjects' clips with it (:func:`fold_backends`).

    Returns:
        ``{"uf1", "uar", "confusion", "classes", "au_f1", "au_macro_f1", "folds", ...}``.
    """
    folds = group_folds([c.subject for c in clips], k, cfg.seed)
    y_true, y_pred, y_prob, au_t, au_p = [], [], [], [], []
    y_prob_plain: list[np.ndarray] = []
    t0 = time.perf_counter()
    for f, test in enumerate(folds):
        train = [c for c in [*clips, *train_only] if c.subject not in test]
        held = [c for c in clips if c.subject in test]
        if log_fn:
            log_fn(f"fold {f + 1}/{len(folds)}: {len(train)} train, {len(held)} test clips")
        ev = [c for c in held if c.label in classes] if fit_emotion else []
        if ev:
            model = train_emotion(train, classes, cfg)
            x_ev = np.stack([c.dssi for c in ev])
            p = _predict(model, x_ev, DSSI_MEAN, DSSI_STD, False)
            y_true += [list(classes).index(c.label) for c in ev]
            y_pred += list(p.argmax(1))
            y_prob.append(p)
            if cfg.flip_tta:  # the same model without test-time mirroring
                model.flip_tta = False
                y_prob_plain.append(_predict(model, x_ev, DSSI_MEAN, DSSI_STD, False))
        if train_aus:
            au_model = train_au(train, cfg)
            if on_fold is not None:
                on_fold(set(test), au_model)
            au_p.append(_predict(au_model, np.concatenate([c.pairs for c in held]),
                                 PAIR_MEAN, PAIR_STD, True))  # fmt: skip
            au_t.append(np.concatenate([c.pair_targets for c in held]))
    res: dict = {"classes": list(classes), "n_test_clips": len(y_true), "folds": len(folds),
                 "seconds": round(time.perf_counter() - t0, 1), "config": asdict(cfg)}  # fmt: skip
    if y_true:
        cm = confusion(np.array(y_true), np.array(y_pred), len(classes))
        uf1, uar = uf1_uar(cm)
        res |= {"uf1": uf1, "uar": uar, "confusion": cm.tolist()}
    if NON_EMOTIONAL in classes and y_prob:
        res["emotional"] = emotional_metrics(np.array(y_true), np.concatenate(y_prob), classes)
    if y_prob_plain:
        pp = np.concatenate(y_prob_plain)
        uf1_p, uar_p = uf1_uar(confusion(np.array(y_true), pp.argmax(1), len(classes)))
        res["without_flip_tta"] = {"uf1": uf1_p, "uar": uar_p}
        if NON_EMOTIONAL in classes:
            res["without_flip_tta"]["emotional"] = emotional_metrics(np.array(y_true), pp, classes)
    if train_aus and au_t:
        f1 = per_au_f1(np.concatenate(au_t), np.concatenate(au_p))
        res["au_f1"] = f1
        res["au_macro_f1"] = float(np.mean(list(f1.values()))) if f1 else 0.0
    return res


@dataclass
class Report:
    """An evaluation report: the main result, ablations and apex MAE."""

    dataset: str
    main: dict
    ablations: dict[str, dict] = field(default_factory=dict)
    apex: dict = field(default_factory=dict)
    device: str = "cpu"

    def write(self, out_dir: Path) -> None:
        """Write ``report.json``, ``report.md`` and ``report.png`` to ``out_dir``."""
        import matplotlib

        matplotlib.use("Agg")
        import matplotlib.pyplot as plt

        out_dir.mkdir(parents=True, exist_ok=True)
        (out_dir / "report.json").write_text(json.dumps(asdict(self), indent=2))
        m = self.main
        lines = [f"# Evaluation on {self.dataset}", "",
                 f"Protocol: subject-grouped CV, {m['folds']} folds, metrics pooled over folds; "
                 f"device {self.device}.", "",
                 f"- emotion UF1 **{m['uf1']:.4f}**, UAR **{m['uar']:.4f}** "
                 f"({m['n_test_clips']} test clips, classes {', '.join(m['classes'])})",
                 ]  # fmt: skip
        if "emotional" in m:
            e = m["emotional"]
            lines.append(
                f"- MEGC 3-class (emotional clips only, most probable emotion): UF1 "
                f"**{e['uf1']:.4f}**, UAR **{e['uar']:.4f}** ({e['n_test_clips']} clips)"
            )
        if "au_macro_f1" in m:
            lines.append(
                f"- AU macro-F1 **{m['au_macro_f1']:.4f}**: "
                + ", ".join(f"{k} {v:.2f}" for k, v in m["au_f1"].items())
            )
        if self.apex:
            lines.append(
                f"- apex MAE {self.apex['mae_frames']:.2f} frames = "
                f"{100 * self.apex['mae_rel']:.1f} % of onset-to-offset "
                + (
                    f"(median {100 * self.apex['median_rel']:.1f} %) "
                    if "median_rel" in self.apex
                    else ""
                )
                + f"({self.apex['n']} clips"
                + (
                    f"; AU detector: {self.apex['au_detector']}"
                    if "au_detector" in self.apex
                    else ""
                )
                + ")"
            )
        lines += ["", "Confusion (rows truth):", "",
                  "| | " + " | ".join(m["classes"]) + " |",
                  "|---" * (len(m["classes"]) + 1) + "|"]  # fmt: skip
        for c, row in zip(m["classes"], m["confusion"], strict=True):
            lines.append(f"| {c} | " + " | ".join(str(v) for v in row) + " |")
        if self.ablations:
            lines += ["", "## Ablations", "",
                      "| variant | UF1 | UAR | 3-class UF1 | 3-class UAR | AU macro-F1 |",
                      "|---|---|---|---|---|---|"]  # fmt: skip

            def num(v: float | None) -> str:
                return "-" if v is None else f"{v:.4f}"

            for name, r in self.ablations.items():
                e = r.get("emotional") or {}
                cells = [r.get("uf1"), r.get("uar"), e.get("uf1"), e.get("uar"),
                         r.get("au_macro_f1")]  # fmt: skip
                lines.append(f"| {name} | " + " | ".join(num(v) for v in cells) + " |")
        (out_dir / "report.md").write_text("\n".join(lines) + "\n")
        fig, axes = plt.subplots(1, 2, figsize=(10, 4))
        axes[0].imshow(np.array(m["confusion"]), cmap="Blues")
        axes[0].set_xticks(range(len(m["classes"])), m["classes"])
        axes[0].set_yticks(range(len(m["classes"])), m["classes"])
        axes[0].set_title(f"UF1 {m['uf1']:.3f} UAR {m['uar']:.3f}")
        if "au_f1" in m:
            axes[1].bar(list(m["au_f1"]), list(m["au_f1"].values()))
            axes[1].set_ylim(0, 1)
            axes[1].tick_params(axis="x", rotation=60)
            axes[1].set_title(f"AU F1 (macro {m['au_macro_f1']:.3f})")
        fig.tight_layout()
        fig.savefig(out_dir / "report.png", dpi=90)
        plt.close(fig)


def fold_backends(fold_models: Sequence[tuple[set[str], object]], cfg: TrainConfig) -> dict:
    """Subject key -> an in-process backend holding the AU detector of the fold that tested
    that subject (no emotion model), for leakage-free apex spotting in :func:`apex_mae`.

    Args:
        fold_models: ``(test subject keys, AU detector)`` per fold, from ``on_fold`` of
            :func:`cross_validate`; cfg: the configuration they were trained with.
    """
    from mer.inference import InProcessBackend, LoadedModel

    out: dict = {}
    for f, (subjects, model) in enumerate(fold_models):
        meta = au_card(cfg, version=f"fold{f + 1}")
        backend = InProcessBackend(None, LoadedModel(model, meta, "", Path(f"fold{f + 1}")))
        out |= {subj: backend for subj in subjects}
    return out


def apex_mae(
    samples: Sequence[Sample],
    n: int = 30,
    seed: int = 0,
    backends: Mapping | None = None,
    config: AnalysisConfig | None = None,
) -> dict:
    """Apex spotting error of the pipeline on whole clips (frames read from disk).

    Args:
        samples: annotated clips; ``n`` of them are drawn with ``seed``.
        backends: subject key (:attr:`Sample.subject_key`) -> inference backend whose AU
            detector never saw that subject (:func:`fold_backends`); the apex then also
            uses its activity (:func:`mer.spotting.apex_curve`). None: motion only (a
            detector trained on the same clips would leak their annotations).
        config: pipeline parameters (:class:`mer.pipeline.AnalysisConfig`); default ones.

    Returns:
        ``{"mae_frames", "mae_rel", "median_rel", "n", "au_detector"}``: mean |predicted -
        annotated apex| in frames and relative to each clip's onset-to-offset length, the
        median of the relative errors and which AU detector took part.

    Raises:
        KeyError: ``backends`` lacks a drawn clip's subject.
    """
    from mer.inference import InProcessBackend
    from mer.pipeline import analyze_frames
    from mer.video import DecodedFrame

    rng = np.random.default_rng(seed)
    pick = rng.choice(len(samples), size=min(n, len(samples)), replace=False)
    errs, rel = [], []  # (the median is reported too: a few missed movements dominate the mean)
    motion_only = InProcessBackend(None, None)
    for i in pick:
        s = samples[int(i)]
        frames = (
            DecodedFrame(j, t, _read_rgb(p))
            for j, (t, p) in enumerate(zip(s.timestamps_s, s.frame_paths, strict=True))
        )
        eff_fps = (s.n_frames - 1) / max(s.timestamps_s[-1], 1e-6)
        backend = motion_only if backends is None else backends[s.subject_key]
        r = analyze_frames(
            frames, fps=eff_fps, expected_frames=s.n_frames, backend=backend, config=config
        )
        pred = r.apex.frame if r.apex else 0
        # error in the data set's frame numbering (synthetic sets may write a frame step)
        e = abs(s.frame_numbers[pred] - s.apex)
        errs.append(e)
        rel.append(e / max(1, s.offset - s.onset))
    who = "none (motion only)" if backends is None else "fold models (held-out identities)"
    return {"mae_frames": float(np.mean(errs)), "mae_rel": float(np.mean(rel)),
            "median_rel": float(np.median(rel)), "n": len(errs), "au_detector": who}  # fmt: skip
