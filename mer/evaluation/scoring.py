"""Scoring of one analysed real clip against its hand labels, and pooling over clips.

Pure functions of :class:`~mer.evaluation.labels.LabelledClip` and
:class:`~mer.schemas.AnalysisResult`; the rules are those of ``shared/data/dev/README.md``:

- spotting, MEGC rule (Li et al., "MEGC2020 — the third facial micro-expression grand
  challenge", FG 2020; See et al., MEGC2019): a predicted micro/macro interval matches an
  unmatched ``expression`` event when their IoU over inclusive frame ranges is >= 0.5
  (best IoU first, one interval per event); every other predicted micro/macro interval is
  a false positive;
- apex hit: the matched interval's apex lies in ``apex_range`` or within 5 frames of ``apex``;
- apex error of a matched event: ``|predicted apex - labelled apex| / (offset - onset + 1)``
  (its inclusive frame span); an event is micro when ``(offset - onset) / fps <= 0.5 s``
  (MEGC rule, :data:`mer.spotting.MICRO_MAX_S`, as the pipeline names its intervals);
- AUs at the labelled ``apex`` of expression events of high / medium confidence, present
  when the per-frame score is >= 0.5 (labelled AUs positive, every other AU negative);
- emotion of the micro/macro interval that overlaps each positive / negative / surprise
  event most (in frames); ``none`` when none overlaps or its emotion is null / ``none``.

Predicted intervals of other kinds (``speech``, ``blink``, ``head``, ``gaze``) are not
expression predictions; they are reported with the labelled non-expression events they
overlap. Frames are 0-based decode-order indices throughout.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass, field

import numpy as np

from mer.evaluation.labels import SCORED_EMOTIONS, LabelledClip, LabelledEvent
from mer.schemas import AU_NAMES, NO_EMOTION, AnalysisResult, Interval
from mer.spotting import MICRO_MAX_S

#: Interval kinds that are expression predictions (MEGC micro / macro).
EXPRESSION_KINDS: tuple[str, ...] = ("micro", "macro")
IOU_THRESHOLD = 0.5
APEX_TOLERANCE_FRAMES = 5
AU_THRESHOLD = 0.5
#: AU12 rises at a smile when its apex score >= this and exceeds the baseline by RISE.
AU12_APEX_MIN = 0.5
AU12_RISE_MIN = 0.25
#: Confidences whose apex AUs are scored.
AU_CONFIDENCES: tuple[str, ...] = ("high", "medium")


def iou(a: tuple[int, int], b: tuple[int, int]) -> float:
    """Intersection over union of two inclusive frame ranges ``[start, end]`` (0..1)."""
    inter = overlap(a, b)
    union = (a[1] - a[0] + 1) + (b[1] - b[0] + 1) - inter
    return inter / union if union > 0 else 0.0


def overlap(a: tuple[int, int], b: tuple[int, int]) -> int:
    """Frames shared by two inclusive frame ranges (0 when disjoint)."""
    return max(0, min(a[1], b[1]) - max(a[0], b[0]) + 1)


def span(x: Interval | LabelledEvent) -> tuple[int, int]:
    """``(onset, offset)`` of an interval or a labelled event (inclusive frames)."""
    return (x.onset, x.offset)


def is_expression(iv: Interval) -> bool:
    """A micro or macro interval: an expression prediction."""
    return iv.kind in EXPRESSION_KINDS


def emotion_of(iv: Interval | None) -> str:
    """The interval's emotion label, ``none`` without an interval or an emotion."""
    if iv is None or iv.emotion is None or not iv.emotion.label:
        return NO_EMOTION
    return iv.emotion.label


def is_emotional(iv: Interval) -> bool:
    """A micro/macro interval whose emotion label is set and not ``none``."""
    return is_expression(iv) and emotion_of(iv) != NO_EMOTION


@dataclass
class Match:
    """A predicted interval (index in ``result.intervals``) matched to a labelled event;
    ``apex_hit`` is None where the event's apex is not scoreable (``apex_scoreable`` false:
    an arbitrary frame of a flat hold)."""

    interval: int
    event: int
    iou: float
    apex_hit: bool | None


