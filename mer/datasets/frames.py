"""Frame files of a clip folder: numbering (``img46.jpg`` is frame 46), listing, nearest frame."""

from __future__ import annotations

import re
from collections.abc import Sequence
from pathlib import Path

#: Image file suffixes recognised as frames (lower case).
FRAME_SUFFIXES: tuple[str, ...] = (".jpg", ".jpeg", ".png", ".bmp", ".tif", ".tiff")

_LAST_INT = re.compile(r"(\d+)(?!.*\d)")


def frame_number(path: Path | str) -> int | None:
    """The last integer in a file's stem: ``img46.jpg`` -> 46, ``006_05562.jpg`` -> 5562.

    Returns None when the stem holds no digits.
    """
    m = _LAST_INT.search(Path(path).stem)
    return int(m.group(1)) if m else None


def list_frames(directory: Path, prefix: str | None = None) -> list[tuple[int, Path]]:
    """Image files of a folder sorted numerically by frame number.

    Args:
        directory: the clip's folder.
        prefix: keep only files whose name starts with it (``"reg_img"``); None keeps all.

    Returns:
        ``[(frame_number, path), ...]`` ascending; files without digits are skipped.
    """
    out: list[tuple[int, Path]] = []
    if not directory.is_dir():
        return out
    for p in directory.iterdir():
        if p.suffix.lower() not in FRAME_SUFFIXES or not p.is_file():
            continue
        if prefix is not None and not p.name.startswith(prefix):
            continue
        n = frame_number(p)
        if n is not None:
            out.append((n, p))
    out.sort(key=lambda t: (t[0], t[1].name))
    return out


def nearest_index(numbers: Sequence[int], target: int) -> int:
    """Index of the frame number closest to ``target`` (ties -> the earlier frame)."""
    if not numbers:
        raise ValueError("no frames")
    best, best_d = 0, abs(numbers[0] - target)
    for i, n in enumerate(numbers):
        d = abs(n - target)
        if d < best_d:
            best, best_d = i, d
    return best
