"""Non-emotional synthetic clips (emotion ``none``): speech, blinks, head movement.

Non-emotional clips (ours). A share ``nonemotional_fraction`` of all clips (default 0.2;
the emotional clips keep the distribution of :mod:`mer.synth.stats`) shows a movement that is
no emotion, with the emotion label ``none`` (no MEGC class), so that an emotion model learns
to reject talking, blinks and head motion (the real test clips are talking heads). Three kinds
(:data:`mer.synth.stats.NONEMOTIONAL_MODES`, weights speech 0.4, blink 0.3, head 0.3):

- ``speech``: the mouth opens and closes like syllables. AU26 (jaw drop, primary) and AU25
  (lips part, 0.5-1 of the jaw amplitude) plus one or two of AU10 / AU17 / AU14 at 0.15-0.35
  (small lip shaping; never AU12, which would read as a smile). All AUs follow one course,
  the upper envelope (max) of raised-cosine bumps ``(1 + cos(pi (n - c_k) / w)) / 2`` for
  ``|n - c_k| < w``: syllable rate 3-6 Hz, centres ``c_k`` every ``1 / rate`` s (+-15 %
  jitter), half-width ``w = 0.6 / rate`` s (the course drops to ~7 % between syllables),
  duration 0.6-2.5 s (at most ``max_frames // 3`` syllables so that every syllable gets about
  three written frames), syllable peaks 0.45-0.95 except the apex syllable (1). Speech is
  plainly visible, so the amplitude is drawn in the *macro* range (``macro_amplitude``,
  jaw 6-18 % IOD at gain 1.5, about 0.5-1.5 cm mouth opening);
- ``blink``: one or two full blinks (closure 1, second one 0.15-0.6 s after the first), no
  AU; the apex is the middle of the first blink's closed phase;
- ``head``: a head movement in the image plane: rotation 2-8 deg, scale 0-5 %, translation
  0-5 % of the crop side on each axis (random signs), raised-cosine there and back over
  0.4-1.5 s (apex at a Beta(4, 4) fraction), no AU.

Onset / offset of a non-emotional clip span the movement, the apex is its peak frame, the AU
cell lists the AUs used (``"10+25+26"``) or is empty.
"""

from __future__ import annotations

import math
from collections.abc import Mapping

import numpy as np

from mer.schemas import NO_EMOTION
from mer.synth.draws import _frame_layout, _log_uniform, _sample_blink, sample_nuisance
from mer.synth.spec import ClipSpec, SynthConfig
from mer.synth.stats import NONEMOTIONAL_MODES, SPEECH_DURATION_S, SPEECH_MINOR_AUS, SPEECH_RATE_HZ


def _choose(rng: np.random.Generator, weights: Mapping[str, float]) -> str:
    names = list(weights)
    p = np.array([max(0.0, float(weights[k])) for k in names])
    if p.sum() <= 0:
        raise ValueError("weights sum to 0")
    return names[int(rng.choice(len(names), p=p / p.sum()))]


