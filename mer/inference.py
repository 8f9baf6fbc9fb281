"""Model inputs and the in-process inference backend for SMA-STN and the AU detector.

Payloads are uint8 arrays (compact, and what a TorchServe handler receives); each model's
checkpoint card carries the normalisation ``(x - mean) / std`` applied to them, in the
backend or the handler, by :func:`normalise` here (no copies elsewhere).

- Emotion: ``(B, S + 1, C, M, M)`` uint8 DSSI (local segment dynamic images, then the
  global one) from :func:`dssi_u8_from_crops`; ``M`` = :data:`MODEL_SIZE`; ``C`` = 1 (the
  dynamic image) or 3 (dynamic image + the optical flow ``u, v`` of the same span, when the
  checkpoint's ``dssi["flow"]`` is true).
- AUs: ``(B, K, 1, M, M)`` uint8 from :func:`au_input_u8`: the aligned frame and its local
  neutral reference (``K = 2``), plus the optical flow ``u, v`` from the reference to the
  frame (``K = 4``) when the checkpoint's ``pair["flow"]`` is true.

Flow channels (both models) are computed on the aligned crops at ``flow_size`` pixels
(:data:`FLOW_SIZE` = the pipeline's 128 px crops for weights v1.2 on; checkpoints without the
key used :data:`MODEL_SIZE`) and area-averaged down to ``M``, in model-crop pixels: at 64 px a
micro-expression moves the lip corners by 0.2-0.7 px, where DIS is at its noise floor.
"""

from __future__ import annotations

import logging
import threading
from collections.abc import Mapping
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Protocol

import cv2
import numpy as np

from mer.dssi import dssi_indices, dynamic_image
from mer.motion import FlowEstimator
from mer.schemas import ModelInfo

log = logging.getLogger(__name__)

MODEL_SIZE = 64  #: side (pixels) of the grey face crops the learned models see
DSSI_GAIN = 1.0  #: uint8 encoding of a dynamic image: 128 + gain * d, clipped
#: uint8 encoding of optical flow: 128 + gain * flow (model-crop pixels), clipped (+-2 px)
FLOW_GAIN = 64.0
FLOW_PRESET = "medium"  #: OpenCV DIS preset of the DSSI flow channels
FLOW_SIZE = 128  #: side (pixels) of the aligned crops the flow channels are computed on
AU_FLOW_PRESET = "fast"  #: OpenCV DIS preset of the AU detector's flow (one per frame)
EMOTION_FILE = "sma_stn.pt"
AU_FILE = "au_detector.pt"


def model_crop(crop: np.ndarray) -> np.ndarray:
    """``(S, S)`` uint8 aligned grey crop -> ``(MODEL_SIZE, MODEL_SIZE)`` uint8 (area)."""
    return _resized(crop, MODEL_SIZE)


def dssi_needed(onset: int, offset: int, params: Mapping[str, int | bool]) -> list[int]:
    """Frame indices :func:`dssi_u8_from_crops` reads for an onset-to-offset span."""
    segs, glob = dssi_indices(onset, max(offset, onset + 1), *_dssi_args(params))
    return sorted({int(i) for i in np.concatenate([*segs, glob])})


def _dssi_args(params: Mapping[str, int | bool]) -> tuple[int, int, int]:
    return (
        int(params.get("n_segments", 3)),
        int(params.get("frames_per_segment", 5)),
        int(params.get("global_frames", 9)),
    )


def _flow_args(params: Mapping[str, int | bool | str], preset: str) -> tuple[int, str]:
    """``(flow_size, preset)`` of a checkpoint's ``dssi`` / ``pair`` parameters (defaults of
    the checkpoints written before the keys existed: model-crop size, ``preset``)."""
    return int(params.get("flow_size", MODEL_SIZE)), str(params.get("flow_preset", preset))


def _resized(crop: np.ndarray, size: int) -> np.ndarray:
    """``(A, A)`` image -> ``(size, size)`` (area interpolation); the input when ``A == size``."""
    if crop.shape[0] == size:
        return crop
    return cv2.resize(crop, (size, size), interpolation=cv2.INTER_AREA)


_flow_local = threading.local()


def _estimator(preset: str) -> FlowEstimator:
    """One DIS estimator per (thread, preset): they keep internal buffers."""
    ests = getattr(_flow_local, "ests", None)
    if ests is None:
        ests = _flow_local.ests = {}
    if preset not in ests:
        ests[preset] = FlowEstimator(preset)
    return ests[preset]