def match_intervals(events: Sequence[LabelledEvent], intervals: Sequence[Interval]) -> list[Match]:
    """MEGC matching of one clip.

    Every (micro/macro interval, ``expression`` event) pair with IoU >= 0.5 is a candidate;
    candidates are taken best IoU first (ties: earlier interval, then earlier event) and
    kept while both sides are still unmatched, so each event matches at most one interval
    (a second interval on the same event is a false positive) and a double match goes to
    the interval that fits the event best, whatever the order of the intervals.

    Returns:
        One :class:`Match` per true positive, in interval order.
    """
    pairs = sorted(
        (-iou(span(iv), span(e)), i, j)
        for i, iv in enumerate(intervals) if is_expression(iv)
        for j, e in enumerate(events) if e.kind == "expression"
        and iou(span(iv), span(e)) >= IOU_THRESHOLD
    )  # fmt: skip
    used_i: set[int] = set()
    used_j: set[int] = set()
    matches = []
    for neg, i, j in pairs:
        if i in used_i or j in used_j:
            continue
        used_i.add(i)
        used_j.add(j)
        hit = apex_hit(events[j], intervals[i].apex) if events[j].apex_scoreable else None
        matches.append(Match(i, j, round(-neg, 4), hit))
    return sorted(matches, key=lambda m: m.interval)


def apex_hit(event: LabelledEvent, apex: int) -> bool:
    """The predicted ``apex`` frame lies in ``apex_range`` or within 5 frames of ``apex``."""
    a, b = event.apex_range
    return a <= apex <= b or abs(apex - event.apex) <= APEX_TOLERANCE_FRAMES


def au_scores_at(result: AnalysisResult | None, frame: int) -> dict[str, float] | None:
    """``{AUxx: score}`` of ``frame`` (None when the result lacks that frame)."""
    if result is None:
        return None
    if 0 <= frame < len(result.frames) and result.frames[frame].frame == frame:
        return result.frames[frame].au
    return next((f.au for f in result.frames if f.frame == frame), None)


def event_name(j: int, e: LabelledEvent) -> str:
    """Human name of event ``j``: ``#j kind onset-apex-offset``."""
    return f"#{j} {e.kind} {e.onset}-{e.apex}-{e.offset}"


@dataclass
class ClipScore:
    """Everything scored on one clip (JSON-able with :func:`dataclasses.asdict`)."""

    clip: str
    error: str | None
    n_expression_events: int
    n_expression_intervals: int
    matches: list[Match]
    intervals: list[dict]
    au_rows: list[dict]
    smile_rows: list[dict]
    emotion_rows: list[dict]
    non_expression_rows: list[dict]
    other_kind_rows: list[dict]
    warnings: list[str] = field(default_factory=list)
    #: one row per labelled expression event (:func:`apex_error_rows`).
    apex_rows: list[dict] = field(default_factory=list)

    @property
    def tp(self) -> int:
        """Matched expression events."""
        return len(self.matches)


