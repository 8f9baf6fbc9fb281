"""Alignment of faces to a canonical template with a temporally stabilised similarity.

Micro-expression movements (a fraction of a pixel to a few pixels) are about as large as
per-frame landmark jitter, so the per-frame similarity transforms fitted on stable points
(eye corners, nose bridge, nose tip) are smoothed over time with a zero-phase Gaussian of
``sigma_s`` seconds before warping. Residual rigid motion is removed later from the optical
flow (see :mod:`mer.motion`).

Similarity fit: Umeyama, "Least-squares estimation of transformation parameters between two
point patterns", IEEE TPAMI 13(4), 1991.
"""

from __future__ import annotations

from functools import lru_cache
from pathlib import Path

import cv2
import numpy as np

from mer.face.landmarks import STABLE_POINTS

TEMPLATE_PATH = Path(__file__).with_name("template.npy")


def umeyama_similarity(src: np.ndarray, dst: np.ndarray) -> np.ndarray:
    """Least-squares similarity (rotation, isotropic scale, translation) mapping src to dst.

    Args:
        src, dst: ``(N, 2)`` float arrays of corresponding points, N >= 2.

    Returns:
        ``(2, 3)`` float64 matrix M with ``dst ~= src @ M[:, :2].T + M[:, 2]``.

    Raises:
        ValueError: shapes differ, N < 2 or the source points are degenerate.
    """
    src = np.asarray(src, np.float64)
    dst = np.asarray(dst, np.float64)
    if src.shape != dst.shape or src.ndim != 2 or src.shape[1] != 2 or len(src) < 2:
        raise ValueError(f"need matching (N, 2) arrays with N >= 2, got {src.shape}, {dst.shape}")
    mu_s, mu_d = src.mean(0), dst.mean(0)
    s, d = src - mu_s, dst - mu_d
    var_s = (s**2).sum() / len(src)
    if var_s < 1e-12:
        raise ValueError("degenerate source points")
    cov = d.T @ s / len(src)
    u, sig, vt = np.linalg.svd(cov)
    e = np.eye(2)
    if np.linalg.det(u) * np.linalg.det(vt) < 0:
        e[1, 1] = -1
    r = u @ e @ vt
    c = np.trace(np.diag(sig) @ e) / var_s
    t = mu_d - c * r @ mu_s
    return np.hstack([c * r, t[:, None]])


@lru_cache(maxsize=1)
def load_template() -> np.ndarray:
    """The canonical 468-point template in unit-crop coordinates: ``(468, 2)`` float32.

    Built by ``scripts/make_face_template.py`` from the London Set neutral faces.

    Raises:
        FileNotFoundError: the template file is missing from the package.
    """
    return np.load(TEMPLATE_PATH)


def params_from_matrix(m: np.ndarray) -> np.ndarray:
    """``(2, 3)`` similarity -> ``(4,)`` parameters ``(a, b, tx, ty)``, M = [[a,-b,tx],[b,a,ty]]."""
    return np.array([m[0, 0], m[1, 0], m[0, 2], m[1, 2]], np.float64)


def matrix_from_params(p: np.ndarray) -> np.ndarray:
    """``(4,)`` parameters ``(a, b, tx, ty)`` -> ``(2, 3)`` float64 similarity matrix."""
    a, b, tx, ty = p
    return np.array([[a, -b, tx], [b, a, ty]], np.float64)


def fit_to_template(landmarks: np.ndarray, crop_size: int) -> np.ndarray:
    """Similarity mapping image pixels to the aligned crop, fitted on :data:`STABLE_POINTS`.

    Args:
        landmarks: ``(468, 2)`` pixels.
        crop_size: side of the square aligned crop, pixels.

    Returns:
        ``(4,)`` float64 parameters (see :func:`params_from_matrix`).
    """
    idx = list(STABLE_POINTS)
    m = umeyama_similarity(landmarks[idx], load_template()[idx] * crop_size)
    return params_from_matrix(m)


def smooth_params(
    params: np.ndarray, timestamps_s: np.ndarray, valid: np.ndarray, sigma_s: float
) -> np.ndarray:
    """Zero-phase Gaussian smoothing of similarity parameters over time.

    Frames without a face (``valid`` False) get the weighted average of their valid
    neighbours, so short detection gaps are bridged; a frame with no valid frame within
    3 sigma keeps NaN.

    Args:
        params: ``(T, 4)`` float64 per-frame parameters (rows of invalid frames ignored).
        timestamps_s: ``(T,)`` seconds (non-uniform spacing is handled).
        valid: ``(T,)`` bool.
        sigma_s: Gaussian sigma in seconds; 0 disables smoothing.

    Returns:
        ``(T, 4)`` float64 smoothed parameters.
    """
    t = np.asarray(timestamps_s, np.float64)
    out = np.full_like(params, np.nan, dtype=np.float64)
    vi = np.flatnonzero(valid)
    if len(vi) == 0:
        return out
    if sigma_s <= 0:
        out[vi] = params[vi]
        return out
    tv, pv = t[vi], params[vi]
    for i in range(len(t)):
        lo = np.searchsorted(tv, t[i] - 3 * sigma_s)
        hi = np.searchsorted(tv, t[i] + 3 * sigma_s, side="right")
        if hi > lo:
            out[i] = gaussian_average(pv[lo:hi], tv[lo:hi], t[i], sigma_s)
    return out


def gaussian_average(
    params: np.ndarray, timestamps_s: np.ndarray, at_s: float, sigma_s: float
) -> np.ndarray:
    """Gaussian-weighted mean of ``(N, 4)`` parameters at times ``(N,)`` around ``at_s``.

    The kernel of :func:`smooth_params`, also used frame by frame by the streaming
    pipeline. Returns ``(4,)`` float64.
    """
    w = np.exp(-0.5 * ((np.asarray(timestamps_s, np.float64) - at_s) / sigma_s) ** 2)
    return (w[:, None] * np.asarray(params, np.float64)).sum(0) / w.sum()


def warp_to_crop(image: np.ndarray, params: np.ndarray, crop_size: int) -> np.ndarray:
    """Warp an image into the aligned crop.

    Args:
        image: ``(H, W)`` or ``(H, W, C)`` uint8.
        params: ``(4,)`` similarity parameters image -> crop.
        crop_size: output side in pixels.

    Returns:
        ``(crop_size, crop_size[, C])`` uint8, bilinear, borders replicated.
    """
    return cv2.warpAffine(
        image,
        matrix_from_params(params),
        (crop_size, crop_size),
        flags=cv2.INTER_LINEAR,
        borderMode=cv2.BORDER_REPLICATE,
    )


def landmarks_to_crop(landmarks: np.ndarray, params: np.ndarray) -> np.ndarray:
    """Map ``(N, 2)`` image-pixel landmarks into aligned-crop pixels with ``params``."""
    m = matrix_from_params(params)
    return (landmarks @ m[:, :2].T + m[:, 2]).astype(np.float32)
