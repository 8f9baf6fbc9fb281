"""Dense optical flow on aligned face crops and per-region motion in FACS regions.

Optical flow: OpenCV's DIS (Kroeger et al., "Fast Optical Flow using Dense Inverse Search",
ECCV 2016). Regions are disks around MediaPipe landmarks of the canonical template, named
after the FACS areas they cover (Ekman, Friesen & Hager, FACS Manual, 2002). The nose-bridge
region carries almost no AU movement; its mean flow is subtracted as residual rigid head
motion (the same idea as the nose-tip alignment in MEGC spotting baselines).

Coordinates: aligned-crop pixels, x right, y down. A displacement (dx, dy) of a region is
how far its content moved from the reference frame to the current frame.
"""

from __future__ import annotations

from collections import deque
from dataclasses import dataclass

import cv2
import numpy as np

from mer.face.align import load_template

#: FACS regions as MediaPipe mesh indices. ``r_`` = subject's right (image left).
REGIONS: dict[str, tuple[int, ...]] = {
    "r_inner_brow": (107, 55, 66, 65),
    "l_inner_brow": (336, 285, 296, 295),
    "r_outer_brow": (70, 46, 63, 53),
    "l_outer_brow": (300, 276, 293, 283),
    "glabella": (9, 8),
    "r_upper_lid": (160, 159, 158),
    "l_upper_lid": (387, 386, 385),
    "r_lower_lid": (144, 145, 153),
    "l_lower_lid": (373, 374, 380),
    "r_cheek": (50, 101, 205, 118),
    "l_cheek": (280, 330, 425, 347),
    "r_nose_wing": (129, 64, 48),
    "l_nose_wing": (358, 294, 278),
    "upper_lip": (0, 37, 267),
    "upper_lip_inner": (13, 82, 312),
    "lower_lip_inner": (14, 87, 317),
    "r_lip_corner": (61, 76, 62),
    "l_lip_corner": (291, 306, 292),
    "lower_lip": (17, 84, 314),
    "chin": (152, 175, 199, 200),
    "nose_bridge": (168, 6, 197, 195),
}
REGION_NAMES: tuple[str, ...] = tuple(REGIONS)
RIGID_REGION = "nose_bridge"
#: Regions left out of the apex score: blinks (AU45) move the lids far more than any
#: emotional AU, and the rigid reference region is zero by construction.
APEX_EXCLUDED: frozenset[str] = frozenset(
    {"r_upper_lid", "l_upper_lid", "r_lower_lid", "l_lower_lid", RIGID_REGION}
)


@dataclass(frozen=True)
class RegionMasks:
    """Normalised region weights for fast region means.

    Attributes:
        names: region names, length R.
        weights: ``(R, S*S)`` float32, each row sums to 1.
        crop_size: S, pixels.
        interocular: template outer-eye-corner distance in crop pixels.
    """

    names: tuple[str, ...]
    weights: np.ndarray
    crop_size: int
    interocular: float


def build_region_masks(crop_size: int, radius_frac: float = 0.045) -> RegionMasks:
    """Disk masks (radius ``radius_frac * crop_size``) around each region's template points."""
    tpl = load_template() * crop_size
    yy, xx = np.mgrid[0:crop_size, 0:crop_size].astype(np.float32)
    r2 = (radius_frac * crop_size) ** 2
    rows = []
    for name in REGION_NAMES:
        m = np.zeros((crop_size, crop_size), np.float32)
        for i in REGIONS[name]:
            x, y = tpl[i]
            m = np.maximum(m, ((xx - x) ** 2 + (yy - y) ** 2 <= r2).astype(np.float32))
        rows.append(m.ravel() / max(m.sum(), 1.0))
    iod = float(np.linalg.norm(tpl[33] - tpl[263]))
    return RegionMasks(REGION_NAMES, np.stack(rows), crop_size, iod)


