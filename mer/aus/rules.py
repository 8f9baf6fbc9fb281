"""Training-free Action Unit scores from region motion and landmark geometry.

Each rule turns the two-sided region displacement of a frame (see :mod:`mer.motion`),
expressed as a fraction of the inter-ocular distance (IOD), into a score in [0, 1] with a
smooth ramp between ``LOW`` (about the landmark/flow noise floor) and ``HIGH`` (a clear
movement). The FACS appearance changes each rule looks for are quoted from Ekman, Friesen
& Hager, *Facial Action Coding System: The Manual* (2002). Image y points down, so "up" is
a negative dy; the subject's right side is on the image's left, so "towards the midline"
is +x on the right side and -x on the left.

This is the method reported as ``au_method = "facs-rules-v1"`` in results; the learned
detector of :mod:`mer.models` replaces it when its weights are installed.
"""

from __future__ import annotations

import numpy as np

from mer.motion import REGION_NAMES
from mer.schemas import AU_NAMES

METHOD_NAME = "facs-rules-v1"
LOW = 0.004  #: fraction of IOD below which a movement scores 0 (noise floor)
HIGH = 0.025  #: fraction of IOD at which a movement scores 1

_R = {name: i for i, name in enumerate(REGION_NAMES)}


def ramp(x: np.ndarray, low: float = LOW, high: float = HIGH) -> np.ndarray:
    """Smoothstep from 0 at ``low`` to 1 at ``high``; float array of x's shape."""
    u = np.clip((np.asarray(x, np.float64) - low) / (high - low), 0.0, 1.0)
    return u * u * (3 - 2 * u)


def au_scores(disp: np.ndarray, lip_gap: np.ndarray) -> np.ndarray:
    """Score every AU of :data:`mer.schemas.AU_NAMES` for each frame.

    Args:
        disp: ``(T, R, 2)`` float region displacements relative to the local neutral
            state, in fractions of the IOD (regions in :data:`mer.motion.REGION_NAMES`
            order). NaN rows (no face) score 0.
        lip_gap: ``(T,)`` inner-lip gap (landmarks 13-14) in fractions of the IOD.

    Returns:
        ``(T, len(AU_NAMES))`` float32 scores in [0, 1].
    """
    d = np.nan_to_num(np.asarray(disp, np.float64))
    T = d.shape[0]

    def dx(name: str) -> np.ndarray:
        return d[:, _R[name], 0]

    def up(name: str) -> np.ndarray:
        return -d[:, _R[name], 1]

    def both_up(r: str, l: str) -> np.ndarray:  # noqa: E741
        return 0.5 * (up(r) + up(l))

    def towards_midline(r: str, l: str) -> np.ndarray:  # noqa: E741
        return 0.5 * (dx(r) - dx(l))

    inner_up = both_up("r_inner_brow", "l_inner_brow")
    outer_up = both_up("r_outer_brow", "l_outer_brow")
    upper_lid_up = both_up("r_upper_lid", "l_upper_lid")
    lower_lid_up = both_up("r_lower_lid", "l_lower_lid")
    cheek_up = both_up("r_cheek", "l_cheek")
    nose_up = both_up("r_nose_wing", "l_nose_wing")
    corner_up = both_up("r_lip_corner", "l_lip_corner")
    corner_out = -towards_midline("r_lip_corner", "l_lip_corner")
    gap = np.nan_to_num(np.asarray(lip_gap, np.float64))
    lips_apart = d[:, _R["lower_lip_inner"], 1] - d[:, _R["upper_lip_inner"], 1]

    s: dict[str, np.ndarray] = {}
    # AU1 inner brow raiser: "pulls the inner portion of the eyebrows upwards"
    s["AU01"] = ramp(inner_up - 0.5 * np.maximum(outer_up - inner_up, 0))
    # AU2 outer brow raiser: "pulls the lateral portion of the eyebrows upwards"
    s["AU02"] = ramp(outer_up - 0.3 * np.maximum(inner_up, 0))
    # AU4 brow lowerer: "lowers the eyebrow ... pulls the eyebrows together"
    s["AU04"] = ramp(-inner_up + towards_midline("r_inner_brow", "l_inner_brow"))
    # AU5 upper lid raiser: "widens the eye aperture ... raises the upper lid"
    s["AU05"] = ramp(upper_lid_up - 0.5 * np.maximum(inner_up, 0))
    # AU6 cheek raiser: "pulls the skin towards the eye from the cheeks ... raises the
    # infraorbital triangle"
    s["AU06"] = ramp(cheek_up)
    # AU7 lid tightener: "raises the lower eyelid ... narrows the eye aperture", beyond
    # what the cheek raise of AU6 pushes up
    s["AU07"] = ramp(lower_lid_up - 0.7 * np.maximum(cheek_up, 0))
    # AU9 nose wrinkler: "pulls the skin along the sides of the nose upwards ... the
    # infraorbital triangle and the nostril wings up"
    s["AU09"] = ramp(nose_up - 0.3 * np.maximum(up("upper_lip"), 0))
    # AU10 upper lip raiser: "raises the upper lip ... the centre of the upper lip is
    # drawn straight up"
    s["AU10"] = ramp(up("upper_lip") - 0.5 * np.maximum(nose_up, 0))
    # AU12 lip corner puller: "pulls the corners of the lips back and upwards"
    s["AU12"] = ramp(0.7 * corner_up + 0.5 * corner_out)
    # AU14 dimpler: "tightens the lip corners, pulling them inwards" (no upward pull)
    s["AU14"] = ramp(-corner_out - 0.5 * np.abs(corner_up))
    # AU15 lip corner depressor: "pulls the corners of the lips down"
    s["AU15"] = ramp(-corner_up)
    # AU17 chin raiser: "pushes the chin boss and lower lip upwards"
    s["AU17"] = ramp(up("chin") + 0.5 * up("lower_lip") - 0.5 * np.maximum(-up("chin"), 0))
    # AU25 lips part: "the lips part ... the inner lips separate" (state from the
    # landmark gap, or an opening movement)
    s["AU25"] = np.maximum(ramp(gap, 0.03, 0.08), ramp(lips_apart, 0.02, 0.06))
    # AU26 jaw drop: "the jaw is lowered ... the lips part", a larger downward chin move
    s["AU26"] = ramp(-up("chin"), 0.03, 0.10) * ramp(gap, 0.02, 0.06)

    out = np.stack([s[name] for name in AU_NAMES], axis=1).astype(np.float32)
    out[np.isnan(np.asarray(disp)).all(axis=(1, 2))] = 0.0
    assert out.shape == (T, len(AU_NAMES))
    return out
