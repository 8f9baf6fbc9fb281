"""Aligned face crops of a whole video, kept out of the worker's memory (:class:`CropStore`)."""

from __future__ import annotations

import tempfile
from collections.abc import Iterator, Mapping

import numpy as np


class CropStore(Mapping[int, np.ndarray]):
    """Aligned grey face crops by frame index, kept in an anonymous temporary file.

    A 10-minute 100 fps video has 60 000 frames: 1 GB of 128 px crops, which the learned
    models need at the end (AU inputs of every face frame, DSSI of the spotted intervals).
    Writes append to the file; the first read maps it (``numpy.memmap``), so the OS pages
    the crops in and out instead of the worker holding them. Use it as a context manager
    (or call :meth:`close`) so the file goes when the analysis ends, also on errors.

    Args:
        size: crop side ``S`` (pixels).

    ``add(index, crop (S, S) uint8)``; ``store[index]`` -> ``(S, S)`` uint8 (read-only view);
    iteration yields the stored frame indices. Raises ``KeyError`` for a frame without a crop.
    """

    def __init__(self, size: int) -> None:
        self.size = size
        # closed by close() / __exit__, or when the store is collected
        self._file = tempfile.TemporaryFile(prefix="mer-crops-")  # noqa: SIM115
        self._slot: dict[int, int] = {}
        self._map: np.ndarray | None = None

    def add(self, index: int, crop: np.ndarray) -> None:
        """Append ``crop`` ``(S, S)`` uint8 for frame ``index``.

        Raises:
            ValueError: wrong shape.
        """
        if crop.shape != (self.size, self.size):
            raise ValueError(f"expected a ({self.size}, {self.size}) crop, got {crop.shape}")
        self._file.write(np.ascontiguousarray(crop, np.uint8).tobytes())
        self._slot[index] = len(self._slot)
        self._map = None

    def __getitem__(self, index: int) -> np.ndarray:
        slot = self._slot[index]
        if self._map is None:
            self._file.flush()
            shape = (len(self._slot), self.size, self.size)
            self._map = np.memmap(self._file, np.uint8, "r", shape=shape)
        return self._map[slot]

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
        """Drop the map and delete the file."""
        self._map = None
        self._file.close()
