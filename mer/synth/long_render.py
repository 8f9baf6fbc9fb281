"""Render a long multi-event clip (:mod:`.long_spec`) on a London face.

Every frame goes through the steps of the short-clip renderer (:mod:`.warp`): the AU fields
of the active expression or speech segment times its course, blinks and slow eye closures
as lid closure, the head transform (micro-motion plus head-turn segments) and the
appearance nuisances. Two additions:

- *one-sided AUs* (contempt): the AU's field and furrows times a smooth step across the
  facial midline (logistic, scale 0.04 IOD), so only one side moves;
- *gaze*: the irises move inside fixed eye apertures. Each aperture (eye polygon, eroded by
  0.01 IOD and feathered) is refilled from the photo shifted by the gaze offset, where the
  shifted photo outside the aperture is replaced by the eye's sclera colour (median of the
  brightest 30 % of the aperture), so the uncovered side shows white of the eye. The shift
  is applied to the photo before the warp, so the eyes follow the head and the lids.
"""

from __future__ import annotations

import math
from dataclasses import dataclass
from functools import cached_property

import cv2
import numpy as np

from mer.schemas import AU_NAMES
from mer.synth.aus import ACTION_UNITS
from mer.synth.blink import EYE_POLYGONS
from mer.synth.courses import blink_course, speech_course
from mer.synth.fields import face_axes
from mer.synth.long_spec import LongClipConfig, LongClipSpec, TimelineEvent
from mer.synth.render import AU_COLUMN, FaceRig, crop_matrix
from mer.synth.warp import (
    FieldTerm,
    blinked_photo,
    expression_field,
    finish_frame,
    inverse_warp,
    micro_motion,
    output_grid,
    photo_coords,
    remap_up,
    sim3,
)


def plateau_course(n: np.ndarray, ev: TimelineEvent) -> np.ndarray:
    """Course of a segment at frames ``n`` in [0, 1]: raised-cosine rise from ``onset`` to
    ``peak_start``, 1 until ``peak_end``, raised-cosine fall to ``offset`` (speech: the
    syllable envelope of :func:`mer.synth.sampling.speech_course`).

    Args:
        n: ``(T,)`` frame indices.
        ev: the segment.

    Returns:
        ``(T,)`` float64.
    """
    n = np.asarray(n, np.float64)
    if ev.kind == "speech":
        return speech_course(n, ev.syllables)
    out = np.zeros_like(n)
    rise = (n > ev.onset) & (n < ev.peak_start)
    out[rise] = 0.5 * (1 - np.cos(np.pi * (n[rise] - ev.onset) / (ev.peak_start - ev.onset)))
    out[(n >= ev.peak_start) & (n <= ev.peak_end)] = 1.0
    fall = (n > ev.peak_end) & (n < ev.offset)
    out[fall] = 0.5 * (1 + np.cos(np.pi * (n[fall] - ev.peak_end) / (ev.offset - ev.peak_end)))
    return out


@dataclass
class LongRendered:
    """A rendered long clip and its per-frame ground truth.

    Attributes:
        frames: ``T`` arrays ``(S, S, 3)`` uint8 RGB.
        au_intensity: ``(T, len(AU_NAMES))`` float64 displacement of each AU, IOD fraction.
        closure: ``(T,)`` float64 lid closure (blinks and eye closures) in [0, 1].
        gaze: ``(T, 2)`` float64 iris shift, IOD fraction (image x, y).
        head: ``(T, 5)`` float64 head-turn parameters (roll deg, log scale, shift x, shift y
            as fractions of the side, horizontal squash), micro-motion not included.
        seconds: render time, s.
    """

    frames: list[np.ndarray]
    au_intensity: np.ndarray
    closure: np.ndarray
    gaze: np.ndarray
    head: np.ndarray
    seconds: float