def sample_nonemotional_spec(
    rng: np.random.Generator,
    identity: str,
    fps: float,
    cfg: SynthConfig,
    mode: str | None = None,
) -> ClipSpec:
    """Draw one non-emotional clip (emotion ``"none"``): speech, blink or head movement.

    See the module notes for the parameters. Onset / offset span the movement, the apex is
    its peak, on the written-frame grid.

    Args:
        rng: the master random stream.
        identity: London id.
        fps: frame rate.
        cfg: options (``nonemotional_modes`` picks the kind).
        mode: force ``"speech"``, ``"blink"`` or ``"head"``.

    Raises:
        ValueError: unknown mode.
    """
    weights = dict(NONEMOTIONAL_MODES if cfg.nonemotional_modes is None else cfg.nonemotional_modes)
    unknown = set(weights) - set(NONEMOTIONAL_MODES)
    if unknown:
        raise ValueError(f"unknown non-emotional modes {sorted(unknown)}")
    kind_ = mode if mode is not None else _choose(rng, weights)
    if kind_ not in NONEMOTIONAL_MODES:
        raise ValueError(f"unknown non-emotional mode {kind_!r}; use {list(NONEMOTIONAL_MODES)}")
    au_order: tuple[int, ...] = ()
    gains: tuple[float, ...] = ()
    syllables: tuple[tuple[float, float, float], ...] = ()
    head_move = (0.0, 0.0, 0.0, 0.0)
    blink = None
    extra: tuple[tuple[float, float, float, float, float], ...] = ()
    if kind_ == "speech":
        amp = _log_uniform(rng, *cfg.macro_amplitude)
        rate = float(rng.uniform(*SPEECH_RATE_HZ))
        dur = float(rng.uniform(*SPEECH_DURATION_S))
        w = 0.6 / rate
        n_syl = max(2, round((dur - 2 * w) * rate) + 1)
        if cfg.max_frames:
            n_syl = max(2, min(n_syl, cfg.max_frames // 3))
        gaps = (1.0 + rng.uniform(-0.15, 0.15, n_syl - 1)) / rate
        centres_s = w + np.concatenate([[0.0], np.cumsum(gaps)])
        dur = float(centres_s[-1] + w)
        k_apex = int(rng.integers(n_syl))
        peaks = rng.uniform(0.45, 0.95, n_syl)
        peaks[k_apex] = 1.0
        step, first, onset, apex, offset, last = _frame_layout(
            rng, fps, float(centres_s[k_apex]), dur - float(centres_s[k_apex]), cfg
        )
        # syllable centres on the written-frame grid (the apex syllable at the apex frame)
        grid = apex + np.round((centres_s - centres_s[k_apex]) * fps / step) * step
        w_f = float(max(w * fps, 1.5 * step))
        by_frame: dict[float, float] = {}
        for c, pk in zip(grid, peaks, strict=True):
            by_frame[float(c)] = max(by_frame.get(float(c), 0.0), float(pk))
        syllables = tuple((c, w_f, pk) for c, pk in sorted(by_frame.items()))
        minors = tuple(int(a) for a in rng.permutation(SPEECH_MINOR_AUS)[: int(rng.integers(1, 3))])
        au_order = (26, 25, *minors)
        gains = (
            1.0,
            float(rng.uniform(0.5, 1.0)),
            *(float(rng.uniform(0.15, 0.35)) for _ in minors),
        )
        blink = _sample_blink(rng, fps, first, last, cfg)
    elif kind_ == "blink":
        amp = 1.0
        close = 0.08 * fps * float(rng.uniform(0.8, 1.25))
        hold = 0.03 * fps * float(rng.uniform(0.5, 1.5))
        opening = 0.15 * fps * float(rng.uniform(0.8, 1.25))
        two = rng.random() < 0.5
        gap = float(rng.uniform(0.15, 0.6)) * fps
        c2, h2, o2 = close * rng.uniform(0.9, 1.1), hold, opening * rng.uniform(0.9, 1.1)
        end = close + hold + opening + ((gap + c2 + h2 + o2) if two else 0.0)
        to_peak = close + hold / 2
        step, first, onset, apex, offset, last = _frame_layout(
            rng, fps, to_peak / fps, (end - to_peak) / fps, cfg
        )
        start = apex - to_peak
        blink = (float(start), close, hold, opening, 1.0)
        if two:
            s2 = start + close + hold + opening + gap
            extra = ((float(s2), float(c2), float(h2), float(o2), 1.0),)
    else:
        sign = rng.choice([-1.0, 1.0], 4)
        head_move = (
            float(sign[0] * rng.uniform(2.0, 8.0)),
            float(sign[1] * rng.uniform(0.0, 0.05)),
            float(sign[2] * rng.uniform(0.0, 0.05)),
            float(sign[3] * rng.uniform(0.0, 0.05)),
        )
        amp = float(math.hypot(head_move[2], head_move[3]))
        dur = float(rng.uniform(0.4, 1.5))
        r = float(rng.beta(4, 4))
        step, first, onset, apex, offset, last = _frame_layout(
            rng, fps, r * dur, (1 - r) * dur, cfg
        )
        blink = _sample_blink(rng, fps, first, last, cfg)
    nuisance = sample_nuisance(rng, cfg)
    return ClipSpec(
        identity=identity,
        emotion=NO_EMOTION,
        megc3=None,
        aus=tuple(sorted(au_order)),
        mode=kind_,  # type: ignore[arg-type]
        kind="macro",
        fps=float(fps),
        frame_step=step,
        first=first,
        onset=onset,
        apex=apex,
        offset=offset,
        last=last,
        amplitude=float(amp),
        au_order=au_order,
        au_gain=gains,
        au_onset=tuple(float(onset) for _ in au_order),
        au_offset=tuple(float(offset) for _ in au_order),
        blink=blink,
        extra_blinks=extra,
        syllables=syllables,
        head_move=head_move,
        nuisance=nuisance,
        seed=int(rng.integers(0, 2**31 - 1)),
    )
