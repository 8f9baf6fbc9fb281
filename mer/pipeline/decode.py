"""Decoding in a background thread, so that it overlaps the landmarker on a second core."""

from __future__ import annotations

import queue
import threading
from collections.abc import Iterator
from typing import TypeVar

T = TypeVar("T")


def threaded(it: Iterator[T], maxsize: int = 16) -> Iterator[T]:
    """Run ``it`` in a background thread (PyAV releases the GIL while decoding).

    Items pass through a queue of ``maxsize`` (bounded memory); an exception raised by
    ``it`` is re-raised in the consumer; closing the consumer early stops the thread.
    """
    q: queue.Queue = queue.Queue(maxsize=maxsize)
    stop = threading.Event()
    done = object()

    def work() -> None:
        try:
            for item in it:
                if stop.is_set():
                    return
                q.put(item)
            q.put(done)
        except BaseException as exc:  # noqa: BLE001 - forwarded to the consumer
            q.put(exc)

    th = threading.Thread(target=work, name="mer-decode", daemon=True)
    th.start()
    try:
        while True:
            item = q.get()
            if item is done:
                return
            if isinstance(item, BaseException):
                raise item
            yield item
    finally:
        stop.set()
        while th.is_alive():
            try:
                q.get_nowait()
            except queue.Empty:
                th.join(0.05)
