"""Render one Action Unit on one face: its dense displacement field and its furrow shading.

A dense backward-warpable field is made from the AU's anchors (:mod:`mer.synth.aus`) by
normalised Gaussian radial-basis weights (:func:`gaussian_field`) and scaled so that its
largest displacement is the AU's gain in inter-ocular distances (IOD, outer eye corners); the
renderer multiplies it by the clip's amplitude (a fraction of the IOD, e.g. 0.02). A furrow
is a polyline on landmarks with a Gaussian cross profile (:func:`polyline_shade`); its
``depth`` is the darkening fraction reached at
:data:`mer.synth.au_types.SHADE_REF_AMPLITUDE`.

Design choice (ours): the smooth normalisation ``u = sum(w d) / (1 + S^4)^(1/4)`` (S the
summed weights of anchors and pins) is the weighted mean of nearby anchor vectors inside an
anchor cluster and decays like a Gaussian outside it.
"""

from __future__ import annotations

import numpy as np

from mer.face.landmarks import LEFT_EYE_OUTER, RIGHT_EYE_OUTER
from mer.synth.au_types import ActionUnit, Vertex

# ------------------------------------------------------------------------------------------
# geometry helpers
# ------------------------------------------------------------------------------------------


def interocular(landmarks: np.ndarray) -> float:
    """Outer-eye-corner distance (landmarks 33-263) in the landmarks' pixels."""
    return float(np.linalg.norm(landmarks[LEFT_EYE_OUTER] - landmarks[RIGHT_EYE_OUTER]))


