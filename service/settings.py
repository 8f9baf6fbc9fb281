"""Settings of the API: authentication, API keys, rate limits, per-key backlog, upload
timeout and the retention sweep, on top of the workers' (the API publishes jobs and can run
them in its own embedded runner) and the science library's.

Same ``MER_`` environment variables as :class:`workers.settings.WorkerSettings`, which this
class extends.
"""

from __future__ import annotations

from functools import lru_cache
from pathlib import Path

from pydantic import Field

from workers.settings import WorkerSettings


class ServiceSettings(WorkerSettings):
    """Configuration of the API (``MER_*`` environment variables)."""

    # --- security, quotas, retention ----------------------------------------------------
    auth_enabled: bool = Field(
        True,
        description="Require an API key on /v1 routes. False only for a trusted local "
        "machine (the API logs a loud warning).",
    )
    api_keys: str = Field(
        "",
        description="Comma-separated 'name:sha256hex' entries (the SHA-256 of each key, "
        "never the key); make one with `python -m service.keys`.",
    )
    api_keys_file: Path | None = Field(
        None, description="File with one 'name:sha256hex' per line (# comments allowed)."
    )
    revoked_keys: str = Field(
        "", description="Comma-separated key names or hashes refused with 403."
    )
    rate_limit: str = Field(
        "600/minute",
        description="Per-key limit on all /v1 requests (limits syntax, ';'-separated).",
    )
    submit_rate_limit: str = Field(
        "60/minute", description="Per-key limit on POST /v1/analyze (limits syntax)."
    )
    upload_timeout_s: float = Field(
        600.0, gt=0, description="Seconds within which a whole upload must arrive (408)."
    )
    max_queued_jobs_per_key: int = Field(
        100,
        ge=1,
        description="Backlog of one key: queued + running jobs it may have; one more "
        "upload gets 429 too_many_jobs.",
    )
    sweep_interval_s: float = Field(
        300.0, gt=0, description="Seconds between retention sweeps in the API."
    )


@lru_cache
def get_settings() -> ServiceSettings:
    """Return the API process's :class:`ServiceSettings` (cached; tests build their own)."""
    return ServiceSettings()
