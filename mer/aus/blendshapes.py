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

Neutral baseline (:func:`neutral_baseline`): per blendshape, a low percentile of the
person's own frames over a sliding window (so it follows a long video), capped at the 90th
percentile of 102 neutral faces (London Set, ``mer/aus/neutral_prior.json``, made by
``scripts/blendshape_neutral_prior.py``): a face held in one expression for a whole clip
(no neutral frame at all) is still judged against what a neutral face can show; the cap
holds in clips of up to ``prior_max_s`` (20 s), not in longer videos, where a channel held
above it throughout is the person's resting face, nor in clips over ``min_rest_s`` (5 s)
in which the person talks (they show the face returning to its own rest). browDown's
level is its mode, not a low percentile (:data:`MODE_CHANNELS`). A second
pass leaves out the frames where the first pass sees any AU on (an expression is no
neutral) and takes the *median* of the rest: a low percentile alone is pulled down by
antagonist movements (brows raised while talking or smiling put ``browDown`` /
``browInnerUp`` below the resting level, which then read as AU04 / AU01 at rest). It needs
some frames the first pass already judges neutral (``min_neutral_share``); else the first
pass stays. A neutral the client gives (``neutral_frames``, :mod:`mer.aus.reference`)
replaces all of this: each channel's median over those frames, no cap.

