"""The person's neutral face, estimated from their own frames: the level of each blendshape
channel that the AU evidence (:mod:`mer.aus.blendshapes`) is read against.

Per blendshape (:func:`neutral_baseline`), a low percentile of the person's own frames over
a sliding window (so it follows a long video), capped at the 90th percentile of 102 neutral
faces (London Set, ``mer/aus/neutral_prior.json``, made by
``scripts/blendshape_neutral_prior.py``): a face held in one expression for a whole clip (no
neutral frame at all) is still judged against what a neutral face can show. The cap holds
in clips of up to ``prior_max_s`` (20 s), not in longer videos, where a channel held above
it throughout is the person's resting face, nor in clips over ``min_rest_s`` (5 s) in which
the person talks (they show the face returning to its own rest).

browDown's level is its mode, not a low percentile (:data:`MODE_CHANNELS`), over the frames
whose brows are not raised (:func:`brows_raised`: raised brows pull browDown below its rest),
and the cap binds it only where the brows are held above it (``cap_held_share``, 90 % of the
frames, as for the percentile channels): a frown held through the clip, not a low-browed
rest that the brows leave and return to.

A second pass leaves out the frames where the first pass sees any AU on (an expression is no
neutral) and takes the *median* of the rest: a low percentile alone is pulled down by
antagonist movements (brows raised while talking or smiling put ``browDown`` /
``browInnerUp`` below the resting level, which then read as AU04 / AU01 at rest). It needs
some frames the first pass already judges neutral (``min_neutral_share``). Where too few
are (an expression fills most of the clip and pulls another channel below its rest: a smile
held to the end lowers browInnerUp, whose rest then reads as AU01), the first pass is taken
again without the frames of an AU at full strength (``exclude_strong``); else the first
pass stays.

A neutral the client gives (:mod:`mer.aus.reference`) replaces all of this.
"""

from __future__ import annotations

import json
from dataclasses import dataclass
from functools import cache
from pathlib import Path

import numpy as np

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
    #: where too few remain, the first pass is taken again without the frames where an AU
    #: reaches this evidence (an expression at full strength: a channel it pulls down, as a
    #: smile does browInnerUp, has its low percentile there, not at rest)
    exclude_strong: float = 0.9
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
    #: the cap binds a mode channel (browDown) only where the channel is above it in at
    #: least this share of the face frames: a frown held through the clip, not a resting
    #: level the brows leave and come back to. 0.9 is the rule the percentile channels
    #: follow by construction (their 10th percentile passes the cap only when 90 % of the
    #: frames do). Real dev set: CREMA-D 1001 rests at browDown 0.7-0.8, above the cap;
    #: his FEA / HAP clips leave that rest after 7-17 frames for raised brows, his neutral
    #: sentence drops below it while he talks (72 % of its frames above the cap): capped,
    #: each rest read as AU04. His ANG / SAD / DIS clips, and the held sad faces of OpenDBM
    #: and Pexels, stay above the cap in over 90 % of their frames.
    cap_held_share: float = 0.9
    #: frames whose brow raisers (browInnerUp, browOuterUp*) are this far above their own
    #: low percentile (``percentile``) are left out of browDown's level: raised brows pull
    #: browDown below the rest (its antagonist), so they show no rest of it
    raised_brows: float = 0.05


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
    mode_exclude: np.ndarray | None = None,
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
            most, :func:`channel_mode`) instead of the percentile, or None. The cap binds
            such a channel only where it is above the cap in at least
            ``cfg.cap_held_share`` of the face frames: held there, not just passing.
        mode_exclude: ``(T,)`` bool frames also left out of the mode channels' level (their
            antagonist is on: raised brows pull browDown below its rest), or None; ignored
            where fewer than two frames would remain.

    Returns:
        ``(T, C)`` float64 baseline (0 where a channel never had a value).
    """
    x = np.asarray(x, np.float64)
    t = np.asarray(timestamps_s, np.float64)
    T, C = x.shape
    if T == 0:
        return np.zeros((0, C))
    face = ~np.isnan(x).any(axis=1)
    ok = face.copy()
    if exclude is not None:
        ok &= ~np.asarray(exclude, bool)
    keep = ~np.asarray(mode_exclude, bool) if mode_exclude is not None else np.ones(T, bool)
    span = t[-1] - t[0] if T > 1 else 0.0
    if span <= cfg.window_s or ok.sum() < 2:
        rows = x[ok] if ok.any() else np.zeros((1, C))
        knots_t = np.array([t[0]])
        knots = _level(rows, cfg.percentile, mode_cols, keep[ok] if ok.any() else None)[None]
    else:
        knots_t = np.arange(t[0], t[-1] + cfg.step_s, cfg.step_s)
        knots = np.zeros((len(knots_t), C))
        tv, xv, kv = t[ok], x[ok], keep[ok]
        for i, tc in enumerate(knots_t):
            lo = np.searchsorted(tv, tc - cfg.window_s / 2)
            hi = np.searchsorted(tv, tc + cfg.window_s / 2)
            lo, hi = max(0, min(lo, len(tv) - 2)), max(hi, min(lo, len(tv) - 2) + 2)
            knots[i] = _level(xv[lo:hi], cfg.percentile, mode_cols, kv[lo:hi])
    if cap is not None:
        cap = np.asarray(cap, np.float64)
        if mode_cols is not None and face.any():
            held = (x[face] > cap[None]).mean(axis=0) >= cfg.cap_held_share
            cap = np.where(np.asarray(mode_cols, bool) & ~held, np.inf, cap)
        knots = np.minimum(knots, cap[None])
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


def _level(
    rows: np.ndarray,
    percentile: float,
    mode_cols: np.ndarray | None,
    mode_keep: np.ndarray | None = None,
) -> np.ndarray:
    """``(C,)`` neutral level of ``(N, C)`` rows: the percentile, or the mode (over the rows
    of ``mode_keep`` ``(N,)`` bool when at least two)."""
    out = np.percentile(rows, percentile, axis=0)
    if mode_cols is not None:
        use = rows[mode_keep] if mode_keep is not None and mode_keep.sum() >= 2 else rows
        for c in np.flatnonzero(mode_cols):
            out[c] = channel_mode(use[:, c])
    return out


def brows_raised(x: np.ndarray, ci: dict[str, int], cfg: BaselineConfig) -> np.ndarray:
    """Frames whose brows are raised: ``browInnerUp`` or either ``browOuterUp`` at least
    ``cfg.raised_brows`` above its own ``cfg.percentile`` over the face frames.

    Args:
        x: ``(T, C)`` float channels (NaN rows without face), columns named by ``ci``.
        ci: channel name -> column.
        cfg: ``percentile`` and ``raised_brows``.

    Returns:
        ``(T,)`` bool (False without face or without those channels).
    """
    cols = [ci[c] for c in ("browInnerUp", "browOuterUpLeft", "browOuterUpRight") if c in ci]
    face = ~np.isnan(x).any(axis=1)
    if not cols or not face.any():
        return np.zeros(len(x), bool)
    v = x[:, cols]
    low = np.percentile(v[face], cfg.percentile, axis=0)
    return face & (np.nan_to_num(v - low[None]) >= cfg.raised_brows).any(axis=1)
