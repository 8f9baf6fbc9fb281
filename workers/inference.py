"""Inference backends of the workers: in-process (default) or TorchServe.

:func:`get_backend` picks one from the settings (``MER_INFERENCE_BACKEND``):

- ``inprocess`` (default): :class:`mer.inference.InProcessBackend` over the checkpoints in
  ``MER_MODEL_DIR``, on the CPU or on ``MER_INFERENCE_DEVICE`` (``cuda``, ``cuda:N``: the
  CUDA worker image). None when no checkpoint is installed
  (the pipeline then uses the training-free AU rules and reports no emotion).
- ``torchserve``: :class:`TorchServeBackend`, a client of a TorchServe serving the
  archives of ``mer model-store build`` at ``MER_TORCHSERVE_URL``. It sends **one
  request per sample, many at once** (``MER_TORCHSERVE_CONCURRENCY`` in flight), so
  TorchServe's dynamic batching forms the batches (``batchSize``, ``maxBatchDelay`` in
  ``model_store/config/*.yaml``). Every request has a timeout
  (``MER_TORCHSERVE_TIMEOUT_S``) and is retried with exponential backoff
  (``MER_TORCHSERVE_RETRIES``, ``MER_TORCHSERVE_BACKOFF_S``) on connection errors,
  timeouts, 429 and 5xx. Before a job runs, :meth:`TorchServeBackend.ensure_ready` checks
  ``GET /ping`` and each model's workers on the management API (with the same retries)
  and loads the model cards (labels, DSSI parameters, version, sha256) from
  ``GET /models/{name}?customized=true``, so a worker host needs no weights. When
  TorchServe stays down the job fails with ``inference_unavailable``
  (:class:`~mer.errors.InferenceUnavailableError`).

Both backends run the same forward pass (:func:`mer.inference.forward_probs`) and model code,
so they give the same probabilities (to float rounding of different batch compositions).
"""

from __future__ import annotations

import json
import logging
import random
import threading
import time
from collections import Counter
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path
from typing import Any
from urllib.parse import urlsplit, urlunsplit

import httpx
import numpy as np

from mer.errors import InferenceUnavailableError
from mer.inference import InferenceBackend, LoadedModel, load_inprocess_backend
from mer.serving import PAYLOAD_CONTENT_TYPE, SERVED, encode_sample
from mer.serving.readiness import Readiness, describe_entry, probe_torchserve, why
from workers.settings import WorkerSettings

logger = logging.getLogger(__name__)

#: Longest single backoff delay between two tries (seconds).
MAX_BACKOFF_S = 10.0
#: HTTP statuses worth retrying (TorchServe: 503 queue full / no worker, 507 worker died).
RETRY_STATUSES = frozenset({408, 429, 500, 502, 503, 504, 507})


def default_management_url(url: str) -> str:
    """TorchServe's management URL next to inference URL ``url``: same host, port + 1."""
    parts = urlsplit(url)
    port = parts.port or (443 if parts.scheme == "https" else 80)
    host = parts.hostname or "127.0.0.1"
    netloc = f"[{host}]:{port + 1}" if ":" in host else f"{host}:{port + 1}"
    return urlunsplit((parts.scheme, netloc, "", "", ""))


class _Fatal(Exception):
    """A request failed in a way retrying cannot fix (4xx, bad response)."""


class _Aborted(Exception):
    """A request gave up because another request of the same call failed."""


