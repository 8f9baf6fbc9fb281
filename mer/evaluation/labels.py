"""Hand labels of real clips (``shared/data/dev/labels*.json``): load and validate.

The format is the one of ``shared/data/dev/README.md`` / ``LABELS.md``: a JSON object whose
keys are clip file names and whose values give ``fps``, ``frames``, ``resolution``,
``rest_frames``, ``events`` (onset / apex / offset frames, 0-based in decode order,
inclusive), ``blinks``, ``no_face_frames`` and ``notes``. Unknown extra keys (``good_for``,
``no_face_detail`` ...) are kept but not used.
"""

from __future__ import annotations

import json
from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Literal

from pydantic import BaseModel, ConfigDict, Field, ValidationError, model_validator

from mer.errors import MERError
from mer.schemas import AU_NAMES

EventKind = Literal["expression", "speech", "gaze", "head_turn", "eyes", "mouth_shape"]
LabelEmotion = Literal["positive", "negative", "surprise", "other"]
Confidence = Literal["high", "medium", "low"]

#: Emotions scored against the pipeline (MEGC 3 classes); ``other`` is not scored.
SCORED_EMOTIONS: tuple[str, ...] = ("positive", "negative", "surprise")
AU_NAME = Literal[AU_NAMES]  # type: ignore[valid-type]


class LabelFileError(MERError):
    """A label file is missing, not JSON, or does not follow the label format."""

    code = "invalid_labels"


class ClipNotFoundError(MERError):
    """A labelled clip is not in the label file's folder nor in any ``--videos`` folder."""

    code = "clip_not_found"


class LabelledEvent(BaseModel):
    """One labelled event; frames are 0-based decode-order indices, ranges inclusive."""

    model_config = ConfigDict(extra="allow", frozen=True)

    onset: int = Field(ge=0)
    apex: int = Field(ge=0)
    offset: int = Field(ge=0)
    apex_range: tuple[int, int] = Field(description="Plateau at the peak [a, b] (frames).")
    aus: list[AU_NAME] = Field(description="AUs visible at the apex (14-AU set).")
    emotion: LabelEmotion
    emotion_alt: LabelEmotion | None = None
    intensity: str | None = None
    confidence: Confidence
    kind: EventKind
    apex_scoreable: bool = True
    desc: str = ""

    @model_validator(mode="after")
    def _ordered(self) -> LabelledEvent:
        if not self.onset <= self.apex <= self.offset:
            raise ValueError(
                f"onset <= apex <= offset does not hold ({self.onset}, {self.apex}, {self.offset})"
            )
        a, b = self.apex_range
        if not self.onset <= a <= b <= self.offset:
            raise ValueError(
                f"apex_range {[a, b]} is not an ordered range inside onset..offset "
                f"{self.onset}..{self.offset}"
            )
        return self


class ClipLabels(BaseModel):
    """The labels of one clip."""

    model_config = ConfigDict(extra="allow", frozen=True)

    fps: float = Field(gt=0, description="PyAV average rate (frames/s).")
    frames: int = Field(gt=0, description="Decoded frame count.")
    resolution: tuple[int, int] = Field(description="[width, height] (pixels).")
    rest_frames: tuple[int, int] | None = Field(description="A neutral stretch [a, b] or null.")
    events: list[LabelledEvent]
    blinks: list[int | tuple[int, int]] = Field(default_factory=list)
    no_face_frames: list[tuple[int, int]] = Field(default_factory=list)
    notes: str = ""

    @model_validator(mode="after")
    def _inside(self) -> ClipLabels:
        last = self.frames - 1
        spans = [("rest_frames", self.rest_frames)] if self.rest_frames else []
        spans += [(f"events[{i}]", (e.onset, e.offset)) for i, e in enumerate(self.events)]
        spans += [(f"no_face_frames[{i}]", s) for i, s in enumerate(self.no_face_frames)]
        for name, (a, b) in spans:
            if not 0 <= a <= b <= last:
                raise ValueError(f"{name} {[a, b]} is not an ordered range inside 0..{last}")
        return self


@dataclass(frozen=True)
class LabelledClip:
    """One clip of a label file: its key (the file name), labels and the file's folder."""

    name: str
    labels: ClipLabels
    label_file: Path

    @property
    def folder(self) -> Path:
        """The label file's folder (searched first for the clip)."""
        return self.label_file.parent


def load_labels(path: str | Path) -> list[LabelledClip]:
    """Read and validate one label file.

    Args:
        path: a JSON file ``{clip file name: clip labels}``.

    Returns:
        One :class:`LabelledClip` per key, in file order.

    Raises:
        LabelFileError: the file is missing or unreadable, not JSON, not an object of
            clips, or a clip breaks the format (the message names file, clip and field).
    """
    path = Path(path)
    try:
        raw = json.loads(path.read_text())
    except OSError as exc:
        raise LabelFileError(f"cannot read label file {path}: {exc.strerror or exc}") from exc
    except json.JSONDecodeError as exc:
        raise LabelFileError(f"{path} is not valid JSON: {exc}") from exc
    if not isinstance(raw, dict) or not raw:
        raise LabelFileError(f"{path}: expected a non-empty object {{clip file name: labels}}")
    clips = []
    for name, entry in raw.items():
        try:
            clips.append(LabelledClip(name, ClipLabels.model_validate(entry), path))
        except ValidationError as exc:
            problems = "; ".join(
                f"{'.'.join(str(p) for p in e['loc']) or '(clip)'}: {e['msg']}"
                + (f" (got {e['input']!r})" if isinstance(e["input"], str | int | float) else "")
                for e in exc.errors()
            )
            raise LabelFileError(f"{path}: clip {name!r}: {problems}") from exc
    return clips


def load_label_files(paths: Sequence[str | Path]) -> list[LabelledClip]:
    """All clips of several label files; a clip name in two files is a ``LabelFileError``."""
    clips: list[LabelledClip] = []
    seen: dict[str, Path] = {}
    for p in paths:
        for clip in load_labels(p):
            if clip.name in seen:
                raise LabelFileError(
                    f"clip {clip.name!r} is labelled in both {seen[clip.name]} and {p}"
                )
            seen[clip.name] = Path(p)
            clips.append(clip)
    return clips


def find_video(clip: LabelledClip, video_dirs: Sequence[str | Path]) -> Path:
    """The clip's video: ``<label file folder>/<name>``, then ``<dir>/<name>`` per dir.

    Raises:
        ClipNotFoundError: in none of them (the message names the clip and the folders).
    """
    folders = [clip.folder, *map(Path, video_dirs)]
    for folder in folders:
        candidate = folder / clip.name
        if candidate.is_file():
            return candidate
    raise ClipNotFoundError(
        f"labelled clip {clip.name!r} (from {clip.label_file}) not found in "
        + ", ".join(str(f) for f in folders)
    )