def score_clip(clip: LabelledClip, result: AnalysisResult | None, error: str | None = None
               ) -> ClipScore:  # fmt: skip
    """Score one clip.

    Args:
        clip: the clip's labels.
        result: the pipeline's answer; ``None`` when the analysis failed (then nothing is
            predicted: every expression event is missed, AU scores count as 0).
        error: why the analysis failed (kept in the score).

    Returns:
        :class:`ClipScore` with per-interval, per-event and per-apex rows.
    """
    events = clip.labels.events
    intervals = result.intervals if result is not None else []
    matches = match_intervals(events, intervals)
    by_interval = {m.interval: m for m in matches}
    interval_rows = [
        {
            "index": i, "onset": iv.onset, "apex": iv.apex, "offset": iv.offset,
            "kind": iv.kind, "score": round(iv.score, 4), "emotion": emotion_of(iv),
            "emotion_score": round(iv.emotion.score, 4) if iv.emotion else None,
            "top_aus": list(iv.top_aus),
            "matched_event": by_interval[i].event if i in by_interval else None,
            "iou": by_interval[i].iou if i in by_interval else None,
            "apex_hit": by_interval[i].apex_hit if i in by_interval else None,
        }
        for i, iv in enumerate(intervals)
    ]  # fmt: skip
    warnings: list[str] = []
    return ClipScore(
        clip=clip.name,
        error=error,
        n_expression_events=sum(e.kind == "expression" for e in events),
        n_expression_intervals=sum(is_expression(iv) for iv in intervals),
        matches=matches,
        intervals=interval_rows,
        au_rows=_au_rows(clip, result, warnings),
        smile_rows=[
            _smile_row(clip, j, e, result)
            for j, e in enumerate(events)
            if e.kind == "expression" and e.emotion == "positive"
        ],
        emotion_rows=_emotion_rows(clip, intervals),
        non_expression_rows=_non_expression_rows(clip, intervals),
        other_kind_rows=[
            {
                "clip": clip.name,
                "interval": i,
                "kind": iv.kind,
                "onset": iv.onset,
                "offset": iv.offset,
                "overlaps": [
                    {"event": j, "kind": e.kind}
                    for j, e in enumerate(events)
                    if e.kind != "expression" and overlap(span(iv), span(e)) > 0
                ],
            }
            for i, iv in enumerate(intervals)
            if not is_expression(iv)
        ],  # fmt: skip
        warnings=warnings,
        apex_rows=apex_error_rows(clip, intervals, matches),
    )


def is_micro_event(event: LabelledEvent, fps: float) -> bool:
    """A labelled event of at most 0.5 s onset to offset (``(offset - onset) / fps``)."""
    return (event.offset - event.onset) / fps <= MICRO_MAX_S


def apex_error_rows(clip: LabelledClip, intervals: Sequence[Interval], matches: Sequence[Match]
                    ) -> list[dict]:  # fmt: skip
    """Apex error of each labelled expression event.

    Returns:
        One row per ``expression`` event: ``event``, ``onset``, ``apex``, ``offset``
        (frames), ``duration_s``, ``micro`` (:func:`is_micro_event`), and for an event
        matched by an interval its index ``interval``, ``predicted_apex``, ``error_frames``
        (``|predicted - labelled apex|``) and ``error_rel`` (``error_frames`` over the
        event's inclusive span ``offset - onset + 1``); these are None when unmatched.
    """
    fps = clip.labels.fps
    by_event = {m.event: m.interval for m in matches}
    rows = []
    for j, e in enumerate(clip.labels.events):
        if e.kind != "expression":
            continue
        i = by_event.get(j)
        err = abs(intervals[i].apex - e.apex) if i is not None else None
        rows.append({
            "clip": clip.name, "event": j, "onset": e.onset, "apex": e.apex, "offset": e.offset,
            "duration_s": round((e.offset - e.onset) / fps, 4), "micro": is_micro_event(e, fps),
            "interval": i, "predicted_apex": intervals[i].apex if i is not None else None,
            "error_frames": err,
            "error_rel": round(err / (e.offset - e.onset + 1), 4) if err is not None else None,
        })  # fmt: skip
    return rows


def _au_rows(clip: LabelledClip, result: AnalysisResult | None, warnings: list[str]
             ) -> list[dict]:  # fmt: skip
    """AU scores at the apex of each high/medium-confidence expression event."""
    rows = []
    for j, e in enumerate(clip.labels.events):
        if e.kind != "expression" or e.confidence not in AU_CONFIDENCES:
            continue
        scores = au_scores_at(result, e.apex)
        if scores is None and result is not None:
            warnings.append(f"no frame {e.apex} in the result (apex of {event_name(j, e)})")
        scores = scores or {}
        rows.append({
            "clip": clip.name, "event": j, "apex": e.apex, "confidence": e.confidence,
            "labelled": list(e.aus),
            "scores": {au: round(float(scores.get(au, 0.0)), 4) for au in AU_NAMES},
            "present": [au for au in AU_NAMES if scores.get(au, 0.0) >= AU_THRESHOLD],
        })  # fmt: skip
    return rows