class TorchServeBackend:
    """:class:`~mer.inference.InferenceBackend` over TorchServe's REST APIs.

    Args:
        url: inference API, e.g. ``http://127.0.0.1:8080``.
        management_url: management API; default :func:`default_management_url`.
        timeout_s: per-request timeout (seconds; connect at most 5 s).
        retries: retries after the first try of a request.
        backoff_s: first retry delay (seconds), doubled each retry (at most
            :data:`MAX_BACKOFF_S`), with up to 10 % jitter.
        concurrency: requests in flight at once (threads and connections).
        transport: an ``httpx`` transport (tests).

    Attributes:
        emotion, au: the served models' cards as :class:`~mer.inference.LoadedModel`
            (``model`` is None: the weights live in TorchServe), or None when TorchServe
            does not serve that model; set by :meth:`ensure_ready`.
    """

    name = "torchserve"

    def __init__(
        self,
        url: str,
        management_url: str | None = None,
        *,
        timeout_s: float = 30.0,
        retries: int = 3,
        backoff_s: float = 0.5,
        concurrency: int = 32,
        transport: httpx.BaseTransport | None = None,
    ) -> None:
        self.url = url.rstrip("/")
        self.management_url = (management_url or default_management_url(url)).rstrip("/")
        self.timeout_s = timeout_s
        self.retries = retries
        self.backoff_s = backoff_s
        self.concurrency = concurrency
        self._client = httpx.Client(
            timeout=httpx.Timeout(timeout_s, connect=min(timeout_s, 5.0)),
            limits=httpx.Limits(max_connections=concurrency, max_keepalive_connections=concurrency),
            transport=transport,
        )
        self._pool = ThreadPoolExecutor(max_workers=concurrency, thread_name_prefix="torchserve")
        self._lock = threading.Lock()
        self._batch_sizes: Counter[int] = Counter()
        self._versions: dict[str, str] = {}
        self.emotion: LoadedModel | None = None
        self.au: LoadedModel | None = None

    # --- readiness ----------------------------------------------------------------------

    def readiness(self) -> Readiness:
        """Probe ``/ping`` and each served model's workers once (no retries, never raises
        for an unreachable TorchServe): :func:`mer.serving.readiness.probe_torchserve`."""
        state = probe_torchserve(self._client, self.url, self.management_url, SERVED)
        self._versions.update(state.versions)
        return state

    def ensure_ready(self) -> Readiness:
        """Wait (retries with backoff) until :meth:`readiness` is ready, then load the
        model cards of the served models (when not loaded yet or their version changed).

        Raises:
            InferenceUnavailableError: still not ready after the retries, or a card is
                unreadable.
        """
        state = self.readiness()
        for attempt in range(self.retries):
            if state.ready:
                break
            time.sleep(self._delay(attempt))
            state = self.readiness()
        if not state.ready:
            raise InferenceUnavailableError(
                f"the inference service is unavailable after {self.retries + 1} tries: "
                f"{state.detail}"
            )
        for name, status in state.models.items():
            attr = "emotion" if SERVED[name].task == "emotion" else "au"
            current: LoadedModel | None = getattr(self, attr)
            if status == "missing":
                setattr(self, attr, None)
            elif current is None or current.meta.version != self._versions.get(name):
                setattr(self, attr, self._card(name))
        return state

    def _card(self, name: str) -> LoadedModel:
        from mer.models.weights import ModelCard

        try:
            r = self._client.get(f"{self.management_url}/models/{name}",
                                 params={"customized": "true"})  # fmt: skip
            r.raise_for_status()
            meta = describe_entry(r.json()).get("customizedMetadata")
            meta = json.loads(meta) if isinstance(meta, str) else meta
            card = ModelCard.from_dict(meta["card"])
            return LoadedModel(None, card, str(meta["sha256"]), Path(f"{name}.mar"))
        except (httpx.HTTPError, ValueError, KeyError, TypeError) as exc:
            raise InferenceUnavailableError(
                f"cannot read the model card of {name} from TorchServe ({why(exc)})"
            ) from exc

    # --- inference ------------------------------------------------------------------------

    def predict_emotion(self, dssi_u8: np.ndarray) -> np.ndarray:
        """See :class:`~mer.inference.InferenceBackend`; one request per clip.

        Raises:
            InferenceUnavailableError: TorchServe failed after the retries.
            RuntimeError: TorchServe serves no SMA-STN (check ``emotion`` first).
        """
        return self._predict("sma_stn", self.emotion, dssi_u8)

    def predict_au(self, pairs_u8: np.ndarray) -> np.ndarray:
        """See :class:`~mer.inference.InferenceBackend`; one request per frame pair.

        Raises:
            InferenceUnavailableError: TorchServe failed after the retries.
            RuntimeError: TorchServe serves no AU detector (check ``au`` first).
        """
        return self._predict("au_detector", self.au, pairs_u8)

    def _predict(self, name: str, lm: LoadedModel | None, x_u8: np.ndarray) -> np.ndarray:
        if lm is None:
            raise RuntimeError(f"TorchServe serves no {name} (call ensure_ready first)")
        n_out = len(lm.meta.labels)
        if len(x_u8) == 0:
            return np.zeros((0, n_out), np.float32)
        abort = threading.Event()
        futures = [self._pool.submit(self._post, name, encode_sample(x), abort) for x in x_u8]
        out = np.zeros((len(x_u8), n_out), np.float32)
        errors: list[BaseException] = []
        for i, fut in enumerate(futures):
            try:
                probs = fut.result()
            except Exception as exc:  # noqa: BLE001 - collected, the root cause is raised
                errors.append(exc)
                continue
            if len(probs) != n_out:
                abort.set()
                errors.append(_Fatal(f"answered {len(probs)} values, expected {n_out}"))
                continue
            out[i] = probs
        if errors:
            root = next((e for e in errors if not isinstance(e, _Aborted)), errors[0])
            if isinstance(root, _Fatal | _Aborted):
                raise InferenceUnavailableError(f"TorchServe {name}: {root}") from None
            raise root
        return out

    def _post(self, name: str, body: bytes, abort: threading.Event) -> list[float]:
        """POST one sample, retrying; returns its probabilities. Sets ``abort`` when it
        gives up, so the other requests of the call stop retrying."""
        try:
            return self._post_once(name, body, abort)
        except Exception:
            abort.set()
            raise

    def _post_once(self, name: str, body: bytes, abort: threading.Event) -> list[float]:
        url = f"{self.url}/predictions/{name}"
        reason = ""
        for attempt in range(self.retries + 1):
            if abort.is_set():
                raise _Aborted("another request of the same call failed")
            if attempt:
                time.sleep(self._delay(attempt - 1))
            try:
                r = self._client.post(url, content=body,
                                      headers={"Content-Type": PAYLOAD_CONTENT_TYPE})  # fmt: skip
            except httpx.TransportError as exc:
                reason = why(exc)
                continue
            if r.status_code == 200:
                try:
                    data = r.json()
                    probs = [float(v) for v in data["probs"]]
                except (ValueError, KeyError, TypeError) as exc:
                    raise _Fatal(f"unreadable response ({why(exc)})") from None
                with self._lock:
                    self._batch_sizes[int(data.get("batch_size", 0))] += 1
                return probs
            reason = f"HTTP {r.status_code}: {r.text[:200].strip()}"
            if r.status_code not in RETRY_STATUSES:
                raise _Fatal(f"request rejected ({reason})")
        raise InferenceUnavailableError(
            f"the inference service at {self.url} failed for {name} after "
            f"{self.retries + 1} tries ({reason})"
        )

    def _delay(self, attempt: int) -> float:
        base = min(MAX_BACKOFF_S, self.backoff_s * (2**attempt))
        return base * (1.0 + 0.1 * random.random())

    # --- statistics, life cycle -----------------------------------------------------------

    def batch_sizes(self) -> dict[int, int]:
        """How many responses came from a TorchServe batch of each size (since start or
        :meth:`reset_stats`): ``{batch_size: count}``."""
        with self._lock:
            return dict(self._batch_sizes)

    def reset_stats(self) -> None:
        """Forget the batch-size counts."""
        with self._lock:
            self._batch_sizes.clear()

    def close(self) -> None:
        """Close the connections and the thread pool."""
        self._pool.shutdown(wait=False, cancel_futures=True)
        self._client.close()


