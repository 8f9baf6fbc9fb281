"""TorchServe serving of SMA-STN and the AU detector: payloads, handler core, archives.

The TorchServe handlers (``model_store/handlers/``) are thin ``BaseHandler`` subclasses;
everything they do with data lives here, in the core library, so that a handler and the
in-process backend (:class:`mer.inference.InProcessBackend`) run the same code:

- **Payload** (one request = one sample): the uint8 model input in ``.npy`` format
  (:func:`encode_sample` / :func:`decode_sample`, ``np.load(allow_pickle=False)``), sent
  as ``application/octet-stream``. SMA-STN: ``(S + 1, C, M, M)`` DSSI; AU detector:
  ``(2, 1, M, M)`` (aligned frame, its neutral reference); ``M`` =
  :data:`mer.inference.MODEL_SIZE`. One sample is ~8-16 KB, far below TorchServe's
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

import contextlib
import io
import json
import logging
import os
import shutil
import signal
import socket
import subprocess
import sys
import time
import urllib.error
import urllib.request
from collections.abc import Iterable, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import numpy as np

from mer.errors import ModelUnavailableError
from mer.inference import AU_FILE, EMOTION_FILE, LoadedModel, load_model, normalise
from mer.settings import REPO_ROOT

log = logging.getLogger(__name__)

#: Content type of a request body (raw ``.npy`` bytes).
PAYLOAD_CONTENT_TYPE = "application/octet-stream"
#: Largest accepted request body (bytes): TorchServe's default ``max_request_size``.
MAX_PAYLOAD_BYTES = 6_553_500
#: Where the handlers and the model configs live (``model_store/`` of the checkout).
MODEL_STORE_DIR = REPO_ROOT / "model_store"
HANDLERS_DIR = MODEL_STORE_DIR / "handlers"
CONFIG_DIR = MODEL_STORE_DIR / "config"


@dataclass(frozen=True)
class ServedSpec:
    """One model served by TorchServe.

    Attributes:
        name: TorchServe model name (``/predictions/{name}``).
        checkpoint: file name of the :mod:`mer.models.weights` checkpoint.
        task: ``"emotion"`` (softmax over classes) or ``"au"`` (sigmoid per AU).
        handler: handler file in :data:`HANDLERS_DIR`.
    """

    name: str
    checkpoint: str
    task: str
    handler: str

    @property
    def multilabel(self) -> bool:
        """Sigmoid per output (AUs) rather than a softmax (classes)."""
        return self.task == "au"


#: The served models, by TorchServe name.
SERVED: dict[str, ServedSpec] = {
    "sma_stn": ServedSpec("sma_stn", EMOTION_FILE, "emotion", "sma_stn_handler.py"),
    "au_detector": ServedSpec("au_detector", AU_FILE, "au", "au_detector_handler.py"),
}
#: Handler code shared by both models' handlers (packed into each archive).
HANDLER_BASE = "mer_handler.py"


# --- payload --------------------------------------------------------------------------------


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


# --- handler core ---------------------------------------------------------------------------


def forward_probs(
    model: Any, meta: Any, x_u8: np.ndarray, multilabel: bool, device: Any = "cpu"
) -> np.ndarray:
    """Run a model on a uint8 batch: :func:`mer.inference.normalise`, forward, activation.

    The same steps as :class:`mer.inference.InProcessBackend`, on any torch device.

    Args:
        model: the torch module (eval mode, on ``device``).
        meta: its model card (``mean``, ``std``).
        x_u8: ``(B, ...)`` uint8 samples.
        multilabel: sigmoid per output (AUs) instead of a softmax (classes).
        device: torch device of the model.

    Returns:
        ``(B, n_outputs)`` float32 probabilities (on the CPU).
    """
    import torch

    with torch.inference_mode():
        x = normalise(x_u8, meta.mean[0], meta.std[0]).to(device)
        logits = model(x)
        p = torch.sigmoid(logits) if multilabel else torch.softmax(logits, dim=1)
        return p.float().cpu().numpy()


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
        return forward_probs(
            self.loaded.model, self.loaded.meta, x_u8, self.spec.multilabel, self.device
        )

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


def write_random_checkpoints(out_dir: Path, version: str = "0.0.0-random", seed: int = 0) -> Path:
    """Checkpoints of the shipped architectures with **random weights** and the cards
    ``mer train`` writes, in ``out_dir`` (created). For speed benchmarks and plumbing
    tests of the serving path only: their predictions mean nothing.

    Returns:
        ``out_dir``, holding :data:`~mer.inference.EMOTION_FILE` and
        :data:`~mer.inference.AU_FILE`.
    """
    import torch

    from mer.models import create_model
    from mer.models.weights import save_checkpoint
    from mer.schemas import EMOTION_CLASSES_MEGC
    from mer.training import TrainConfig, au_card, au_kwargs, emotion_card, emotion_kwargs

    torch.manual_seed(seed)
    out_dir = Path(out_dir)
    out_dir.mkdir(parents=True, exist_ok=True)
    cfg = TrainConfig()
    classes = list(EMOTION_CLASSES_MEGC)
    note = "random weights (benchmarks and tests of the serving path only)"
    emo = create_model("sma_stn", **emotion_kwargs(cfg, len(classes)))
    save_checkpoint(out_dir / EMOTION_FILE, emo,
                    emotion_card(cfg, classes, version=version, training_data=note))  # fmt: skip
    save_checkpoint(out_dir / AU_FILE, create_model("au_detector", **au_kwargs(cfg)),
                    au_card(cfg, version=version, training_data=note))  # fmt: skip
    return out_dir


# --- archives -------------------------------------------------------------------------------


def _archiver() -> Any:
    try:
        from model_archiver.model_archiver_config import ModelArchiverConfig
        from model_archiver.model_packaging import generate_model_archive
    except ImportError as exc:
        raise RuntimeError(
            "torch-model-archiver is not installed: pip install -e '.[serve]'"
        ) from exc
    return ModelArchiverConfig, generate_model_archive


def build_archives(
    model_dir: Path,
    out_dir: Path,
    names: Iterable[str] | None = None,
    config_dir: Path | None = None,
    handlers_dir: Path | None = None,
) -> list[Path]:
    """Build one TorchServe archive (``{name}.mar``) per checkpoint found in ``model_dir``.

    Each archive holds the checkpoint as its serialized file, the model's handler and
    :data:`HANDLER_BASE`, and ``config_dir/{name}.yaml`` as its model config; its
    version is the card's. Existing archives are overwritten.

    Args:
        model_dir: where ``sma_stn.pt`` / ``au_detector.pt`` are.
        out_dir: where the ``.mar`` files go (created).
        names: models to build (:data:`SERVED` keys); default all whose checkpoint exists.
        config_dir: the model configs; default ``model_dir/config`` when it exists (a
            copied ``model_store/``, as in the images), else :data:`CONFIG_DIR`.
        handlers_dir: the handlers; default ``model_dir/handlers`` when it exists, else
            :data:`HANDLERS_DIR`.

    Returns:
        The archives written, in :data:`SERVED` order.

    Raises:
        ModelUnavailableError: no checkpoint to build from (or a named one is missing or
            unreadable).
        RuntimeError: torch-model-archiver is not installed.
    """
    config_cls, generate = _archiver()
    model_dir, out_dir = Path(model_dir), Path(out_dir)
    if handlers_dir is None:
        local = model_dir / "handlers"
        handlers_dir = local if (local / HANDLER_BASE).is_file() else HANDLERS_DIR
    if config_dir is None:
        local = model_dir / "config"
        config_dir = local if local.is_dir() else CONFIG_DIR
    wanted = list(names) if names is not None else None
    built: list[Path] = []
    for spec in SERVED.values():
        if wanted is not None and spec.name not in wanted:
            continue
        ckpt = model_dir / spec.checkpoint
        if not ckpt.is_file():
            if wanted is not None:
                raise ModelUnavailableError(f"{ckpt} does not exist")
            continue
        meta = load_model(ckpt).meta  # validates the checkpoint before packing it
        out_dir.mkdir(parents=True, exist_ok=True)
        cfg = config_cls(
            model_name=spec.name,
            handler=str(Path(handlers_dir) / spec.handler),
            version=str(meta.version),
            serialized_file=str(ckpt),
            extra_files=str(Path(handlers_dir) / HANDLER_BASE),
            export_path=str(out_dir),
            config_file=str(Path(config_dir) / f"{spec.name}.yaml"),
            force=True,
        )
        generate(cfg)
        built.append(out_dir / f"{spec.name}.mar")
    if not built:
        raise ModelUnavailableError(
            f"no checkpoint ({', '.join(s.checkpoint for s in SERVED.values())}) in {model_dir}"
        )
    return built


# --- launcher -------------------------------------------------------------------------------


def java_available() -> str | None:
    """Path of the ``java`` TorchServe will run (``$JAVA_HOME/bin/java`` or on PATH)."""
    home = os.environ.get("JAVA_HOME")
    if home and Path(home, "bin", "java").is_file():
        return str(Path(home, "bin", "java"))
    return shutil.which("java")


def torchserve_available() -> bool:
    """Whether the ``torchserve`` package and ``torch-model-archiver`` import here."""
    import importlib.util

    return all(importlib.util.find_spec(m) is not None for m in ("ts", "model_archiver"))


def free_port(host: str = "127.0.0.1") -> int:
    """A TCP port free on ``host`` right now (the OS picks it)."""
    with socket.socket() as s:
        s.bind((host, 0))
        return int(s.getsockname()[1])


@dataclass
class ServeConfig:
    """A TorchServe ``config.properties``.

    Attributes:
        model_store: the folder with the ``.mar`` archives.
        host: every address binds here (``127.0.0.1`` for local runs and tests; ``0.0.0.0``
            only inside a container network).
        inference_port, management_port, metrics_port, grpc_inference_port,
        grpc_management_port: TCP ports (0 = pick a free one).
        worker_port: first port number of the backend workers' sockets (0 = pick).
        models: archives to load at start (``name=file.mar``; the archive's
            model-config.yaml sets batching and workers).
        extra: more ``key=value`` properties (e.g. ``job_queue_size``).
    """

    model_store: Path
    host: str = "127.0.0.1"
    inference_port: int = 8080
    management_port: int = 8081
    metrics_port: int = 8082
    grpc_inference_port: int = 7070
    grpc_management_port: int = 7071
    worker_port: int = 9000
    models: dict[str, str] = field(default_factory=dict)
    extra: dict[str, str] = field(default_factory=dict)

    def resolve_ports(self) -> ServeConfig:
        """Replace every 0 port with a free one (in place); returns self."""
        for name in (
            "inference_port", "management_port", "metrics_port", "grpc_inference_port",
            "grpc_management_port",
        ):  # fmt: skip
            if getattr(self, name) == 0:
                setattr(self, name, free_port(self.host))
        if self.worker_port == 0:
            self.worker_port = 20000 + (free_port(self.host) % 20000)
        return self

    @property
    def inference_url(self) -> str:
        """``http://host:inference_port`` (``/ping``, ``/predictions/{name}``)."""
        return f"http://{_client_host(self.host)}:{self.inference_port}"

    @property
    def management_url(self) -> str:
        """``http://host:management_port`` (``/models``)."""
        return f"http://{_client_host(self.host)}:{self.management_port}"

    def properties(self) -> str:
        """The ``config.properties`` text."""
        h = self.host
        props = {
            "inference_address": f"http://{h}:{self.inference_port}",
            "management_address": f"http://{h}:{self.management_port}",
            "metrics_address": f"http://{h}:{self.metrics_port}",
            "grpc_inference_address": h,
            "grpc_management_address": h,
            "grpc_inference_port": str(self.grpc_inference_port),
            "grpc_management_port": str(self.grpc_management_port),
            "initial_worker_port": str(self.worker_port),
            "model_store": str(Path(self.model_store).resolve()),
            "enable_model_api": "true",
            "disable_token_authorization": "true",
            "install_py_dep_per_model": "false",
            "default_workers_per_model": "1",
            "enable_envvars_config": "false",
            "disable_system_metrics": "true",
        }
        if self.models:
            props["load_models"] = ",".join(f"{k}={v}" for k, v in self.models.items())
        props.update(self.extra)
        return "".join(f"{k}={v}\n" for k, v in props.items())


