"""Annotated FastAPI dependencies (FastAPI full-stack template style).

The app factory puts the settings, the job store, the runner, the key ring and the rate
limiter on ``app.state``; routes receive them as ``settings: SettingsDep``,
``store: JobStoreDep``, ``runner: RunnerDep``, ``principal: PrincipalDep``. Tests may swap
any of them with ``app.dependency_overrides``.
"""

from __future__ import annotations

from typing import Annotated

from fastapi import Depends, Request
from fastapi.security import APIKeyHeader, HTTPAuthorizationCredentials, HTTPBearer

from service.auth import ANONYMOUS, MAX_KEY_CHARS, KeyRing, Principal, key_from_headers
from service.errors import InvalidApiKeyError, MissingApiKeyError, RevokedApiKeyError
from service.quotas import RateLimiter
from service.settings import ServiceSettings
from workers.jobstore import JobStore
from workers.runner import JobRunner

#: OpenAPI security schemes (either one is accepted).
bearer_scheme = HTTPBearer(auto_error=False, description="Authorization: Bearer <API key>")
api_key_scheme = APIKeyHeader(name="X-API-Key", auto_error=False, description="The API key")

_CHALLENGE = {"WWW-Authenticate": 'Bearer realm="mer"'}


def get_app_settings(request: Request) -> ServiceSettings:
    """The :class:`ServiceSettings` the app was created with."""
    return request.app.state.settings


def get_job_store(request: Request) -> JobStore:
    """The app's :class:`JobStore`."""
    return request.app.state.job_store


def get_runner(request: Request) -> JobRunner:
    """The app's :class:`JobRunner`."""
    return request.app.state.runner


def get_rate_limiter(request: Request) -> RateLimiter:
    """The app's :class:`RateLimiter`."""
    return request.app.state.rate_limiter


def authenticate(
    request: Request,
    bearer: Annotated[HTTPAuthorizationCredentials | None, Depends(bearer_scheme)],
    x_api_key: Annotated[str | None, Depends(api_key_scheme)],
) -> Principal:
    """Identify the caller by API key and count the request against its rate limit.

    Raises:
        MissingApiKeyError: 401, no key sent.
        InvalidApiKeyError: 401, unknown key.
        RevokedApiKeyError: 403.
        RateLimitedError: 429 with ``Retry-After``.
        RateLimiterUnavailableError: 503, the limiter's Redis is down.
    """
    settings: ServiceSettings = request.app.state.settings
    limiter: RateLimiter = request.app.state.rate_limiter
    if not settings.auth_enabled:
        principal = Principal(name=ANONYMOUS, authenticated=False)
    else:
        key = key_from_headers(
            f"Bearer {bearer.credentials}" if bearer is not None else None, x_api_key
        )
        if key is None:
            raise MissingApiKeyError(
                "an API key is required: send 'Authorization: Bearer <key>' or 'X-API-Key: <key>'",
                headers=_CHALLENGE,
            )
        ring: KeyRing = request.app.state.key_ring
        entry = ring.lookup(key) if len(key) <= MAX_KEY_CHARS else None
        if entry is None:
            raise InvalidApiKeyError("the API key is not valid", headers=_CHALLENGE)
        if entry.revoked:
            raise RevokedApiKeyError(f"the API key {entry.name!r} has been revoked")
        principal = Principal(name=entry.name, authenticated=True)
    request.state.principal = principal
    limiter.check_request(principal.name)
    return principal


SettingsDep = Annotated[ServiceSettings, Depends(get_app_settings)]
JobStoreDep = Annotated[JobStore, Depends(get_job_store)]
RunnerDep = Annotated[JobRunner, Depends(get_runner)]
RateLimiterDep = Annotated[RateLimiter, Depends(get_rate_limiter)]
PrincipalDep = Annotated[Principal, Depends(authenticate)]
