"""Errors of the queue layer, with stable codes like every :class:`~mer.errors.MERError`."""

from __future__ import annotations

from mer.errors import MERError


class StoreUnavailableError(MERError):
    """The job store (Redis or the data directory) cannot be reached or written."""

    code = "store_unavailable"


class QueueUnavailableError(MERError):
    """The job could not be handed to the runner (broker down, runner shut down)."""

    code = "queue_unavailable"
