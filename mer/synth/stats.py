"""CASME II statistics and the drawing constants of the synthetic clips.

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

Amplitudes (ours). The clip's intensity amplitude ``A`` is log-uniform in 0.8-3 % of the
outer inter-ocular distance (IOD) for micro-expressions and 4-12 % for macro ones; an AU's
peak displacement is ``A * gain`` with the AU's relative gain of :mod:`mer.synth.aus`
(1 for brows and lip corners, 0.4 for the lids, 1.5 for the jaw), so a micro AU12 moves the
lip corners 0.8-2.9 px in a 256 px crop (IOD ~95 px), the order of the apex-onset optical
flow of CASME II, and a micro AU7 raises the lower lid 0.3-1.1 px.
"""

from __future__ import annotations

import math

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
