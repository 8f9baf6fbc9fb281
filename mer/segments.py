"""Expression segments in long, multi-event video from real-face AU evidence.

The blendshape AU evidence (:mod:`mer.aus.blendshapes`, relative to the person's neutral
baseline) says *which* AUs are on in every frame; this module cuts it into one segment per
expression:

1. **Activity**: ``a(t)`` = the largest evidence over the expression AUs (AU25 / AU26, the
   lips parting and the jaw dropping, are left out: speech), smoothed over ``smooth_s``.
2. **Hysteresis**: a segment holds frames where ``a >= on`` and extends to where ``a``
   falls below ``off``.
3. **Valleys**: inside a segment, two peaks whose valley lies ``split_depth`` below the
   lower peak are two expressions; the cut is at the valley's minimum.
4. **Pattern change**: where the dominant MEGC class of the frame's AU evidence
   (:func:`mer.emotion.evidence.class_evidence`) changes and the new class holds for at
   least ``min_pattern_s``, the segment is cut there (a smile turning into a frown with no
   neutral gap).
5. **Merge**: neighbouring segments with the same dominant class are one expression that
   dipped when closer than ``merge_gap_s``, or closer than ``hold_gap_s`` with the
   activity between them never back to neutral (below ``merge_floor``) or the first held
   for at least ``held_s`` (a held face whose evidence drops out for a moment: a hand over
   the brows).
6. **Offset phase**: a segment that starts where the previous one ends (within
   ``merge_gap_s``), peaks in its first ``tail_apex_share`` and shows only AUs the previous
   one showed at its apex is that expression relaxing (its offset phase: some actions
   release later than others, e.g. the brows after a surprise's mouth), not a new one: it
   extends the previous segment.
7. Segments shorter than ``min_duration_s`` are dropped. Steps 1-6 read a segment's
   pattern and peak at the maximum of ``a`` (where the evidence saturates, the middle of
   that plateau). Its apex is the maximum of the *combination* ``c(t)``, the sum of the
   two largest expression-AU evidences (smoothed as ``a``): an expression is a combination
   of AUs, at its peak when they are together (FACS apex), not where its first AU
   saturates (a disgust whose brows are down before the nose wrinkles and the upper lip
   rises; real dev set: the apexes of 2 of the 3 CREMA-D expressions moved into their
   labelled apex range, 9 of 10 apex hits instead of 7). Where ``c`` saturates over a
   plateau (within ``PLATEAU_TOL`` of its maximum, relative), the middle of the plateau
   around it: the first saturated frame is still the onset's rise.

Every parameter is in seconds or evidence units (0-1).
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass, replace

import numpy as np
from scipy.ndimage import gaussian_filter1d
from scipy.signal import find_peaks

from mer.emotion.evidence import CLASSES, class_evidence
from mer.events import frame_step_s, frames_for, runs

#: activity within this of a segment's maximum is its plateau (the apex is its middle)
PLATEAU_TOL = 0.05
#: AUs that do not make an expression on their own: lips part / jaw drop (speech) and the
#: chin raise (lips closing after words, doubt; in no EMFACS prototype alone, only with
#: AU1+AU4+AU15, AU4+AU7, AU9 / AU10 ...). Measured: on the held-out synthetic long clips
#: the segments and flow intervals of AU17 alone were 3 of 10 false intervals and no
#: labelled expression; no dev-set expression is AU17 alone
NON_EXPRESSIVE: tuple[str, ...] = ("AU17", "AU25", "AU26")


@dataclass(frozen=True)
class SegmentConfig:
    """Segmentation parameters (seconds; evidence in [0, 1])."""

    smooth_s: float = 0.05
    on: float = 0.5
    off: float = 0.25
    split_depth: float = 0.25
    min_pattern_s: float = 0.2
    merge_gap_s: float = 0.2
    #: ... and up to this gap (seconds) when the activity between them stays above
    #: ``merge_floor`` (the face did not return to neutral: one held expression that wavered)
    #: or the first segment was held at least ``held_s``
    hold_gap_s: float = 1.0
    merge_floor: float = 0.1
    #: an expression held this long (seconds) is not ended by a dip of at most
    #: ``hold_gap_s``: the evidence dropped out for a moment (real dev set: the Pexels man's
    #: sad face, held 3.8 s, reads as neutral for 0.57 s while his hand covers his brows);
    #: shorter expressions with a neutral gap between them stay two (two 1.3-s smiles
    #: 0.33 s apart)
    held_s: float = 2.0
    #: a follower peaking within this share of its length from its onset is decaying
    tail_apex_share: float = 0.2
    min_duration_s: float = 0.1


@dataclass(frozen=True)
class Segment:
    """One expression: onset, apex, offset (frame indices, inclusive), peak activity and
    the dominant class of :data:`mer.emotion.evidence.CLASSES` at the apex."""

    onset: int
    apex: int
    offset: int
    peak: float
    pattern: str


def expression_activity(
    evidence: np.ndarray, au_names: Sequence[str], t: np.ndarray, smooth_s: float
) -> np.ndarray:
    """``(T,)`` float64 activity: the largest expression-AU evidence, smoothed (0 without face).

    Args:
        evidence: ``(T, A)`` AU evidence in [0, 1]; NaN where unknown.
        au_names: the AU of each column.
        t: ``(T,)`` seconds.
        smooth_s: Gaussian sigma (seconds).
    """
    keep = [j for j, n in enumerate(au_names) if n not in NON_EXPRESSIVE]
    x = np.nan_to_num(np.asarray(evidence, np.float64)[:, keep])
    a = x.max(axis=1) if x.size else np.zeros(len(t))
    sigma = smooth_s / max(frame_step_s(t), 1e-6)
    return gaussian_filter1d(a, sigma) if sigma >= 0.3 and len(a) > 1 else a


def combination_activity(
    evidence: np.ndarray, au_names: Sequence[str], t: np.ndarray, smooth_s: float
) -> np.ndarray:
    """``(T,)`` float64: the sum of the two largest expression-AU evidences per frame
    (0-2), smoothed as :func:`expression_activity`; its maximum is a segment's apex.

    Args: as :func:`expression_activity`.
    """
    keep = [j for j, n in enumerate(au_names) if n not in NON_EXPRESSIVE]
    x = np.nan_to_num(np.asarray(evidence, np.float64)[:, keep])
    c = np.sort(x, axis=1)[:, -2:].sum(axis=1) if x.size else np.zeros(len(t))
    sigma = smooth_s / max(frame_step_s(t), 1e-6)
    return gaussian_filter1d(c, sigma) if sigma >= 0.3 and len(c) > 1 else c


def _dominant(evidence: np.ndarray, au_names: Sequence[str], t: np.ndarray, hold: int):
    """Per-frame index of the dominant class, with changes shorter than ``hold`` frames undone."""
    lab = np.argmax(class_evidence(evidence, au_names), axis=1)
    out = lab.copy()
    for a, b in [(a, b) for v in range(len(CLASSES)) for a, b in runs(lab == v)]:
        if b - a + 1 < hold and a > 0:
            out[a : b + 1] = out[a - 1]
    return out


def _split_valleys(a: np.ndarray, lo: int, hi: int, depth: float) -> list[int]:
    """Cut points (first frame of each new part) at deep valleys between peaks in a[lo:hi+1]."""
    seg = a[lo : hi + 1]
    peaks, _ = find_peaks(np.concatenate([[0.0], seg, [0.0]]), prominence=depth)
    peaks = peaks - 1
    cuts = []
    for p, q in zip(peaks[:-1], peaks[1:], strict=True):
        v = p + int(np.argmin(seg[p : q + 1]))
        if min(seg[p], seg[q]) - seg[v] >= depth:
            cuts.append(lo + v)
    return cuts


def segment_expressions(
    evidence: np.ndarray,
    au_names: Sequence[str],
    t: np.ndarray,
    cfg: SegmentConfig | None = None,
) -> list[Segment]:
    """Cut the AU evidence of a video into expression segments (see the module docstring).

    Args:
        evidence: ``(T, A)`` float AU evidence in [0, 1] relative to the person's neutral;
            NaN where unknown (no face).
        au_names: the AU of each column (:data:`mer.schemas.AU_NAMES`).
        t: ``(T,)`` float timestamps (seconds).
        cfg: parameters; default :class:`SegmentConfig()`.

    Returns:
        Segments in time order, not overlapping.
    """
    cfg = cfg or SegmentConfig()
    t = np.asarray(t, np.float64)
    if len(t) == 0:
        return []
    a = expression_activity(evidence, au_names, t, cfg.smooth_s)
    c = combination_activity(evidence, au_names, t, cfg.smooth_s)
    dom = _dominant(np.nan_to_num(evidence), au_names, t, frames_for(cfg.min_pattern_s, t))
    parts: list[tuple[int, int]] = []
    for lo, hi in runs(a >= cfg.off):
        if a[lo : hi + 1].max() < cfg.on:
            continue
        cuts = set(_split_valleys(a, lo, hi, cfg.split_depth))
        active = a[lo : hi + 1] >= cfg.on
        for k in range(lo + 1, hi + 1):
            if dom[k] != dom[k - 1] and active[k - lo] and active[k - 1 - lo]:
                cuts.add(k)
        bounds = [lo, *sorted(c for c in cuts if lo < c <= hi), hi + 1]
        parts += [(b0, b1 - 1) for b0, b1 in zip(bounds[:-1], bounds[1:], strict=True)]
    segs = [_segment(a, dom, lo, hi) for lo, hi in parts if a[lo : hi + 1].max() >= cfg.on]
    merged: list[Segment] = []
    for s in segs:
        if merged and merged[-1].pattern == s.pattern and _one(a, t, merged[-1], s, cfg):
            prev = merged.pop()
            s = _segment(a, dom, prev.onset, s.offset)
        merged.append(s)
    merged = _absorb_offset_phases(merged, np.nan_to_num(evidence), au_names, t, cfg)
    return [
        _combination_apex(c, s) for s in merged if t[s.offset] - t[s.onset] >= cfg.min_duration_s
    ]


def _on_aus(evidence: np.ndarray, au_names: Sequence[str], frame: int) -> set[str]:
    """Expression AUs with evidence >= 0.5 at ``frame``."""
    return {
        au_names[j] for j in np.flatnonzero(evidence[frame] >= 0.5)
        if au_names[j] not in NON_EXPRESSIVE
    }  # fmt: skip


def _absorb_offset_phases(
    segs: list[Segment],
    evidence: np.ndarray,
    au_names: Sequence[str],
    t: np.ndarray,
    cfg: SegmentConfig,
) -> list[Segment]:
    """Step 6: fold each decaying follower made of its predecessor's AUs into it."""
    out: list[Segment] = []
    for s in segs:
        prev = out[-1] if out else None
        if (
            prev is not None
            and _gap_s(t, prev, s) <= cfg.merge_gap_s
            and s.apex - s.onset <= cfg.tail_apex_share * (s.offset - s.onset + 1)
            and _on_aus(evidence, au_names, s.apex) <= _on_aus(evidence, au_names, prev.apex)
        ):
            out[-1] = Segment(prev.onset, prev.apex, s.offset, prev.peak, prev.pattern)
        else:
            out.append(s)
    return out


