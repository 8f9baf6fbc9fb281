"""Per-key rate limits (the ``limits`` library) and the concurrent-job quota.

* Rate limits: a sliding-window counter per key, in Redis when the service has one
  (``effective_redis_url``; shared by every API process), else in memory.
  ``MER_RATE_LIMIT`` applies to every ``/v1`` request, ``MER_SUBMIT_RATE_LIMIT`` also to
  ``POST /v1/analyze``. Over the limit: 429 ``rate_limited`` with ``Retry-After``.
* Backlog: each key may have at most ``MER_MAX_QUEUED_JOBS_PER_KEY`` (100) queued or
  running jobs (slots kept by the job store, see :meth:`JobStore.reserve_slot`); one
  more: 429 ``too_many_jobs`` with ``Retry-After``. A job's slot is released when it
  ends or is deleted.
* Concurrency: at most ``MER_MAX_CONCURRENT_JOBS_PER_KEY`` (4) of a key's jobs run at
  once; the others wait in the queue (run slots taken by the workers, see
  :meth:`JobStore.acquire_run_slot`). This never refuses an upload.

If Redis is unreachable the limiter answers 503 ``rate_limiter_unavailable``: it fails
closed, like the rest of the API without its store.
"""

from __future__ import annotations

import logging
import math
import time

from limits import RateLimitItem, parse_many
from limits.errors import StorageError
from limits.storage import MemoryStorage, RedisStorage, Storage
from limits.strategies import SlidingWindowCounterRateLimiter

from service.errors import RateLimitedError, RateLimiterUnavailableError
from service.settings import ServiceSettings

logger = logging.getLogger(__name__)

#: ``Retry-After`` (seconds) suggested when the concurrent-job quota is full.
TOO_MANY_JOBS_RETRY_S = 5
#: A backlog slot whose job record does not exist yet (its upload is still arriving)
#: counts for the upload timeout plus this many seconds.
SLOT_GRACE_MARGIN_S = 60.0


def parse_limits(text: str, setting: str) -> list[RateLimitItem]:
    """Parse ``"60/minute;5/second"`` (``limits`` syntax); empty or ``"none"``: no limit.

    Raises:
        ValueError: the text is not valid ``limits`` syntax (names ``setting``).
    """
    if not text.strip() or text.strip().lower() in ("none", "off", "0"):
        return []
    try:
        return parse_many(text)
    except ValueError as exc:
        raise ValueError(f"{setting}: {exc}") from exc


class RateLimiter:
    """Sliding-window rate limits per API key name."""

    def __init__(self, settings: ServiceSettings) -> None:
        """Use Redis (``effective_redis_url``) when set, else process memory."""
        url = settings.effective_redis_url
        self.storage: Storage
        if url:
            self.storage = RedisStorage(
                url,
                key_prefix="mer:rl",
                wrap_exceptions=True,
                socket_connect_timeout=2,
                socket_timeout=3,
            )
            self.kind = "redis"
        else:
            self.storage = MemoryStorage(wrap_exceptions=True)
            self.kind = "memory"
        self.strategy = SlidingWindowCounterRateLimiter(self.storage)
        self.all_limits = parse_limits(settings.rate_limit, "MER_RATE_LIMIT")
        self.submit_limits = parse_limits(settings.submit_rate_limit, "MER_SUBMIT_RATE_LIMIT")

    def _hit(self, items: list[RateLimitItem], scope: str, name: str) -> None:
        for item in items:
            try:
                allowed = self.strategy.hit(item, scope, name)
                if allowed:
                    continue
                stats = self.strategy.get_window_stats(item, scope, name)
            except StorageError as exc:
                logger.warning("rate limiter storage unavailable: %s", exc)
                raise RateLimiterUnavailableError(
                    f"the rate limiter is unavailable ({exc.storage_error.__class__.__name__})"
                ) from exc
            retry = max(1, math.ceil(stats.reset_time - time.time()))
            raise RateLimitedError(
                f"rate limit of {item} exceeded for this API key; retry in {retry} s",
                headers={"Retry-After": str(retry)},
            )

    def check_request(self, name: str) -> None:
        """Count one request of key ``name``; raise 429 ``rate_limited`` when over."""
        self._hit(self.all_limits, "all", name)

    def check_submit(self, name: str) -> None:
        """Count one submission of key ``name``; raise 429 ``rate_limited`` when over."""
        self._hit(self.submit_limits, "submit", name)

    def check(self) -> None:
        """Raise :class:`RateLimiterUnavailableError` if the storage is unreachable."""
        try:
            ok = self.storage.check()
        except Exception as exc:  # noqa: BLE001
            raise RateLimiterUnavailableError(f"rate limiter: {exc.__class__.__name__}") from exc
        if not ok:
            raise RateLimiterUnavailableError("the rate limiter storage is unreachable")

    def reset(self) -> None:
        """Forget all counters (tests and operators)."""
        try:
            self.storage.reset()
        except Exception:  # noqa: BLE001
            logger.warning("could not reset the rate limiter", exc_info=True)