class FlowEstimator:
    """DIS optical flow between two ``(S, S)`` uint8 grey crops.

    Args:
        preset: ``"ultrafast"``, ``"fast"`` or ``"medium"`` (OpenCV DIS presets).
    """

    _PRESETS = {
        "ultrafast": cv2.DISOPTICAL_FLOW_PRESET_ULTRAFAST,
        "fast": cv2.DISOPTICAL_FLOW_PRESET_FAST,
        "medium": cv2.DISOPTICAL_FLOW_PRESET_MEDIUM,
    }

    def __init__(self, preset: str = "fast") -> None:
        if preset not in self._PRESETS:
            raise ValueError(f"unknown DIS preset {preset!r}")
        self._dis = cv2.DISOpticalFlow_create(self._PRESETS[preset])

    def __call__(self, ref: np.ndarray, cur: np.ndarray) -> np.ndarray:
        """Flow from ``ref`` to ``cur``: ``(S, S, 2)`` float32 pixels, at ``ref``'s grid."""
        return self._dis.calc(ref, cur, None)


def region_displacements(flow: np.ndarray, masks: RegionMasks) -> np.ndarray:
    """Mean flow per region minus the rigid (nose-bridge) flow.

    Args:
        flow: ``(S, S, 2)`` float32 pixels.
        masks: region weights for crop size S.

    Returns:
        ``(R, 2)`` float32 displacements in crop pixels (the rigid region's row is ~0).
    """
    d = masks.weights @ flow.reshape(-1, 2)
    return (d - d[masks.names.index(RIGID_REGION)]).astype(np.float32)


