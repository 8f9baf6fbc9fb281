"""Time courses of a synthetic clip: AU intensities, blinks, speech syllables.

Time course of one AU (frame numbers n, continuous): raised cosine rise from its onset to
the apex, ``a = (1 - cos(pi (n - on) / (apex - on))) / 2``, raised cosine fall to its
offset; 0 outside. All AUs of a clip peak at the clip's apex frame (secondary AUs may start
up to 25 % of the rise later and end up to 25 % of the fall earlier), so the summed
intensity peaks exactly at the sheet's ApexFrame.
"""

from __future__ import annotations

from collections.abc import Sequence

import numpy as np

from mer.synth.spec import ClipSpec


def raised_cosine_course(n: np.ndarray, onset: float, apex: float, offset: float) -> np.ndarray:
    """Intensity in [0, 1] at frame numbers ``n``: raised-cosine rise, peak at apex, fall.

    Args:
        n: ``(T,)`` frame numbers (float or int).
        onset, apex, offset: frame numbers with ``onset <= apex <= offset``.

    Returns:
        ``(T,)`` float64; 0 before onset and after offset, 1 at apex.
    """
    n = np.asarray(n, np.float64)
    out = np.zeros_like(n)
    rise = (n >= onset) & (n <= apex)
    if apex > onset:
        out[rise] = 0.5 * (1 - np.cos(np.pi * (n[rise] - onset) / (apex - onset)))
    fall = (n > apex) & (n <= offset)
    if offset > apex:
        out[fall] = 0.5 * (1 + np.cos(np.pi * (n[fall] - apex) / (offset - apex)))
    out[n == apex] = 1.0
    return out


def blink_course(n: np.ndarray, blink: tuple[float, float, float, float, float]) -> np.ndarray:
    """Lid closure in [0, 1] of a blink at frame numbers ``n``.

    Raised-cosine closing over ``close`` frames, ``hold`` frames closed at ``peak``, raised
    cosine opening over ``open`` frames (blinks close fast and open slowly: ~80 / 30 / 150
    ms; Stern et al., "Blink rate: a possible measure of fatigue", Hum. Factors 36, 1994).

    Args:
        n: ``(T,)`` frame numbers.
        blink: ``(start, close, hold, open, peak)``, frames and closure.

    Returns:
        ``(T,)`` float64 closure.
    """
    start, close, hold, opening, peak = blink
    n = np.asarray(n, np.float64)
    out = np.zeros_like(n)
    t1, t2, t3 = start + close, start + close + hold, start + close + hold + opening
    m = (n >= start) & (n < t1)
    out[m] = 0.5 * (1 - np.cos(np.pi * (n[m] - start) / max(close, 1e-9)))
    out[(n >= t1) & (n <= t2)] = 1.0
    m = (n > t2) & (n <= t3)
    out[m] = 0.5 * (1 + np.cos(np.pi * (n[m] - t2) / max(opening, 1e-9)))
    return peak * out


def speech_course(n: np.ndarray, syllables: Sequence[tuple[float, float, float]]) -> np.ndarray:
    """Mouth opening of a speech clip: upper envelope of raised-cosine syllable bumps.

    Args:
        n: ``(T,)`` frame numbers.
        syllables: ``(centre, half_width, peak)`` per syllable (frames, frames, [0, 1]).

    Returns:
        ``(T,)`` float64 in [0, 1]; ``peak`` at each centre.
    """
    n = np.asarray(n, np.float64)
    out = np.zeros_like(n)
    for c, w, peak in syllables:
        m = np.abs(n - c) < w
        bump = np.zeros_like(n)
        bump[m] = 0.5 * (1 + np.cos(np.pi * (n[m] - c) / w))
        bump[n == c] = 1.0
        out = np.maximum(out, peak * bump)
    return out


def closure_course(spec: ClipSpec, n: np.ndarray) -> np.ndarray:
    """Lid closure of all blinks of a clip (upper envelope), ``(T,)`` float64."""
    out = np.zeros(len(n))
    for b in spec.blinks:
        out = np.maximum(out, blink_course(n, b))
    return out


def movement_course(spec: ClipSpec, n: np.ndarray) -> np.ndarray:
    """Course of the clip's movement in [0, 1] (1 at the apex): the syllable course
    (speech), the lid closure (blink) or the raised cosine onset-apex-offset (others)."""
    if spec.mode == "speech":
        return speech_course(n, spec.syllables)
    if spec.mode == "blink":
        return closure_course(spec, n)
    return raised_cosine_course(n, spec.onset, spec.apex, spec.offset)


def au_courses(spec: ClipSpec, n: np.ndarray) -> np.ndarray:
    """Per-AU intensity of a ``mode="au"`` clip, IOD fractions (times the AU's gain = its
    displacement).

    Args:
        spec: the clip.
        n: ``(T,)`` frame numbers.

    Returns:
        ``(T, len(spec.au_order))`` float64: ``amplitude * gain_i * course_i(n)``.
    """
    if spec.mode == "speech":
        c = speech_course(n, spec.syllables)
        cols = [spec.amplitude * g * c for g in spec.au_gain]
        return np.stack(cols, axis=1) if cols else np.zeros((len(n), 0))
    cols = [
        spec.amplitude * g * raised_cosine_course(n, on, spec.apex, off)
        for g, on, off in zip(spec.au_gain, spec.au_onset, spec.au_offset, strict=True)
    ]
    return np.stack(cols, axis=1) if cols else np.zeros((len(n), 0))
