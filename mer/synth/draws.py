"""Draws every synthetic clip makes, emotional or not: amplitude, frame grid, blink, nuisances.

Shared by :mod:`mer.synth.sampling` (emotional clips) and :mod:`mer.synth.nonemotional`
(speech, blinks, head movement); they consume the master random stream in the callers' order.
"""

from __future__ import annotations

import math

import numpy as np

from mer.synth.spec import Nuisance, SynthConfig


def log_uniform(rng: np.random.Generator, lo: float, hi: float) -> float:
    """A draw log-uniform in ``[lo, hi]`` (``lo, hi > 0``, any unit)."""
    return float(math.exp(rng.uniform(math.log(lo), math.log(hi))))


_log_uniform = log_uniform  # the name the sampling modules use


def sample_nuisance(rng: np.random.Generator, cfg: SynthConfig) -> Nuisance:
    """Draw the nuisances of a clip (strengths scaled by the config factors).

    Defaults at strength 1 (ours; chosen to look like lab recordings of still-sitting
    participants): pose jitter rotation N(0, 2 deg), scale N(0, 4 %), shift N(0, 2 %);
    head micro-motion RMS (times U(0.3, 1.5) per clip) 0.1 deg, 0.1 % scale, 0.2 % of the
    crop side (0.5 px at 256), three sinusoids of 0.1-1.5 Hz each plus a drift of up to that
    RMS per second; global
    gain 0.85-1.15, temporal lighting change up to 2 %, gradients up to 8 %, white balance
    +-4 %; sensor noise 0.5-2.5 grey levels; JPEG quality in ``cfg.jpeg_quality``.
    """
    pj, hm, li = cfg.pose_jitter, cfg.head_motion, cfg.lighting
    pose = (
        float(np.clip(rng.normal(0, 2.0), -5, 5)) * pj,
        float(np.clip(rng.normal(0, 0.04), -0.1, 0.1)) * pj,
        float(np.clip(rng.normal(0, 0.02), -0.05, 0.05)) * pj,
        float(np.clip(rng.normal(0, 0.02), -0.05, 0.05)) * pj,
    )
    base = np.array([0.1, 0.001, 0.002, 0.002]) * hm
    head_amp = tuple(float(b * rng.uniform(0.3, 1.5)) for b in base)
    freq = tuple(tuple(float(f) for f in rng.uniform(0.1, 1.5, 3)) for _ in range(4))
    phase = tuple(tuple(float(p) for p in rng.uniform(0, 2 * np.pi, 3)) for _ in range(4))
    drift = tuple(float(a * rng.uniform(-1, 1)) for a in head_amp)
    q0, q1 = cfg.jpeg_quality
    return Nuisance(
        pose=pose,
        head_amp=head_amp,
        head_freq=freq,
        head_phase=phase,
        head_drift=drift,
        gain=float(1 + li * rng.uniform(-0.15, 0.15)),
        gain_amp=float(li * rng.uniform(0, 0.02)),
        gain_freq=float(rng.uniform(0.2, 2.0)),
        gain_phase=float(rng.uniform(0, 2 * np.pi)),
        tilt=(float(li * rng.uniform(-0.08, 0.08)), float(li * rng.uniform(-0.05, 0.05))),
        tilt_drift=(float(li * rng.uniform(-0.03, 0.03)), float(li * rng.uniform(-0.03, 0.03))),
        channel_gain=tuple(float(1 + li * rng.uniform(-0.04, 0.04)) for _ in range(3)),  # type: ignore[arg-type]
        noise_sigma=float(cfg.noise * rng.uniform(0.5, 2.5)),
        jpeg_quality=int(rng.integers(min(q0, q1), max(q0, q1) + 1)),
    )


def _frame_layout(
    rng: np.random.Generator, fps: float, rise_s: float, fall_s: float, cfg: SynthConfig
) -> tuple[int, int, int, int, int, int]:
    """``(step, first, onset, apex, offset, last)`` on the written-frame grid."""
    pre_s = float(rng.uniform(*cfg.pad_s))
    post_s = float(rng.uniform(*cfg.pad_s))
    first = 1 + int(rng.integers(0, max(1, int(fps)) + 1))
    parts = [pre_s * fps, rise_s * fps, fall_s * fps, post_s * fps]
    step = 1
    if cfg.max_frames:
        step = max(1, math.ceil((sum(parts) + 1) / cfg.max_frames))
    while True:
        n = [max(1, round(p / step)) for p in parts]
        if not cfg.max_frames or sum(n) + 1 <= cfg.max_frames or step > 10_000:
            break
        step += 1
    onset = first + n[0] * step
    apex = onset + n[1] * step
    offset = apex + n[2] * step
    last = offset + n[3] * step
    return step, first, onset, apex, offset, last


def _sample_blink(
    rng: np.random.Generator, fps: float, first: int, last: int, cfg: SynthConfig
) -> tuple[float, float, float, float, float] | None:
    """A random background blink (probability ``cfg.blink_prob``) anywhere in the clip."""
    if rng.random() >= cfg.blink_prob:
        return None
    close = 0.08 * fps * float(rng.uniform(0.8, 1.25))
    hold = 0.03 * fps * float(rng.uniform(0.5, 1.5))
    opening = 0.15 * fps * float(rng.uniform(0.8, 1.25))
    start = float(rng.uniform(first - close - hold, last))
    return (start, close, hold, opening, float(rng.uniform(0.6, 1.0)))
