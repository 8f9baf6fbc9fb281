"""AU evidence from MediaPipe's blendshapes, relative to the person's own neutral face.

MediaPipe's Face Landmarker V2 blendshape model (:mod:`mer.face.blendshapes`) gives 52
ARKit-named coefficients in [0, 1] per frame, trained by Google on real faces. Each AU below
reads the blendshape(s) that the ARKit definitions describe as the same movement (Apple,
``ARFaceAnchor.BlendShapeLocation``: "browInnerUp: upward movement of the inner portion of
both eyebrows", "mouthSmileLeft: upward movement of the left corner of the mouth" ...)
against the FACS Manual's appearance changes (Ekman, Friesen & Hager 2002):

============  =========================================  ====================================
AU            blendshapes (max of left / right)          FACS action
============  =========================================  ====================================
AU01          browInnerUp                                inner brow raiser
AU02          browOuterUpLeft / Right                    outer brow raiser
AU04          browDownLeft / Right                       brow lowerer
AU05          eyeWideLeft / Right                        upper lid raiser
AU06          (see below)                                cheek raiser
AU10          mouthUpperUpLeft / Right                   upper lip raiser
AU12          mouthSmileLeft / Right                     lip corner puller
AU14          mouthDimpleLeft / Right                    dimpler
AU17          mouthShrugLower                            chin raiser
AU26          jawOpen                                    jaw drop
============  =========================================  ====================================

Measured here, and so *not* used: ``cheekSquint*`` (AU06) and ``noseSneer*`` (AU09) are 0.00
on all 102 London Set faces, neutral and smiling, and on every dev clip; ``mouthFrown*``
(AU15) stays below 0.03 on the three labelled sad faces; ``eyeSquint*`` (AU07) rises as much
in smiles as in anger (dev set), so it separates nothing. Those AUs keep the other sources
(the learned detector and the FACS rules, :mod:`mer.aus.fusion`). AU06 is read from the
smile: a strong AU12 raises the infraorbital triangle and the cheeks (FACS Manual, AU12 at
high intensity), so AU06 = the AU12 score above ``AU06_FROM_AU12`` of mouthSmile.

Neutral baseline: :mod:`mer.aus.baseline` (estimated from the person's own frames) or the
client's reference stretch (:mod:`mer.aus.reference`).

Each AU's evidence is ``smoothstep((x - baseline - lo) / (hi - lo))`` with ``lo, hi`` in
blendshape units per AU (:data:`AU_RAMPS`), calibrated on the real dev set's labelled
apexes (``mer evaluate-real``; see the model card) so that 0.5 falls between the labelled
present and absent values.
"""

from __future__ import annotations

from dataclasses import replace

import numpy as np

from mer.aus.baseline import (
    MODE_CHANNELS,
    BaselineConfig,
    brows_raised,
    neutral_baseline,
    neutral_prior,
)
from mer.aus.reference import reference_level
from mer.events import EventConfig, speech_mask

#: AU -> the blendshapes read for it (the maximum of the listed channels: one-sided actions count)
AU_BLENDSHAPES: dict[str, tuple[str, ...]] = {
    "AU01": ("browInnerUp",),
    "AU02": ("browOuterUpLeft", "browOuterUpRight"),
    "AU04": ("browDownLeft", "browDownRight"),
    "AU05": ("eyeWideLeft", "eyeWideRight"),
    "AU10": ("mouthUpperUpLeft", "mouthUpperUpRight"),
    "AU12": ("mouthSmileLeft", "mouthSmileRight"),
    "AU14": ("mouthDimpleLeft", "mouthDimpleRight"),
    "AU17": ("mouthShrugLower",),
    "AU26": ("jawOpen",),
}

#: AU -> (lo, hi): blendshape rise above the neutral baseline at which the evidence starts
#: (0) and saturates (1); 0.5 at the midpoint. Calibrated on the dev set's labelled apexes.
#: AU04: browDown rises 0.078 at most where no AU04 is labelled (fex-metrica smile) and
#: 0.199 / 0.393 / 0.558 at the labelled brow lowerings of OpenDBM 01, Pexels and CREMA-D DIS
#: (0.086 at OpenDBM 02, below the absent smile's noise): the ramp starts at the highest
#: absent value and crosses 0.5 at 0.18 (was 0.10-0.30, which put OpenDBM 01's 0.199 at 0.49;
#: 0.06-0.22 adds false intervals on the dev and synthetic clips)
AU_RAMPS: dict[str, tuple[float, float]] = {
    "AU01": (0.15, 0.45),
    "AU02": (0.15, 0.45),
    "AU04": (0.08, 0.28),
    "AU05": (0.02, 0.08),
    "AU10": (0.25, 0.65),
    "AU12": (0.35, 0.95),
    "AU14": (0.15, 0.45),
    "AU17": (0.25, 0.55),
    "AU26": (0.10, 0.30),
}

#: mouthSmile rise (above baseline) from which a smile is strong enough to raise the cheeks
AU06_FROM_AU12: tuple[float, float] = (0.50, 0.80)


def _talking_share(
    blendshapes: np.ndarray, col: dict[str, int], t: np.ndarray, events: EventConfig
) -> float:
    """Share of the face frames inside speech (rhythmic ``jawOpen``); 0 without it."""
    if "jawOpen" not in col:
        return 0.0
    jaw = np.asarray(blendshapes[:, col["jawOpen"]], np.float64)
    face = ~np.isnan(jaw)
    if not face.any():
        return 0.0
    return float(speech_mask(jaw, t, events)[face].mean())


