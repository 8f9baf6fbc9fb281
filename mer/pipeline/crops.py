"""Aligned face crops of a whole video, kept out of the worker's memory (:class:`CropStore`)."""

from __future__ import annotations

import os
import tempfile
from collections.abc import Iterator, Mapping

import numpy as np


class CropStore(Mapping[int, np.ndarray]):
    """Aligned grey face crops by frame index, kept in an anonymous temporary file.

    A 10-minute 30 fps video has 18 000 frames: 295 MB of 128 px crops, which the learned
    models need at the end (AU inputs of every face frame, DSSI of the spotted intervals).
    Writes append to the file; each read copies one crop back with a positional read
    (``os.pread``), so the worker holds only the crops in use: the file's pages sit in the
    OS page cache, never in the process (a ``numpy.memmap`` would count every page read
    in the worker's resident set). Reads are thread safe. Use it as a context manager (or
    call :meth:`close`) so the file goes when the analysis ends, also on errors.

    Args:
        size: crop side ``S`` (pixels).

    ``add(index, crop (S, S) uint8)``; ``store[index]`` -> a fresh read-only ``(S, S)``
    uint8 array; iteration yields the stored frame indices in the order they were added.
    Raises ``KeyError`` for a frame without a crop.
    """

    def __init__(self, size: int) -> None:
        self.size = size
        self._nbytes = size * size
        # closed by close() / __exit__, or when the store is collected
        self._file = tempfile.TemporaryFile(prefix="mer-crops-")  # noqa: SIM115
        self._slot: dict[int, int] = {}  # frame index -> slot in the file
        self._written = 0  # slots in the file
        self._dirty = False

    def add(self, index: int, crop: np.ndarray) -> None:
        """Append ``crop`` ``(S, S)`` uint8 for frame ``index`` (a frame added again
        points to its new copy).

        Raises:
            ValueError: wrong shape.
        """
        if crop.shape != (self.size, self.size):
            raise ValueError(f"expected a ({self.size}, {self.size}) crop, got {crop.shape}")
        self._file.write(np.ascontiguousarray(crop, np.uint8).tobytes())
        self._slot[index] = self._written
        self._written += 1
        self._dirty = True

    def __getitem__(self, index: int) -> np.ndarray:
        slot = self._slot[index]
        if self._dirty:
            self._file.flush()
            self._dirty = False
        raw = os.pread(self._file.fileno(), self._nbytes, slot * self._nbytes)
        return np.frombuffer(raw, np.uint8).reshape(self.size, self.size)

    def __contains__(self, index: object) -> bool:
        return index in self._slot

    def __iter__(self) -> Iterator[int]:
        return iter(self._slot)

    def __len__(self) -> int:
        return len(self._slot)

    def __enter__(self) -> CropStore:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()

    @property
    def closed(self) -> bool:
        """True once :meth:`close` ran."""
        return self._file.closed

    def close(self) -> None:
        """Delete the file."""
        self._file.close()
