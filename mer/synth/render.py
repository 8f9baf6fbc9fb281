"""Render a synthetic clip: warp a real neutral face through an AU time course.

Per written frame, for every output pixel x (computed on the output grid, then upsampled):

1. ``p = (H_t A0)^-1 x``: from the (supersampled) crop to neutral-photo pixels, with ``A0``
   the similarity that aligns the face to the canonical template (:mod:`mer.face.align`)
   plus a static pose jitter, and ``H_t`` the head micro-motion (a smooth random
   similarity about the crop centre);
2. ``q = p - U_t(p - U_t(p))``: the expression, a forward displacement field
   ``U_t = sum_i c_i(t) U_i`` (AU fields of :mod:`mer.synth.aus` times their intensity
   courses, in photo pixels) inverted by one fixed-point step (exact to second order in the
   field's gradient, which stays below ~0.1 for micro amplitudes);
3. the photo is sampled at ``q`` (bilinear) on a grid ``supersample`` times finer than the
   output, then area-averaged down (like sensor integration: every frame gets the same
   resampling blur, so blur is no cue to motion);
4. appearance: furrow shading ``1 - S_t(q)``, blinks (eyelid closure by the same warp plus
   a skin fill of the aperture, see :func:`mer.synth.blink.blink_fill`), lighting gain and
   gradients, white balance, Gaussian sensor noise; JPEG compression happens when writing.

Real-smile mode: the neutral face is morphed toward the identity's smiling photo (aligned
with a similarity on the stable landmarks): the geometry by the landmark displacement field
``D`` times ``alpha * course(t)`` (``alpha`` < 1 for micro intensity), the appearance by a
cross-dissolve of the equally warped smiling photo with the same weight, inside a feathered
face mask (hair and background stay from the neutral photo). This is the classic
warp-and-dissolve morph (Beier & Neely, SIGGRAPH 1992; here with a Gaussian RBF field
instead of field lines).
"""

from __future__ import annotations

from dataclasses import dataclass
from functools import cached_property

import cv2
import numpy as np

from mer.face.align import fit_to_template, matrix_from_params
from mer.schemas import AU_NAMES
from mer.synth.aus import ACTION_UNITS
from mer.synth.blink import blink_fields, blink_fill
from mer.synth.courses import (
    au_courses,
    closure_course,
    movement_course,
    raised_cosine_course,
)
from mer.synth.faces import LondonFace, SmileGeometry, read_rgb
from mer.synth.fields import au_fields, gaussian_field, grid_shape, interocular
from mer.synth.spec import ClipSpec, SynthConfig
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
    sample_grid,
    sim3,
)

#: Column index of each AU name in :attr:`RenderedClip.au_intensity`.
AU_COLUMN: dict[int, int] = {int(n[2:]): i for i, n in enumerate(AU_NAMES)}


@dataclass
class SmileRig:
    """The aligned smiling photo of one identity.

    Attributes:
        photo: ``(H, W, 3)`` uint8 RGB smiling photo (not warped), colour-matched to the
            neutral photo (per-channel median gain over the face).
        to_smile: ``(2, 3)`` float64 similarity, neutral-photo px -> smiling-photo px.
        field: ``(rows, cols, 2)`` float32 landmark-displacement field ``D`` on the photo
            grid, px (neutral -> aligned smile).
        mask: ``(rows, cols)`` float32 face mask on the grid (cross-dissolve region).
        geometry: the landmark-level summary (lip-corner displacement etc.).
    """

    photo: np.ndarray
    to_smile: np.ndarray
    field: np.ndarray
    mask: np.ndarray
    geometry: SmileGeometry


