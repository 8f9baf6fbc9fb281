"""Draw the timeline of a long multi-event clip: segments, gaps, blinks, nuisances.

The statistics are those of :mod:`mer.synth.long_spec` (module notes there).
"""

from __future__ import annotations

import math
from collections.abc import Sequence
from dataclasses import replace

import numpy as np

from mer.synth.draws import log_uniform, sample_nuisance
from mer.synth.long_spec import (
    EXPRESSION_TYPES,
    SEGMENT_WEIGHTS,
    LongClipConfig,
    LongClipSpec,
    TimelineEvent,
)
from mer.synth.spec import SynthConfig
from mer.synth.stats import MACRO_AMPLITUDE, MICRO_AMPLITUDE, SPEECH_MINOR_AUS, SPEECH_RATE_HZ


def _expression(
    rng: np.random.Generator, t0: float, cfg: LongClipConfig, micro: bool
) -> TimelineEvent:
    fps = cfg.fps
    types = [e for e in EXPRESSION_TYPES if not (micro and e.macro_only)]
    w = np.array([e.weight for e in types])
    et = types[int(rng.choice(len(types), p=w / w.sum()))]
    if micro:
        n = round(rng.uniform(*cfg.micro_duration_s) * fps)
        n = int(min(max(n, 5), math.floor(0.5 * fps) - 1))
        rise = max(1, round(rng.uniform(0.35, 0.5) * n))
        hold = round(rng.uniform(0.0, 0.15) * n)
        amp = log_uniform(rng, *MICRO_AMPLITUDE)
    else:
        n = round(log_uniform(rng, *cfg.macro_duration_s) * fps)
        rise = max(1, round(rng.uniform(0.2, 0.35) * n))
        hold = round(rng.uniform(0.2, 0.5) * n)
        subtle = rng.random() < cfg.subtle_macro
        amp = log_uniform(rng, *(MICRO_AMPLITUDE if subtle else MACRO_AMPLITUDE))
    side = int(rng.choice([-1, 1])) if et.one_sided else 0
    return TimelineEvent(
        kind="expression", name=et.name, emotion=et.emotion, onset=t0,
        peak_start=t0 + rise, peak_end=t0 + rise + hold, offset=t0 + n,
        scale="micro" if micro else "macro", aus=et.aus, au_gain=et.gains,
        amplitude=amp, side=side,
    )  # fmt: skip


def _speech(rng: np.random.Generator, t0: float, cfg: LongClipConfig) -> TimelineEvent:
    fps = cfg.fps
    rate = float(rng.uniform(*SPEECH_RATE_HZ))
    dur = float(rng.uniform(1.0, 4.0))
    w = 0.6 / rate
    n_syl = max(2, round((dur - 2 * w) * rate) + 1)
    gaps = (1.0 + rng.uniform(-0.15, 0.15, n_syl - 1)) / rate
    centres = t0 + (w + np.concatenate([[0.0], np.cumsum(gaps)])) * fps
    peaks = rng.uniform(0.45, 0.95, n_syl)
    k = int(rng.integers(n_syl))
    peaks[k] = 1.0
    minors = tuple(int(a) for a in rng.permutation(SPEECH_MINOR_AUS)[: int(rng.integers(1, 3))])
    gains = (1.0, float(rng.uniform(0.5, 1.0)), *(float(rng.uniform(0.15, 0.35)) for _ in minors))
    wf = w * fps
    syl = tuple((float(c), float(wf), float(p)) for c, p in zip(centres, peaks, strict=True))
    return TimelineEvent(
        kind="speech", name=f"speech at {rate:.1f} syllables/s", emotion="other",
        onset=t0, peak_start=float(centres[k]), peak_end=float(centres[k]),
        offset=float(centres[-1] + wf), aus=(26, 25, *minors), au_gain=gains,
        amplitude=log_uniform(rng, *MACRO_AMPLITUDE), syllables=syl,
    )  # fmt: skip