def flow_to_model(flow: np.ndarray) -> np.ndarray:
    """``(S, S, 2)`` float32 flow in ``S``-pixel units -> ``(M, M, 2)`` float32 in model-crop
    pixels (area average, scaled by ``M / S``); identity when ``S == M``."""
    s = flow.shape[0]
    if s == MODEL_SIZE:
        return flow
    small = cv2.resize(flow, (MODEL_SIZE, MODEL_SIZE), interpolation=cv2.INTER_AREA)
    return small * np.float32(MODEL_SIZE / s)


def encode_flow(flow: np.ndarray) -> np.ndarray:
    """``(..., M, M, 2)`` float flow (model-crop pixels) -> ``(..., 2, M, M)`` uint8
    ``128 + FLOW_GAIN * flow``, clipped to +-2 px."""
    f = np.clip(np.round(128.0 + FLOW_GAIN * np.asarray(flow)), 0, 255).astype(np.uint8)
    return np.moveaxis(f, -1, -3)


def dssi_u8_from_crops(
    crops: Mapping[int, np.ndarray], onset: int, offset: int, params: Mapping[str, int | bool]
) -> np.ndarray:
    """uint8 DSSI ``(S + 1, C, M, M)`` of the span [onset, offset] from sparse crops.

    The segment and global frames are :func:`mer.dssi.dssi_indices` of the span (frame
    indices of the clip), so the result does not depend on which other frames are loaded:
    the pipeline (all frames) and training (only these frames) get the same images. A
    missing index takes the nearest available crop.

    Args:
        crops: frame index -> ``(A, A)`` uint8 aligned grey crop, ``A >= M`` (the
            pipeline's 128 px crops; they are area-resized to ``M`` for the dynamic images
            and to ``flow_size`` for the flow).
        onset, offset: inclusive frame indices.
        params: ``n_segments``, ``frames_per_segment``, ``global_frames``; ``flow``
            (default False) adds the optical-flow channels of :func:`segment_flow`,
            computed at ``flow_size`` pixels (default :data:`MODEL_SIZE`) with DIS preset
            ``flow_preset`` (default :data:`FLOW_PRESET`).

    Returns:
        ``(S + 1, C, M, M)`` uint8, ``C`` = 3 with flow (dynamic image, u, v), else 1.

    Raises:
        ValueError: ``crops`` is empty.
    """
    if not crops:
        raise ValueError("no crops")
    keys = np.array(sorted(crops))

    def get(i: int) -> np.ndarray:
        if i in crops:
            return crops[i]
        return crops[int(keys[np.argmin(np.abs(keys - i))])]

    segs, glob = dssi_indices(onset, max(offset, onset + 1), *_dssi_args(params))
    spans = [*segs, glob]
    images = [
        dynamic_image(np.stack([model_crop(get(int(i))) for i in idx]).astype(np.float32))
        for idx in spans
    ]
    d = np.clip(np.round(128.0 + DSSI_GAIN * np.stack(images)), 0, 255).astype(np.uint8)
    if not params.get("flow", False):
        return d[:, None]
    size, preset = _flow_args(params, FLOW_PRESET)
    flows = [
        segment_flow([_resized(get(int(i)), size) for i in idx], peak=k == len(segs),
                     preset=preset)
        for k, idx in enumerate(spans)
    ]  # fmt: skip
    return np.concatenate([d[:, None], encode_flow(np.stack(flows))], axis=1)


def segment_flow(frames: list[np.ndarray], peak: bool, preset: str = FLOW_PRESET) -> np.ndarray:
    """Optical flow summarising one DSSI span: ``(M, M, 2)`` float32 model-crop pixels.

    A local segment's flow goes from its first to its last sampled frame (the movement made
    within the segment); the global span's (``peak=True``) from its first frame (the onset)
    to the sampled frame with the largest mean flow magnitude (the most displaced one, near
    the apex). OpenCV DIS (Kroeger et al., ECCV 2016), one estimator per thread and preset,
    at the frames' own resolution, then :func:`flow_to_model`. **Our addition** to SMA-STN's
    DSSI input (ablated in the report): the dynamic image alone carries the micro movements
    at the level of the sensor noise.

    Args:
        frames: ``(A, A)`` uint8 crops in time order, at least 1.
        peak: global-span rule (see above).
        preset: DIS preset name (:class:`mer.motion.FlowEstimator`).
    """
    est = _estimator(preset)
    if len(frames) < 2:
        return np.zeros((MODEL_SIZE, MODEL_SIZE, 2), np.float32)
    if not peak:
        return flow_to_model(est(frames[0], frames[-1]))
    flows = [est(frames[0], f) for f in frames[1:]]
    return flow_to_model(max(flows, key=lambda q: float(np.abs(q).mean())))