class FaceRig:
    """Per-identity precomputation: the photo, its AU fields, blink and smile assets.

    Args:
        face: the identity (photos and landmarks).
        stride: spacing of the field grid over the photo, pixels.
    """

    def __init__(self, face: LondonFace, stride: int = 2) -> None:
        self.face = face
        self.photo = read_rgb(face.neutral_path)
        self.landmarks = face.landmarks.astype(np.float64)
        self.iod = interocular(self.landmarks)
        self.stride = stride
        self.shape = grid_shape(self.photo.shape, stride)
        self._au: dict[int, tuple[np.ndarray, np.ndarray | None]] = {}

    def au(self, au: int) -> tuple[np.ndarray, np.ndarray | None]:
        """Unit field (px at amplitude 1 IOD) and furrow shading of an AU (cached).

        Raises:
            KeyError: the AU is not renderable.
        """
        if au not in self._au:
            self._au[au] = au_fields(ACTION_UNITS[au], self.landmarks, self.shape, self.stride)
        return self._au[au]

    @cached_property
    def blink(self) -> tuple[np.ndarray, np.ndarray, np.ndarray, np.ndarray, tuple[slice, slice]]:
        """``(field, shade, fill, mask, roi)`` of a full blink; fill and mask cropped to roi."""
        field, shade = blink_fields(self.landmarks, self.shape, self.stride)
        fill, mask = blink_fill(self.photo, self.landmarks)
        ys, xs = np.nonzero(mask > 1e-3)
        roi = (slice(int(ys.min()), int(ys.max()) + 1), slice(int(xs.min()), int(xs.max()) + 1))
        return field, shade, fill[roi], mask[roi], roi

    @cached_property
    def smile(self) -> SmileRig | None:
        """The real-smile assets, or None without a usable smiling photo."""
        geo = self.face.smile_geometry()
        if geo is None or self.face.smiling_path is None:
            return None
        n = len(self.landmarks)
        field = gaussian_field(
            self.landmarks,
            geo.displacement.astype(np.float64),
            np.full(n, 0.05 * self.iod),
            np.zeros((0, 2)),
            np.zeros(0),
            self.shape,
            self.stride,
        )
        h, w = self.photo.shape[:2]
        mask = np.zeros((h, w), np.float32)
        hull = cv2.convexHull(np.round(self.landmarks).astype(np.int32))
        cv2.fillConvexPoly(mask, hull, 1.0)
        k = max(1, int(0.05 * self.iod))
        mask = cv2.erode(mask, np.ones((2 * k + 1, 2 * k + 1), np.uint8))
        mask = cv2.GaussianBlur(mask, (0, 0), 0.06 * self.iod)
        small = cv2.resize(mask, (self.shape[1], self.shape[0]), interpolation=cv2.INTER_AREA)
        m3 = np.vstack([geo.matrix, [0, 0, 1]])
        to_smile = np.linalg.inv(m3)[:2]
        photo = read_rgb(self.face.smiling_path)
        # white balance / exposure of the two photos differ slightly: match the smiling
        # photo's per-channel median over the face (mask > 0.5) to the neutral one, so that
        # colour is no cue to the positive class
        aligned = cv2.warpAffine(
            photo, geo.matrix, (w, h), flags=cv2.INTER_LINEAR, borderMode=cv2.BORDER_REFLECT101
        )
        sel = mask > 0.5
        gain = np.median(self.photo[sel].astype(np.float64), axis=0) / np.maximum(
            np.median(aligned[sel].astype(np.float64), axis=0), 1.0
        )
        photo = np.clip(photo * gain[None, None, :] + 0.5, 0, 255).astype(np.uint8)
        return SmileRig(photo, to_smile, field, small, geo)


@dataclass
class RenderedClip:
    """A rendered clip and its per-frame ground truth.

    Attributes:
        frames: ``T`` arrays ``(S, S, 3)`` uint8 RGB (``(S, S)`` when grey), not yet JPEG.
        frame_numbers: ``(T,)`` recording frame numbers.
        intensity: ``(T,)`` float64 course of the expression in [0, 1] (1 at the apex);
            non-emotional clips: the course of their movement (syllables, lid closure,
            head movement).
        au_intensity: ``(T, len(AU_NAMES))`` float64 displacement of each AU, IOD fraction.
        blink: ``(T,)`` float64 lid closure in [0, 1].
        landmarks: ``(468, 2)`` float32 neutral landmarks in output pixels at the first
            frame (pose and head motion applied, no expression).
        crop: ``(2, 3)`` float64 similarity, neutral-photo px -> output px, first frame.
    """

    frames: list[np.ndarray]
    frame_numbers: list[int]
    intensity: np.ndarray
    au_intensity: np.ndarray
    blink: np.ndarray
    landmarks: np.ndarray
    crop: np.ndarray


def crop_matrix(
    landmarks: np.ndarray, side: int, margin: float, pose: tuple[float, float, float, float]
) -> np.ndarray:
    """3x3 similarity from photo pixels to a ``side``-pixel crop around the face.

    The face is aligned to the canonical template (:func:`mer.face.align.fit_to_template`,
    fitted on the stable points) inside a crop enlarged by ``margin`` on each side, then
    jittered by ``pose = (rotation_deg, log_scale, shift_x, shift_y)`` (shifts as fractions
    of ``side``) about the crop centre.
    """
    inner = side / (1 + 2 * margin)
    m = matrix_from_params(fit_to_template(landmarks, int(round(inner))))
    m = m * (inner / round(inner))
    m[:, 2] += margin * inner
    m3 = np.vstack([m, [0.0, 0.0, 1.0]])
    c = (side - 1) / 2
    rot, ls, sx, sy = pose
    return sim3(rot, ls, sx * side, sy * side, c, c) @ m3


def head_motion(spec: ClipSpec, t: float, side: int) -> np.ndarray:
    """3x3 head motion similarity at ``t`` seconds, crop pixels: the micro-motion nuisance
    (identity at t=0) plus the head movement of a ``mode="head"`` clip (raised cosine from
    onset to offset, ``spec.head_move`` at the apex)."""
    move = 0.0
    if any(spec.head_move):
        n = spec.first + t * spec.fps
        move = float(raised_cosine_course(np.array([n]), spec.onset, spec.apex, spec.offset)[0])
    micro = micro_motion(spec.nuisance, t)
    vals = [v + move * m for v, m in zip(micro, spec.head_move, strict=True)]
    c = (side - 1) / 2
    return sim3(vals[0], vals[1], vals[2] * side, vals[3] * side, c, c)


