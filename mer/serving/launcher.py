"""Starting TorchServe: ``mer model-store serve``, the tests and ``bench/backends.py``.

A TorchServe configuration (every address on ``host``, model API on, token auth off) and
the process in its own process group, with its logs and temp files under a work folder.
TorchServe (``pip install -e ".[serve]"``; Java 17) is optional: nothing here imports it.
"""

from __future__ import annotations

import contextlib
import os
import shutil
import signal
import socket
import subprocess
import sys
import time
from collections.abc import Iterable
from dataclasses import dataclass, field
from pathlib import Path


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
        import httpx  # only here: mer.serving stays light to import

        from mer.serving.readiness import probe_torchserve

        deadline = time.monotonic() + timeout_s
        pending = list(models)
        with httpx.Client(timeout=2.0) as client:
            while True:
                if self.proc.poll() is not None:
                    raise RuntimeError(f"TorchServe exited ({self.proc.returncode}):\n"
                                       f"{self.log_tail()}")  # fmt: skip
                try:
                    state = probe_torchserve(
                        client, self.inference_url, self.management_url, pending
                    )
                    pending = [m for m in pending if state.models.get(m) != "ready"]
                    if state.ready and not pending:
                        return
                except ValueError:
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
