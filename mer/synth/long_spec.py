"""Long synthetic clips with several events: the timeline's types, options and statistics
(drawn by :func:`mer.synth.long_timeline.sample_long_clip`).

A long clip (default 20 s at 30 fps) starts with a neutral rest of 1-2 s (no event, no
blink; the labels' ``rest_frames``) and then strings *segments* one after another, each
followed by a neutral gap of 0.3-1.5 s, or by none when an expression turns straight into
the next one (probability ``no_gap_prob``); the last segment ends at least ``tail_s`` before
the end. Segments never overlap; blinks and the head micro-motion of
:func:`mer.synth.sampling.sample_nuisance` run throughout (blinks also during expressions).
Segment kinds (weights in :class:`LongClipConfig`, ours):

- ``expression`` (:data:`EXPRESSION_TYPES`, EMFACS prototypes and the CASME II AU
  combinations of the mission notes): *micro* lasts 0.2-0.5 s onset to offset (at most
  ``0.5 s - 1`` frame), *macro* 0.6-3 s; micro and macro alternate for the first two
  expressions of a clip, then each is micro with ``micro_fraction``. Amplitude: log-uniform
  in :data:`mer.synth.sampling.MICRO_AMPLITUDE` for micro, ``MACRO_AMPLITUDE`` for macro,
  except a share ``subtle_macro`` of the macro ones at micro amplitude. Course: raised-cosine
  rise, plateau at 1 (the labels' ``apex_range``), raised-cosine fall;
- ``speech``: 1-4 s of syllables at 3-6 Hz, AU26 + AU25 and one or two small lip AUs (10, 17,
  14), as the non-emotional speech clips of :mod:`mer.synth.sampling`;
- ``head_turn``: a rigid head movement there and back (0.8-2.5 s, hold up to 1 s): roll
  2-8 deg, scale up to 4 %, shift up to 4 % of the frame, and a horizontal squash of
  2-8 % standing in for yaw (the renderer warps a 2-D photo; a true out-of-plane turn is not
  possible);
- ``gaze``: both irises shift 0.025-0.05 IOD sideways (up to 0.015 IOD vertically) in a 2-3
  frame saccade, hold 0.4-2 s, shift back;
- ``eyes``: a slow eye closure (close 0.1-0.2 s, closed 0.3-1 s, open 0.15-0.3 s).

Blinks: a Poisson process of ``blink_rate_hz`` (0.25 Hz, 15 per minute), at least 1 s apart,
outside the rest and ``eyes`` segments; timing as the background blinks of
:mod:`mer.synth.sampling` (close ~80 ms, closed ~30 ms, open ~150 ms, peak closure 0.6-1).
Nuisances: pose, micro-motion, lighting and noise of :func:`mer.synth.sampling.sample_nuisance`,
with a tenth of its head drift (over 20 s the full drift would carry the face off centre).
All frame values are 0-based frame indices (onset, plateau and offset of every segment but
speech on whole frames; speech syllables and blinks are continuous).
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Literal

from mer.synth.spec import Nuisance

EventKind = Literal["expression", "speech", "head_turn", "gaze", "eyes"]
#: Segment kinds and their default relative frequencies.
SEGMENT_WEIGHTS: dict[str, float] = {
    "expression": 0.5, "speech": 0.25, "head_turn": 0.1, "gaze": 0.1, "eyes": 0.05,
}  # fmt: skip


@dataclass(frozen=True)
class ExpressionType:
    """One expression prototype.

    Attributes:
        name: short name (labels' ``desc``).
        emotion: MEGC 3 class (``positive``, ``negative``, ``surprise``).
        aus: FACS AUs, primary first.
        gains: amplitude factor of each AU relative to the primary (1).
        weight: relative frequency.
        one_sided: drawn on one side of the face only (contempt).
        macro_only: never drawn as a micro-expression (broad open-mouth displays).
    """

    name: str
    emotion: str
    aus: tuple[int, ...]
    gains: tuple[float, ...]
    weight: float
    one_sided: bool = False
    macro_only: bool = False


#: Expression prototypes (ours, after the EMFACS table and the CASME II AU counts of the
#: mission notes; AU12 alone = social smile, positive; one-sided AU14 = contempt, negative).
EXPRESSION_TYPES: tuple[ExpressionType, ...] = (
    ExpressionType("smile", "positive", (12,), (1.0,), 2.0),
    ExpressionType("happiness", "positive", (12, 6), (1.0, 0.7), 3.0),
    ExpressionType("open-mouth smile", "positive", (12, 6, 25, 26), (1.0, 0.8, 0.8, 0.6), 1.0,
                   macro_only=True),
    ExpressionType("surprise", "surprise", (2, 1, 5), (1.0, 1.0, 1.0), 2.0),
    ExpressionType("open-mouth surprise", "surprise", (2, 1, 5, 26, 25),
                   (1.0, 1.0, 1.0, 0.8, 0.6), 1.0, macro_only=True),
    ExpressionType("frown", "negative", (4,), (1.0,), 2.0),
    ExpressionType("anger", "negative", (4, 7), (1.0, 1.0), 1.5),
    ExpressionType("disgust (nose wrinkle)", "negative", (9, 4), (1.0, 0.6), 1.0),
    ExpressionType("disgust (upper lip)", "negative", (10,), (1.0,), 1.0),
    ExpressionType("sadness (mouth)", "negative", (15, 17), (1.0, 0.8), 1.0),
    ExpressionType("sadness", "negative", (1, 4, 15), (1.0, 0.8, 0.9), 1.0),
    ExpressionType("contempt", "negative", (14,), (1.0,), 1.0, one_sided=True),
)  # fmt: skip


@dataclass(frozen=True)
class LongClipConfig:
    """Options of a long multi-event clip (units in each description).

    Attributes:
        duration_s: clip length, seconds.
        fps: frame rate, frames/s.
        out_size: side of the square video frame, pixels.
        supersample: internal rendering scale before the area downscale.
        margin: crop margin around the face template on each side (fraction; 0.3 shows
            hair and shoulders like a webcam close-up).
        segment_weights: relative frequencies of the segment kinds (None:
            :data:`SEGMENT_WEIGHTS`; 0 disables a kind).
        micro_fraction: share of micro-expressions after the first two expressions.
        subtle_macro: share of macro expressions drawn at micro amplitude.
        micro_duration_s, macro_duration_s: onset-to-offset ranges, seconds.
        gap_s: neutral gap after a segment, seconds; ``no_gap_prob``: chance that an
            expression follows an expression without gap.
        lead_s: neutral rest at the start, seconds; ``tail_s``: least neutral end.
        blink_rate_hz: mean blink rate (0 disables blinks).
        gaze: allow gaze segments (iris shifts).
        head_motion, lighting, noise, pose_jitter: nuisance strengths as in
            :class:`mer.synth.sampling.SynthConfig`.
    """

    duration_s: float = 20.0
    fps: float = 30.0
    out_size: int = 320
    supersample: int = 2
    margin: float = 0.3
    segment_weights: dict[str, float] | None = None
    micro_fraction: float = 0.4
    subtle_macro: float = 0.2
    micro_duration_s: tuple[float, float] = (0.2, 0.5)
    macro_duration_s: tuple[float, float] = (0.6, 3.0)
    gap_s: tuple[float, float] = (0.3, 1.5)
    no_gap_prob: float = 0.25
    lead_s: tuple[float, float] = (1.0, 2.0)
    tail_s: float = 0.5
    blink_rate_hz: float = 0.25
    gaze: bool = True
    head_motion: float = 1.0
    lighting: float = 1.0
    noise: float = 1.0
    pose_jitter: float = 1.0


@dataclass(frozen=True)
class TimelineEvent:
    """One segment of a long clip.

    Attributes:
        kind: ``expression``, ``speech``, ``head_turn``, ``gaze`` or ``eyes``.
        name: expression prototype or a short description.
        emotion: ``positive``, ``negative``, ``surprise`` or ``other``.
        onset, peak_start, peak_end, offset: frame indices (floats): the course rises from
            onset, is 1 from peak_start to peak_end and is 0 again at offset.
        scale: ``micro`` or ``macro`` (expressions; others ``macro``).
        aus, au_gain: AUs rendered and their amplitude factors.
        amplitude: peak intensity, IOD fraction (an AU moves ``amplitude * gain_i`` times its
            FACS gain of :mod:`mer.synth.aus`); gaze: the iris shift, IOD fraction.
        side: 0 both sides; -1 / +1 only the subject's right / left side (one-sided AU).
        syllables: ``(centre, half_width, peak)`` frames (speech).
        head: ``(roll_deg, log_scale, shift_x, shift_y, squash_x)`` at the peak (shifts and
            squash as fractions of the frame side / width).
        gaze_dir: ``(x, y)`` unit-free direction of the iris shift (image axes).
    """

    kind: EventKind
    name: str
    emotion: str
    onset: float
    peak_start: float
    peak_end: float
    offset: float
    scale: Literal["micro", "macro"] = "macro"
    aus: tuple[int, ...] = ()
    au_gain: tuple[float, ...] = ()
    amplitude: float = 0.0
    side: int = 0
    syllables: tuple[tuple[float, float, float], ...] = ()
    head: tuple[float, float, float, float, float] = (0.0, 0.0, 0.0, 0.0, 0.0)
    gaze_dir: tuple[float, float] = (0.0, 0.0)


@dataclass(frozen=True)
class LongClipSpec:
    """Everything needed to render one long clip (deterministic given ``seed``).

    Attributes:
        identity: London Set id.
        fps: frames/s; ``n_frames``: frame count.
        rest: ``(first, last)`` frame of the neutral rest.
        events: segments in time order.
        blinks: ``(start, close, hold, open, peak)`` frames and closure, as
            :func:`mer.synth.sampling.blink_course`.
        nuisance: pose, micro-motion, lighting and noise.
        seed: seed of the render-time draws (sensor noise).
    """

    identity: str
    fps: float
    n_frames: int
    rest: tuple[int, int]
    events: tuple[TimelineEvent, ...]
    blinks: tuple[tuple[float, float, float, float, float], ...]
    nuisance: Nuisance = field(default_factory=Nuisance)
    seed: int = 0
