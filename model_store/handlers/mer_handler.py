"""Shared TorchServe handler of the mer models (packed into each model's archive).

All data handling is :class:`mer.serving.ServedModel` (the core library: ``.npy`` uint8
payloads, :func:`mer.inference.normalise`, batched forward, one response per request);
this class only adapts it to TorchServe's ``BaseHandler`` life cycle. The ``mer`` package
must be importable by TorchServe's Python (``pip install -e ".[serve]"``).

Model config (``model-config.yaml`` in the archive) keys read here::

    handler:
      torch_threads: 2      # torch.set_num_threads per worker; 0 = cores / all workers

``MER_TS_TORCH_THREADS`` in TorchServe's environment overrides ``torch_threads``.
"""

from __future__ import annotations

import json
import logging
import os
import time
from pathlib import Path
from typing import Any

import torch
from ts.torch_handler.base_handler import BaseHandler

from mer.serving import SERVED, ServedModel, configure_threads

logger = logging.getLogger(__name__)


class MerHandler(BaseHandler):
    """Base of the per-model handlers; subclasses set :attr:`served_name`."""

    served_name: str = ""

    def initialize(self, context: Any) -> None:
        """Load the archive's checkpoint on the worker's device and set the thread count.

        Device: ``cuda:{gpu_id}`` when TorchServe assigned a GPU and CUDA is available,
        else the CPU.
        """
        spec = SERVED[self.served_name]
        props = context.system_properties
        self.context = context
        self.manifest = context.manifest
        yaml_cfg = getattr(context, "model_yaml_config", None) or {}
        handler_cfg = yaml_cfg.get("handler") or {}
        gpu_id = props.get("gpu_id")
        if torch.cuda.is_available() and gpu_id is not None:
            device = torch.device(f"cuda:{gpu_id}")
        else:
            device = torch.device("cpu")
        requested = int(os.environ.get("MER_TS_TORCH_THREADS", handler_cfg.get("torch_threads", 0)))
        threads = configure_threads(requested, int(yaml_cfg.get("minWorkers", 1)))
        path = Path(props["model_dir"]) / spec.checkpoint
        self.served = ServedModel.load(spec, path, device=device, threads=threads)
        self.device = device
        self.initialized = True
        logger.info(
            "%s %s loaded on %s, %d torch threads, batch size %s",
            spec.name, self.served.loaded.meta.version, device, threads,
            props.get("batch_size"),
        )  # fmt: skip

    def handle(self, data: list[Any], context: Any) -> list[Any]:
        """One batch of requests -> exactly one response per request (in order).

        A malformed request gets status 400 and ``{"error": ...}``; the others still run.
        """
        self.context = context
        if self._is_describe():
            return [self.describe_handle()]
        t0 = time.time()
        result = self.served.handle(data)
        for i, (code, phrase) in enumerate(result.statuses):
            if code != 200:
                context.set_response_status(code=code, phrase=phrase, idx=i)
        context.metrics.add_time("HandlerTime", round((time.time() - t0) * 1000, 2), None, "ms")
        return result.responses

    def describe_handle(self) -> str:
        """The model card etc. as JSON (``GET /models/{name}?customized=true``)."""
        return json.dumps(self.served.describe())