#: Most samples per forward pass on an accelerator (the CPU backend uses 64).
DEVICE_BATCH_SIZE = 256

_torchserve_clients: dict[tuple[Any, ...], TorchServeBackend] = {}
_torchserve_lock = threading.Lock()


def get_backend(settings: WorkerSettings) -> InferenceBackend | None:
    """The inference backend ``settings`` ask for (cached per configuration).

    Returns:
        A :class:`TorchServeBackend` that passed :meth:`~TorchServeBackend.ensure_ready`
        (``inference_backend="torchserve"``); else the in-process backend over
        ``settings.model_dir`` on ``settings.inference_device`` (with
        ``torch.set_num_threads(settings.torch_threads)`` when that is set), or None when
        no checkpoint is installed.

    Raises:
        InferenceUnavailableError: TorchServe is not ready after the retries, or CUDA was
            asked for and is missing.
        ModelUnavailableError: a checkpoint is unreadable.
    """
    if settings.inference_backend == "torchserve":
        key = (
            "torchserve", settings.torchserve_url, settings.torchserve_management_url,
            settings.torchserve_timeout_s, settings.torchserve_retries,
            settings.torchserve_backoff_s, settings.torchserve_concurrency,
        )  # fmt: skip
        with _torchserve_lock:
            backend = _torchserve_clients.get(key)
            if backend is None:
                backend = TorchServeBackend(
                    settings.torchserve_url, settings.torchserve_management_url,
                    timeout_s=settings.torchserve_timeout_s, retries=settings.torchserve_retries,
                    backoff_s=settings.torchserve_backoff_s,
                    concurrency=settings.torchserve_concurrency,
                )  # fmt: skip
                _torchserve_clients[key] = backend
        backend.ensure_ready()
        return backend
    if settings.torch_threads:  # MER_TORCH_THREADS: fewer OpenMP threads than busy cores
        import torch

        torch.set_num_threads(settings.torch_threads)
    device = settings.inference_device.strip().lower() or "cpu"
    if device == "cpu":
        return load_inprocess_backend(settings.model_dir)
    if device.startswith("cuda"):
        import torch

        if not torch.cuda.is_available():
            raise InferenceUnavailableError(
                f"MER_INFERENCE_DEVICE={device} but CUDA is not available in this worker"
            )
    return load_inprocess_backend(settings.model_dir, device, DEVICE_BATCH_SIZE)
