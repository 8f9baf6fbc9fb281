"""Aligned face crops of image sequences (data-set clips), the way the pipeline makes them.

Same landmarker, template fit, temporal smoothing and warp as :mod:`mer.pipeline`, but
offline over a list of frames (a data-set clip's sampled frames), so that the learned
models train on the crops they see at inference.
"""

from __future__ import annotations

from collections.abc import Sequence

import cv2
import numpy as np

from mer.face.align import fit_to_template, smooth_params, warp_to_crop
from mer.face.landmarks import Landmarker


def align_frames(
    images: Sequence[np.ndarray],
    timestamps_s: Sequence[float],
    landmarker: Landmarker,
    crop_size: int = 128,
    sigma_s: float = 0.1,
) -> tuple[np.ndarray, np.ndarray]:
    """Align a clip's frames and return the aligned crops (as the pipeline keeps them).

    Args:
        images: T frames, ``(H, W, 3)`` uint8 RGB, in time order.
        timestamps_s: ``(T,)`` seconds.
        landmarker: reset here (tracking starts fresh for the clip).
        crop_size: aligned crop side (pixels); :func:`mer.model_inputs.model_crop` makes the
            model crops of them.
        sigma_s: temporal smoothing of the similarity (seconds).

    Returns:
        ``(crops, valid)``: ``(T, crop_size, crop_size)`` uint8 aligned grey crops (a frame
        without a face copies its nearest face frame) and ``(T,)`` bool.

    Raises:
        ValueError: no face in any frame.
    """
    from mer.pipeline import MainFaceTracker

    landmarker.reset()
    tracker = MainFaceTracker()
    T = len(images)
    params = np.full((T, 4), np.nan)
    valid = np.zeros(T, bool)
    for i, img in enumerate(images):
        face = tracker.select(landmarker.process(img))
        if face is not None:
            params[i] = fit_to_template(face.landmarks, crop_size)
            valid[i] = True
    if not valid.any():
        raise ValueError("no face in any frame")
    sm = smooth_params(params, np.asarray(timestamps_s, float), valid, sigma_s)
    vi = np.flatnonzero(valid)
    crops = []
    for i in range(T):
        j = i if valid[i] else vi[np.argmin(np.abs(vi - i))]
        gray = cv2.cvtColor(images[j], cv2.COLOR_RGB2GRAY)
        crops.append(warp_to_crop(gray, sm[j], crop_size))
    return np.stack(crops), valid