def _client_host(host: str) -> str:
    return "127.0.0.1" if host in ("0.0.0.0", "") else host


@dataclass
class TorchServeProcess:
    """A TorchServe started by :func:`start_torchserve` (its own process group).

    Attributes:
        proc: the ``torchserve --foreground`` launcher (Java and the Python workers are in
            its process group).
        config: the configuration it runs with.
        workdir: its logs, pid file, temp files and ``config.properties``.
    """

    proc: subprocess.Popen[bytes]
    config: ServeConfig
    workdir: Path

    @property
    def inference_url(self) -> str:
        """Inference API base URL."""
        return self.config.inference_url

    @property
    def management_url(self) -> str:
        """Management API base URL."""
        return self.config.management_url

    def log_tail(self, chars: int = 6000) -> str:
        """The end of TorchServe's console and model logs."""
        parts = []
        for p in (self.workdir / "console.log", self.workdir / "logs" / "model_log.log"):
            if p.is_file():
                parts.append(f"--- {p.name}\n" + p.read_text(errors="replace")[-chars:])
        return "\n".join(parts)

    def wait_ready(self, models: Iterable[str] = (), timeout_s: float = 90.0) -> None:
        """Wait until ``/ping`` is healthy and every model in ``models`` has a READY worker.

        Raises:
            RuntimeError: the process exited or the deadline passed (with the log tail).
        """
        deadline = time.monotonic() + timeout_s
        pending = list(models)
        while True:
            if self.proc.poll() is not None:
                raise RuntimeError(f"TorchServe exited ({self.proc.returncode}):\n"
                                   f"{self.log_tail()}")  # fmt: skip
            try:
                if _get_json(f"{self.inference_url}/ping", 2.0).get("status") == "Healthy":
                    pending = [m for m in pending if not model_ready(self.management_url, m)]
                    if not pending:
                        return
            except (OSError, ValueError):
                pass
            if time.monotonic() > deadline:
                raise RuntimeError(f"TorchServe not ready after {timeout_s:.0f} s (waiting "
                                   f"for {pending or 'ping'}):\n{self.log_tail()}")  # fmt: skip
            time.sleep(0.25)

    def stop(self, timeout_s: float = 30.0) -> None:
        """SIGTERM the process group, then SIGKILL whatever is left after ``timeout_s``."""
        if self.proc.poll() is None:
            with contextlib.suppress(ProcessLookupError):
                os.killpg(self.proc.pid, signal.SIGTERM)
            with contextlib.suppress(subprocess.TimeoutExpired):
                self.proc.wait(timeout=timeout_s)
        # Java or a Python worker may outlive the launcher
        with contextlib.suppress(ProcessLookupError, PermissionError):
            os.killpg(self.proc.pid, signal.SIGKILL)
        if self.proc.poll() is None:
            self.proc.wait(timeout=10)

    def __enter__(self) -> TorchServeProcess:
        return self

    def __exit__(self, *exc: object) -> None:
        self.stop()


