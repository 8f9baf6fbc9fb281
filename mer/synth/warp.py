"""Per-frame steps of the synthetic renderer, shared by short clips (:mod:`.render`) and long
multi-event clips (:mod:`.long_render`).

A frame is made in three steps (the maths is in the :mod:`.render` module notes):

1. :func:`expression_field`: the forward displacement field ``U_t`` of the frame (sum of AU
   fields times their coefficients, plus the blink field) and its furrow shading;
2. :func:`warp_photo`: the output grid mapped into photo pixels by the head / crop
   similarity, the expression inverted by one fixed-point step, the (blink-filled) photo
   sampled on the supersampled grid;
3. :func:`finish_frame`: area downscale, furrow shading, lighting, white balance, grey
   conversion and sensor noise, quantised to uint8.
"""

from __future__ import annotations

import math
from collections.abc import Sequence

import cv2
import numpy as np

from mer.synth.au_types import SHADE_REF_AMPLITUDE
from mer.synth.spec import Nuisance

#: One AU term of a frame: ``(coefficient, unit field, furrow shading or None)``; the
#: coefficient is the AU's intensity (IOD fraction), the field peaks at ``gain`` IOD.
FieldTerm = tuple[float, np.ndarray, np.ndarray | None]
#: A blink's assets (:attr:`mer.synth.render.FaceRig.blink`).
BlinkAssets = tuple[np.ndarray, np.ndarray, np.ndarray, np.ndarray, tuple[slice, slice]]


def sim3(
    rot_deg: float, log_scale: float, tx: float, ty: float, cx: float, cy: float
) -> np.ndarray:
    """3x3 similarity about ``(cx, cy)``: rotate, scale, then shift by ``(tx, ty)``."""
    a = math.radians(rot_deg)
    s = math.exp(log_scale)
    c, si = s * math.cos(a), s * math.sin(a)
    r = np.array([[c, -si, 0.0], [si, c, 0.0], [0.0, 0.0, 1.0]])
    t1 = np.array([[1.0, 0, -cx], [0, 1.0, -cy], [0, 0, 1.0]])
    t2 = np.array([[1.0, 0, cx + tx], [0, 1.0, cy + ty], [0, 0, 1.0]])
    return t2 @ r @ t1


def micro_motion(nz: Nuisance, t: float) -> list[float]:
    """Head micro-motion at ``t`` seconds: ``[rotation_deg, log_scale, shift_x, shift_y]``
    (shifts as fractions of the crop side), zero at ``t = 0``; three sinusoids per parameter
    plus a linear drift (:func:`mer.synth.sampling.sample_nuisance`)."""
    vals = []
    for k in range(4):
        a = nz.head_amp[k] / math.sqrt(1.5)
        v = sum(
            a * (math.sin(2 * math.pi * f * t + ph) - math.sin(ph))
            for f, ph in zip(nz.head_freq[k], nz.head_phase[k], strict=True)
        )
        vals.append(v + nz.head_drift[k] * t)
    return vals


def sample_grid(grid: np.ndarray, px: np.ndarray, py: np.ndarray, stride: int) -> np.ndarray:
    """Bilinear samples of a photo-grid field at photo pixels ``(px, py)`` (0 outside)."""
    return cv2.remap(
        grid,
        px / stride,
        py / stride,
        cv2.INTER_LINEAR,
        borderMode=cv2.BORDER_CONSTANT,
        borderValue=0,
    )


def expression_field(
    shape: tuple[int, int],
    terms: Sequence[FieldTerm],
    blink: BlinkAssets | None,
    closure: float,
) -> tuple[np.ndarray, np.ndarray]:
    """The frame's displacement field and furrow shading on the photo grid.

    Args:
        shape: ``(rows, cols)`` of the photo grid.
        terms: AU terms; non-positive coefficients are skipped. A term's shading is scaled
            by ``min(1, coefficient / SHADE_REF_AMPLITUDE)``.
        blink: blink assets, or None.
        closure: lid closure in [0, 1].

    Returns:
        ``u`` ``(rows, cols, 2)`` float32 pixels and ``shade`` ``(rows, cols)`` float32.
    """
    u = np.zeros(shape + (2,), np.float32)
    shade = np.zeros(shape, np.float32)
    for c, f, sh in terms:
        if c > 0:
            u += np.float32(c) * f
            if sh is not None:
                shade += np.float32(min(1.0, c / SHADE_REF_AMPLITUDE)) * sh
    if blink is not None and closure > 0:
        u += np.float32(closure) * blink[0]
        shade += np.float32(closure) * blink[1]
    return u, shade


def inverse_warp(
    u: np.ndarray, px: np.ndarray, py: np.ndarray, stride: int
) -> tuple[np.ndarray, np.ndarray]:
    """Photo pixels ``q = p - U(p - U(p))`` to sample for the warped positions ``p``
    (one fixed-point step of the inverse of the forward field ``u``), float32."""
    u1 = sample_grid(u, px, py, stride)
    u2 = sample_grid(u, px - u1[..., 0], py - u1[..., 1], stride)
    return px - u2[..., 0], py - u2[..., 1]