class LongRig:
    """A :class:`mer.synth.render.FaceRig` plus one-sided AU fields and gaze assets.

    Args:
        rig: the identity's rig.
    """

    def __init__(self, rig: FaceRig) -> None:
        self.rig = rig
        self._sided: dict[tuple[int, int], tuple[np.ndarray, np.ndarray | None]] = {}

    def au(self, au: int, side: int = 0) -> tuple[np.ndarray, np.ndarray | None]:
        """Field and shading of an AU on both sides (``side=0``) or on the subject's right
        (-1) / left (+1) side only (cached)."""
        if side == 0:
            return self.rig.au(au)
        key = (au, side)
        if key not in self._sided:
            f, sh = self.rig.au(au)
            w = self._side_weight(side)
            self._sided[key] = (f * w[..., None], None if sh is None else sh * w)
        return self._sided[key]

    def _side_weight(self, side: int) -> np.ndarray:
        lm = self.rig.landmarks
        ex, _ = face_axes(lm)
        mid = 0.5 * (lm[33] + lm[263])
        rows, cols = self.rig.shape
        yy, xx = np.mgrid[0:rows, 0:cols].astype(np.float64) * self.rig.stride
        s = (xx - mid[0]) * ex[0] + (yy - mid[1]) * ex[1]
        z = np.clip(side * s / (0.04 * self.rig.iod), -50, 50)
        return (1.0 / (1.0 + np.exp(-z))).astype(np.float32)

    @cached_property
    def eyes(self) -> list[tuple[tuple[slice, slice], np.ndarray, np.ndarray]]:
        """Per eye: photo ROI, float32 ROI with sclera colour outside the aperture, float32
        aperture mask in [0, 1] on the ROI."""
        photo, lm, iod = self.rig.photo, self.rig.landmarks, self.rig.iod
        h, w = photo.shape[:2]
        out = []
        for poly in EYE_POLYGONS:
            pts = lm[list(poly)]
            pad = 0.08 * iod
            x0, y0 = (int(max(0, v)) for v in pts.min(0) - pad)
            x1, y1 = int(min(w, pts[:, 0].max() + pad)), int(min(h, pts[:, 1].max() + pad))
            roi = (slice(y0, y1), slice(x0, x1))
            mask = np.zeros((y1 - y0, x1 - x0), np.uint8)
            cv2.fillPoly(mask, [np.round(pts - [x0, y0]).astype(np.int32)], 1)
            k = max(1, int(round(0.01 * iod)))
            mask = cv2.erode(mask, np.ones((2 * k + 1, 2 * k + 1), np.uint8))
            crop = photo[roi].astype(np.float32)
            inside = crop[mask > 0]
            lum = inside.mean(1)
            sclera = np.median(inside[lum >= np.percentile(lum, 70)], axis=0)
            fill = np.where(mask[..., None] > 0, crop, sclera[None, None, :]).astype(np.float32)
            soft = cv2.GaussianBlur(mask.astype(np.float32), (0, 0), 0.005 * iod)
            out.append((roi, fill, soft))
        return out

    def gazed_photo(self, shift_px: tuple[float, float]) -> np.ndarray:
        """The photo with both irises moved by ``shift_px`` (photo pixels, x and y)."""
        if shift_px == (0.0, 0.0):
            return self.rig.photo
        src = self.rig.photo.astype(np.float32)
        m = np.float32([[1, 0, shift_px[0]], [0, 1, shift_px[1]]])
        for roi, fill, mask in self.eyes:
            moved = cv2.warpAffine(
                fill, m, (fill.shape[1], fill.shape[0]), flags=cv2.INTER_LINEAR,
                borderMode=cv2.BORDER_REPLICATE,
            )  # fmt: skip
            src[roi] = src[roi] * (1 - mask[..., None]) + moved * mask[..., None]
        return np.clip(src + 0.5, 0, 255).astype(np.uint8)


def _courses(spec: LongClipSpec, n: np.ndarray) -> dict[int, np.ndarray]:
    return {i: plateau_course(n, ev) for i, ev in enumerate(spec.events)}


