"""What each synthetic clip shows and when: emotions, AU sets, time courses, nuisances.

Statistics (CASME II coding sheet, 257 clips of 26 subjects, 200 fps; from the mission
notes):

- emotions: others 99, disgust 63, happiness 33, repression 27, surprise 25, sadness 8,
  fear 2 (:data:`CASME2_EMOTION_COUNTS`);
- onset-to-offset at 200 fps: median 60 frames, 10-90 % 40-95, range 23-145. Modelled as a
  log-normal with median 60 and ``sigma_log = ln(95/40) / (2 * 1.2816) = 0.3375`` (matches
  the 10th / 90th percentiles), truncated to 23-145 frames;
- onset-to-apex median 30 (18-53), apex-to-offset median 30 (15-55): the apex falls at a
  fraction ``r ~ Beta(6, 6)`` of the duration (simulated 10-90 %: 16-51 frames both sides);
- AUs per clip: 1 AU 155, 2 AUs 75, 3 AUs 20 (:data:`CASME2_AU_COUNT`);
- AU frequencies by emotion (:data:`EMOTION_AU_WEIGHTS`): the counts given in the notes,
  the rest (marked) our assumptions from the EMFACS prototypes (sadness 1+4+15, fear
  1+2+4+5(+20), others mostly 4).

Time course of one AU (frame numbers n, continuous): raised cosine rise from its onset to
the apex, ``a = (1 - cos(pi (n - on) / (apex - on))) / 2``, raised cosine fall to its
offset; 0 outside. All AUs of a clip peak at the clip's apex frame (secondary AUs may start
up to 25 % of the rise later and end up to 25 % of the fall earlier), so the summed
intensity peaks exactly at the sheet's ApexFrame.

Amplitudes (ours). The clip's intensity amplitude ``A`` is log-uniform in 0.8-3 % of the
outer inter-ocular distance (IOD) for micro-expressions and 4-12 % for macro ones; an AU's
peak displacement is ``A * gain`` with the AU's relative gain of :mod:`mer.synth.aus`
(1 for brows and lip corners, 0.4 for the lids, 1.5 for the jaw), so a micro AU12 moves the
lip corners 0.8-2.9 px in a 256 px crop (IOD ~95 px), the order of the apex-onset optical
flow of CASME II, and a micro AU7 raises the lower lid 0.3-1.1 px.

Non-emotional clips (ours). A share ``nonemotional_fraction`` of all clips (default 0.2;
the emotional clips keep the distribution above) shows a movement that is no emotion, with
the emotion label ``none`` (no MEGC class), so that an emotion model learns to reject talking,
blinks and head motion (the real test clips are talking heads). Three kinds
(:data:`NONEMOTIONAL_MODES`, weights speech 0.4, blink 0.3, head 0.3):

- ``speech``: the mouth opens and closes like syllables. AU26 (jaw drop, primary) and AU25
  (lips part, 0.5-1 of the jaw amplitude) plus one or two of AU10 / AU17 / AU14 at 0.15-0.35
  (small lip shaping; never AU12, which would read as a smile). All AUs follow one course,
  the upper envelope (max) of raised-cosine bumps ``(1 + cos(pi (n - c_k) / w)) / 2`` for
  ``|n - c_k| < w``: syllable rate 3-6 Hz, centres ``c_k`` every ``1 / rate`` s (+-15 %
  jitter), half-width ``w = 0.6 / rate`` s (the course drops to ~7 % between syllables),
  duration 0.6-2.5 s (at most ``max_frames // 3`` syllables so that every syllable gets about
  three written frames), syllable peaks 0.45-0.95 except the apex syllable (1). Speech is
  plainly visible, so the amplitude is drawn in the *macro* range (``macro_amplitude``,
  jaw 6-18 % IOD at gain 1.5, about 0.5-1.5 cm mouth opening);
- ``blink``: one or two full blinks (closure 1, second one 0.15-0.6 s after the first), no
  AU; the apex is the middle of the first blink's closed phase;
- ``head``: a head movement in the image plane: rotation 2-8 deg, scale 0-5 %, translation
  0-5 % of the crop side on each axis (random signs), raised-cosine there and back over
  0.4-1.5 s (apex at a Beta(4, 4) fraction), no AU.

Onset / offset of a non-emotional clip span the movement, the apex is its peak frame, the AU
cell lists the AUs used (``"10+25+26"``) or is empty.
"""

