"""Property-based fuzzing of every documented operation with schemathesis (built on
hypothesis) against the ASGI app: no input may produce a 5xx.

The app runs with authentication on, the embedded runner and a fake analyzer (no models),
so the few uploads that pass the content checks finish at once. Each operation gets a
bounded number of examples (``FUZZ_EXAMPLES``, schema-valid and schema-violating mixed) to
keep the run well under a minute; the same operations are also fuzzed without an API key.
"""

from __future__ import annotations

from collections.abc import Iterator

import pytest
import schemathesis
from fastapi import FastAPI
from hypothesis import HealthCheck, given
from hypothesis import settings as hsettings
from schemathesis import GenerationMode
from schemathesis.checks import not_a_server_error
from starlette.types import Receive, Scope, Send

from service.auth import hash_key
from service.main import create_app
from service.settings import ServiceSettings
from workers import tasks

FUZZ_KEY = "fuzz-key-123"
FUZZ_EXAMPLES = 60


@pytest.fixture(scope="module")
def fuzz_app(tmp_path_factory: pytest.TempPathFactory) -> Iterator[FastAPI]:
    """The API with a fake analyzer, generous limits and a small upload limit."""
    from helpers import FakeAnalyzer

    analyzer = FakeAnalyzer()
    settings = ServiceSettings(
        _env_file=None,  # type: ignore[call-arg]
        data_dir=tmp_path_factory.mktemp("fuzz") / "data",
        broker_url=None,
        redis_url=None,
        api_keys=f"fuzzer:{hash_key(FUZZ_KEY)}",
        rate_limit="none",
        submit_rate_limit="none",
        max_concurrent_jobs_per_key=1000,
        max_upload_bytes=1024 * 1024,
    )
    with pytest.MonkeyPatch.context() as mp:
        mp.setattr(tasks, "load_analyzer", lambda: analyzer)
        app = create_app(settings)
        yield app
        app.state.runner.close()


class _StartedOnce:
    """ASGI wrapper that answers lifespan events itself: schemathesis opens a client per
    request, and the app's own lifespan would close its runner after the first one."""

    def __init__(self, app: FastAPI) -> None:
        self.app = app

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] == "lifespan":
            while True:
                message = await receive()
                if message["type"] == "lifespan.startup":
                    await send({"type": "lifespan.startup.complete"})
                elif message["type"] == "lifespan.shutdown":
                    await send({"type": "lifespan.shutdown.complete"})
                    return
        await self.app(scope, receive, send)


@pytest.fixture(scope="module")
def fuzz_schema(fuzz_app: FastAPI) -> schemathesis.BaseSchema:
    """The app's own OpenAPI schema, loaded over ASGI."""
    return schemathesis.openapi.from_asgi("/openapi.json", _StartedOnce(fuzz_app))


#: Operations of the public API, fuzzed one test each (``METHOD path``).
OPERATIONS = [
    "POST /v1/analyze",
    "GET /v1/jobs/{job_id}",
    "DELETE /v1/jobs/{job_id}",
    "GET /v1/jobs/{job_id}/result.csv",
    "POST /v1/jobs/{job_id}/cancel",
    "GET /v1/jobs/{job_id}/video",
    # the unversioned aliases of the /v1 routes (service/routes/aliases.py)
    "POST /analyze",
    "GET /jobs/{job_id}",
    "DELETE /jobs/{job_id}",
    "GET /jobs/{job_id}/result.csv",
    "POST /jobs/{job_id}/cancel",
    "GET /healthz",
    "GET /readyz",
    "GET /ui/config",
]
#: Operations without parameters: one generated request may be all there is.
NO_PARAMETERS = {"GET /healthz", "GET /readyz", "GET /ui/config"}


def _fuzz(schema: schemathesis.BaseSchema, label: str, headers: dict[str, str]) -> int:
    """Run ``FUZZ_EXAMPLES`` generated requests against one operation; return how many
    were sent. Fails on any 5xx or on an error body that is not ``{code, message}``."""
    operations = {op.label: op for op in (r.ok() for r in schema.get_all_operations())}
    operation = operations[label]
    sent = 0

    # schemathesis' own pytest plugin does not support this pytest; drive hypothesis here
    strategy = operation.as_strategy(GenerationMode.POSITIVE) | operation.as_strategy(
        GenerationMode.NEGATIVE
    )

    @given(case=strategy)
    @hsettings(
        max_examples=FUZZ_EXAMPLES,
        deadline=None,
        derandomize=True,
        database=None,
        suppress_health_check=list(HealthCheck),
    )
    def run(case: schemathesis.Case) -> None:
        nonlocal sent
        response = case.call(headers={**(case.headers or {}), **headers})
        sent += 1
        case.validate_response(response, checks=[not_a_server_error])
        if response.status_code >= 400:
            body = response.json()
            assert set(body) == {"code", "message"}, body
        if not headers and label.split(" ")[1].startswith(("/v1/", "/analyze", "/jobs/")):
            assert response.status_code in (401, 404, 405, 422), response.text

    run()
    return sent


@pytest.mark.parametrize("label", OPERATIONS)
def test_no_server_error_with_key(fuzz_schema: schemathesis.BaseSchema, label: str) -> None:
    assert _fuzz(fuzz_schema, label, {"X-API-Key": FUZZ_KEY}) >= (
        1 if label in NO_PARAMETERS else 5
    )


@pytest.mark.parametrize("label", OPERATIONS)
def test_no_server_error_without_key(fuzz_schema: schemathesis.BaseSchema, label: str) -> None:
    assert _fuzz(fuzz_schema, label, {}) >= (1 if label in NO_PARAMETERS else 5)


def test_every_operation_is_fuzzed(fuzz_schema: schemathesis.BaseSchema) -> None:
    """The list above is the whole public API (so a new route cannot escape fuzzing)."""
    labels = {r.ok().label for r in fuzz_schema.get_all_operations()}
    assert labels == set(OPERATIONS)
