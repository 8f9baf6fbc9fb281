"""Blinks on a neutral face: the eyelid closure field, lash-line shading and closed-lid fill.

The fields are made like an Action Unit's (:func:`mer.synth.fields.gaussian_field`,
:func:`mer.synth.fields.polyline_shade`) from the lid landmark pairs below.
"""

from __future__ import annotations

import cv2
import numpy as np

from mer.synth.fields import gaussian_field, interocular, polyline_shade

#: Eyelid landmark pairs for blinks: upper-lid point -> the lower-lid point it closes onto.
BLINK_LID_PAIRS: tuple[tuple[int, int], ...] = (
    (159, 145), (158, 153), (160, 144), (157, 154), (161, 163), (173, 155), (246, 7),
    (386, 374), (385, 380), (387, 373), (384, 381), (388, 390), (398, 382), (466, 249),
)  # fmt: skip
#: Upper eye cover fold points -> the upper-lid point below them (they follow the lid).
BLINK_CREASE_PAIRS: tuple[tuple[int, int], ...] = (
    (27, 159), (28, 158), (29, 160), (30, 161), (56, 157),
    (257, 386), (258, 385), (259, 387), (260, 388), (286, 384),
)  # fmt: skip
#: Eye aperture polygons (upper lid then lower lid, corner to corner).
EYE_POLYGONS: tuple[tuple[int, ...], ...] = (
    (33, 246, 161, 160, 159, 158, 157, 173, 133, 155, 154, 153, 145, 144, 163, 7),
    (263, 466, 388, 387, 386, 385, 384, 398, 362, 382, 381, 380, 374, 373, 390, 249),
)
#: Lash line drawn when the lids close (the lower lid, where the upper lid lands).
LASH_LINES: tuple[tuple[int, ...], ...] = (
    (33, 7, 163, 144, 145, 153, 154, 155, 133),
    (263, 249, 390, 373, 374, 380, 381, 382, 362),
)


def blink_fields(
    landmarks: np.ndarray,
    shape: tuple[int, int],
    stride: int,
    closure: float = 0.85,
) -> tuple[np.ndarray, np.ndarray]:
    """Eyelid closure field and lash-line shading for a full blink.

    The upper-lid margin moves down ``closure`` of the way to the lower lid, the eye cover
    fold follows at 60 %, the lower lid rises by 10 % of the aperture; brows, eye corners
    and the cheek below are pinned. The remaining gap and the squeezed eyeball are hidden by
    the skin fill of :func:`blink_fill`.

    Args:
        landmarks: ``(468, 2)`` pixels.
        shape, stride: the grid.
        closure: fraction of the aperture closed by the warp (the fill does the rest).

    Returns:
        ``field`` ``(rows, cols, 2)`` float32 pixels at full closure and ``shade``
        ``(rows, cols)`` float32 lash-line darkening at full closure.
    """
    lm = np.asarray(landmarks, np.float64)
    iod = interocular(lm)
    pts, vecs, sig = [], [], []
    for up, lo in BLINK_LID_PAIRS:
        gap = lm[lo] - lm[up]
        pts += [lm[up], lm[lo]]
        vecs += [closure * gap, -0.1 * gap]
        sig += [0.045 * iod, 0.035 * iod]
    lid_of = dict(BLINK_LID_PAIRS)
    for crease, up in BLINK_CREASE_PAIRS:
        pts.append(lm[crease])
        vecs.append(0.6 * closure * (lm[lid_of[up]] - lm[up]))
        sig.append(0.05 * iod)
    pin_idx = [
        105,
        334,
        52,
        282,
        66,
        296,
        65,
        295,
        70,
        300,
        46,
        276,
        23,
        253,
        22,
        252,
        24,
        254,
        110,
        339,
        33,
        263,
        133,
        362,
    ]
    field = gaussian_field(
        np.array(pts),
        np.array(vecs),
        np.array(sig),
        lm[pin_idx],
        np.full(len(pin_idx), 0.03 * iod),
        shape,
        stride,
    )
    shade = np.zeros(shape, np.float32)
    for line in LASH_LINES:
        shade += polyline_shade(lm[list(line)], 0.008 * iod, 0.35, shape, stride)
    return field, shade


def blink_fill(image: np.ndarray, landmarks: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """Closed-lid appearance: the eye apertures filled with upper-lid skin.

    The fill is the image shifted down by 1.3 apertures (so the lid skin above the upper
    margin covers the opening) and blurred; the mask is the aperture polygon, dilated and
    feathered. During a blink the renderer blends ``image * (1 - c^2 m) + fill * c^2 m``
    (c the closure) before warping.

    Args:
        image: ``(H, W, 3)`` uint8 RGB neutral photo.
        landmarks: ``(468, 2)`` pixels.

    Returns:
        ``fill`` ``(H, W, 3)`` float32 and ``mask`` ``(H, W)`` float32 in [0, 1].
    """
    lm = np.asarray(landmarks, np.float64)
    iod = interocular(lm)
    h, w = image.shape[:2]
    mask = np.zeros((h, w), np.float32)
    fill = image.astype(np.float32).copy()
    for poly, (up, lo) in zip(EYE_POLYGONS, ((159, 145), (386, 374)), strict=True):
        cv2.fillPoly(mask, [np.round(lm[list(poly)]).astype(np.int32)], 1.0)
        ap = float(np.linalg.norm(lm[lo] - lm[up]))
        shift = np.float32([[1, 0, 0], [0, 1, 1.3 * ap]])
        moved = cv2.warpAffine(
            image, shift, (w, h), flags=cv2.INTER_LINEAR, borderMode=cv2.BORDER_REFLECT101
        )
        xs = lm[list(poly), 0]
        ys = lm[list(poly), 1]
        x0, x1 = int(max(0, xs.min() - 0.1 * iod)), int(min(w, xs.max() + 0.1 * iod + 1))
        y0, y1 = int(max(0, ys.min() - 0.1 * iod)), int(min(h, ys.max() + 0.1 * iod + 1))
        fill[y0:y1, x0:x1] = moved[y0:y1, x0:x1]
    k = max(1, int(round(0.02 * iod)))
    mask = cv2.dilate(mask, np.ones((2 * k + 1, 2 * k + 1), np.uint8))
    mask = cv2.GaussianBlur(mask, (0, 0), 0.012 * iod)
    fill = cv2.GaussianBlur(fill, (0, 0), 0.006 * iod)
    return fill, np.clip(mask, 0.0, 1.0)