from __future__ import annotations

import math
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from typing import Literal

import numpy as np

from mer.datasets.common import CASME2_TO_MEGC3
from mer.schemas import NO_EMOTION

#: CASME II emotion counts (Estimated Emotion column).
CASME2_EMOTION_COUNTS: dict[str, int] = {
    "others": 99, "disgust": 63, "happiness": 33, "repression": 27, "surprise": 25,
    "sadness": 8, "fear": 2,
}  # fmt: skip
#: Clips with 1, 2 and 3 AUs in CASME II.
CASME2_AU_COUNT: dict[int, int] = {1: 155, 2: 75, 3: 20}
#: Relative AU frequencies per emotion. Counts from the CASME II sheet where the notes give
#: them (happiness 12: 28, 6: 8; disgust 4: 59, 7: 30, 10: 17, 9: 13; repression 17: 19,
#: 15: 11; surprise 2: 20, 1: 18; others 4: 67, 14: 16); the others (AU14 of happiness and
#: repression, AU25 of surprise, AU7 of others, sadness, fear) are our assumptions.
EMOTION_AU_WEIGHTS: dict[str, dict[int, float]] = {
    "happiness": {12: 28, 6: 8, 14: 4, 25: 1},
    "disgust": {4: 59, 7: 30, 10: 17, 9: 13, 14: 3},
    "repression": {17: 19, 15: 11, 14: 8, 12: 1},
    "surprise": {2: 20, 1: 18, 25: 4, 5: 2},
    "others": {4: 67, 14: 16, 7: 10, 1: 3, 17: 3},
    "sadness": {1: 4, 4: 3, 15: 2, 17: 2},
    "fear": {1: 2, 2: 1, 4: 2, 5: 1, 7: 1},
}
#: Episode number used in clip names (``EP{nn}_{kk}``), one per emotion.
EMOTION_EPISODE: dict[str, int] = {
    "happiness": 1, "disgust": 2, "repression": 3, "surprise": 4, "others": 5, "sadness": 6,
    "fear": 7, NO_EMOTION: 8,
}  # fmt: skip
#: Kinds of non-emotional clips and their default relative frequencies.
NONEMOTIONAL_MODES: dict[str, float] = {"speech": 0.4, "blink": 0.3, "head": 0.3}
#: Speech: syllable rate (Hz), duration (s), minor lip AUs.
SPEECH_RATE_HZ: tuple[float, float] = (3.0, 6.0)
SPEECH_DURATION_S: tuple[float, float] = (0.6, 2.5)
SPEECH_MINOR_AUS: tuple[int, ...] = (10, 17, 14)

CASME2_FPS = 200.0
_DUR_MEDIAN, _DUR_SIGMA, _DUR_RANGE = 60.0, math.log(95 / 40) / (2 * 1.2816), (23.0, 145.0)
MICRO_AMPLITUDE: tuple[float, float] = (0.008, 0.03)
MACRO_AMPLITUDE: tuple[float, float] = (0.04, 0.12)
#: Macro expressions (ours): onset-to-offset log-normal, median 1.2 s, truncated 0.5-4 s.
MACRO_DURATION_S: tuple[float, float, float, float] = (1.2, 0.5, 0.5, 4.0)
#: Open-mouth smile (ours; laughter and broad smiles drop the jaw, FACS 6+12+25+26): AU and
#: the range of its gain relative to AU12.
OPEN_MOUTH_SMILE: dict[int, tuple[float, float]] = {
    12: (1.0, 1.0), 6: (0.6, 1.0), 25: (0.6, 1.0), 26: (0.4, 0.9)}  # fmt: skip
