"""The :class:`Sample` record every loader returns, and :func:`build_sample` with its
documented fall-backs for missing onset / apex / offset.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from pathlib import Path

from mer.datasets.au_codes import au_name, parse_aus
from mer.datasets.emotion_labels import megc3_label, normalize_emotion
from mer.datasets.frames import nearest_index


@dataclass(frozen=True)
class Sample:
    """One annotated micro-expression clip of a data set.

    Frame numbers are the data set's own (``img46.jpg`` is frame 46; SAMM and CAS(ME)^3
    number frames absolutely within the recording). ``frame_paths`` and ``frame_numbers``
    are sorted by frame number (``img2`` before ``img10``); the ``*_index`` fields index
    into them. When the annotated frame number is not among the files (synthetic sets
    written with a frame step, or a missing file) the index of the nearest listed frame is
    used.

    Attributes:
        dataset: ``"casme2"``, ``"samm"``, ``"smic"``, ``"casme3"`` or ``"synth"``.
        subject: subject id as the data set spells its folder (``"sub01"``, ``"006"``,
            ``"s1"``, ``"spNO.1"``).
        clip: clip id (``"EP02_01f"``, ``"006_1_2"``, ``"s1_ne_01"``, ``"a_175"``).
        frame_paths: paths of the clip's frames, sorted by frame number.
        frame_numbers: ``(T,)`` the frame number of each path.
        onset, apex, offset: annotated frame numbers (apex = midpoint when missing).
        onset_index, apex_index, offset_index: indices into ``frame_paths``.
        apex_annotated: False when the apex was missing and the midpoint was used.
        fps: recording frame rate (frames/s).
        aus: FACS AU numbers, sorted, unique.
        au_raw: the sheet's AU cell as written.
        emotion: the data set's emotion label, lower case (``"happiness"``, ``"other"``).
        megc3: MEGC 2019 3-class label or None when the class is dropped.
        extra: other columns kept verbatim (objective class, inducement code, ...).
    """

    dataset: str
    subject: str
    clip: str
    frame_paths: tuple[Path, ...]
    frame_numbers: tuple[int, ...]
    onset: int
    apex: int
    offset: int
    onset_index: int
    apex_index: int
    offset_index: int
    apex_annotated: bool
    fps: float
    aus: tuple[int, ...]
    au_raw: str
    emotion: str
    megc3: str | None
    extra: dict[str, str] = field(default_factory=dict, compare=False)

    @property
    def au_names(self) -> tuple[str, ...]:
        """AUs in OpenFace / py-feat spelling: ``("AU04", "AU07")``."""
        return tuple(au_name(a) for a in self.aus)

    @property
    def subject_key(self) -> str:
        """Subject id unique across data sets (``"casme2/sub01"``), the LOSO group."""
        return f"{self.dataset}/{self.subject}"

    @property
    def n_frames(self) -> int:
        """Number of listed frames."""
        return len(self.frame_paths)

    @property
    def timestamps_s(self) -> tuple[float, ...]:
        """``(T,)`` seconds of each listed frame from the first one (frame numbers / fps)."""
        f0 = self.frame_numbers[0]
        return tuple((n - f0) / self.fps for n in self.frame_numbers)

    @property
    def duration_s(self) -> float:
        """Onset-to-offset duration in seconds."""
        return (self.offset - self.onset) / self.fps


def build_sample(
    *,
    dataset: str,
    subject: str,
    clip: str,
    frames: list[tuple[int, Path]],
    onset: int | None,
    apex: int | None,
    offset: int | None,
    fps: float,
    au_raw: str,
    emotion: str,
    extra: dict[str, str] | None = None,
) -> Sample:
    """Assemble a :class:`Sample`, applying the documented fall-backs.

    - onset missing -> first listed frame; offset missing or not after onset -> last listed
      frame;
    - apex missing (``-1``, ``/``, empty) or outside [onset, offset] -> midpoint
      ``(onset + offset) // 2`` and ``apex_annotated = False``;
    - indices: exact match of the frame number, else the nearest listed frame.

    Args:
        frames: ``[(frame_number, path)]`` sorted ascending, not empty.

    Raises:
        ValueError: ``frames`` is empty.
    """
    if not frames:
        raise ValueError(f"{dataset} {subject}/{clip}: no frames")
    numbers = [n for n, _ in frames]
    on = onset if onset is not None else numbers[0]
    off = offset if offset is not None and offset > on else numbers[-1]
    annotated = apex is not None and on <= apex <= off
    ap = apex if annotated and apex is not None else (on + off) // 2
    emo = normalize_emotion(emotion)
    return Sample(
        dataset=dataset,
        subject=subject,
        clip=clip,
        frame_paths=tuple(p for _, p in frames),
        frame_numbers=tuple(numbers),
        onset=on,
        apex=ap,
        offset=off,
        onset_index=nearest_index(numbers, on),
        apex_index=nearest_index(numbers, ap),
        offset_index=nearest_index(numbers, off),
        apex_annotated=annotated,
        fps=float(fps),
        aus=tuple(parse_aus(au_raw)),
        au_raw=au_raw,
        emotion=emo,
        megc3=megc3_label(dataset, emo),
        extra=dict(extra or {}),
    )