def au_input_u8(
    frame: np.ndarray, reference: np.ndarray, params: Mapping[str, int | bool | str]
) -> np.ndarray:
    """AU-detector input of one frame: ``(K, 1, M, M)`` uint8.

    Args:
        frame, reference: ``(A, A)`` uint8 aligned grey crops (``A >= M``) of the frame and
            its local neutral reference.
        params: the checkpoint's ``pair`` parameters: ``flow`` (default False) adds the DIS
            optical flow from the reference to the frame (preset ``flow_preset``, default
            :data:`AU_FLOW_PRESET`, at ``flow_size`` pixels, default :data:`MODEL_SIZE`) in
            model-crop pixels, encoded as in :func:`encode_flow`.

    Returns:
        ``K = 2`` (frame, reference) or ``K = 4`` (frame, reference, u, v).
    """
    grey = np.stack([model_crop(frame), model_crop(reference)])
    if not params.get("flow", False):
        return grey[:, None]
    size, preset = _flow_args(params, AU_FLOW_PRESET)
    flow = flow_to_model(_estimator(preset)(_resized(reference, size), _resized(frame, size)))
    return np.concatenate([grey, encode_flow(flow)])[:, None]


def normalise(x_u8: np.ndarray, mean: float, std: float):  # -> torch.Tensor
    """uint8 array -> float32 tensor ``(x - mean) / std`` (same shape)."""
    import torch

    return (torch.from_numpy(np.ascontiguousarray(x_u8)).float() - float(mean)) / float(std)


def forward_probs(
    model: Any,
    x_u8: np.ndarray,
    mean: float,
    std: float,
    multilabel: bool,
    *,
    device: Any = "cpu",
    batch_size: int | None = None,
) -> np.ndarray:
    """The forward pass of every learned model: :func:`normalise`, model, activation.

    The one place the in-process backends, the TorchServe handlers
    (:class:`mer.serving.ServedModel`) and training / evaluation (:mod:`mer.training`) turn
    uint8 samples into probabilities.

    Args:
        model: the torch module, in eval mode, on ``device``.
        x_u8: ``(B, ...)`` uint8 samples (:func:`dssi_u8_from_crops`, :func:`au_input_u8`).
        mean, std: the card's input normalisation (``ModelCard.mean[0]``, ``std[0]``).
        multilabel: sigmoid per output (AUs) instead of a softmax over classes.
        device: torch device of the model (``"cpu"``, ``"cuda:0"``, ...).
        batch_size: most samples per forward pass; None runs ``x_u8`` as one batch.

    Returns:
        ``(B, n_outputs)`` float32 probabilities on the CPU; ``B`` = 0 gives ``(0, 0)``.
    """
    import torch

    n = len(x_u8)
    step = batch_size or max(1, n)
    outs = []
    with torch.inference_mode():
        for i in range(0, n, step):
            logits = model(normalise(x_u8[i : i + step], mean, std).to(device))
            p = torch.sigmoid(logits) if multilabel else torch.softmax(logits, dim=1)
            outs.append(p.float().cpu().numpy())
    return np.concatenate(outs) if outs else np.zeros((0, 0), np.float32)


class InferenceBackend(Protocol):
    """Runs the learned models on uint8 payloads (in-process or TorchServe)."""

    name: str

    def predict_emotion(self, dssi_u8: np.ndarray) -> np.ndarray:
        """``(B, S+1, 1, M, M)`` uint8 -> ``(B, n_classes)`` float32 probabilities."""
        ...

    def predict_au(self, pairs_u8: np.ndarray) -> np.ndarray:
        """``(B, K, 1, M, M)`` uint8 (:func:`au_input_u8`) -> ``(B, n_aus)`` float32
        probabilities."""
        ...


@dataclass
class LoadedModel:
    """A checkpoint loaded for inference, with its card and file hash."""

    model: object
    meta: object
    sha256: str
    path: Path

    @property
    def info(self) -> ModelInfo:
        """The result's ``models`` entry for this model."""
        meta = self.meta
        task = "emotion" if meta.label_kind == "classes" else "au"
        return ModelInfo(
            name=meta.model_name, version=meta.version, task=task, method="learned",
            sha256=self.sha256,
        )  # fmt: skip


