"""Decoding in a background thread, so that it overlaps the landmarker on a second core."""

from __future__ import annotations

import queue
import threading
from collections.abc import Iterator
from typing import Generic, TypeVar

T = TypeVar("T")


class Threaded(Iterator[T], Generic[T]):
    """An iterator over ``it``'s items, produced in a background thread started at once.

    The thread starts when the object is made, not at the first ``next``: opening the
    container and decoding the first frames overlap what the caller does before it
    iterates (e.g. building the landmarker). Items pass through a queue of ``maxsize``
    (bounded memory); an exception raised by ``it`` is re-raised in the consumer;
    :meth:`close` (also on exhaustion, or as a context manager) stops the thread.

    Args:
        it: the producing iterator (e.g. :func:`mer.video.iter_frames`; PyAV releases the
            GIL while decoding).
        maxsize: most items waiting in the queue.
    """

    _DONE = object()

    def __init__(self, it: Iterator[T], maxsize: int = 16) -> None:
        self._q: queue.Queue = queue.Queue(maxsize=maxsize)
        self._stop = threading.Event()
        self._finished = False
        # the thread holds no reference to self: an iterator dropped unclosed is collected
        # (__del__ stops the thread)
        self._thread = threading.Thread(
            target=_produce, args=(it, self._q, self._stop, self._DONE), name="mer-decode"
        )
        self._thread.daemon = True
        self._thread.start()

    def __iter__(self) -> Threaded[T]:
        return self

    def __next__(self) -> T:
        if self._finished:
            raise StopIteration
        item = self._q.get()
        if item is self._DONE:
            self.close()
            raise StopIteration
        if isinstance(item, BaseException):
            self.close()
            raise item
        return item

    def close(self) -> None:
        """Stop the thread (items not yet consumed are dropped) and wait for it."""
        self._finished = True
        self._stop.set()
        while self._thread.is_alive():
            try:
                self._q.get_nowait()
            except queue.Empty:
                self._thread.join(0.05)

    def __del__(self) -> None:
        # dropped without close(): stop the producer without waiting for it (it ends at its
        # next item once a queue slot is free)
        self._stop.set()
        while True:
            try:
                self._q.get_nowait()
            except queue.Empty:
                return

    def __enter__(self) -> Threaded[T]:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()


def _produce(it: Iterator[T], q: queue.Queue, stop: threading.Event, done: object) -> None:
    """The producer thread of :class:`Threaded`: ``it``'s items, then ``done`` or the error."""
    try:
        for item in it:
            if stop.is_set():
                return
            q.put(item)
        q.put(done)
    except BaseException as exc:  # noqa: BLE001 - forwarded to the consumer
        q.put(exc)
    finally:
        close = getattr(it, "close", None)
        if close is not None:
            close()  # a generator's own cleanup (e.g. the container) in its thread


def threaded(it: Iterator[T], maxsize: int = 16) -> Threaded[T]:
    """Run ``it`` in a background thread, started now (see :class:`Threaded`)."""
    return Threaded(it, maxsize)
