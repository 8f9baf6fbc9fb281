"""TorchServe serving of SMA-STN and the AU detector: payloads, handler core, archives.

One module per concern: :mod:`~mer.serving.spec` (which models are served),
:mod:`~mer.serving.payload`, :mod:`~mer.serving.handler`, :mod:`~mer.serving.archives`,
:mod:`~mer.serving.launcher`; the CLI is :mod:`mer.serving_cli` (kept outside this package
so that ``mer --help`` imports none of it).

The TorchServe handlers (``model_store/handlers/``) are thin ``BaseHandler`` subclasses;
everything they do with data lives here, in the core library, so that a handler and the
in-process backend (:class:`mer.inference.InProcessBackend`) run the same code:

- **Payload** (one request = one sample): the uint8 model input in ``.npy`` format
  (:func:`encode_sample` / :func:`decode_sample`, ``np.load(allow_pickle=False)``), sent
  as ``application/octet-stream``. SMA-STN: ``(S + 1, C, M, M)`` DSSI; AU detector:
  ``(2, 1, M, M)`` (aligned frame, its neutral reference); ``M`` =
  :data:`mer.model_inputs.MODEL_SIZE`. One sample is ~8-16 KB, far below TorchServe's
  default ``max_request_size`` (6.5 MB).
- **Handler core** (:class:`ServedModel`): TorchServe's dynamic batching hands a handler
  a list of requests; :meth:`ServedModel.handle` decodes each, normalises the valid ones
  with :func:`mer.inference.normalise` (the card's mean and std), runs them as one batch
  and returns **exactly one response per request** (a malformed request gets its own 400
  without failing the rest of the batch). A response is
  ``{"probs": [...], "batch_size": n, "model": name, "version": v}``.
- **Archives** (:func:`build_archives`, ``mer model-store build``): one ``.mar`` per
  checkpoint in the model directory, with its handler and ``model-config.yaml``
  (``batchSize``, ``maxBatchDelay``, workers). Archives are built, never committed.
- **Launcher** (:func:`start_torchserve`, ``mer model-store serve``): a TorchServe
  configuration (every address on ``host``, model API on, token auth off) and the
  process, for local runs, the tests and ``bench/backends.py``.

TorchServe (``pip install -e ".[serve]"``: torchserve and torch-model-archiver 0.12,
pyyaml; Java 17) is optional: nothing here imports it at module level.
"""

from __future__ import annotations

from mer.inference import forward_probs
from mer.serving.archives import build_archives
from mer.serving.handler import HandlerResult, ServedModel, configure_threads
from mer.serving.launcher import (
    ServeConfig,
    TorchServeProcess,
    free_port,
    java_available,
    start_torchserve,
    torchserve_available,
)
from mer.serving.payload import (
    MAX_PAYLOAD_BYTES,
    PAYLOAD_CONTENT_TYPE,
    PayloadError,
    decode_sample,
    encode_sample,
    sample_shape,
)
from mer.serving.spec import (
    CONFIG_DIR,
    HANDLER_BASE,
    HANDLERS_DIR,
    MODEL_STORE_DIR,
    SERVED,
    ServedSpec,
)

__all__ = [
    "CONFIG_DIR",
    "HANDLERS_DIR",
    "HANDLER_BASE",
    "MAX_PAYLOAD_BYTES",
    "MODEL_STORE_DIR",
    "PAYLOAD_CONTENT_TYPE",
    "SERVED",
    "HandlerResult",
    "PayloadError",
    "ServeConfig",
    "ServedModel",
    "ServedSpec",
    "TorchServeProcess",
    "build_archives",
    "configure_threads",
    "decode_sample",
    "encode_sample",
    "forward_probs",
    "free_port",
    "java_available",
    "sample_shape",
    "start_torchserve",
    "torchserve_available",
]
