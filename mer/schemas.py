"""The public result contract: pydantic models shared by CLI, API and workers.

Column and AU names are defined here once. Names follow OpenFace 2.0 / py-feat
(``frame``, ``timestamp``, ``success``, ``confidence``, ``AU01`` ...). Bump
:data:`SCHEMA_VERSION` on any incompatible change.
"""

from __future__ import annotations

from typing import Literal

from pydantic import BaseModel, Field

#: 1.1: interval kinds speech/blink/head/gaze, emotion method, blendshapes; 1.2: ``neutral``
SCHEMA_VERSION = "1.2"

#: Action Units scored for every frame, FACS numbering in OpenFace / py-feat spelling.
AU_NAMES: tuple[str, ...] = (
    "AU01", "AU02", "AU04", "AU05", "AU06", "AU07", "AU09",
    "AU10", "AU12", "AU14", "AU15", "AU17", "AU25", "AU26",
)  # fmt: skip

#: MEGC 2019 composite classes (the default SMA-STN head).
EMOTION_CLASSES_MEGC: tuple[str, ...] = ("negative", "positive", "surprise")
#: The emotion class of movements without an emotion (speech, blinks, head motion, no AUs):
#: a model's extra class, the label of non-emotional clips, the fused answer for them.
NO_EMOTION = "none"

#: Per-frame CSV columns, in order (OpenFace / py-feat naming).
CSV_COLUMNS: tuple[str, ...] = (
    "frame", "timestamp", "success", "confidence", "apex_score", *AU_NAMES,
)  # fmt: skip


class VideoInfo(BaseModel):
    """What was decoded. ``fps`` is frames / duration from real timestamps (VFR safe)."""

    filename: str
    sha256: str
    fps: float = Field(description="Mean frame rate over the decoded frames (frames/s).")
    frame_count: int = Field(description="Decoded frames.")
    width: int = Field(description="Display width after rotation (pixels).")
    height: int = Field(description="Display height after rotation (pixels).")
    duration_s: float
    codec: str
    rotation_deg: int = 0


class FrameResult(BaseModel):
    """One decoded frame. ``au`` maps each name of :data:`AU_NAMES` to a score in [0, 1]."""

    frame: int = Field(description="0-based index in decode order.")
    timestamp_s: float = Field(description="Presentation time from the stream (seconds).")
    face: bool
    confidence: float = Field(ge=0.0, le=1.0, description="Face tracking confidence.")
    apex_score: float = Field(ge=0.0, le=1.0)
    au: dict[str, float]
    blendshapes: dict[str, float] | None = Field(
        None,
        description="MediaPipe's 52 blendshape coefficients in [0, 1] (ARKit names); only "
        "when asked for (``blendshapes`` option), else null.",
    )


class ApexFrame(BaseModel):
    """The frame of the strongest movement in the video."""

    frame: int
    timestamp_s: float
    score: float


#: interval kinds: expressions (MEGC micro / macro) and movements that are not expressions
EXPRESSION_KINDS: tuple[str, ...] = ("micro", "macro")
NON_EXPRESSION_KINDS: tuple[str, ...] = ("speech", "blink", "head", "gaze")
IntervalKind = Literal["micro", "macro", "speech", "blink", "head", "gaze"]


class EmotionPrediction(BaseModel):
    """An emotion class, how it was decided, and the evidence behind it."""

    label: str = Field(description="negative | positive | surprise | none")
    score: float = Field(
        ge=0.0, le=1.0, description="Confidence of ``label``: the deciding method's probability "
        "or AU evidence.",
    )  # fmt: skip
    probabilities: dict[str, float] = Field(
        description="SMA-STN's class probabilities (empty when it did not run)."
    )
    model: str = Field(description="Model name and version, or the rule set, that decided.")
    method: str = Field(
        "sma-stn",
        description="Which method decided: au-evidence | sma-stn | au-evidence+sma-stn | "
        "kind (not an expression: speech, blink, head or gaze motion).",
    )
    evidence: dict[str, float] | None = Field(
        None, description="AU evidence of each class in [0, 1] (EMFACS objective classes)."
    )


class Interval(BaseModel):
    """One spotted movement: onset, apex and offset frames (inclusive) and seconds."""

    onset: int
    apex: int
    offset: int
    onset_s: float
    apex_s: float
    offset_s: float
    duration_s: float
    kind: IntervalKind = Field(
        description="Expressions: micro (onset-to-offset at most 0.5 s, MEGC) or macro. "
        "Not expressions (no emotion): speech, blink, head, gaze."
    )
    score: float = Field(ge=0.0, le=1.0, description="Apex score at the apex frame.")
    top_aus: list[str] = Field(description="AUs scoring >= 0.5 at the apex, strongest first.")
    emotion: EmotionPrediction | None = None


class ModelInfo(BaseModel):
    """A model or training-free method that contributed to the result."""

    name: str
    version: str
    task: str = Field(description="landmarks | apex | au | emotion")
    method: str = Field(description="learned | rules | external")
    sha256: str | None = None


class NeutralInfo(BaseModel):
    """The neutral face the AU evidence and the expression segments are read against."""

    source: Literal["estimated", "reference"] = Field(
        description="estimated: from the person's own frames (a low percentile over a "
        "sliding window, capped at the neutral population's range in short clips); "
        "reference: the stretch the client gave (neutral_start_s / neutral_end_s)."
    )
    start_s: float | None = Field(None, description="First reference frame used (seconds).")
    end_s: float | None = Field(None, description="Last reference frame used (seconds).")
    frames: int | None = Field(None, description="Reference frames with a face, used.")


class AnalysisResult(BaseModel):
    """The full answer for one video: the public JSON contract."""

    schema_version: str = SCHEMA_VERSION
    video: VideoInfo
    frames: list[FrameResult]
    apex: ApexFrame | None
    intervals: list[Interval]
    emotion: EmotionPrediction | None = Field(
        None, description="Emotion of the strongest interval; null with emotion_reason."
    )
    emotion_reason: str | None = None
    au_method: str = Field(description="Which method produced the AU scores.")
    neutral: NeutralInfo | None = Field(
        None, description="The neutral face read against; null without blendshapes."
    )
    models: list[ModelInfo]
    timings_ms: dict[str, float]
    warnings: list[str] = Field(default_factory=list)


class ErrorInfo(BaseModel):
    """Every error body: a stable ``code`` and a human ``message``."""

    code: str
    message: str
