"""Draw what each synthetic clip shows and when: emotion, AU set, durations, timing.

The statistics are those of :mod:`mer.synth.stats` (module notes there); the clip model is
:mod:`mer.synth.spec`, the time courses :mod:`mer.synth.courses`, the draws every clip makes
(frame grid, background blink, nuisances) :mod:`mer.synth.draws` and the non-emotional clips
:mod:`mer.synth.nonemotional`. The names of those modules stay importable from here.
"""

from __future__ import annotations

import math
from collections.abc import Mapping, Sequence
from typing import Literal

import numpy as np

from mer.datasets.emotion_labels import CASME2_TO_MEGC3
from mer.schemas import NO_EMOTION
from mer.synth.courses import (
    au_courses,
    blink_course,
    closure_course,
    movement_course,
    raised_cosine_course,
    speech_course,
)
from mer.synth.draws import _frame_layout, _log_uniform, _sample_blink, sample_nuisance
from mer.synth.nonemotional import sample_nonemotional_spec
from mer.synth.spec import ClipSpec, Nuisance, SynthConfig
from mer.synth.stats import (
    _DUR_MEDIAN,
    _DUR_RANGE,
    _DUR_SIGMA,
    CASME2_AU_COUNT,
    CASME2_EMOTION_COUNTS,
    CASME2_FPS,
    EMOTION_AU_WEIGHTS,
    EMOTION_EPISODE,
    LIPS_PART_THRESHOLD,
    MACRO_AMPLITUDE,
    MACRO_DURATION_S,
    MICRO_AMPLITUDE,
    NONEMOTIONAL_MODES,
    OPEN_MOUTH_SMILE,
    SPEECH_DURATION_S,
    SPEECH_MINOR_AUS,
    SPEECH_RATE_HZ,
)

__all__ = [
    "CASME2_AU_COUNT",
    "CASME2_EMOTION_COUNTS",
    "CASME2_FPS",
    "EMOTION_AU_WEIGHTS",
    "EMOTION_EPISODE",
    "LIPS_PART_THRESHOLD",
    "MACRO_AMPLITUDE",
    "MACRO_DURATION_S",
    "MICRO_AMPLITUDE",
    "NONEMOTIONAL_MODES",
    "OPEN_MOUTH_SMILE",
    "SPEECH_DURATION_S",
    "SPEECH_MINOR_AUS",
    "SPEECH_RATE_HZ",
    "ClipSpec",
    "Nuisance",
    "SynthConfig",
    "assign_names",
    "au_courses",
    "blink_course",
    "closure_course",
    "movement_course",
    "raised_cosine_course",
    "sample_aus",
    "sample_clip_spec",
    "sample_duration_s",
    "sample_emotion",
    "sample_nonemotional_spec",
    "sample_nuisance",
    "speech_course",
]


def sample_emotion(rng: np.random.Generator, weights: Mapping[str, float] | None = None) -> str:
    """Draw a CASME II emotion (default: the CASME II frequencies).

    Raises:
        ValueError: a weight names an unknown emotion, or all weights are 0.
    """
    w = dict(CASME2_EMOTION_COUNTS if weights is None else weights)
    unknown = set(w) - set(CASME2_EMOTION_COUNTS)
    if unknown:
        raise ValueError(f"unknown emotions {sorted(unknown)}; use {list(CASME2_EMOTION_COUNTS)}")
    names = list(w)
    p = np.array([max(0.0, float(w[k])) for k in names])
    if p.sum() <= 0:
        raise ValueError("emotion weights sum to 0")
    return names[int(rng.choice(len(names), p=p / p.sum()))]


def sample_aus(rng: np.random.Generator, emotion: str) -> tuple[int, ...]:
    """Draw the AU set of a clip: its size from :data:`CASME2_AU_COUNT`, the AUs without
    replacement by :data:`EMOTION_AU_WEIGHTS`. The first AU is the primary one (largest
    amplitude, no timing jitter).
    """
    sizes = np.array(list(CASME2_AU_COUNT))
    ps = np.array(list(CASME2_AU_COUNT.values()), np.float64)
    k = int(rng.choice(sizes, p=ps / ps.sum()))
    table = EMOTION_AU_WEIGHTS[emotion]
    aus = np.array(list(table))
    w = np.array(list(table.values()), np.float64)
    k = min(k, len(aus))
    idx = rng.choice(len(aus), size=k, replace=False, p=w / w.sum())
    return tuple(int(aus[i]) for i in idx)


def sample_duration_s(rng: np.random.Generator, kind: str) -> tuple[float, float]:
    """Onset-to-apex and apex-to-offset durations in seconds (see :mod:`mer.synth.stats`)."""
    if kind == "macro":
        med, sig, lo, hi = MACRO_DURATION_S
        d = float(np.clip(med * math.exp(sig * rng.standard_normal()), lo, hi))
        r = float(rng.beta(4, 4))
    else:
        d = (
            float(np.clip(_DUR_MEDIAN * math.exp(_DUR_SIGMA * rng.standard_normal()), *_DUR_RANGE))
            / CASME2_FPS
        )
        r = float(rng.beta(6, 6))
    return r * d, (1 - r) * d