Each AU's evidence is ``smoothstep((x - baseline - lo) / (hi - lo))`` with ``lo, hi`` in
blendshape units per AU (:data:`AU_RAMPS`), calibrated on the real dev set's labelled
apexes (``mer evaluate-real``; see the model card) so that 0.5 falls between the labelled
present and absent values.
"""

from __future__ import annotations

import json
from dataclasses import dataclass, replace
from functools import cache
from pathlib import Path

import numpy as np

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

#: channels whose neutral is the level they hold most (their mode), not a low percentile:
#: browDown falls below the resting level whenever the brows rise (its antagonists; with
#: speech emphasis, surprise or fear), so its low end is raised brows, not the rest. Real
#: dev set: CREMA-D actor 1001 rests at browDown 0.70-0.78 and drops to 0.0-0.3 while
#: talking; his six clips played back to back gave one negative interval over four
#: expressions with the percentile and two separate ones, no false one, with the mode.
MODE_CHANNELS: tuple[str, ...] = ("browDownLeft", "browDownRight")

PRIOR_FILE = Path(__file__).with_name("neutral_prior.json")


@dataclass(frozen=True)
class BaselineConfig:
    """Neutral-baseline parameters.

    Attributes:
        percentile: low percentile of the person's frames taken as neutral.
        window_s: sliding window (seconds) over which it is taken; a clip shorter than the
            window uses all its frames.
        step_s: the baseline is computed every ``step_s`` seconds and interpolated between.
        use_prior: cap it at the neutral population's 90th percentile ...
        prior_max_s: ... in videos of at most this many seconds: an expression held from
            the first frame to the last is plausible in a short clip (posed holds last up
            to ~10 s: the OpenDBM and Pexels clips of the dev set, CK+ / MMI sequences),
            not over a longer video, where a channel above the population's neutral in
            nearly every frame is the person's own resting face (a low-browed person's
            browDown), which the cap would read as an AU held all along.
    """

    percentile: float = 10.0
    window_s: float = 60.0
    step_s: float = 2.0
    use_prior: bool = True
    prior_max_s: float = 20.0
    #: second pass: frames where any AU's first-pass evidence reaches this are left out of
    #: the neutral estimate (they show an expression); 0 = one pass
    exclude_active: float = 0.25
    #: ... when at least this share of the face frames remains (else the first pass stays)
    min_neutral_share: float = 0.2
    #: percentile of the remaining (neutral) frames taken as the neutral level in the second
    #: pass: its median, as the neutral lies between antagonists (brows raised while talking
    #: put browDown below the resting level)
    neutral_percentile: float = 50.0
    #: the population cap also holds in clips of at most ``prior_max_s`` only where the
    #: person talks in less than this share of the face frames (speech:
    #: :func:`mer.events.speech_mask`) ...
    max_talking_share: float = 0.1
    #: ... or the clip is at most this long (seconds): a person who talks for longer shows
    #: the face moving through its range and back to its own rest, which the cap would
    #: override (a low-browed talker read as frowning throughout)
    min_rest_s: float = 5.0


@cache
def neutral_prior() -> dict[str, float]:
    """Blendshape name -> 90th percentile over 102 neutral faces (London Set).

    Raises:
        FileNotFoundError: ``neutral_prior.json`` is missing from the package.
    """
    data = json.loads(PRIOR_FILE.read_text())
    return {k: float(v) for k, v in data["p90"].items()}


def neutral_baseline(
    x: np.ndarray,
    timestamps_s: np.ndarray,
    cfg: BaselineConfig,
    cap: np.ndarray | None = None,
    exclude: np.ndarray | None = None,
    mode_cols: np.ndarray | None = None,
) -> np.ndarray:
    """The person's neutral level of each channel, following the video.

    Args:
        x: ``(T, C)`` float channels; NaN rows where no face was found.
        timestamps_s: ``(T,)`` seconds.
        cfg: percentile and window.
        cap: ``(C,)`` upper bound of the baseline (the population's neutral range), or None.
        exclude: ``(T,)`` bool frames that are not neutral (an expression), left out of
            the percentile, or None.
        mode_cols: ``(C,)`` bool channels whose level is their mode (the level they hold
            most, :func:`channel_mode`) instead of the percentile, or None.

    Returns:
        ``(T, C)`` float64 baseline (0 where a channel never had a value).
    """
    x = np.asarray(x, np.float64)
    t = np.asarray(timestamps_s, np.float64)
    T, C = x.shape
    if T == 0:
        return np.zeros((0, C))
    ok = ~np.isnan(x).any(axis=1)
    if exclude is not None:
        ok &= ~np.asarray(exclude, bool)
    span = t[-1] - t[0] if T > 1 else 0.0
    if span <= cfg.window_s or ok.sum() < 2:
        rows = x[ok] if ok.any() else np.zeros((1, C))
        knots_t = np.array([t[0]])
        knots = _level(rows, cfg.percentile, mode_cols)[None]
    else:
        knots_t = np.arange(t[0], t[-1] + cfg.step_s, cfg.step_s)
        knots = np.zeros((len(knots_t), C))
        tv, xv = t[ok], x[ok]
        for i, tc in enumerate(knots_t):
            lo = np.searchsorted(tv, tc - cfg.window_s / 2)
            hi = np.searchsorted(tv, tc + cfg.window_s / 2)
            lo, hi = max(0, min(lo, len(tv) - 2)), max(hi, min(lo, len(tv) - 2) + 2)
            knots[i] = _level(xv[lo:hi], cfg.percentile, mode_cols)
    if cap is not None:
        knots = np.minimum(knots, np.asarray(cap, np.float64)[None])
    if len(knots_t) == 1:
        return np.repeat(knots, T, axis=0)
    return np.stack([np.interp(t, knots_t, knots[:, c]) for c in range(C)], axis=1)


def channel_mode(v: np.ndarray, width: float = 0.05) -> float:
    """The level a blendshape channel holds most: the median of the values within
    ``width`` of the densest bin of a ``width``-wide histogram over [0, 1] (bins smoothed
    1-2-1, so a level split by a bin edge still counts as one).

    Args:
        v: ``(N,)`` float values in [0, 1] (no NaN).
        width: bin width (blendshape units).

    Returns:
        The mode; 0.0 for no values.
    """
    if len(v) == 0:
        return 0.0
    hist, edges = np.histogram(v, bins=np.arange(0.0, 1.0 + width, width))
    hist = np.convolve(hist, [1, 2, 1], mode="same")
    c = (edges[np.argmax(hist)] + edges[np.argmax(hist) + 1]) / 2
    near = v[np.abs(v - c) <= width]
    return float(np.median(near)) if len(near) else float(c)


def _level(rows: np.ndarray, percentile: float, mode_cols: np.ndarray | None) -> np.ndarray:
    """``(C,)`` neutral level of ``(N, C)`` rows: the percentile, or the mode."""
    out = np.percentile(rows, percentile, axis=0)
    if mode_cols is not None:
        for c in np.flatnonzero(mode_cols):
            out[c] = channel_mode(rows[:, c])
    return out


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
    rise = x - neutral_baseline(x, timestamps_s, cfg, cap, None, mode_cols)  # NaN: no face
    if cfg.exclude_active > 0:
        # second pass: the neutral is what the face shows when no AU is on
        first = _evidence(rise, ci)
        face = ~np.isnan(x).any(axis=1)
        active = np.nan_to_num(np.stack(list(first.values()), axis=1)).max(axis=1)
        active = active >= cfg.exclude_active
        if (face & ~active).sum() >= max(2, cfg.min_neutral_share * face.sum()):
            cfg2 = replace(cfg, percentile=cfg.neutral_percentile)
            rise = x - neutral_baseline(x, timestamps_s, cfg2, cap, active, mode_cols)
    return _columns(_evidence(rise, ci), au_names, out)


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