def render_long_clip(spec: LongClipSpec, rig: LongRig, cfg: LongClipConfig) -> LongRendered:
    """Render every frame of a long clip.

    Args:
        spec: the timeline (:func:`mer.synth.long_timeline.sample_long_clip`).
        rig: the identity's assets (same identity as ``spec.identity``).
        cfg: output size, supersampling, margin.

    Returns:
        the frames and their per-frame ground truth.

    Raises:
        ValueError: identity mismatch.
    """
    import time

    if rig.rig.face.identity != spec.identity:
        raise ValueError(f"rig {rig.rig.face.identity} != clip identity {spec.identity}")
    t_start = time.perf_counter()
    base = rig.rig
    out, ss = cfg.out_size, cfg.supersample
    big = out * ss
    rng = np.random.default_rng(spec.seed)
    nz = spec.nuisance
    n = np.arange(spec.n_frames, dtype=np.float64)
    courses = _courses(spec, n)
    au_int = np.zeros((spec.n_frames, len(AU_NAMES)))
    closure = np.zeros(spec.n_frames)
    for b in spec.blinks:
        closure = np.maximum(closure, blink_course(n, b))
    gaze = np.zeros((spec.n_frames, 2))
    head = np.zeros((spec.n_frames, 5))
    # per frame: list of (event index, AU index) terms
    for i, ev in enumerate(spec.events):
        c = courses[i]
        if ev.kind in ("expression", "speech"):
            for au, g in zip(ev.aus, ev.au_gain, strict=True):
                if au in AU_COLUMN:
                    au_int[:, AU_COLUMN[au]] += ev.amplitude * g * c * ACTION_UNITS[au].gain
        elif ev.kind == "eyes":
            closure = np.maximum(closure, c)
        elif ev.kind == "gaze":
            gaze += ev.amplitude * c[:, None] * np.asarray(ev.gaze_dir)[None, :]
        else:
            head += c[:, None] * np.asarray(ev.head)[None, :]
    blink_assets = base.blink if closure.any() else None

    a0 = crop_matrix(base.landmarks, big, cfg.margin, nz.pose)
    grid_pts, light_uv = output_grid(out, ss)
    cx = (big - 1) / 2
    frames: list[np.ndarray] = []
    for k in range(spec.n_frames):
        t = k / spec.fps
        mm = micro_motion(nz, t)
        hp = head[k]
        h3 = sim3(mm[0] + hp[0], mm[1] + hp[1], (mm[2] + hp[2]) * big, (mm[3] + hp[3]) * big,
                  cx, cx)  # fmt: skip
        sq = np.array([[1 - hp[4], 0.0, cx * hp[4]], [0.0, 1.0, 0.0], [0.0, 0.0, 1.0]])
        px, py = photo_coords(sq @ h3 @ a0, grid_pts, out)
        terms: list[FieldTerm] = []
        for i, ev in enumerate(spec.events):
            c = float(courses[i][k])
            if c <= 0 or ev.kind not in ("expression", "speech"):
                continue
            for au, g in zip(ev.aus, ev.au_gain, strict=True):
                f, sh = rig.au(au, ev.side)
                terms.append((ev.amplitude * g * c, f, sh))
        b = float(closure[k])
        u, shade = expression_field(base.shape, terms, blink_assets, b)
        qx, qy = inverse_warp(u, px, py, base.stride)
        g = gaze[k] * base.iod
        src = rig.gazed_photo((float(g[0]), float(g[1])))
        img = remap_up(blinked_photo(src, blink_assets, b), qx, qy, big)
        frames.append(
            finish_frame(img, out, nz, t, light_uv, shade, (qx, qy), base.stride, False, rng)
        )
    return LongRendered(
        frames=frames,
        au_intensity=au_int,
        closure=closure,
        gaze=gaze,
        head=head,
        seconds=time.perf_counter() - t_start,
    )


def apex_frame(ev: TimelineEvent) -> int:
    """Frame index of a segment's apex: the middle of its plateau (speech: the strongest
    syllable)."""
    return int(math.floor(0.5 * (ev.peak_start + ev.peak_end) + 0.5))