class TwoSidedMotion:
    """Streaming region motion of every frame against past and future references.

    For each lag k (frames) and frame t, ``past[t, k]`` is the region displacement of t
    relative to frame ``t - k`` (clamped to the first face frame) and ``future[t, k]``
    relative to ``t + k`` (clamped to the last). Only past flows are computed while
    streaming; the future one reuses ``-past[t + k, k]`` (the flow from t to t+k, reversed)
    and the clamped tail is computed in :meth:`finish`. Memory holds ``max(lags) + 1`` crops
    and the past displacements, 0.7 kB a frame with 4 lags, as rows of blocks.

    A movement shows up in both (the frame differs from the neutral frames before and after
    it), whereas a frame after a movement differs only from the past: the smaller of the
    two magnitudes is the movement relative to the local neutral state.

    Args:
        masks: regions for the crop size.
        lags: lags in frames (>= 1), e.g. ``(6, 15, 36)`` for 0.2, 0.5, 1.2 s at 30 fps.
        flow: the optical-flow estimator.
    """

    #: frames per block of stored past displacements (0.7 kB a frame with 4 lags)
    BLOCK = 2048

    def __init__(self, masks: RegionMasks, lags: tuple[int, ...], flow: FlowEstimator) -> None:
        self.masks = masks
        self.lags = tuple(max(1, int(k)) for k in lags)
        self.flow = flow
        self._buf: deque[tuple[int, np.ndarray]] = deque(maxlen=max(self.lags) + 1)
        self._first: tuple[int, np.ndarray] | None = None
        # past displacements in blocks of BLOCK frames (K, R, 2) float32, NaN without face:
        # compact rows, copied once into the (T, K, R, 2) array at the end
        self._blocks: list[np.ndarray] = []
        self._n = 0

    def push(self, index: int, crop: np.ndarray | None) -> None:
        """Add frame ``index`` (consecutive from 0); ``crop`` is ``(S, S)`` uint8 or None."""
        self._n = index + 1
        while len(self._blocks) * self.BLOCK < self._n:
            shape = (self.BLOCK, len(self.lags), len(self.masks.names), 2)
            self._blocks.append(np.full(shape, np.nan, np.float32))
        if crop is None:
            return
        if self._first is None:
            self._first = (index, crop)
        rows = self._blocks[index // self.BLOCK][index % self.BLOCK]
        for j, k in enumerate(self.lags):
            ref = self._ref_before(index - k)
            if ref is not None and ref[0] != index:
                rows[j] = region_displacements(self.flow(ref[1], crop), self.masks)
            elif ref is not None:
                rows[j] = 0.0
        self._buf.append((index, crop))

    def _ref_before(self, target: int) -> tuple[int, np.ndarray] | None:
        """The buffered crop at ``target`` or the nearest earlier one; else the first face."""
        best = None
        for i, c in self._buf:
            if i > target:
                break
            best = (i, c)
        return best if best is not None else self._first

    def finish(self) -> tuple[np.ndarray, np.ndarray]:
        """Return ``(past, future)``: ``(T, K, R, 2)`` float32 each, NaN without a face.

        Call it once (or :meth:`finish_lazy`): the stored rows move into ``past``.
        """
        past, future = self.finish_lazy()
        return past, future.rows(slice(0, len(past)))

    def finish_lazy(self) -> tuple[np.ndarray, FutureDisplacements]:
        """Like :meth:`finish`, with the future side read in row blocks
        (:meth:`FutureDisplacements.rows`) instead of a second ``(T, K, R, 2)`` array."""
        n, kk, r = self._n, len(self.lags), len(self.masks.names)
        past = np.empty((n, kk, r, 2), np.float32)
        for b in range(len(self._blocks)):
            lo = b * self.BLOCK
            past[lo : lo + self.BLOCK] = self._blocks[b][: n - lo]
            self._blocks[b] = self._blocks[b][:0]  # freed as it is copied
        self._blocks = []
        # the last frames' future reference lies beyond the video (or had no face): the flow
        # to the last face frame
        tail: dict[tuple[int, int], np.ndarray] = {}
        last = self._buf[-1] if self._buf else None
        if last is not None:
            li, lc = last
            for i, c in self._buf:
                for j, k in enumerate(self.lags):
                    if i + k > li or (i + k < n and np.isnan(past[i + k, j]).all()):
                        tail[i, j] = (
                            np.zeros((r, 2), np.float32)
                            if i == li
                            else region_displacements(self.flow(lc, c), self.masks)
                        )
        return past, FutureDisplacements(past, self.lags, tail)


class FutureDisplacements:
    """The future side of :class:`TwoSidedMotion`, made from its past side on demand.

    The future displacement of frame ``t`` at lag ``k`` is the reversed past displacement
    of frame ``t + k`` at lag ``k`` (the same pair of frames); the last frames' come from
    ``tail``; where neither has a face, the past displacement stands in.

    Args:
        past: ``(T, K, R, 2)`` float32 past displacements (read, not copied; rows must not
            change before the rows that need them are read).
        lags: the ``K`` lags in frames.
        tail: ``(frame, lag index) -> (R, 2)`` displacements of the last frames.
    """

    def __init__(
        self, past: np.ndarray, lags: tuple[int, ...], tail: dict[tuple[int, int], np.ndarray]
    ) -> None:
        self.past = past
        self.lags = lags
        self.tail = tail

    def rows(self, rows: slice) -> np.ndarray:
        """``(B, K, R, 2)`` float32 future displacements of frames ``rows`` (step 1)."""
        n = len(self.past)
        lo, hi = rows.start or 0, min(n, n if rows.stop is None else rows.stop)
        out = np.full((hi - lo, *self.past.shape[1:]), np.nan, np.float32)
        for j, k in enumerate(self.lags):
            stop = min(hi, n - k)
            if stop > lo:
                out[: stop - lo, j] = -self.past[lo + k : stop + k, j]
        for (i, j), v in self.tail.items():
            if lo <= i < hi:
                out[i - lo, j] = v
        np.copyto(out, self.past[lo:hi], where=np.isnan(out))
        return out


def two_sided(past: np.ndarray, future: np.ndarray) -> np.ndarray:
    """Per region, the displacement of the reference side with the smaller magnitude.

    Args:
        past, future: ``(T, K, R, 2)`` float32.

    Returns:
        ``(T, K, R, 2)`` float32.
    """
    mp = np.linalg.norm(past, axis=-1, keepdims=True)
    mf = np.linalg.norm(future, axis=-1, keepdims=True)
    return np.where(mp <= mf, past, future)


def region_centroids(landmarks: np.ndarray) -> np.ndarray:
    """Centroid of each region's landmarks: ``(468, 2)`` -> ``(R, 2)`` float32, same units."""
    return np.stack([landmarks[list(REGIONS[n])].mean(0) for n in REGION_NAMES]).astype(np.float32)


def landmark_two_sided(
    centroids: np.ndarray, lags: tuple[int, ...], rows: slice | None = None
) -> tuple[np.ndarray, np.ndarray]:
    """Past/future region displacements from landmark centroids in the aligned crop.

    The same references as :class:`TwoSidedMotion` (``t - k`` and ``t + k``, clamped to the
    first / last frame with a face; the nearest face frame when the exact one has none).

    Args:
        centroids: ``(T, R, 2)`` float crop pixels, NaN where no face.
        lags: lags in frames.
        rows: the frames ``t`` to compute (a slice of ``range(T)``, step 1), default all:
            a long video's displacements a chunk at a time, the same values.

    Returns:
        ``(past, future)``: ``(N, K, R, 2)`` float32 for the ``N`` frames of ``rows``,
        rigid (nose-bridge) motion removed.
    """
    T = len(centroids)
    t = np.arange(T)[rows if rows is not None else slice(None)]
    valid = np.flatnonzero(~np.isnan(centroids).any(axis=(1, 2)))
    past = np.full((len(t), len(lags), centroids.shape[1], 2), np.nan, np.float32)
    future = np.full_like(past, np.nan)
    if len(valid) == 0:
        return past, future
    rigid = REGION_NAMES.index(RIGID_REGION)

    def rel(i: np.ndarray) -> np.ndarray:  # centroids of frames i, nose bridge at 0
        return centroids[i] - centroids[i, rigid : rigid + 1]

    c = rel(t)
    for j, k in enumerate(lags):
        ip = np.searchsorted(valid, t - k, side="right") - 1
        ip = valid[np.clip(ip, 0, len(valid) - 1)]
        jf = np.searchsorted(valid, t + k, side="left")
        jf = valid[np.clip(jf, 0, len(valid) - 1)]
        past[:, j] = c - rel(ip)
        future[:, j] = c - rel(jf)
    return past, future


def fuse(flow_disp: np.ndarray, lm_disp: np.ndarray, low: float, high: float) -> np.ndarray:
    """Blend flow and landmark displacements per region by the landmark magnitude.

    Optical flow resolves sub-pixel movements that landmark jitter hides; for large
    movements (mouth opening, teeth appearing) it breaks down while landmarks stay right.
    Weight on landmarks: 0 below ``low``, 1 above ``high`` (same units as the inputs).

    Args:
        flow_disp, lm_disp: ``(..., 2)`` float displacements.

    Returns:
        The blend, same shape, float32.
    """
    m = np.linalg.norm(np.nan_to_num(lm_disp), axis=-1, keepdims=True)
    w = np.clip((m - low) / (high - low), 0.0, 1.0)
    out = (1 - w) * flow_disp + w * np.where(np.isnan(lm_disp), flow_disp, lm_disp)
    return out.astype(np.float32)


def reference_indices(
    valid: np.ndarray, lags: tuple[int, ...], best: np.ndarray, use_past: np.ndarray
) -> np.ndarray:
    """The local neutral reference frame of every frame: ``t -/+ lags[best[t]]``.

    Clamped to the first / last face frame, snapped to the nearest face frame on the same
    side (the same rule as :class:`TwoSidedMotion` and :func:`landmark_two_sided`).

    Args:
        valid: ``(T,)`` bool, frames with a face.
        lags: lags in frames.
        best: ``(T,)`` int index into ``lags``.
        use_past: ``(T,)`` bool, True for the past reference, False for the future one.

    Returns:
        ``(T,)`` int64 frame indices (the frame itself where no face frame exists).
    """
    T = len(valid)
    vi = np.flatnonzero(valid)
    if len(vi) == 0:
        return np.arange(T)
    k = np.asarray(lags)[best]
    t = np.arange(T)
    ip = vi[np.clip(np.searchsorted(vi, t - k, side="right") - 1, 0, len(vi) - 1)]
    jf = vi[np.clip(np.searchsorted(vi, t + k, side="left"), 0, len(vi) - 1)]
    return np.where(use_past, ip, jf).astype(np.int64)