def sample_clip_spec(
    rng: np.random.Generator,
    identity: str,
    fps: float,
    cfg: SynthConfig,
    smile_corner: float | None = None,
    smile_lip_gap: float = 0.0,
    emotion: str | None = None,
) -> ClipSpec:
    """Draw one clip.

    Args:
        rng: the generator's master random stream (consumed in a fixed order).
        identity: London id.
        fps: the clip's frame rate.
        cfg: options.
        smile_corner: lip-corner displacement of the identity's real smile (IOD units), or
            None when the identity has no usable smiling photo.
        smile_lip_gap: inner-lip gap increase of the real smile (IOD units).
        emotion: force an emotion (else drawn with ``cfg.emotion_weights``); ``"none"``
            forces a non-emotional clip. Without it a share ``cfg.nonemotional_fraction``
            of the clips is non-emotional (:func:`mer.synth.nonemotional.sample_nonemotional_spec`).

    Returns:
        the spec without ``subject`` / ``filename`` (set by the writer).
    """
    if (
        emotion is None
        and cfg.nonemotional_fraction > 0
        and rng.random() < cfg.nonemotional_fraction
    ):
        emotion = NO_EMOTION
    if emotion == NO_EMOTION:
        return sample_nonemotional_spec(rng, identity, fps, cfg)
    emo = emotion if emotion is not None else sample_emotion(rng, cfg.emotion_weights)
    kind: Literal["micro", "macro"] = "micro"
    if cfg.kind == "macro" or (cfg.kind == "mixed" and rng.random() < cfg.macro_fraction):
        kind = "macro"
    amp = _log_uniform(rng, *(cfg.macro_amplitude if kind == "macro" else cfg.micro_amplitude))
    rise_s, fall_s = sample_duration_s(rng, kind)
    step, first, onset, apex, offset, last = _frame_layout(rng, fps, rise_s, fall_s, cfg)
    open_mouth = (
        emo == "happiness"
        and kind == "macro"
        and cfg.open_mouth_smile > 0
        and rng.random() < cfg.open_mouth_smile
    )
    use_smile = (
        not open_mouth
        and emo == "happiness"
        and smile_corner is not None
        and smile_corner > 1e-3
        and rng.random() < cfg.smile_fraction
    )
    au_order: tuple[int, ...] = ()
    gains: tuple[float, ...] = ()
    ons: tuple[float, ...] = ()
    offs: tuple[float, ...] = ()
    alpha = 0.0
    if use_smile and smile_corner is not None:
        mode: Literal["au", "smile"] = "smile"
        alpha = min(1.0, amp / smile_corner)
        amp = alpha * smile_corner
        aus = (6, 12) + ((25,) if alpha * smile_lip_gap >= LIPS_PART_THRESHOLD else ())
    else:
        mode = "au"
        au_order = tuple(OPEN_MOUTH_SMILE) if open_mouth else sample_aus(rng, emo)
        aus = tuple(sorted(au_order))
        g, o, f = [1.0], [float(onset)], [float(offset)]
        for a in au_order[1:]:
            g.append(float(rng.uniform(*OPEN_MOUTH_SMILE[a])) if open_mouth else
                     float(rng.uniform(0.6, 1.0)))  # fmt: skip
            o.append(onset + float(rng.uniform(0, 0.25)) * (apex - onset))
            f.append(offset - float(rng.uniform(0, 0.25)) * (offset - apex))
        gains, ons, offs = tuple(g), tuple(o), tuple(f)
    blink = _sample_blink(rng, fps, first, last, cfg)
    nuisance = sample_nuisance(rng, cfg)
    return ClipSpec(
        identity=identity,
        emotion=emo,
        megc3=CASME2_TO_MEGC3[emo],
        aus=aus,
        mode=mode,
        kind=kind,
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
        au_onset=ons,
        au_offset=offs,
        smile_alpha=float(alpha),
        blink=blink,
        nuisance=nuisance,
        seed=int(rng.integers(0, 2**31 - 1)),
    )


def assign_names(specs: Sequence[ClipSpec]) -> list[ClipSpec]:
    """Set ``subject`` (``"01"`` for identity ``"001"``) and ``filename`` (``EP{ee}_{kk}``:
    episode of the emotion, counter within subject and episode) in order."""
    from dataclasses import replace

    counters: dict[tuple[str, int], int] = {}
    out = []
    for s in specs:
        subj = f"{int(s.identity):02d}" if s.identity.isdigit() else s.identity
        ep = EMOTION_EPISODE[s.emotion]
        k = counters.get((subj, ep), 0) + 1
        counters[(subj, ep)] = k
        out.append(replace(s, subject=subj, filename=f"EP{ep:02d}_{k:02d}"))
    return out