def load_model(path: Path) -> LoadedModel:
    """Load a :mod:`mer.models.weights` checkpoint in eval mode on the CPU.

    Raises:
        ModelUnavailableError: the file is unreadable or not a mer checkpoint.
    """
    from mer.errors import ModelUnavailableError
    from mer.models.weights import load_checkpoint, sha256_file

    try:
        model, meta = load_checkpoint(path, map_location="cpu")
    except Exception as exc:  # noqa: BLE001 - any load failure is reported the same way
        raise ModelUnavailableError(f"cannot load {path.name}: {exc}") from exc
    model.eval()
    return LoadedModel(model, meta, sha256_file(path), path)


class InProcessBackend:
    """Runs the checkpoints in this process with torch, in batches, on a torch device.

    Args:
        emotion: the SMA-STN checkpoint, or None.
        au: the AU-detector checkpoint, or None.
        batch_size: most samples per forward pass.
        device: torch device the models are moved to (``"cpu"``, ``"cuda:0"``, ...).
    """

    def __init__(
        self,
        emotion: LoadedModel | None,
        au: LoadedModel | None,
        batch_size: int = 64,
        device: str = "cpu",
    ) -> None:
        self.emotion = emotion
        self.au = au
        self.batch_size = batch_size
        self.device = device
        self.name = "inprocess" if device == "cpu" else f"inprocess-{device}"
        if device != "cpu":
            for lm in (emotion, au):
                if lm is not None:
                    lm.model.to(device)
        self._lock = threading.Lock()

    def _run(self, lm: LoadedModel, x_u8: np.ndarray, multilabel: bool) -> np.ndarray:
        if len(x_u8) == 0:
            return np.zeros((0, len(lm.meta.labels)), np.float32)
        with self._lock:
            return forward_probs(
                lm.model, x_u8, lm.meta.mean[0], lm.meta.std[0], multilabel,
                device=self.device, batch_size=self.batch_size,
            )  # fmt: skip

    def predict_emotion(self, dssi_u8: np.ndarray) -> np.ndarray:
        """See :class:`InferenceBackend`."""
        if self.emotion is None:
            raise RuntimeError("no emotion model loaded")
        return self._run(self.emotion, dssi_u8, multilabel=False)

    def predict_au(self, pairs_u8: np.ndarray) -> np.ndarray:
        """See :class:`InferenceBackend`."""
        if self.au is None:
            raise RuntimeError("no AU model loaded")
        return self._run(self.au, pairs_u8, multilabel=True)


_cache: dict[tuple[Path, str], InProcessBackend] = {}
_cache_lock = threading.Lock()


def load_inprocess_backend(
    model_dir: Path, device: str = "cpu", batch_size: int = 64
) -> InProcessBackend | None:
    """The in-process backend for the checkpoints in ``model_dir`` on ``device`` (cached
    per folder and device), or None if neither :data:`EMOTION_FILE` nor :data:`AU_FILE`
    is there.

    Raises:
        ModelUnavailableError: a checkpoint is unreadable.
    """
    model_dir = Path(model_dir)
    key = (model_dir, device)
    with _cache_lock:
        if key in _cache:
            return _cache[key]
        emo, au = model_dir / EMOTION_FILE, model_dir / AU_FILE
        if not emo.is_file() and not au.is_file():
            return None
        backend = InProcessBackend(
            load_model(emo) if emo.is_file() else None,
            load_model(au) if au.is_file() else None,
            batch_size=batch_size,
            device=device,
        )
        _cache[key] = backend
        return backend


def preload_inprocess_backend(model_dir: Path) -> threading.Thread | None:
    """Start :func:`load_inprocess_backend` in a daemon thread, so that importing torch and
    reading the checkpoints (about a second) overlaps decoding and landmarks; the later
    call in the pipeline then finds it cached (or waits for it under the cache lock).

    Returns:
        The thread, or None when the backend is already cached. A failure in the thread
        is logged only: the pipeline's own call raises it.
    """
    model_dir = Path(model_dir)
    with _cache_lock:
        if (model_dir, "cpu") in _cache:
            return None

    def load() -> None:
        try:
            load_inprocess_backend(model_dir)
        except Exception:  # noqa: BLE001 - the pipeline's call reports it
            log.debug("preloading the models of %s failed", model_dir, exc_info=True)

    thread = threading.Thread(target=load, name="mer-preload-models", daemon=True)
    thread.start()
    return thread