def _get_json(url: str, timeout_s: float) -> Any:
    with urllib.request.urlopen(url, timeout=timeout_s) as r:  # noqa: S310 - our own URL
        return json.loads(r.read().decode())


def model_ready(management_url: str, name: str, timeout_s: float = 2.0) -> bool:
    """Whether model ``name`` is registered and has at least one READY worker."""
    try:
        desc = _get_json(f"{management_url}/models/{name}", timeout_s)
    except (OSError, ValueError):
        return False
    entries = desc if isinstance(desc, list) else [desc]
    return any(w.get("status") == "READY" for d in entries for w in (d.get("workers") or []))


def start_torchserve(
    config: ServeConfig,
    workdir: Path,
    env: dict[str, str] | None = None,
    console: bool = False,
) -> TorchServeProcess:
    """Start ``torchserve --foreground`` with ``config`` in a new process group.

    Logs, metrics, the pid file (``TMPDIR``) and TorchServe's temp files (``TEMP``) go
    under ``workdir``, so several instances can run side by side and nothing is written
    to the checkout. TorchServe's console output goes to ``workdir/console.log``, or to
    this process's stdout with ``console=True``. Returns at once; call
    :meth:`TorchServeProcess.wait_ready`.

    Raises:
        RuntimeError: Java or the torchserve package is missing.
    """
    if java_available() is None:
        raise RuntimeError("TorchServe needs Java 17 (no java on PATH or in JAVA_HOME)")
    if not torchserve_available():
        raise RuntimeError("torchserve is not installed: pip install -e '.[serve]'")
    config.resolve_ports()
    workdir = Path(workdir).resolve()
    for sub in ("logs", "tmp", "metrics"):
        (workdir / sub).mkdir(parents=True, exist_ok=True)
    props = workdir / "config.properties"
    props.write_text(config.properties())
    exe = Path(sys.executable).with_name("torchserve")
    cmd = [
        str(exe) if exe.is_file() else "torchserve",
        "--foreground",
        "--ncs",
        "--ts-config",
        str(props),
        "--model-store",
        str(Path(config.model_store).resolve()),
    ]
    full_env = {
        **os.environ,
        "LOG_LOCATION": str(workdir / "logs"),
        "METRICS_LOCATION": str(workdir / "metrics"),
        "TMPDIR": str(workdir / "tmp"),
        "TEMP": str(workdir / "tmp"),
        **(env or {}),
    }  # fmt: skip
    full_env.pop("TS_CONFIG_FILE", None)
    with open(workdir / "console.log", "ab") as out:
        proc = subprocess.Popen(
            cmd, cwd=workdir, env=full_env, stdout=None if console else out,
            stderr=subprocess.STDOUT, stdin=subprocess.DEVNULL, start_new_session=True,
        )  # fmt: skip
    return TorchServeProcess(proc, config, workdir)
