"""A neutral reference given by the user: a stretch of the video where the person's face is
at rest, against which every blendshape channel is read.

Without one, the neutral is estimated (:func:`mer.aus.baseline.neutral_baseline`: a low
percentile of the person's own frames, capped at the neutral population's range in short
clips). An estimate cannot tell a person's resting face from an expression held throughout
the clip: measured on the real dev set, CREMA-D actor 1001 rests with ``browDown`` at
0.69-0.78, above every one of the 102 London Set neutral faces (maximum 0.60-0.65), so his
neutral sentence reads as a brow lowerer (AU04) from the first frame to the last; and the
brows he raises while talking pull a low percentile, or the mode, down to the talking
level. The person's own rest, when the client knows it (the frames before the stimulus, a
calibration stretch, the onset frame of a data set's clip), removes both errors: the
baseline of each channel is its median over that stretch's face frames, held for the whole
video, with no population cap (the stretch *is* the person's neutral).
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Literal

import numpy as np

from mer.errors import NeutralReferenceError


@dataclass(frozen=True)
class NeutralSpan:
    """A stretch of the video where the face is neutral, both ends included.

    Attributes:
        start, end: in ``unit``: seconds on the result's ``timestamp_s`` axis (the
            stream's presentation time), or 0-based frame indices in decode order.
        unit: ``"s"`` or ``"frame"``.

    Raises:
        NeutralReferenceError: a negative or non-finite start, an end before the start, an
            unknown unit.
    """

    start: float
    end: float
    unit: Literal["s", "frame"] = "s"

    def __post_init__(self) -> None:
        if self.unit not in ("s", "frame"):
            raise NeutralReferenceError(
                f"the neutral stretch's unit must be s or frame, not {self.unit!r}"
            )
        if not (np.isfinite(self.start) and np.isfinite(self.end)) or self.start < 0:
            raise NeutralReferenceError(
                "the neutral stretch must start at 0 or later, got "
                f"{self.start}-{self.end} {self.unit}"
            )
        if self.end < self.start:
            raise NeutralReferenceError(
                f"the neutral stretch ends before it starts: {self.start}-{self.end} {self.unit}"
            )

    def mask(self, timestamps_s: np.ndarray) -> np.ndarray:
        """``(T,)`` bool: the frames inside the stretch, of frames at ``timestamps_s``
        ``(T,)`` seconds (frame ``i`` is decode index ``i``)."""
        t = np.asarray(timestamps_s, np.float64)
        if self.unit == "frame":
            idx = np.arange(len(t))
            return (idx >= self.start) & (idx <= self.end)
        eps = 1e-6  # a timestamp printed with 6 decimals still counts as inside
        return (t >= self.start - eps) & (t <= self.end + eps)

    def check_within(self, duration_s: float, frame_count: int = 0) -> None:
        """Refuse a stretch that starts after the video ends, before any frame is decoded.

        Args:
            duration_s: the video's duration (seconds; 0 = unknown, not checked).
            frame_count: its frame count (0 = unknown, not checked).

        Raises:
            NeutralReferenceError: the stretch starts after the last second / frame.
        """
        if self.unit == "s" and duration_s > 0 and self.start > duration_s:
            raise NeutralReferenceError(
                f"the neutral stretch {self.describe()} starts after the video's end "
                f"({duration_s:.3f} s)"
            )
        if self.unit == "frame" and frame_count > 0 and self.start >= frame_count:
            raise NeutralReferenceError(
                f"the neutral stretch {self.describe()} starts after the video's last frame "
                f"({frame_count - 1})"
            )

    def describe(self) -> str:
        """``"0.0-0.2 s"`` / ``"frames 0-6"``."""
        if self.unit == "frame":
            return f"frames {int(self.start)}-{int(self.end)}"
        return f"{self.start:g}-{self.end:g} s"


def reference_level(x: np.ndarray, frames: np.ndarray) -> np.ndarray:
    """The neutral level of each channel: its median over the reference frames with a face.

    Args:
        x: ``(T, C)`` float channels; NaN rows where no face was found.
        frames: ``(T,)`` bool, the reference stretch.

    Returns:
        ``(C,)`` float64.

    Raises:
        NeutralReferenceError: no frame of the stretch shows a face (or it holds no frame).
    """
    x = np.asarray(x, np.float64)
    use = np.asarray(frames, bool) & ~np.isnan(x).any(axis=1)
    if not use.any():
        n = int(np.asarray(frames, bool).sum())
        raise NeutralReferenceError(
            f"the neutral stretch holds {n} frames, none with a face; give a stretch of the "
            "video where the face is visible and at rest"
        )
    return np.median(x[use], axis=0)