def _head_turn(rng: np.random.Generator, t0: float, cfg: LongClipConfig) -> TimelineEvent:
    n = round(rng.uniform(0.8, 2.5) * cfg.fps)
    hold = round(min(rng.uniform(0.0, 1.0) * cfg.fps, 0.5 * n))
    rise = max(1, round(rng.uniform(0.4, 0.6) * (n - hold)))
    sg = rng.choice([-1.0, 1.0], 5)
    head = (
        float(sg[0] * rng.uniform(2.0, 8.0)),
        float(sg[1] * rng.uniform(0.0, 0.04)),
        float(sg[2] * rng.uniform(0.0, 0.04)),
        float(sg[3] * rng.uniform(0.0, 0.04)),
        float(rng.uniform(0.02, 0.08)),
    )
    return TimelineEvent(
        kind="head_turn", name="head turn (roll, shift, squash for yaw)", emotion="other",
        onset=t0, peak_start=t0 + rise, peak_end=t0 + rise + hold, offset=t0 + n, head=head,
    )  # fmt: skip


def _gaze(rng: np.random.Generator, t0: float, cfg: LongClipConfig) -> TimelineEvent:
    sac = int(rng.integers(2, 4))
    hold = round(rng.uniform(0.4, 2.0) * cfg.fps)
    amp = float(rng.uniform(0.025, 0.05))
    dx = float(rng.choice([-1.0, 1.0]))
    dy = float(rng.uniform(-0.3, 0.3))
    return TimelineEvent(
        kind="gaze", name="gaze shift " + ("right" if dx > 0 else "left") + " (image)",
        emotion="other", onset=t0, peak_start=t0 + sac, peak_end=t0 + sac + hold,
        offset=t0 + 2 * sac + hold, amplitude=amp, gaze_dir=(dx, dy),
    )  # fmt: skip


def _eyes(rng: np.random.Generator, t0: float, cfg: LongClipConfig) -> TimelineEvent:
    fps = cfg.fps
    close, hold, opening = (max(1, round(rng.uniform(0.1, 0.2) * fps)),
                            round(rng.uniform(0.3, 1.0) * fps),
                            max(1, round(rng.uniform(0.15, 0.3) * fps)))  # fmt: skip
    return TimelineEvent(
        kind="eyes", name="slow eye closure", emotion="other", onset=t0,
        peak_start=t0 + close, peak_end=t0 + close + hold, offset=t0 + close + hold + opening,
    )  # fmt: skip


def _blinks(
    rng: np.random.Generator, cfg: LongClipConfig, lo: float, hi: float, avoid: list[tuple]
) -> tuple[tuple[float, float, float, float, float], ...]:
    fps = cfg.fps
    out: list[tuple[float, float, float, float, float]] = []
    if cfg.blink_rate_hz <= 0:
        return ()
    t = lo + rng.exponential(1.0 / cfg.blink_rate_hz) * fps
    while t < hi:
        close = 0.08 * fps * float(rng.uniform(0.8, 1.25))
        hold = 0.03 * fps * float(rng.uniform(0.5, 1.5))
        opening = 0.15 * fps * float(rng.uniform(0.8, 1.25))
        end = t + close + hold + opening
        if end < hi and all(end < a - 2 or t > b + 2 for a, b in avoid):
            out.append((float(t), close, hold, opening, float(rng.uniform(0.6, 1.0))))
            t = end + fps
        t += rng.exponential(1.0 / cfg.blink_rate_hz) * fps
    return tuple(out)