def _emotion_rows(clip: LabelledClip, intervals: Sequence[Interval]) -> list[dict]:
    """Each positive/negative/surprise expression event against the micro/macro interval
    overlapping it most (ties: higher apex score, then earlier)."""
    rows = []
    for j, e in enumerate(clip.labels.events):
        if e.kind != "expression" or e.emotion not in SCORED_EMOTIONS:
            continue
        best, best_ov = None, 0
        for i, iv in enumerate(intervals):
            ov = overlap(span(iv), span(e)) if is_expression(iv) else 0
            if ov > best_ov or (ov == best_ov > 0 and iv.score > intervals[best].score):
                best, best_ov = i, ov
        emo = intervals[best].emotion if best is not None else None
        rows.append({
            "clip": clip.name, "event": j, "name": event_name(j, e),
            "confidence": e.confidence, "label": e.emotion, "label_alt": e.emotion_alt,
            "predicted": emotion_of(intervals[best] if best is not None else None),
            "interval": best, "overlap_frames": best_ov,
            "score": round(emo.score, 4) if emo else None,
            "model": emo.model if emo else None,
            "method": getattr(emo, "method", None),
        })  # fmt: skip
    return rows


def _non_expression_rows(clip: LabelledClip, intervals: Sequence[Interval]) -> list[dict]:
    """Each labelled non-expression event with the intervals over it; an emotional
    (micro/macro, emotion not none) one there is an error."""
    rows = []
    for j, e in enumerate(clip.labels.events):
        if e.kind == "expression":
            continue
        hits = [i for i, iv in enumerate(intervals) if overlap(span(iv), span(e)) > 0]
        emotional = [i for i in hits if is_emotional(intervals[i])]
        rows.append({
            "clip": clip.name, "event": j, "name": event_name(j, e), "kind": e.kind,
            "emotional_intervals": [
                {"interval": i, "kind": intervals[i].kind, "emotion": emotion_of(intervals[i])}
                for i in emotional
            ],
            "other_intervals": [
                {"interval": i, "kind": intervals[i].kind}
                for i in hits if not is_expression(intervals[i])
            ],
            "error": bool(emotional),
        })  # fmt: skip
    return rows


def au12_baseline_frames(clip: LabelledClip) -> list[int]:
    """Frames of the AU12 baseline: ``rest_frames`` if labelled, else every frame outside
    all labelled events (any kind)."""
    lab = clip.labels
    if lab.rest_frames is not None:
        return list(range(lab.rest_frames[0], lab.rest_frames[1] + 1))
    inside = np.zeros(lab.frames, bool)
    for e in lab.events:
        inside[e.onset : e.offset + 1] = True
    return [int(f) for f in np.flatnonzero(~inside)]


def _smile_row(clip: LabelledClip, j: int, e: LabelledEvent, result: AnalysisResult | None
               ) -> dict:  # fmt: skip
    """AU12 at the apex of a labelled smile, its baseline (median; face frames only), the
    rise and whether AU12 rises (apex >= 0.5 and rise >= 0.25)."""
    at_apex = au_scores_at(result, e.apex)
    apex12 = float(at_apex["AU12"]) if at_apex else None
    base_frames = au12_baseline_frames(clip)
    by_frame = {f.frame: f for f in result.frames} if result is not None else {}
    vals = [by_frame[f].au["AU12"] for f in base_frames if f in by_frame and by_frame[f].face]
    baseline = float(np.median(vals)) if vals else None
    rise = apex12 - baseline if apex12 is not None and baseline is not None else None
    rises = bool(apex12 is not None and rise is not None
                 and apex12 >= AU12_APEX_MIN and rise >= AU12_RISE_MIN)  # fmt: skip
    return {
        "clip": clip.name, "event": j, "name": event_name(j, e), "apex": e.apex,
        "au12_apex": _r(apex12), "au12_baseline": _r(baseline),
        "baseline_from": "rest_frames" if clip.labels.rest_frames else "outside events",
        "baseline_frames": len(vals), "rise": _r(rise), "au12_rises": rises,
    }  # fmt: skip


def _r(x: float | None) -> float | None:
    return None if x is None else round(x, 4)
