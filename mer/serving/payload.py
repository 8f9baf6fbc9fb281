"""The request payload of the served models: one uint8 sample as ``.npy`` bytes.

SMA-STN: ``(S + 1, C, M, M)`` DSSI; AU detector: ``(K, 1, M, M)`` (aligned frame, its
neutral reference, and with flow the ``u, v`` channels); ``M`` =
:data:`mer.model_inputs.MODEL_SIZE`. ``np.load(allow_pickle=False)`` only.
"""

from __future__ import annotations

import io
from collections.abc import Sequence
from typing import Any

import numpy as np

#: Content type of a request body (raw ``.npy`` bytes).
PAYLOAD_CONTENT_TYPE = "application/octet-stream"
#: Largest accepted request body (bytes): TorchServe's default ``max_request_size``.
MAX_PAYLOAD_BYTES = 6_553_500


class PayloadError(ValueError):
    """A request body is not a valid sample for the model (the handler answers 400)."""


def encode_sample(x_u8: np.ndarray) -> bytes:
    """One uint8 sample -> ``.npy`` bytes (the request body).

    Raises:
        PayloadError: ``x_u8`` is not uint8.
    """
    if x_u8.dtype != np.uint8:
        raise PayloadError(f"samples are uint8, got {x_u8.dtype}")
    buf = io.BytesIO()
    np.save(buf, np.ascontiguousarray(x_u8), allow_pickle=False)
    return buf.getvalue()


def decode_sample(body: object, shape: Sequence[int] | None = None) -> np.ndarray:
    """A request body (``.npy`` bytes) -> uint8 array, checked.

    Args:
        body: ``bytes``/``bytearray`` as TorchServe passes it, or a dict with ``"data"``
            or ``"body"`` (TorchServe's request item).
        shape: the expected sample shape, e.g. ``(2, 1, 64, 64)``; None accepts any.

    Raises:
        PayloadError: not ``.npy`` bytes, pickled objects, not uint8, or the wrong shape.
    """
    if isinstance(body, dict):
        body = body.get("data", body.get("body"))
    if not isinstance(body, bytes | bytearray | memoryview):
        raise PayloadError(f"expected .npy bytes, got {type(body).__name__}")
    if len(body) > MAX_PAYLOAD_BYTES:
        raise PayloadError(f"payload of {len(body)} bytes exceeds {MAX_PAYLOAD_BYTES}")
    try:
        x = np.load(io.BytesIO(bytes(body)), allow_pickle=False)
    except Exception as exc:  # noqa: BLE001 - any parse failure is a bad request
        raise PayloadError(f"not a .npy array ({exc.__class__.__name__}: {exc})") from None
    if not isinstance(x, np.ndarray) or x.dtype != np.uint8:
        raise PayloadError(f"expected a uint8 array, got {getattr(x, 'dtype', type(x))}")
    if shape is not None and tuple(x.shape) != tuple(shape):
        raise PayloadError(f"expected shape {tuple(shape)}, got {tuple(x.shape)}")
    return x


def sample_shape(meta: Any, task: str) -> tuple[int, ...]:
    """Shape of one uint8 sample for a model card (:class:`~mer.models.weights.ModelCard`).

    ``(S + 1, C, H, W)`` for SMA-STN (``S`` = ``meta.dssi["n_segments"]``), ``(K, C, H, W)``
    for the AU detector (``K`` = 4 with flow channels, ``meta.pair["flow"]``, else 2).
    """
    c, h, w = (int(v) for v in meta.input_size)
    if task == "emotion":
        s = int(meta.dssi.get("n_segments", meta.model_kwargs.get("num_segments", 3)))
        return (s + 1, c, h, w)
    return (4 if meta.pair.get("flow", False) else 2, c, h, w)
