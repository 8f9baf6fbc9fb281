"""The handler core (:class:`ServedModel`): what a TorchServe handler does with a batch.

TorchServe's dynamic batching hands a handler a list of requests; :meth:`ServedModel.handle`
decodes each, runs the valid ones as one batch through :func:`mer.inference.forward_probs`
(the forward pass of every backend) and returns exactly one response per request (a
malformed request gets its own 400 without failing the rest of the batch).
"""

from __future__ import annotations

import contextlib
import os
from collections.abc import Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import numpy as np

from mer.errors import ModelUnavailableError
from mer.inference import LoadedModel, forward_probs, load_model
from mer.serving.payload import PayloadError, decode_sample, sample_shape
from mer.serving.spec import SERVED, ServedSpec


def configure_threads(requested: int = 0, workers: int = 1) -> int:
    """Set ``torch.set_num_threads`` for one serving process and return the count.

    Args:
        requested: threads wanted; 0 = the machine's cores shared by every worker of every
            served model (``workers * len(SERVED)``), at least 1, so that TorchServe's
            worker processes do not oversubscribe the cores (OpenMP threads that outnumber
            the cores make a forward pass many times slower under load).
        workers: workers per model (``minWorkers``).
    """
    import torch

    share = max(1, workers) * len(SERVED)
    n = requested if requested > 0 else max(1, (os.cpu_count() or 1) // share)
    torch.set_num_threads(n)
    with contextlib.suppress(RuntimeError):  # already set (or parallel work started)
        torch.set_num_interop_threads(1)
    return n


@dataclass
class HandlerResult:
    """What :meth:`ServedModel.handle` returns for one TorchServe batch.

    Attributes:
        responses: one JSON-able dict per request, in request order.
        statuses: one ``(HTTP status, phrase)`` per request.
    """

    responses: list[dict[str, Any]]
    statuses: list[tuple[int, str]]


@dataclass
class ServedModel:
    """A checkpoint served by a handler: loading, batch handling, description.

    Attributes:
        spec: which model (:data:`SERVED`).
        loaded: the checkpoint (:func:`mer.inference.load_model`), model on ``device``.
        device: torch device (``"cpu"``, ``"cuda:0"``, ...).
        threads: ``torch.set_num_threads`` in this process (0 = not set).
        batch_sizes: how many batches of each size this process ran (``{size: count}``).
    """

    spec: ServedSpec
    loaded: LoadedModel
    device: Any = "cpu"
    threads: int = 0
    batch_sizes: dict[int, int] = field(default_factory=dict, init=False)
    shape: tuple[int, ...] = field(init=False)

    def __post_init__(self) -> None:
        self.shape = sample_shape(self.loaded.meta, self.spec.task)

    @classmethod
    def load(cls, spec: ServedSpec, path: Path, device: Any = "cpu", threads: int = 0):
        """Load ``path`` (a :mod:`mer.models.weights` checkpoint) for ``spec`` on ``device``.

        Raises:
            ModelUnavailableError: unreadable or not a mer checkpoint, or a card whose
                task does not match ``spec``.
        """
        loaded = load_model(Path(path))
        task = "emotion" if loaded.meta.label_kind == "classes" else "au"
        if task != spec.task:
            raise ModelUnavailableError(f"{Path(path).name} is a {task} model, not {spec.task}")
        loaded.model.to(device)
        return cls(spec, loaded, device, threads)

    def predict(self, x_u8: np.ndarray) -> np.ndarray:
        """``(B, *shape)`` uint8 -> ``(B, n_labels)`` float32 probabilities."""
        meta = self.loaded.meta
        return forward_probs(
            self.loaded.model, x_u8, meta.mean[0], meta.std[0], self.spec.multilabel,
            device=self.device,
        )  # fmt: skip

    def handle(self, bodies: Sequence[object]) -> HandlerResult:
        """One TorchServe batch -> exactly one response per request, in order.

        Args:
            bodies: the request items (``.npy`` bytes, or TorchServe's dicts).

        Returns:
            :class:`HandlerResult`: valid requests get ``200`` and
            ``{"probs", "batch_size", "model", "version"}`` (``batch_size``: how many
            valid samples ran together); malformed ones ``400`` and ``{"error": ...}``.
        """
        samples: list[np.ndarray] = []
        where: list[int] = []
        responses: list[dict[str, Any]] = [{} for _ in bodies]
        statuses: list[tuple[int, str]] = [(200, "") for _ in bodies]
        for i, body in enumerate(bodies):
            try:
                samples.append(decode_sample(body, self.shape))
                where.append(i)
            except PayloadError as exc:
                responses[i] = {"error": str(exc), "model": self.spec.name}
                statuses[i] = (400, "Bad Request")
        if samples:
            probs = self.predict(np.stack(samples))
            self.batch_sizes[len(samples)] = self.batch_sizes.get(len(samples), 0) + 1
            for i, p in zip(where, probs, strict=True):
                responses[i] = {
                    "probs": [float(v) for v in p],
                    "batch_size": len(samples),
                    "model": self.spec.name,
                    "version": self.loaded.meta.version,
                }
        return HandlerResult(responses, statuses)

    def describe(self) -> dict[str, Any]:
        """The model card, checkpoint sha256, sample shape and this worker's batch-size
        counts (``{"size": count}``): the customised describe answer of
        ``GET /models/{name}?customized=true``; clients build results from the card."""
        return {
            "name": self.spec.name,
            "task": self.spec.task,
            "sha256": self.loaded.sha256,
            "sample_shape": list(self.shape),
            "device": str(self.device),
            "threads": self.threads,
            "batch_sizes": {str(k): v for k, v in sorted(self.batch_sizes.items())},
            "card": self.loaded.meta.to_dict(),
        }
