"""A background thread running calls in order (:class:`SerialWorker`): the per-frame work
after the landmarks (blendshapes, alignment, optical flow) runs on the second core while
the calling thread runs the landmarker on the next frame.

MediaPipe's graph, the LiteRT interpreter and OpenCV release the GIL while they compute, so
the two threads overlap; the calls run one at a time, in the order they were submitted, so
the results are those of running them in the calling thread.
"""

from __future__ import annotations

import queue
import threading
from collections.abc import Callable
from typing import Any


class SerialWorker:
    """Runs submitted calls one after another, in submission order, in one daemon thread.

    The first exception a call raises is re-raised in the submitting thread by the next
    :meth:`submit` or by :meth:`join`; the calls submitted after it are skipped. Use it as
    a context manager (or call :meth:`close`) so that the thread ends on every path.

    Args:
        maxsize: most calls waiting (:meth:`submit` blocks beyond): bounds what the waiting
            calls' arguments hold (e.g. decoded frames).
        name: the thread's name.
    """

    def __init__(self, maxsize: int = 4, name: str = "mer-serial") -> None:
        self._q: queue.Queue[tuple[Callable[..., Any], tuple[Any, ...]] | None] = queue.Queue(
            maxsize
        )
        self._error: BaseException | None = None
        self._skip = False  # set by close(): the calls still queued are dropped
        self._closed = False
        self._thread = threading.Thread(target=self._work, name=name, daemon=True)
        self._thread.start()

    def _work(self) -> None:
        while True:
            item = self._q.get()
            if item is None:
                return
            if self._error is not None or self._skip:
                continue
            fn, args = item
            try:
                fn(*args)
            except BaseException as exc:  # noqa: BLE001 - re-raised in the submitter
                self._error = exc

    def _raise(self) -> None:
        if self._error is not None:
            raise self._error

    def submit(self, fn: Callable[..., Any], *args: Any) -> None:
        """Queue ``fn(*args)`` after the calls already submitted.

        Raises:
            The exception of an earlier call that failed.
            RuntimeError: the worker was joined or closed.
        """
        self._raise()
        if self._closed:
            raise RuntimeError("submit on a closed SerialWorker")
        self._q.put((fn, args))

    def join(self) -> None:
        """Wait until every submitted call has run, then end the thread.

        Raises:
            The exception of a call that failed.
        """
        if not self._closed:
            self._closed = True
            self._q.put(None)
        self._thread.join()
        self._raise()

    def close(self) -> None:
        """End the thread without running the calls still queued (the one running
        finishes first); never raises the calls' exceptions."""
        self._skip = True
        if not self._closed:
            self._closed = True
            self._q.put(None)
        self._thread.join()

    def __enter__(self) -> SerialWorker:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()
