"""The learned models' inference: checkpoints loaded for it, the one forward pass and the
in-process backend (the TorchServe client is :mod:`workers.inference`).

Payloads are uint8 arrays (compact, and what a TorchServe handler receives), made by
:mod:`mer.model_inputs` (re-exported here: ``from mer.inference import dssi_u8_from_crops``
keeps working); each model's checkpoint card carries the normalisation ``(x - mean) / std``
applied to them, in the backend or the handler, by :func:`normalise` here (no copies
elsewhere).
"""

from __future__ import annotations

import logging
import threading
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Protocol

import numpy as np

from mer.model_inputs import (
    AU_FLOW_PRESET,
    DSSI_GAIN,
    FLOW_GAIN,
    FLOW_PRESET,
    FLOW_SIZE,
    MODEL_SIZE,
    au_input_u8,
    dssi_needed,
    dssi_u8_from_crops,
    encode_flow,
    flow_to_model,
    model_crop,
    segment_flow,
)
from mer.schemas import ModelInfo

__all__ = [
    "AU_FILE",
    "AU_FLOW_PRESET",
    "DSSI_GAIN",
    "EMOTION_FILE",
    "FLOW_GAIN",
    "FLOW_PRESET",
    "FLOW_SIZE",
    "MODEL_SIZE",
    "InProcessBackend",
    "InferenceBackend",
    "LoadedModel",
    "au_input_u8",
    "dssi_needed",
    "dssi_u8_from_crops",
    "encode_flow",
    "flow_to_model",
    "forward_probs",
    "load_inprocess_backend",
    "load_model",
    "model_crop",
    "normalise",
    "preload_inprocess_backend",
    "segment_flow",
]

log = logging.getLogger(__name__)

EMOTION_FILE = "sma_stn.pt"  #: the SMA-STN checkpoint's file name in a model folder
AU_FILE = "au_detector.pt"  #: the AU detector's


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