def _timeline(
    rng: np.random.Generator,
    cfg: LongClipConfig,
    t: float,
    end: float,
    kinds: list[str],
    names: list[str],
    p: np.ndarray,
    planned: bool,
) -> list[TimelineEvent] | None:
    """Segments from frame ``t`` until ``end`` (None when a planned segment does not fit)."""
    fps = cfg.fps
    events: list[TimelineEvent] = []
    n_expr = 0
    first_micro = bool(rng.random() < 0.5)
    i = 0
    while not planned or i < len(kinds):
        kind = kinds[i] if planned else names[int(rng.choice(len(names), p=p / p.sum()))]
        i += 1
        if kind == "expression":
            micro = (first_micro if n_expr == 0 else not first_micro) if n_expr < 2 else (
                bool(rng.random() < cfg.micro_fraction))  # fmt: skip
            ev = _expression(rng, t, cfg, micro)
            n_expr += 1
        elif kind == "speech":
            ev = _speech(rng, t, cfg)
        elif kind == "head_turn":
            ev = _head_turn(rng, t, cfg)
        elif kind == "gaze":
            ev = _gaze(rng, t, cfg)
        else:
            ev = _eyes(rng, t, cfg)
        if ev.offset > end:
            if planned:
                return None
            break
        events.append(ev)
        gap = rng.uniform(*cfg.gap_s) * fps
        if kind == "expression" and rng.random() < cfg.no_gap_prob:
            gap = 0.0  # the next segment starts as this one ends (no neutral rest)
        t = float(math.floor(ev.offset) + 1 + round(gap))
    return events


def sample_long_clip(
    rng: np.random.Generator,
    identity: str,
    cfg: LongClipConfig,
    plan: Sequence[str] | None = None,
) -> LongClipSpec:
    """Draw the timeline of one long clip (see the module notes).

    Args:
        rng: random stream (consumed in a fixed order: same stream, same clip).
        identity: London id.
        cfg: options.
        plan: segment kinds in order (``["expression", "speech", "expression"]``); the
            segments are placed as drawn and the clip must hold them all (the timeline is
            redrawn, up to 100 times, until it fits). None fills the
            clip with kinds drawn by ``cfg.segment_weights`` until it is full.

    Returns:
        the clip's spec.

    Raises:
        ValueError: unknown segment kind, or a plan that does not fit ``duration_s``.
    """
    fps = cfg.fps
    n_frames = int(round(cfg.duration_s * fps))
    weights = dict(SEGMENT_WEIGHTS if cfg.segment_weights is None else cfg.segment_weights)
    if not cfg.gaze:
        weights["gaze"] = 0.0
    kinds = list(plan) if plan is not None else []
    bad = set(kinds) | set(weights)
    bad -= set(SEGMENT_WEIGHTS)
    if bad:
        raise ValueError(f"unknown segment kinds {sorted(bad)}; use {list(SEGMENT_WEIGHTS)}")
    names = list(weights)
    p = np.array([max(0.0, weights[k]) for k in names])
    lead, events = 0, None
    for _ in range(100 if plan is not None else 1):  # a plan is redrawn until it fits
        lead = int(round(rng.uniform(*cfg.lead_s) * fps))
        events = _timeline(rng, cfg, float(lead), n_frames - 1 - cfg.tail_s * fps, kinds,
                           names, p, plan is not None)  # fmt: skip
        if events is not None:
            break
    if events is None:
        raise ValueError(f"plan {kinds} does not fit {cfg.duration_s} s")
    avoid = [(0.0, float(lead))] + [(e.onset, e.offset) for e in events if e.kind == "eyes"]
    blinks = _blinks(rng, cfg, float(lead), n_frames - 1.0, avoid)
    syn = SynthConfig(
        head_motion=cfg.head_motion, lighting=cfg.lighting, noise=cfg.noise,
        pose_jitter=cfg.pose_jitter, jpeg_quality=(95, 95),
    )  # fmt: skip
    nuisance = sample_nuisance(rng, syn)
    # the short clips' head drift (up to the micro-motion RMS per second) would carry the
    # face 5 % of the frame away over 20 s: a tenth of it here
    nuisance = replace(nuisance, head_drift=tuple(0.1 * d for d in nuisance.head_drift))
    return LongClipSpec(
        identity=identity, fps=float(fps), n_frames=n_frames, rest=(0, lead - 1),
        events=tuple(events), blinks=blinks, nuisance=nuisance,
        seed=int(rng.integers(0, 2**31 - 1)),
    )  # fmt: skip
