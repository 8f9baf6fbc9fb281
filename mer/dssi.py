"""DSSI: dynamic segmented sparse imaging (dynamic images over temporal segments).

Dynamic image by approximate rank pooling (Bilen et al., "Dynamic Image Networks for Action
Recognition", CVPR 2016; TPAMI 2017): ``d = sum_t alpha_t I_t`` with
``alpha_t = 2(T - t + 1) - (T + 1)(H_T - H_{t-1})``, ``H_t = sum_{i<=t} 1/i``, ``H_0 = 0``.

DSSI after Liu, Zheng & Zong, "SMA-STN", arXiv 2010.09342. The paper's segment count and
sampling rule are not available to us; **our choice** (ablated in the models report): the
onset-to-offset span is cut into ``n_segments`` (default 3) equal temporal segments, each
sampled sparsely at ``frames_per_segment`` (default 5) evenly spaced frames and summarised
by one local dynamic image; a global dynamic image is taken over ``global_frames`` (default
9) evenly spaced frames of the whole span. Sparse sampling makes the descriptor independent
of the frame rate (25 or 200 fps clips give comparable images).
"""

from __future__ import annotations

import numpy as np


def rank_pooling_weights(T: int) -> np.ndarray:
    """Approximate rank pooling coefficients ``alpha_1..alpha_T``.

    Args:
        T: number of frames, >= 1.

    Returns:
        ``(T,)`` float64; they sum to 0 (T=3: [-1.3333, 0.6667, 0.6667]).

    Raises:
        ValueError: T < 1.
    """
    if T < 1:
        raise ValueError("T must be >= 1")
    harmonic = np.concatenate([[0.0], np.cumsum(1.0 / np.arange(1, T + 1))])  # H_0..H_T
    t = np.arange(1, T + 1)
    return 2.0 * (T - t + 1) - (T + 1) * (harmonic[T] - harmonic[t - 1])


def dynamic_image(frames: np.ndarray) -> np.ndarray:
    """Dynamic image of a frame sequence.

    Args:
        frames: ``(T, H, W)`` or ``(T, H, W, C)``, any real dtype (uint8 pixels typical).

    Returns:
        ``(H, W[, C])`` float32, zero-mean-ish; a single frame gives zeros.
    """
    f = np.asarray(frames, np.float32)
    a = rank_pooling_weights(len(f)).astype(np.float32)
    return np.tensordot(a, f, axes=(0, 0))


def sample_indices(start: int, stop: int, n: int) -> np.ndarray:
    """``n`` evenly spaced integer indices in ``[start, stop]`` (inclusive), deduplicated."""
    if stop < start:
        raise ValueError("stop < start")
    return np.unique(np.round(np.linspace(start, stop, n)).astype(int))


def dssi_indices(
    onset: int,
    offset: int,
    n_segments: int = 3,
    frames_per_segment: int = 5,
    global_frames: int = 9,
) -> tuple[list[np.ndarray], np.ndarray]:
    """Frame indices used by :func:`dssi`: one array per segment, and the global ones."""
    bounds = np.linspace(onset, offset, n_segments + 1)
    segs = [
        sample_indices(
            int(round(bounds[i])),
            max(int(round(bounds[i + 1])), int(round(bounds[i]))),
            frames_per_segment,
        )
        for i in range(n_segments)
    ]
    return segs, sample_indices(onset, offset, global_frames)


def dssi(
    frames: np.ndarray, n_segments: int = 3, frames_per_segment: int = 5, global_frames: int = 9
) -> np.ndarray:
    """Local (per-segment) and global dynamic images of one onset-to-offset clip.

    Args:
        frames: ``(T, H, W[, C])`` aligned face crops from onset to offset, T >= 2.
        n_segments, frames_per_segment, global_frames: see the module docstring.

    Returns:
        ``(n_segments + 1, H, W[, C])`` float32: the local dynamic images, then the global.

    Raises:
        ValueError: fewer than 2 frames.
    """
    f = np.asarray(frames)
    if len(f) < 2:
        raise ValueError("DSSI needs at least 2 frames")
    segs, glob = dssi_indices(0, len(f) - 1, n_segments, frames_per_segment, global_frames)
    images = [dynamic_image(f[idx]) for idx in segs] + [dynamic_image(f[glob])]
    return np.stack(images).astype(np.float32)


def to_uint8(image: np.ndarray) -> np.ndarray:
    """Min-max scale a dynamic image to uint8 for display (Bilen et al.'s visualisation)."""
    lo, hi = float(image.min()), float(image.max())
    if hi - lo < 1e-9:
        return np.full(image.shape, 128, np.uint8)
    return np.round(255 * (image - lo) / (hi - lo)).astype(np.uint8)