def _gap_s(t: np.ndarray, prev: Segment, s: Segment) -> float:
    """Seconds between two segments: the frames in neither (0 when they touch), as
    :func:`mer.pipeline.spotting.bridge_segments` counts them."""
    return float(t[s.onset] - t[min(prev.offset + 1, s.onset)])


def _one(a: np.ndarray, t: np.ndarray, prev: Segment, s: Segment, cfg: SegmentConfig) -> bool:
    """Whether two neighbouring segments of one pattern are one expression (step 5)."""
    gap = _gap_s(t, prev, s)
    if gap <= cfg.merge_gap_s:
        return True
    if gap > cfg.hold_gap_s:
        return False
    between = a[prev.offset + 1 : s.onset]
    if len(between) == 0 or float(between.min()) >= cfg.merge_floor:
        return True
    # a dip in a face held long before it
    return t[prev.offset] - t[prev.onset] >= cfg.held_s


def plateau_middle(x: np.ndarray, floor: float) -> int:
    """Index of the middle of the run of ``x >= floor`` around ``x``'s maximum: the apex of
    a curve that saturates over a plateau (its first saturated frame is still the rise).

    Args:
        x: ``(N,)`` float curve, ``N >= 1``.
        floor: level from which a frame belongs to the plateau (at most ``x.max()``).
    """
    top = int(np.argmax(x))
    start, end = top, top
    while start > 0 and x[start - 1] >= floor:
        start -= 1
    while end < len(x) - 1 and x[end + 1] >= floor:
        end += 1
    return (start + end) // 2


def _segment(a: np.ndarray, dom: np.ndarray, lo: int, hi: int) -> Segment:
    """Frames lo..hi as a segment, its peak and pattern at the activity's plateau middle
    (the apex until step 7 moves it to the combination's)."""
    seg = a[lo : hi + 1]
    top = lo + plateau_middle(seg, float(seg.max()) - PLATEAU_TOL)
    return Segment(lo, top, hi, float(a[top]), CLASSES[int(dom[top])])


def _combination_apex(c: np.ndarray, s: Segment) -> Segment:
    """Step 7: ``s`` with its apex at the middle of the plateau of the combination ``c``
    (within ``PLATEAU_TOL`` of its maximum over the segment, relative)."""
    seg = c[s.onset : s.offset + 1]
    apex = s.onset + plateau_middle(seg, float(seg.max()) * (1.0 - PLATEAU_TOL))
    return replace(s, apex=apex)
