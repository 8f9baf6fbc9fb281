"""What one synthetic clip is: the generator's options, a clip's nuisances and its spec.

The values are drawn by :mod:`mer.synth.sampling` (emotional clips) and
:mod:`mer.synth.nonemotional` (speech, blinks, head movement), from the statistics of
:mod:`mer.synth.stats`.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass, field
from typing import Literal

from mer.synth.stats import MACRO_AMPLITUDE, MICRO_AMPLITUDE


@dataclass(frozen=True)
class SynthConfig:
    """Rendering and sampling options of the generator (units in each description).

    Attributes:
        out_size: side of the written square face crop, pixels.
        supersample: internal rendering scale before the area downscale (anti-aliasing).
        margin: crop margin around the canonical template on each side (fraction).
        max_frames: most frames written per clip; longer clips are written every
            ``frame_step`` frames (numbering kept, onset / apex / offset on the grid).
            None or 0 writes every frame.
        kind: ``"micro"``, ``"macro"`` or ``"mixed"`` (``macro_fraction`` of clips macro).
        macro_fraction: share of macro clips when ``kind="mixed"``.
        micro_amplitude, macro_amplitude: log-uniform range of the peak displacement, IOD
            fraction.
        smile_fraction: share of happiness clips rendered from the real smiling photo.
        blink_prob: probability of one blink in a clip.
        head_motion, lighting, noise, pose_jitter: strength factors of the nuisances (0
            disables, 1 is the documented default).
        jpeg_quality: inclusive range of the JPEG quality of the written frames.
        grayscale: write grey frames (like SAMM) instead of colour (like CASME II).
        emotion_weights: relative frequencies of the CASME II emotions; None uses the
            CASME II counts.
        pad_s: range of the neutral padding before onset and after offset, seconds.
        nonemotional_fraction: share of all clips that are non-emotional (emotion
            ``"none"``: speech, blink or head movement; see :mod:`mer.synth.nonemotional`).
        nonemotional_modes: relative frequencies of the non-emotional kinds; None uses
            :data:`mer.synth.stats.NONEMOTIONAL_MODES`.
        open_mouth_smile: share of the *macro* happiness clips drawn as an open-mouth smile
            (:data:`mer.synth.stats.OPEN_MOUTH_SMILE`: AU12 with AU6, AU25 and AU26 in the AU
            mode); 0 (the default) draws nothing extra, so the random stream is that of
            earlier sets.
    """

    out_size: int = 256
    supersample: int = 2
    margin: float = 0.1
    max_frames: int | None = 32
    kind: Literal["micro", "macro", "mixed"] = "micro"
    macro_fraction: float = 0.3
    micro_amplitude: tuple[float, float] = MICRO_AMPLITUDE
    macro_amplitude: tuple[float, float] = MACRO_AMPLITUDE
    smile_fraction: float = 0.5
    blink_prob: float = 0.1
    head_motion: float = 1.0
    lighting: float = 1.0
    noise: float = 1.0
    pose_jitter: float = 1.0
    jpeg_quality: tuple[int, int] = (80, 95)
    grayscale: bool = False
    emotion_weights: Mapping[str, float] | None = None
    pad_s: tuple[float, float] = (0.03, 0.15)
    nonemotional_fraction: float = 0.2
    nonemotional_modes: Mapping[str, float] | None = None
    open_mouth_smile: float = 0.0


@dataclass(frozen=True)
class Nuisance:
    """Per-clip nuisance parameters (all drawn by :func:`mer.synth.draws.sample_nuisance`).

    Attributes:
        pose: ``(rotation_deg, log_scale, shift_x, shift_y)`` static crop jitter; shifts as a
            fraction of the crop side.
        head_amp: ``(4,)`` RMS of the head micro-motion: rotation (deg), log-scale,
            translation x, y (fraction of the crop side).
        head_freq: ``(4, 3)`` Hz of the three sinusoids of each parameter.
        head_phase: ``(4, 3)`` radians.
        head_drift: ``(4,)`` linear drift per second, same units as ``head_amp``.
        gain: global brightness factor of the clip.
        gain_amp, gain_freq, gain_phase: temporal lighting change ``gain_amp *
            sin(2 pi gain_freq t + gain_phase)`` (fraction).
        tilt: ``(2,)`` static left-right and top-bottom brightness gradients (fraction over
            the crop).
        tilt_drift: ``(2,)`` change of the gradients per second.
        channel_gain: ``(3,)`` RGB white-balance factors.
        noise_sigma: Gaussian sensor noise, 8-bit grey levels.
        jpeg_quality: JPEG quality of the written frames.
    """

    pose: tuple[float, float, float, float] = (0.0, 0.0, 0.0, 0.0)
    head_amp: tuple[float, ...] = (0.0, 0.0, 0.0, 0.0)
    head_freq: tuple[tuple[float, ...], ...] = ((1.0,) * 3,) * 4
    head_phase: tuple[tuple[float, ...], ...] = ((0.0,) * 3,) * 4
    head_drift: tuple[float, ...] = (0.0, 0.0, 0.0, 0.0)
    gain: float = 1.0
    gain_amp: float = 0.0
    gain_freq: float = 1.0
    gain_phase: float = 0.0
    tilt: tuple[float, float] = (0.0, 0.0)
    tilt_drift: tuple[float, float] = (0.0, 0.0)
    channel_gain: tuple[float, float, float] = (1.0, 1.0, 1.0)
    noise_sigma: float = 0.0
    jpeg_quality: int = 95


@dataclass(frozen=True)
class ClipSpec:
    """Everything needed to render and write one clip (deterministic given ``seed``).

    Frame numbers are 1-based recording frame numbers (CASME II style); only
    ``first, first + frame_step, ..., last`` are written.

    Attributes:
        identity: London Set id (``"001"``).
        subject: sheet subject (``"01"``; folder ``sub01``).
        filename: clip name (``"EP02_01"``).
        emotion: CASME II emotion label, or ``"none"`` for a non-emotional clip.
        megc3: MEGC 2019 class or None (dropped class, non-emotional).
        aus: AUs of the coding sheet, sorted.
        mode: ``"au"`` (FACS displacement fields), ``"smile"`` (morph to the smiling photo),
            or a non-emotional kind: ``"speech"`` (AU fields along a syllable course),
            ``"blink"`` (blinks only), ``"head"`` (head movement only).
        kind: ``"micro"`` or ``"macro"`` (non-emotional clips: ``"macro"``).
        fps: frame rate, frames/s.
        frame_step: written-frame stride.
        first, onset, apex, offset, last: frame numbers.
        amplitude: intensity amplitude of the primary AU, IOD fraction (its peak
            displacement is ``amplitude * gain``; smile: the lip-corner displacement; blink:
            the peak lid closure; head: the peak translation, fraction of the crop side).
        au_order: AUs rendered, primary first (``mode="au"``).
        au_gain: ``(len(au_order),)`` amplitude factor of each AU (primary 1).
        au_onset, au_offset: per-AU start and end frame numbers (floats).
        smile_alpha: morph factor toward the smiling photo at apex (``mode="smile"``).
        blink: ``(start, close, hold, open, peak)`` frame number and durations in frames,
            peak closure in [0, 1]; None without a blink.
        extra_blinks: further blinks, same format (``mode="blink"``).
        syllables: ``(centre, half_width, peak)`` frame numbers, frames and peak of each
            syllable bump (``mode="speech"``).
        head_move: ``(rotation_deg, log_scale, shift_x, shift_y)`` peak head movement at the
            apex (shifts as a fraction of the crop side), raised-cosine course from onset to
            offset (``mode="head"``).
        nuisance: the clip's nuisances.
        seed: seed of the clip's random draws at render time (sensor noise).
    """

    identity: str
    emotion: str
    megc3: str | None
    aus: tuple[int, ...]
    mode: Literal["au", "smile", "speech", "blink", "head"]
    kind: Literal["micro", "macro"]
    fps: float
    frame_step: int
    first: int
    onset: int
    apex: int
    offset: int
    last: int
    amplitude: float
    au_order: tuple[int, ...] = ()
    au_gain: tuple[float, ...] = ()
    au_onset: tuple[float, ...] = ()
    au_offset: tuple[float, ...] = ()
    smile_alpha: float = 0.0
    blink: tuple[float, float, float, float, float] | None = None
    extra_blinks: tuple[tuple[float, float, float, float, float], ...] = ()
    syllables: tuple[tuple[float, float, float], ...] = ()
    head_move: tuple[float, float, float, float] = (0.0, 0.0, 0.0, 0.0)
    nuisance: Nuisance = field(default_factory=Nuisance)
    seed: int = 0
    subject: str = ""
    filename: str = ""

    @property
    def frame_numbers(self) -> list[int]:
        """Written frame numbers: ``first, first + step, ..., last``."""
        return list(range(self.first, self.last + 1, self.frame_step))

    @property
    def blinks(self) -> tuple[tuple[float, float, float, float, float], ...]:
        """All blinks of the clip (``blink`` first)."""
        return ((self.blink,) if self.blink is not None else ()) + self.extra_blinks

    @property
    def au_string(self) -> str:
        """CASME II ``Action Units`` cell: ``"4+7"``."""
        return "+".join(str(a) for a in self.aus)
