"""The one TorchServe readiness check: ``GET /ping`` and each model's workers on the
management API (``GET /models/{name}``).

Used by the workers' TorchServe client before a job
(:meth:`workers.inference.TorchServeBackend.readiness`) and by
:meth:`mer.serving.launcher.TorchServeProcess.wait_ready` after a start. Imports httpx, so
:mod:`mer.serving` imports this module only where it is used.
"""

from __future__ import annotations

from collections.abc import Iterable
from dataclasses import dataclass, field
from typing import Any

import httpx


@dataclass
class Readiness:
    """Result of one readiness probe of TorchServe.

    Attributes:
        ready: ``/ping`` is healthy and every registered model has a READY worker (and at
            least one of the asked models is registered).
        detail: human-readable reason.
        models: model name -> ``"ready"``, ``"loading"`` (no READY worker yet) or
            ``"missing"`` (not registered).
        versions: model name -> the registered ``modelVersion`` (registered models only).
    """

    ready: bool
    detail: str
    models: dict[str, str] = field(default_factory=dict)
    versions: dict[str, str] = field(default_factory=dict)


def describe_entry(data: Any) -> dict[str, Any]:
    """The first entry of a describe answer (a list of versions)."""
    entry = data[0] if isinstance(data, list) and data else data
    if not isinstance(entry, dict):
        raise ValueError("unexpected describe answer")
    return entry


def why(exc: BaseException) -> str:
    """``ExceptionName: message`` (the name alone when the message is empty)."""
    text = str(exc).strip()
    return f"{exc.__class__.__name__}: {text}" if text else exc.__class__.__name__


def probe_torchserve(
    client: httpx.Client, url: str, management_url: str, names: Iterable[str]
) -> Readiness:
    """Probe ``/ping`` and the workers of each model of ``names`` once (no retries).

    Never raises for an unreachable or unhealthy TorchServe (the answer says why); a
    describe answer that is not JSON of the expected form raises ``ValueError``.
    """
    try:
        r = client.get(f"{url}/ping")
        status = r.json().get("status") if r.status_code == 200 else None
    except (httpx.HTTPError, ValueError) as exc:
        return Readiness(False, f"TorchServe at {url} unreachable ({why(exc)})")
    if status != "Healthy":
        return Readiness(False, f"TorchServe at {url} is not healthy ({r.status_code})")
    names = list(names)
    models: dict[str, str] = {}
    versions: dict[str, str] = {}
    for name in names:
        try:
            d = client.get(f"{management_url}/models/{name}")
        except httpx.HTTPError as exc:
            return Readiness(
                False, f"TorchServe management API at {management_url} unreachable "
                f"({why(exc)})", versions=versions,
            )  # fmt: skip
        if d.status_code == 404:
            models[name] = "missing"
            continue
        if d.status_code != 200:
            return Readiness(False, f"describe {name}: HTTP {d.status_code}", models, versions)
        entry = describe_entry(d.json())
        ok = any(w.get("status") == "READY" for w in entry.get("workers") or [])
        models[name] = "ready" if ok else "loading"
        versions[name] = str(entry.get("modelVersion", ""))
    if names and all(v == "missing" for v in models.values()):
        return Readiness(False, f"TorchServe at {url} serves none of "
                         f"{', '.join(names)}", models, versions)  # fmt: skip
    loading = [k for k, v in models.items() if v == "loading"]
    if loading:
        return Readiness(False, f"no READY worker for {', '.join(loading)}", models, versions)
    return Readiness(True, "ready", models, versions)