def blinked_photo(photo: np.ndarray, blink: BlinkAssets | None, closure: float) -> np.ndarray:
    """The photo with the eye apertures filled with skin by ``closure**2`` (blink fill)."""
    if blink is None or closure <= 0.01:
        return photo
    _, _, fill, mask, roi = blink
    wgt = (closure * closure * mask)[..., None]
    src = photo.copy()
    src[roi] = np.clip(src[roi] * (1 - wgt) + fill * wgt + 0.5, 0, 255).astype(np.uint8)
    return src


def remap_up(src: np.ndarray, qx: np.ndarray, qy: np.ndarray, big: int) -> np.ndarray:
    """Sample ``src`` at ``(qx, qy)`` (output grid) upsampled to ``big x big`` (bilinear)."""
    q2 = cv2.resize(np.dstack([qx, qy]), (big, big), interpolation=cv2.INTER_LINEAR)
    return cv2.remap(
        src, q2[..., 0], q2[..., 1], cv2.INTER_LINEAR, borderMode=cv2.BORDER_REFLECT101
    )


def finish_frame(
    img: np.ndarray,
    out: int,
    nz: Nuisance,
    t: float,
    light_uv: tuple[np.ndarray, np.ndarray],
    shade: np.ndarray,
    q: tuple[np.ndarray, np.ndarray],
    stride: int,
    grayscale: bool,
    rng: np.random.Generator,
) -> np.ndarray:
    """Area downscale and appearance of one frame.

    Args:
        img: ``(big, big, 3)`` supersampled RGB (uint8 or float32).
        out: output side, pixels.
        nz: the clip's nuisances (lighting, white balance, noise).
        t: time, seconds.
        light_uv: ``(out, out)`` float64 coordinates in [-0.5, 0.5] for the gradients.
        shade: photo-grid furrow shading (sampled at ``q``).
        q: photo pixels sampled by the output grid, ``(out, out)`` float32 each.
        stride: photo-grid stride.
        grayscale: convert to grey.
        rng: noise stream.

    Returns:
        ``(out, out, 3)`` (or ``(out, out)`` grey) uint8.
    """
    small = cv2.resize(img.astype(np.float32), (out, out), interpolation=cv2.INTER_AREA)
    gain = nz.gain * (1 + nz.gain_amp * math.sin(2 * math.pi * nz.gain_freq * t + nz.gain_phase))
    tilt_x = nz.tilt[0] + nz.tilt_drift[0] * t
    tilt_y = nz.tilt[1] + nz.tilt_drift[1] * t
    u01, v01 = light_uv
    light = (gain * (1 + tilt_x * u01 + tilt_y * v01)).astype(np.float32)
    if shade.any():
        light *= 1 - sample_grid(shade, q[0], q[1], stride)
    small *= light[..., None]
    small *= np.asarray(nz.channel_gain, np.float32)
    if grayscale:
        small = cv2.cvtColor(small, cv2.COLOR_RGB2GRAY)
    if nz.noise_sigma > 0:
        small += rng.standard_normal(small.shape, dtype=np.float32) * np.float32(nz.noise_sigma)
    return np.clip(small + 0.5, 0, 255).astype(np.uint8)


def output_grid(out: int, ss: int) -> tuple[np.ndarray, tuple[np.ndarray, np.ndarray]]:
    """Homogeneous output-pixel centres in supersampled pixels ``(3, out*out)`` float64 and
    the lighting coordinates ``(u01, v01)`` of :func:`finish_frame`."""
    gx, gy = np.meshgrid(np.arange(out, dtype=np.float64), np.arange(out, dtype=np.float64))
    gx = gx * ss + (ss - 1) / 2
    gy = gy * ss + (ss - 1) / 2
    pts = np.stack([gx, gy, np.ones_like(gx)], axis=0).reshape(3, -1)
    u01, v01 = np.meshgrid(np.linspace(-0.5, 0.5, out), np.linspace(-0.5, 0.5, out))
    return pts, (u01, v01)


def photo_coords(a_t: np.ndarray, grid_pts: np.ndarray, out: int) -> tuple[np.ndarray, np.ndarray]:
    """Photo pixels ``(px, py)`` ``(out, out)`` float32 of the output grid under the 3x3
    photo -> supersampled-crop transform ``a_t``."""
    m = np.linalg.inv(a_t)
    # elementwise rather than a BLAS product: a (3, 3) @ (3, N) product is slow when BLAS
    # threads compete for the cores, and this gives the same values
    gx, gy = grid_pts[0], grid_pts[1]
    px = m[0, 0] * gx + m[0, 1] * gy + m[0, 2] * grid_pts[2]
    py = m[1, 0] * gx + m[1, 1] * gy + m[1, 2] * grid_pts[2]
    return px.reshape(out, out).astype(np.float32), py.reshape(out, out).astype(np.float32)