#: Lips counted as parted (AU25 added to a real-smile clip) above this gap, IOD units.
LIPS_PART_THRESHOLD = 0.01


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
            ``"none"``: speech, blink or head movement; see the module notes).
        nonemotional_modes: relative frequencies of the non-emotional kinds; None uses
            :data:`NONEMOTIONAL_MODES`.
        open_mouth_smile: share of the *macro* happiness clips drawn as an open-mouth smile
            (:data:`OPEN_MOUTH_SMILE`: AU12 with AU6, AU25 and AU26 in the AU mode); 0 (the
            default) draws nothing extra, so the random stream is that of earlier sets.
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
    """Per-clip nuisance parameters (all drawn by :func:`sample_nuisance`).

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


# ------------------------------------------------------------------------------------------
# time courses
# ------------------------------------------------------------------------------------------


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


# ------------------------------------------------------------------------------------------
# sampling
# ------------------------------------------------------------------------------------------


def sample_emotion(rng: np.random.Generator, weights: Mapping[str, float] | None = None) -> str:
    """Draw a CASME II emotion (default: the CASME II frequencies).

    Raises:
        ValueError: a weight names an unknown emotion, or all weights are 0.
    """
    w = dict(CASME2_EMOTION_COUNTS if weights is None else weights)
    unknown = set(w) - set(CASME2_EMOTION_COUNTS)
    if unknown:
        raise ValueError(f"unknown emotions {sorted(unknown)}; use {list(CASME2_EMOTION_COUNTS)}")
    names = list(w)
    p = np.array([max(0.0, float(w[k])) for k in names])
    if p.sum() <= 0:
        raise ValueError("emotion weights sum to 0")
    return names[int(rng.choice(len(names), p=p / p.sum()))]


def sample_aus(rng: np.random.Generator, emotion: str) -> tuple[int, ...]:
    """Draw the AU set of a clip: its size from :data:`CASME2_AU_COUNT`, the AUs without
    replacement by :data:`EMOTION_AU_WEIGHTS`. The first AU is the primary one (largest
    amplitude, no timing jitter).
    """
    sizes = np.array(list(CASME2_AU_COUNT))
    ps = np.array(list(CASME2_AU_COUNT.values()), np.float64)
    k = int(rng.choice(sizes, p=ps / ps.sum()))
    table = EMOTION_AU_WEIGHTS[emotion]
    aus = np.array(list(table))
    w = np.array(list(table.values()), np.float64)
    k = min(k, len(aus))
    idx = rng.choice(len(aus), size=k, replace=False, p=w / w.sum())
    return tuple(int(aus[i]) for i in idx)


def sample_duration_s(rng: np.random.Generator, kind: str) -> tuple[float, float]:
    """Onset-to-apex and apex-to-offset durations in seconds (see the module docstring)."""
    if kind == "macro":
        med, sig, lo, hi = MACRO_DURATION_S
        d = float(np.clip(med * math.exp(sig * rng.standard_normal()), lo, hi))
        r = float(rng.beta(4, 4))
    else:
        d = (
            float(np.clip(_DUR_MEDIAN * math.exp(_DUR_SIGMA * rng.standard_normal()), *_DUR_RANGE))
            / CASME2_FPS
        )
        r = float(rng.beta(6, 6))
    return r * d, (1 - r) * d


def _log_uniform(rng: np.random.Generator, lo: float, hi: float) -> float:
    return float(math.exp(rng.uniform(math.log(lo), math.log(hi))))


def sample_nuisance(rng: np.random.Generator, cfg: SynthConfig) -> Nuisance:
    """Draw the nuisances of a clip (strengths scaled by the config factors).

    Defaults at strength 1 (ours; chosen to look like lab recordings of still-sitting
    participants): pose jitter rotation N(0, 2 deg), scale N(0, 4 %), shift N(0, 2 %);
    head micro-motion RMS (times U(0.3, 1.5) per clip) 0.1 deg, 0.1 % scale, 0.2 % of the
    crop side (0.5 px at 256), three sinusoids of 0.1-1.5 Hz each plus a drift of up to that
    RMS per second; global
    gain 0.85-1.15, temporal lighting change up to 2 %, gradients up to 8 %, white balance
    +-4 %; sensor noise 0.5-2.5 grey levels; JPEG quality in ``cfg.jpeg_quality``.
    """
    pj, hm, li = cfg.pose_jitter, cfg.head_motion, cfg.lighting
    pose = (
        float(np.clip(rng.normal(0, 2.0), -5, 5)) * pj,
        float(np.clip(rng.normal(0, 0.04), -0.1, 0.1)) * pj,
        float(np.clip(rng.normal(0, 0.02), -0.05, 0.05)) * pj,
        float(np.clip(rng.normal(0, 0.02), -0.05, 0.05)) * pj,
    )
    base = np.array([0.1, 0.001, 0.002, 0.002]) * hm
    head_amp = tuple(float(b * rng.uniform(0.3, 1.5)) for b in base)
    freq = tuple(tuple(float(f) for f in rng.uniform(0.1, 1.5, 3)) for _ in range(4))
    phase = tuple(tuple(float(p) for p in rng.uniform(0, 2 * np.pi, 3)) for _ in range(4))
    drift = tuple(float(a * rng.uniform(-1, 1)) for a in head_amp)
    q0, q1 = cfg.jpeg_quality
    return Nuisance(
        pose=pose,
        head_amp=head_amp,
        head_freq=freq,
        head_phase=phase,
        head_drift=drift,
        gain=float(1 + li * rng.uniform(-0.15, 0.15)),
        gain_amp=float(li * rng.uniform(0, 0.02)),
        gain_freq=float(rng.uniform(0.2, 2.0)),
        gain_phase=float(rng.uniform(0, 2 * np.pi)),
        tilt=(float(li * rng.uniform(-0.08, 0.08)), float(li * rng.uniform(-0.05, 0.05))),
        tilt_drift=(float(li * rng.uniform(-0.03, 0.03)), float(li * rng.uniform(-0.03, 0.03))),
        channel_gain=tuple(float(1 + li * rng.uniform(-0.04, 0.04)) for _ in range(3)),  # type: ignore[arg-type]
        noise_sigma=float(cfg.noise * rng.uniform(0.5, 2.5)),
        jpeg_quality=int(rng.integers(min(q0, q1), max(q0, q1) + 1)),
    )


def _frame_layout(
    rng: np.random.Generator, fps: float, rise_s: float, fall_s: float, cfg: SynthConfig
) -> tuple[int, int, int, int, int, int]:
    """``(step, first, onset, apex, offset, last)`` on the written-frame grid."""
    pre_s = float(rng.uniform(*cfg.pad_s))
    post_s = float(rng.uniform(*cfg.pad_s))
    first = 1 + int(rng.integers(0, max(1, int(fps)) + 1))
    parts = [pre_s * fps, rise_s * fps, fall_s * fps, post_s * fps]
    step = 1
    if cfg.max_frames:
        step = max(1, math.ceil((sum(parts) + 1) / cfg.max_frames))
    while True:
        n = [max(1, round(p / step)) for p in parts]
        if not cfg.max_frames or sum(n) + 1 <= cfg.max_frames or step > 10_000:
            break
        step += 1
    onset = first + n[0] * step
    apex = onset + n[1] * step
    offset = apex + n[2] * step
    last = offset + n[3] * step
    return step, first, onset, apex, offset, last


def sample_clip_spec(
    rng: np.random.Generator,
    identity: str,
    fps: float,
    cfg: SynthConfig,
    smile_corner: float | None = None,
    smile_lip_gap: float = 0.0,
    emotion: str | None = None,
) -> ClipSpec:
    """Draw one clip.

    Args:
        rng: the generator's master random stream (consumed in a fixed order).
        identity: London id.
        fps: the clip's frame rate.
        cfg: options.
        smile_corner: lip-corner displacement of the identity's real smile (IOD units), or
            None when the identity has no usable smiling photo.
        smile_lip_gap: inner-lip gap increase of the real smile (IOD units).
        emotion: force an emotion (else drawn with ``cfg.emotion_weights``); ``"none"``
            forces a non-emotional clip. Without it a share ``cfg.nonemotional_fraction``
            of the clips is non-emotional (:func:`sample_nonemotional_spec`).

    Returns:
        the spec without ``subject`` / ``filename`` (set by the writer).
    """
    if (
        emotion is None
        and cfg.nonemotional_fraction > 0
        and rng.random() < cfg.nonemotional_fraction
    ):
        emotion = NO_EMOTION
    if emotion == NO_EMOTION:
        return sample_nonemotional_spec(rng, identity, fps, cfg)
    emo = emotion if emotion is not None else sample_emotion(rng, cfg.emotion_weights)
    kind: Literal["micro", "macro"] = "micro"
    if cfg.kind == "macro" or (cfg.kind == "mixed" and rng.random() < cfg.macro_fraction):
        kind = "macro"
    amp = _log_uniform(rng, *(cfg.macro_amplitude if kind == "macro" else cfg.micro_amplitude))
    rise_s, fall_s = sample_duration_s(rng, kind)
    step, first, onset, apex, offset, last = _frame_layout(rng, fps, rise_s, fall_s, cfg)
    open_mouth = (
        emo == "happiness"
        and kind == "macro"
        and cfg.open_mouth_smile > 0
        and rng.random() < cfg.open_mouth_smile
    )
    use_smile = (
        not open_mouth
        and emo == "happiness"
        and smile_corner is not None
        and smile_corner > 1e-3
        and rng.random() < cfg.smile_fraction
    )
    au_order: tuple[int, ...] = ()
    gains: tuple[float, ...] = ()
    ons: tuple[float, ...] = ()
    offs: tuple[float, ...] = ()
    alpha = 0.0
    if use_smile and smile_corner is not None:
        mode: Literal["au", "smile"] = "smile"
        alpha = min(1.0, amp / smile_corner)
        amp = alpha * smile_corner
        aus = (6, 12) + ((25,) if alpha * smile_lip_gap >= LIPS_PART_THRESHOLD else ())
    else:
        mode = "au"
        au_order = tuple(OPEN_MOUTH_SMILE) if open_mouth else sample_aus(rng, emo)
        aus = tuple(sorted(au_order))
        g, o, f = [1.0], [float(onset)], [float(offset)]
        for a in au_order[1:]:
            g.append(float(rng.uniform(*OPEN_MOUTH_SMILE[a])) if open_mouth else
                     float(rng.uniform(0.6, 1.0)))  # fmt: skip
            o.append(onset + float(rng.uniform(0, 0.25)) * (apex - onset))
            f.append(offset - float(rng.uniform(0, 0.25)) * (offset - apex))
        gains, ons, offs = tuple(g), tuple(o), tuple(f)
    blink = _sample_blink(rng, fps, first, last, cfg)
    nuisance = sample_nuisance(rng, cfg)
    return ClipSpec(
        identity=identity,
        emotion=emo,
        megc3=CASME2_TO_MEGC3[emo],
        aus=aus,
        mode=mode,
        kind=kind,
        fps=float(fps),
        frame_step=step,
        first=first,
        onset=onset,
        apex=apex,
        offset=offset,
        last=last,
        amplitude=float(amp),
        au_order=au_order,
        au_gain=gains,
        au_onset=ons,
        au_offset=offs,
        smile_alpha=float(alpha),
        blink=blink,
        nuisance=nuisance,
        seed=int(rng.integers(0, 2**31 - 1)),
    )


def _sample_blink(
    rng: np.random.Generator, fps: float, first: int, last: int, cfg: SynthConfig
) -> tuple[float, float, float, float, float] | None:
    """A random background blink (probability ``cfg.blink_prob``) anywhere in the clip."""
    if rng.random() >= cfg.blink_prob:
        return None
    close = 0.08 * fps * float(rng.uniform(0.8, 1.25))
    hold = 0.03 * fps * float(rng.uniform(0.5, 1.5))
    opening = 0.15 * fps * float(rng.uniform(0.8, 1.25))
    start = float(rng.uniform(first - close - hold, last))
    return (start, close, hold, opening, float(rng.uniform(0.6, 1.0)))


def _choose(rng: np.random.Generator, weights: Mapping[str, float]) -> str:
    names = list(weights)
    p = np.array([max(0.0, float(weights[k])) for k in names])
    if p.sum() <= 0:
        raise ValueError("weights sum to 0")
    return names[int(rng.choice(len(names), p=p / p.sum()))]


def sample_nonemotional_spec(
    rng: np.random.Generator,
    identity: str,
    fps: float,
    cfg: SynthConfig,
    mode: str | None = None,
) -> ClipSpec:
    """Draw one non-emotional clip (emotion ``"none"``): speech, blink or head movement.

    See the module notes for the parameters. Onset / offset span the movement, the apex is
    its peak, on the written-frame grid.

    Args:
        rng: the master random stream.
        identity: London id.
        fps: frame rate.
        cfg: options (``nonemotional_modes`` picks the kind).
        mode: force ``"speech"``, ``"blink"`` or ``"head"``.

    Raises:
        ValueError: unknown mode.
    """
    weights = dict(NONEMOTIONAL_MODES if cfg.nonemotional_modes is None else cfg.nonemotional_modes)
    unknown = set(weights) - set(NONEMOTIONAL_MODES)
    if unknown:
        raise ValueError(f"unknown non-emotional modes {sorted(unknown)}")
    kind_ = mode if mode is not None else _choose(rng, weights)
    if kind_ not in NONEMOTIONAL_MODES:
        raise ValueError(f"unknown non-emotional mode {kind_!r}; use {list(NONEMOTIONAL_MODES)}")
    au_order: tuple[int, ...] = ()
    gains: tuple[float, ...] = ()
    syllables: tuple[tuple[float, float, float], ...] = ()
    head_move = (0.0, 0.0, 0.0, 0.0)
    blink = None
    extra: tuple[tuple[float, float, float, float, float], ...] = ()
    if kind_ == "speech":
        amp = _log_uniform(rng, *cfg.macro_amplitude)
        rate = float(rng.uniform(*SPEECH_RATE_HZ))
        dur = float(rng.uniform(*SPEECH_DURATION_S))
        w = 0.6 / rate
        n_syl = max(2, round((dur - 2 * w) * rate) + 1)
        if cfg.max_frames:
            n_syl = max(2, min(n_syl, cfg.max_frames // 3))
        gaps = (1.0 + rng.uniform(-0.15, 0.15, n_syl - 1)) / rate
        centres_s = w + np.concatenate([[0.0], np.cumsum(gaps)])
        dur = float(centres_s[-1] + w)
        k_apex = int(rng.integers(n_syl))
        peaks = rng.uniform(0.45, 0.95, n_syl)
        peaks[k_apex] = 1.0
        step, first, onset, apex, offset, last = _frame_layout(
            rng, fps, float(centres_s[k_apex]), dur - float(centres_s[k_apex]), cfg
        )
        # syllable centres on the written-frame grid (the apex syllable at the apex frame)
        grid = apex + np.round((centres_s - centres_s[k_apex]) * fps / step) * step
        w_f = float(max(w * fps, 1.5 * step))
        by_frame: dict[float, float] = {}
        for c, pk in zip(grid, peaks, strict=True):
            by_frame[float(c)] = max(by_frame.get(float(c), 0.0), float(pk))
        syllables = tuple((c, w_f, pk) for c, pk in sorted(by_frame.items()))
        minors = tuple(int(a) for a in rng.permutation(SPEECH_MINOR_AUS)[: int(rng.integers(1, 3))])
        au_order = (26, 25, *minors)
        gains = (
            1.0,
            float(rng.uniform(0.5, 1.0)),
            *(float(rng.uniform(0.15, 0.35)) for _ in minors),
        )
        blink = _sample_blink(rng, fps, first, last, cfg)
    elif kind_ == "blink":
        amp = 1.0
        close = 0.08 * fps * float(rng.uniform(0.8, 1.25))
        hold = 0.03 * fps * float(rng.uniform(0.5, 1.5))
        opening = 0.15 * fps * float(rng.uniform(0.8, 1.25))
        two = rng.random() < 0.5
        gap = float(rng.uniform(0.15, 0.6)) * fps
        c2, h2, o2 = close * rng.uniform(0.9, 1.1), hold, opening * rng.uniform(0.9, 1.1)
        end = close + hold + opening + ((gap + c2 + h2 + o2) if two else 0.0)
        to_peak = close + hold / 2
        step, first, onset, apex, offset, last = _frame_layout(
            rng, fps, to_peak / fps, (end - to_peak) / fps, cfg
        )
        start = apex - to_peak
        blink = (float(start), close, hold, opening, 1.0)
        if two:
            s2 = start + close + hold + opening + gap
            extra = ((float(s2), float(c2), float(h2), float(o2), 1.0),)
    else:
        sign = rng.choice([-1.0, 1.0], 4)
        head_move = (
            float(sign[0] * rng.uniform(2.0, 8.0)),
            float(sign[1] * rng.uniform(0.0, 0.05)),
            float(sign[2] * rng.uniform(0.0, 0.05)),
            float(sign[3] * rng.uniform(0.0, 0.05)),
        )
        amp = float(math.hypot(head_move[2], head_move[3]))
        dur = float(rng.uniform(0.4, 1.5))
        r = float(rng.beta(4, 4))
        step, first, onset, apex, offset, last = _frame_layout(
            rng, fps, r * dur, (1 - r) * dur, cfg
        )
        blink = _sample_blink(rng, fps, first, last, cfg)
    nuisance = sample_nuisance(rng, cfg)
    return ClipSpec(
        identity=identity,
        emotion=NO_EMOTION,
        megc3=None,
        aus=tuple(sorted(au_order)),
        mode=kind_,  # type: ignore[arg-type]
        kind="macro",
        fps=float(fps),
        frame_step=step,
        first=first,
        onset=onset,
        apex=apex,
        offset=offset,
        last=last,
        amplitude=float(amp),
        au_order=au_order,
        au_gain=gains,
        au_onset=tuple(float(onset) for _ in au_order),
        au_offset=tuple(float(offset) for _ in au_order),
        blink=blink,
        extra_blinks=extra,
        syllables=syllables,
        head_move=head_move,
        nuisance=nuisance,
        seed=int(rng.integers(0, 2**31 - 1)),
    )


def assign_names(specs: Sequence[ClipSpec]) -> list[ClipSpec]:
    """Set ``subject`` (``"01"`` for identity ``"001"``) and ``filename`` (``EP{ee}_{kk}``:
    episode of the emotion, counter within subject and episode) in order."""
    from dataclasses import replace

    counters: dict[tuple[str, int], int] = {}
    out = []
    for s in specs:
        subj = f"{int(s.identity):02d}" if s.identity.isdigit() else s.identity
        ep = EMOTION_EPISODE[s.emotion]
        k = counters.get((subj, ep), 0) + 1
        counters[(subj, ep)] = k
        out.append(replace(s, subject=subj, filename=f"EP{ep:02d}_{k:02d}"))
    return out