def _smile_blend(
    img: np.ndarray,
    smile: SmileRig,
    coeff: float,
    qx: np.ndarray,
    qy: np.ndarray,
    stride: int,
    big: int,
) -> np.ndarray:
    """Cross-dissolve the equally warped smiling photo into ``img`` by ``coeff`` times the
    face mask (real-smile mode); float32 ``(big, big, 3)``."""
    d = sample_grid(smile.field, qx, qy, stride)
    sx, sy = qx + d[..., 0], qy + d[..., 1]
    m = smile.to_smile
    mx = (m[0, 0] * sx + m[0, 1] * sy + m[0, 2]).astype(np.float32)
    my = (m[1, 0] * sx + m[1, 1] * sy + m[1, 2]).astype(np.float32)
    simg = remap_up(smile.photo, mx, my, big)
    wm = coeff * sample_grid(smile.mask, qx, qy, stride)
    wm2 = cv2.resize(wm, (big, big), interpolation=cv2.INTER_LINEAR)[..., None]
    return img.astype(np.float32) * (1 - wm2) + simg.astype(np.float32) * wm2


def render_clip(spec: ClipSpec, rig: FaceRig, cfg: SynthConfig) -> RenderedClip:
    """Render the written frames of one clip.

    Args:
        spec: the clip (from :func:`mer.synth.sampling.sample_clip_spec`).
        rig: the identity's precomputed assets (same identity as ``spec.identity``).
        cfg: output size, supersampling, margin, grey output.

    Returns:
        the frames and their ground truth.

    Raises:
        ValueError: identity mismatch, or a smile clip for an identity without smile.
    """
    if rig.face.identity != spec.identity:
        raise ValueError(f"rig {rig.face.identity} != clip identity {spec.identity}")
    out, ss = cfg.out_size, cfg.supersample
    big = out * ss
    rng = np.random.default_rng(spec.seed)
    nz = spec.nuisance
    numbers = spec.frame_numbers
    n_arr = np.asarray(numbers, np.float64)
    t_arr = (n_arr - spec.first) / spec.fps

    # intensities ----------------------------------------------------------------------
    au_int = np.zeros((len(numbers), len(AU_NAMES)))
    fields: list[tuple[np.ndarray, np.ndarray | None]] = []
    smile: SmileRig | None = None
    if spec.mode == "smile":
        smile = rig.smile
        if smile is None:
            raise ValueError(f"identity {spec.identity} has no smiling photo")
        course = raised_cosine_course(n_arr, spec.onset, spec.apex, spec.offset)
        coeffs = (spec.smile_alpha * course)[:, None]
        geo = smile.geometry
        for au, amount in ((12, geo.corner), (6, geo.cheek), (25, geo.lip_gap)):
            if au in spec.aus:
                au_int[:, AU_COLUMN[au]] = coeffs[:, 0] * amount
    else:
        coeffs = au_courses(spec, n_arr)
        if spec.mode in ("speech", "blink", "head"):
            course = movement_course(spec, n_arr)
        else:
            course = coeffs[:, 0] / spec.amplitude if coeffs.shape[1] else np.zeros(len(n_arr))
        for k, au in enumerate(spec.au_order):
            fields.append(rig.au(au))
            if au in AU_COLUMN:
                au_int[:, AU_COLUMN[au]] = coeffs[:, k] * ACTION_UNITS[au].gain
    closure = closure_course(spec, n_arr)
    blink_assets = rig.blink if spec.blinks else None

    # static geometry --------------------------------------------------------------------
    a0 = crop_matrix(rig.landmarks, big, cfg.margin, nz.pose)
    grid_pts, light_uv = output_grid(out, ss)

    frames: list[np.ndarray] = []
    for i, t in enumerate(t_arr):
        px, py = photo_coords(head_motion(spec, float(t), big) @ a0, grid_pts, out)
        b = float(closure[i])
        if smile is not None:
            terms: list[FieldTerm] = [(float(coeffs[i, 0]), smile.field, None)]
        else:
            terms = [(float(coeffs[i, k]), f, sh) for k, (f, sh) in enumerate(fields)]
        u, shade = expression_field(rig.shape, terms, blink_assets, b)
        qx, qy = inverse_warp(u, px, py, rig.stride)
        img = remap_up(blinked_photo(rig.photo, blink_assets, b), qx, qy, big)
        if smile is not None and coeffs[i, 0] > 0:
            img = _smile_blend(img, smile, float(coeffs[i, 0]), qx, qy, rig.stride, big)
        frames.append(
            finish_frame(
                img, out, nz, float(t), light_uv, shade, (qx, qy), rig.stride, cfg.grayscale, rng
            )
        )

    a_first = head_motion(spec, 0.0, big) @ a0
    crop = a_first[:2].copy()
    crop[:, :] /= ss
    crop[:, 2] -= (ss - 1) / (2 * ss)
    lm_out = (rig.landmarks @ crop[:, :2].T + crop[:, 2]).astype(np.float32)
    return RenderedClip(
        frames=frames,
        frame_numbers=numbers,
        intensity=np.asarray(course, np.float64),
        au_intensity=au_int,
        blink=closure,
        landmarks=lm_out,
        crop=crop,
    )