def _smoothstep(u: np.ndarray) -> np.ndarray:
    u = np.clip(u, 0.0, 1.0)
    return u * u * (3 - 2 * u)


def au_evidence(
    blendshapes: np.ndarray,
    names: list[str] | tuple[str, ...],
    timestamps_s: np.ndarray,
    au_names: list[str] | tuple[str, ...],
    cfg: BaselineConfig | None = None,
    events: EventConfig | None = None,
    neutral_frames: np.ndarray | None = None,
) -> np.ndarray:
    """Per-frame AU evidence in [0, 1] from blendshapes, NaN for AUs they cannot see.

    Args:
        blendshapes: ``(T, 52)`` float blendshape coefficients in [0, 1]; NaN rows where no
            face was found.
        names: the 52 blendshape names in column order.
        timestamps_s: ``(T,)`` seconds.
        au_names: the AUs wanted (columns of the output), e.g. :data:`mer.schemas.AU_NAMES`.
        cfg: neutral-baseline parameters; default :class:`BaselineConfig()`.
        events: the speech detector's parameters (how much of the clip the person talks,
            :func:`mer.events.speech_mask`); default :class:`mer.events.EventConfig()`.
        neutral_frames: ``(T,)`` bool, the person's neutral as the user gave it
            (:mod:`mer.aus.reference`): each channel's baseline is its median over these
            frames' faces, for the whole video, instead of the estimate; None = estimate.

    Returns:
        ``(T, len(au_names))`` float32: evidence in [0, 1] for the AUs of
        :data:`AU_BLENDSHAPES` and AU06; NaN for the others and where no face was found.

    Raises:
        KeyError: a needed blendshape is missing from ``names``.
        NeutralReferenceError: ``neutral_frames`` holds no frame with a face.
    """
    cfg = cfg or BaselineConfig()
    events = events or EventConfig()
    col = {n: i for i, n in enumerate(names)}
    T = blendshapes.shape[0]
    out = np.full((T, len(au_names)), np.nan, np.float32)
    aus = list(AU_BLENDSHAPES)
    chans = sorted({c for au in aus for c in AU_BLENDSHAPES[au]})
    x = np.asarray(blendshapes, np.float64)[:, [col[c] for c in chans]]
    ci = {c: i for i, c in enumerate(chans)}
    if neutral_frames is not None:
        rise = x - reference_level(x, neutral_frames)[None]
        return _columns(_evidence(rise, ci), au_names, out)
    cap = None
    t = np.asarray(timestamps_s, np.float64)
    span = float(t[-1] - t[0]) if len(t) > 1 else 0.0
    if (
        cfg.use_prior
        and span <= cfg.prior_max_s
        and (
            span <= cfg.min_rest_s
            or _talking_share(blendshapes, col, t, events) < cfg.max_talking_share
        )
    ):
        prior = neutral_prior()
        cap = np.array([prior.get(c, 1.0) for c in chans])
    mode_cols = np.array([c in MODE_CHANNELS for c in chans])
    raised = brows_raised(x, ci, cfg)
    rise = x - neutral_baseline(x, timestamps_s, cfg, cap, None, mode_cols, raised)  # NaN: no face
    if cfg.exclude_active > 0:
        # second pass: the neutral is what the face shows when no AU is on
        face = ~np.isnan(x).any(axis=1)
        enough = max(2, cfg.min_neutral_share * face.sum())
        top = _strongest(rise, ci)
        if (face & (top < cfg.exclude_active)).sum() < enough:
            # too few: the frames of an AU at full strength are an expression for sure, and
            # a channel's low percentile among them (one it pulls down) is no rest
            strong = face & (top >= cfg.exclude_strong)
            if strong.sum() > 0 and (face & ~strong).sum() >= enough:
                rise = x - neutral_baseline(x, timestamps_s, cfg, cap, strong, mode_cols, raised)
                top = _strongest(rise, ci)
        active = top >= cfg.exclude_active
        if (face & ~active).sum() >= enough:
            cfg2 = replace(cfg, percentile=cfg.neutral_percentile)
            rise = x - neutral_baseline(x, timestamps_s, cfg2, cap, active, mode_cols, raised)
    return _columns(_evidence(rise, ci), au_names, out)


def _strongest(rise: np.ndarray, ci: dict[str, int]) -> np.ndarray:
    """``(T,)`` the largest AU evidence of each frame given the channels' rises (0 where
    none is known)."""
    return np.nan_to_num(np.stack(list(_evidence(rise, ci).values()), axis=1)).max(axis=1)


def _columns(
    per_au: dict[str, np.ndarray], au_names: list[str] | tuple[str, ...], out: np.ndarray
) -> np.ndarray:
    """``out`` ``(T, len(au_names))`` with the columns of the AUs in ``per_au`` filled."""
    for j, au in enumerate(au_names):
        if au in per_au:
            out[:, j] = per_au[au]
    return out


def _evidence(rise: np.ndarray, ci: dict[str, int]) -> dict[str, np.ndarray]:
    """AU -> ``(T,)`` evidence from ``(T, C)`` rises above the neutral (NaN kept)."""
    per_au: dict[str, np.ndarray] = {}
    for au in AU_BLENDSHAPES:
        r = np.max(rise[:, [ci[c] for c in AU_BLENDSHAPES[au]]], axis=1)
        lo, hi = AU_RAMPS[au]
        per_au[au] = np.where(np.isnan(r), np.nan, _smoothstep((r - lo) / (hi - lo)))
        if au == "AU12":
            lo6, hi6 = AU06_FROM_AU12
            per_au["AU06"] = np.where(np.isnan(r), np.nan, _smoothstep((r - lo6) / (hi6 - lo6)))
    return per_au