def face_axes(landmarks: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """Unit face axes in image coordinates.

    Returns:
        ``ex`` ``(2,)`` float64 from the subject's right outer eye corner to the left one
        (image left -> right for a frontal face) and ``ey`` ``(2,)`` perpendicular, pointing
        towards the chin.
    """
    d = landmarks[LEFT_EYE_OUTER].astype(np.float64) - landmarks[RIGHT_EYE_OUTER]
    ex = d / np.linalg.norm(d)
    return ex, np.array([-ex[1], ex[0]])


def resolve_anchors(
    au: ActionUnit, landmarks: np.ndarray
) -> tuple[np.ndarray, np.ndarray, np.ndarray, np.ndarray, np.ndarray]:
    """Anchor positions, vectors and sigmas of an AU on one face.

    Args:
        au: the Action Unit.
        landmarks: ``(468, 2)`` pixels.

    Returns:
        ``points`` ``(K, 2)`` px, ``vectors`` ``(K, 2)`` relative units in image axes,
        ``sigmas`` ``(K,)`` px, ``pins`` ``(P, 2)`` px, ``pin_sigmas`` ``(P,)`` px.
    """
    lm = np.asarray(landmarks, np.float64)
    iod = interocular(lm)
    ex, ey = face_axes(lm)
    pts, vecs, sig = [], [], []
    for g in au.groups:
        for r, left in g.pairs:
            if r == left:
                pts.append(lm[r])
                vecs.append(g.down * ey)
                sig.append(g.sigma * iod)
            else:
                pts += [lm[r], lm[left]]
                vecs += [-g.out * ex + g.down * ey, g.out * ex + g.down * ey]
                sig += [g.sigma * iod] * 2
    pins = lm[list(au.pins)] if au.pins else np.zeros((0, 2))
    return (
        np.asarray(pts),
        np.asarray(vecs),
        np.asarray(sig),
        pins,
        np.full(len(pins), au.pin_sigma * iod),
    )


def grid_shape(image_shape: tuple[int, ...], stride: int) -> tuple[int, int]:
    """Rows and columns of the field grid of an image (grid point (i, j) = pixel (j*s, i*s))."""
    return (image_shape[0] + stride - 1) // stride, (image_shape[1] + stride - 1) // stride


def _window(c: float, radius: float, stride: int, n: int) -> tuple[int, int, np.ndarray]:
    lo = max(0, int(np.floor((c - radius) / stride)))
    hi = min(n, int(np.ceil((c + radius) / stride)) + 1)
    return lo, hi, np.arange(lo, hi, dtype=np.float64) * stride


def gaussian_field(
    points: np.ndarray,
    vectors: np.ndarray,
    sigmas: np.ndarray,
    pins: np.ndarray,
    pin_sigmas: np.ndarray,
    shape: tuple[int, int],
    stride: int,
) -> np.ndarray:
    """Dense displacement field from sparse anchors by normalised Gaussian weights.

    ``u(x) = sum_k w_k(x) d_k / (1 + S(x)^4)^(1/4)`` with ``w_k = exp(-|x - p_k|^2 /
    (2 sigma_k^2))`` and ``S`` the sum of the anchor and pin weights: a smooth maximum of
    1 and ``S``, so that ``u`` is the weighted mean of nearby anchor vectors inside dense
    anchor clusters, decays as a Gaussian away from them and is pulled to 0 near pins.
    Weights are evaluated in a +-3.5 sigma window (separable products).

    Args:
        points: ``(K, 2)`` anchor positions, pixels.
        vectors: ``(K, 2)`` displacements (any unit; the field has the same unit).
        sigmas: ``(K,)`` pixels.
        pins: ``(P, 2)`` positions held at zero displacement, pixels.
        pin_sigmas: ``(P,)`` pixels.
        shape: ``(rows, cols)`` of the grid.
        stride: grid spacing in pixels (grid point (i, j) is pixel (x=j*stride, y=i*stride)).

    Returns:
        ``(rows, cols, 2)`` float32 field (x, y components).
    """
    gh, gw = shape
    num = np.zeros((gh, gw, 2), np.float64)
    s = np.zeros((gh, gw), np.float64)
    allp = [(p, v, sg) for p, v, sg in zip(points, vectors, sigmas, strict=True)]
    allp += [(p, None, sg) for p, sg in zip(pins, pin_sigmas, strict=True)]
    for p, v, sg in allp:
        r = 3.5 * sg
        i0, i1, ys = _window(p[1], r, stride, gh)
        j0, j1, xs = _window(p[0], r, stride, gw)
        if i1 <= i0 or j1 <= j0:
            continue
        w = np.outer(np.exp(-0.5 * ((ys - p[1]) / sg) ** 2), np.exp(-0.5 * ((xs - p[0]) / sg) ** 2))
        s[i0:i1, j0:j1] += w
        if v is not None:
            num[i0:i1, j0:j1, 0] += w * v[0]
            num[i0:i1, j0:j1, 1] += w * v[1]
    den = (1.0 + s**4) ** 0.25
    return (num / den[..., None]).astype(np.float32)


def _resolve_vertex(vertex: Vertex, lm: np.ndarray, side: int) -> np.ndarray:
    return sum((w * lm[pair[side]] for pair, w in vertex), np.zeros(2))


def polyline_shade(
    polyline: np.ndarray, width: float, depth: float, shape: tuple[int, int], stride: int
) -> np.ndarray:
    """Darkening along a polyline: Gaussian cross profile, tapered to 0 at both ends.

    Args:
        polyline: ``(V, 2)`` vertices, pixels (V >= 2).
        width: Gaussian sigma across the line, pixels.
        depth: peak darkening fraction.
        shape, stride: the grid (see :func:`gaussian_field`).

    Returns:
        ``(rows, cols)`` float32 darkening in [0, depth].
    """
    gh, gw = shape
    out = np.zeros((gh, gw), np.float32)
    seg_len = np.linalg.norm(np.diff(polyline, axis=0), axis=1)
    total = float(seg_len.sum())
    if total <= 0:
        return out
    lo = polyline.min(0) - 3.5 * width
    hi = polyline.max(0) + 3.5 * width
    j0, j1 = max(0, int(lo[0] // stride)), min(gw, int(hi[0] // stride) + 2)
    i0, i1 = max(0, int(lo[1] // stride)), min(gh, int(hi[1] // stride) + 2)
    if i1 <= i0 or j1 <= j0:
        return out
    yy, xx = np.mgrid[i0:i1, j0:j1].astype(np.float64) * stride
    best = np.zeros(xx.shape)
    start = 0.0
    for k in range(len(polyline) - 1):
        a, b = polyline[k], polyline[k + 1]
        ab = b - a
        ll = float(ab @ ab)
        if ll <= 0:
            continue
        t = np.clip(((xx - a[0]) * ab[0] + (yy - a[1]) * ab[1]) / ll, 0.0, 1.0)
        d2 = (xx - a[0] - t * ab[0]) ** 2 + (yy - a[1] - t * ab[1]) ** 2
        along = (start + t * np.sqrt(ll)) / total
        val = np.sin(np.pi * along) * np.exp(-0.5 * d2 / width**2)
        best = np.maximum(best, val)
        start += np.sqrt(ll)
    out[i0:i1, j0:j1] = (depth * best).astype(np.float32)
    return out


def au_fields(
    au: ActionUnit, landmarks: np.ndarray, shape: tuple[int, int], stride: int
) -> tuple[np.ndarray, np.ndarray | None]:
    """The unit displacement field and the furrow shading of one AU on one face.

    Args:
        au: the Action Unit.
        landmarks: ``(468, 2)`` pixels of the neutral face.
        shape, stride: the grid (see :func:`gaussian_field`).

    Returns:
        ``field`` ``(rows, cols, 2)`` float32, pixels, scaled so that its largest
        displacement is exactly ``au.gain`` IOD (multiply by the intensity amplitude), and
        ``shade`` ``(rows, cols)`` float32 darkening at
        :data:`mer.synth.au_types.SHADE_REF_AMPLITUDE` (None if the AU has no furrow).
    """
    lm = np.asarray(landmarks, np.float64)
    iod = interocular(lm)
    pts, vecs, sig, pins, psig = resolve_anchors(au, lm)
    field = gaussian_field(pts, vecs, sig, pins, psig, shape, stride)
    peak = float(np.sqrt((field**2).sum(-1)).max())
    if peak > 0:
        field *= au.gain * iod / peak
    shade = None
    if au.furrows:
        shade = np.zeros(shape, np.float32)
        for f in au.furrows:
            sides = (0, 1) if f.bilateral else (0,)
            for side in sides:
                poly = np.array([_resolve_vertex(v, lm, side) for v in f.vertices])
                shade += polyline_shade(poly, f.width * iod, f.depth, shape, stride)
        np.clip(shade, 0.0, 0.6, out=shade)
    return field, shade
