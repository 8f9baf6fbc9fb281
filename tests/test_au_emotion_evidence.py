"""AU fusion, blendshape AU evidence, the EMFACS emotion classifier and its fusion with
SMA-STN, expression segmentation and non-expression movements (array-level tests), and the
pipeline with blendshapes on real clips."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest

from mer.aus.baseline import BaselineConfig, channel_mode, neutral_baseline
from mer.aus.blendshapes import au_evidence
from mer.aus.fusion import FusionConfig, fuse_scores
from mer.emotion.evidence import classify_profile
from mer.emotion.fusion import EmotionFusionConfig, decide, not_an_expression
from mer.events import EventConfig, blink_mask, speech_mask
from mer.face.blendshapes import BLENDSHAPE_NAMES
from mer.schemas import AU_NAMES
from mer.segments import SegmentConfig, segment_expressions

A = {n: j for j, n in enumerate(AU_NAMES)}


def _profile(**aus: float) -> np.ndarray:
    p = np.zeros(len(AU_NAMES))
    for k, v in aus.items():
        p[A[k]] = v
    return p


def test_emfacs_classes() -> None:
    assert classify_profile(_profile(AU06=0.8, AU12=0.9), AU_NAMES).label == "positive"
    assert classify_profile(_profile(AU01=1, AU02=0.8, AU26=0.7), AU_NAMES).label == "surprise"
    # raised brows drawn together: fear, negative
    fear = classify_profile(_profile(AU01=1, AU02=0.8, AU04=0.9, AU05=0.7), AU_NAMES)
    assert fear.label == "negative"
    assert classify_profile(_profile(AU04=0.9, AU15=0.7), AU_NAMES).label == "negative"
    # the upper-lip raise and chin raise of a smile are not negative
    assert classify_profile(_profile(AU12=0.9, AU10=0.8, AU17=0.8), AU_NAMES).label == "positive"
    # nor the skin bunched beside the nose (AU09 read in a darkened fex-metrica smile) ...
    smile = classify_profile(_profile(AU06=0.86, AU09=0.9, AU12=0.81), AU_NAMES)
    assert smile.label == "positive"
    # ... which without a smile is disgust
    assert classify_profile(_profile(AU09=0.9), AU_NAMES).label == "negative"
    assert classify_profile(_profile(AU25=1, AU26=1), AU_NAMES).label is None


def test_emotion_fusion_records_the_method() -> None:
    cfg = EmotionFusionConfig()
    pos = classify_profile(_profile(AU12=0.9), AU_NAMES)
    sma = {"negative": 0.1, "positive": 0.8, "surprise": 0.05, "none": 0.05}
    both = decide(pos, sma, "sma-stn-1", cfg)
    assert both.label == "positive" and both.method == "au-evidence+sma-stn"
    disagree = decide(pos, {**sma, "positive": 0.1, "negative": 0.8}, "sma-stn-1", cfg)
    assert disagree.label == "positive" and disagree.method == "au-evidence"
    nothing = classify_profile(_profile(), AU_NAMES)
    assert decide(nothing, {**sma, "positive": 0.9}, "s", cfg).method == "sma-stn"
    weak = decide(nothing, {**sma, "positive": 0.5}, "s", cfg)
    assert weak.label == "none" and weak.method == "au-evidence"
    assert not_an_expression("speech").method == "kind"


def test_fusion_blendshapes_rule_large_movements_motion_the_blind_aus() -> None:
    T = 4
    rules = np.full((T, len(AU_NAMES)), 0.9, np.float32)
    learned = np.full((T, len(AU_NAMES)), 0.2, np.float32)
    ev = np.full((T, len(AU_NAMES)), np.nan, np.float32)
    ev[:, A["AU12"]] = 0.0
    ev[3] = np.nan  # no face
    strength = np.array([0.0, 0.01, 0.1, 0.1])
    out = fuse_scores(rules, learned, ev, strength, AU_NAMES, FusionConfig(motion_weight=1.0))
    assert out[2, A["AU12"]] == 0.0  # large: the blendshapes say no AU12
    assert np.isclose(out[0, A["AU12"]], 0.2)  # small: the learned detector may say it
    assert np.isclose(out[2, A["AU15"]], 0.2)  # blind AU: learned only, no rules
    assert np.isclose(out[2, A["AU25"]], 0.9)  # geometric rule kept
    assert np.isclose(out[3, A["AU15"]], 0.9)  # frame without blendshapes: motion score


def test_neutral_baseline_follows_the_person_and_is_capped() -> None:
    t = np.arange(300) / 30
    x = np.full((300, 1), 0.5)
    x[100:150] = 0.9
    base = neutral_baseline(x, t, BaselineConfig(), cap=np.array([0.3]))
    assert np.allclose(base, 0.3)  # held high all clip long: the population cap
    base = neutral_baseline(x, t, BaselineConfig(), cap=None)
    assert np.allclose(base, 0.5)


def test_low_brows_at_rest_in_a_long_video_are_no_au04() -> None:
    # a low-browed person (browDown 0.7 at rest, above the neutral population's 90th
    # percentile) who smiles twice: in a 5 s clip a brow held low from the first frame to
    # the last may be an expression (the cap); over 40 s it is the person's resting face
    down = [BLENDSHAPE_NAMES.index("browDownLeft"), BLENDSHAPE_NAMES.index("browDownRight")]
    smile = [BLENDSHAPE_NAMES.index("mouthSmileLeft"), BLENDSHAPE_NAMES.index("mouthSmileRight")]
    for seconds, au04_on in ((5, True), (40, False)):
        t = np.arange(seconds * 30) / 30
        bs = np.zeros((len(t), len(BLENDSHAPE_NAMES)), np.float32)
        bs[:, down] = 0.7
        bs[np.ix_((t % 5 > 2) & (t % 5 < 3), smile)] = 0.9
        ev = au_evidence(bs, BLENDSHAPE_NAMES, t, AU_NAMES)
        assert (np.nanmax(ev[:, A["AU04"]]) > 0.5) == au04_on, seconds
        assert np.nanmax(ev[:, A["AU12"]]) > 0.9  # the smiles, either way


def test_a_low_browed_rest_the_brows_then_leave_is_no_au04() -> None:
    # CREMA-D 1001's fear and happy sentences: browDown 0.75 at rest for the first 0.5 s
    # (above the neutral population's cap), then the brows shoot up (browInnerUp 0.4,
    # browDown 0.05) to the end of a 2-s clip. The rest is no frown; the brows raised are
    # AU01. A frown held for the whole clip is still AU04 (the cap).
    t = np.arange(60) / 30
    bs = np.zeros((60, len(BLENDSHAPE_NAMES)), np.float32)
    down = [BLENDSHAPE_NAMES.index("browDownLeft"), BLENDSHAPE_NAMES.index("browDownRight")]
    inner = BLENDSHAPE_NAMES.index("browInnerUp")
    bs[:, down] = 0.75
    up = t >= 0.5
    bs[np.ix_(up, down)] = 0.05
    bs[up, inner] = 0.4
    ev = au_evidence(bs, BLENDSHAPE_NAMES, t, AU_NAMES)
    assert np.nanmax(ev[:, A["AU04"]]) < 0.1
    assert ev[up, A["AU01"]][5:].min() > 0.5
    held = np.zeros_like(bs)
    held[:, down] = 0.75
    ev = au_evidence(held, BLENDSHAPE_NAMES, t, AU_NAMES)
    assert ev[:, A["AU04"]].min() > 0.9


def test_channel_mode_is_the_level_held_most() -> None:

    v = np.r_[np.full(60, 0.72), np.full(40, 0.1)] + np.random.default_rng(0).normal(0, 0.01, 100)
    assert abs(channel_mode(v) - 0.72) < 0.02  # the 10th percentile would be ~0.1
    assert channel_mode(np.array([])) == 0.0


def test_a_low_browed_talker_rests_at_his_own_brow_level() -> None:
    # as CREMA-D actor 1001: browDown 0.72 at rest (above the population cap), 0.2 while
    # talking (the brows rise with the words), 0.95 in a frown; 12 s, talking 1 s in 3.
    # His rest is no AU04, the frown is; silent with his brows never leaving that level,
    # the clip keeps the cap (a face held low from the first frame to the last may be an
    # expression held throughout); silent but raising the brows now and then (a third of
    # the frames), the level they return to is his rest again
    down = [BLENDSHAPE_NAMES.index("browDownLeft"), BLENDSHAPE_NAMES.index("browDownRight")]
    jaw = BLENDSHAPE_NAMES.index("jawOpen")
    t = np.arange(360) / 30
    bs = np.zeros((360, len(BLENDSHAPE_NAMES)), np.float32)
    bs[:, down] = 0.72
    talk = t % 3 < 1
    bs[talk, jaw] = 0.2 + 0.15 * np.sin(2 * np.pi * 4.5 * t[talk])
    bs[np.ix_(talk, down)] = 0.2
    frown = (t > 7.5) & (t < 8.5)
    bs[np.ix_(frown, down)] = 0.95
    ev = au_evidence(bs, BLENDSHAPE_NAMES, t, AU_NAMES)
    rest = ~talk & ~frown
    assert ev[rest, A["AU04"]].max() < 0.1
    assert ev[frown, A["AU04"]].min() > 0.5
    silent = bs.copy()
    silent[:, jaw] = 0.0
    ev = au_evidence(silent, BLENDSHAPE_NAMES, t, AU_NAMES)
    assert ev[rest, A["AU04"]].max() < 0.1
    silent[np.ix_(talk, down)] = 0.72  # held low throughout
    ev = au_evidence(silent, BLENDSHAPE_NAMES, t, AU_NAMES)
    assert ev[rest, A["AU04"]].min() > 0.5


def test_speech_whose_jaw_passes_through_its_median_is_speech() -> None:
    # 15 fps, jaw 0 -> 0.1 -> 0.2 -> 0.1 -> 0 ... (3.75 Hz): every other frame sits exactly
    # at the running median (0.1), so no two adjacent frames lie on opposite sides of it;
    # the crossings through it still count
    t = np.arange(45) / 15
    jaw = np.tile([0.0, 0.1, 0.2, 0.1], 12)[:45]
    jaw[30:] = 0.0  # then the mouth rests
    m = speech_mask(jaw, t, EventConfig())
    assert m[:28].mean() > 0.9 and not m[34:].any(), m.astype(int)


def test_blendshape_evidence_of_a_smile() -> None:
    t = np.arange(90) / 30
    bs = np.zeros((90, len(BLENDSHAPE_NAMES)), np.float32)
    smile = [BLENDSHAPE_NAMES.index("mouthSmileLeft"), BLENDSHAPE_NAMES.index("mouthSmileRight")]
    bs[30:60, smile] = 0.9
    bs[70] = np.nan
    ev = au_evidence(bs, BLENDSHAPE_NAMES, t, AU_NAMES)
    assert ev[45, A["AU12"]] > 0.9 and ev[10, A["AU12"]] == 0.0
    assert ev[45, A["AU06"]] > 0.5  # a strong smile raises the cheeks
    assert np.isnan(ev[:, A["AU15"]]).all()  # mouthFrown is blind: not covered
    assert np.isnan(ev[70]).all()


def _smile_lowering_inner_brows(
    n: int, smile: slice, rest: float, wobble: float
) -> tuple[np.ndarray, np.ndarray]:
    """Timestamps (30 fps) and blendshapes of ``n`` frames: browInnerUp at ``rest`` (+- a
    ``wobble`` sine), mouthSmile 0.9 over ``smile``, where browInnerUp drops to 0.20."""
    t = np.arange(n) / 30
    bs = np.zeros((n, len(BLENDSHAPE_NAMES)), np.float32)
    inner = BLENDSHAPE_NAMES.index("browInnerUp")
    corners = [BLENDSHAPE_NAMES.index(c) for c in ("mouthSmileLeft", "mouthSmileRight")]
    bs[:, inner] = rest + wobble * np.sin(t * 7)
    bs[smile, corners] = 0.9
    bs[smile, inner] = 0.20
    return t, bs


def test_the_neutral_is_the_face_with_no_au_on() -> None:
    # as fex-metrica's ex_smile1: inner brows a little raised at rest (browInnerUp 0.40,
    # 0.55 in the first second) that drop while smiling (0.20, a third of the clip): the
    # 10th percentile is the smile's level; the frames of the smile are no neutral, and the
    # neutral is the median of the face with no AU on, so the rest shows no AU01
    t, bs = _smile_lowering_inner_brows(300, slice(60, 150), 0.40, 0.01)
    bs[:30, BLENDSHAPE_NAMES.index("browInnerUp")] = 0.55
    ev = au_evidence(bs, BLENDSHAPE_NAMES, t, AU_NAMES)
    assert ev[:60, A["AU01"]].max() < 0.25 and ev[160:, A["AU01"]].max() < 0.1
    assert ev[100, A["AU12"]] > 0.9
    one_pass = au_evidence(bs, BLENDSHAPE_NAMES, t, AU_NAMES, BaselineConfig(exclude_active=0))
    assert one_pass[:60, A["AU01"]].max() > 0.5  # what the second pass removes


def test_a_clip_smiling_in_most_frames_has_its_rest_as_neutral() -> None:
    # as single_face.mp4 mirrored: 18 neutral frames, then a smile to the end; browInnerUp
    # rests at 0.50 and drops to 0.20 in the smile. The first pass reads AU01 at rest (0.30
    # above the smile's 10th percentile), so no frame shows no AU at all for the second
    # pass; taken again without the smile's frames (AU12 at full strength), the first pass
    # finds the rest, and the second pass its median
    t, bs = _smile_lowering_inner_brows(72, slice(18, None), 0.50, 0.02)
    inner = BLENDSHAPE_NAMES.index("browInnerUp")
    ev = au_evidence(bs, BLENDSHAPE_NAMES, t, AU_NAMES)
    assert ev[:18, A["AU01"]].max() < 0.1
    assert ev[20:, A["AU12"]].min() > 0.9 and ev[:18, A["AU12"]].max() == 0.0
    one_pass = au_evidence(bs, BLENDSHAPE_NAMES, t, AU_NAMES, BaselineConfig(exclude_active=0))
    assert one_pass[:18, A["AU01"]].min() > 0.4  # what leaving out the smile removes
    # a brow raise among the rest frames still shows (above their median)
    bs[3:6, inner] = 0.95
    assert au_evidence(bs, BLENDSHAPE_NAMES, t, AU_NAMES)[4, A["AU01"]] > 0.9


def test_an_expression_relaxing_is_its_offset_not_a_new_one() -> None:
    t = np.arange(200) / 30
    ev = np.zeros((200, len(AU_NAMES)))
    ev[30:70, [A["AU01"], A["AU02"], A["AU05"]]] = 1.0  # surprise ...
    ev[70:100, A["AU01"]] = np.linspace(1.0, 0.3, 30)  # ... whose inner brows come down last
    segs = segment_expressions(ev, AU_NAMES, t)
    assert len(segs) == 1 and abs(segs[0].onset - 30) <= 2 and segs[0].offset >= 95
    assert segs[0].pattern == "surprise"
    assert len(segment_expressions(ev, AU_NAMES, t, SegmentConfig(tail_apex_share=-1))) == 2
    # a follower with an AU the first did not show is a new expression
    ev[70:100, A["AU04"]] = 1.0
    ev[70:100, A["AU01"]] = 0.0
    assert len(segment_expressions(ev, AU_NAMES, t)) == 2


def _rise_hold_fall(ev: np.ndarray, au: str, start: int, top: int, end: int, stop: int) -> None:
    """AU ``au``'s evidence in ``ev`` ``(T, A)``: rising 0.1 -> 1 over start..top, held at
    1 over top..end, falling to 0.1 over end..stop (frames, half-open)."""
    ev[start:top, A[au]] = np.linspace(0.1, 1.0, top - start)
    ev[top:end, A[au]] = 1.0
    ev[end:stop, A[au]] = np.linspace(1.0, 0.1, stop - end)


def test_the_apex_of_a_saturated_plateau_is_its_middle() -> None:
    # a smile rising over 10 frames, held saturated 30-70, released: the apex is the held
    # plateau's middle (the dev set's labelled apexes lie there), not its first frame
    t = np.arange(120) / 30
    ev = np.zeros((120, len(AU_NAMES)))
    _rise_hold_fall(ev, "AU12", 20, 30, 70, 80)
    (seg,) = segment_expressions(ev, AU_NAMES, t)
    assert abs(seg.apex - 50) <= 3, seg


def test_the_apex_is_where_the_aus_of_the_expression_peak_together() -> None:
    # a disgust built up: brows down and saturated from frame 20, the upper lip raised only
    # from 50 (held 60-70): the apex is the middle of 60-70, where both are on (the FACS
    # apex), not the middle of the brows' saturated stretch (frame 50)
    t = np.arange(120) / 30
    ev = np.zeros((120, len(AU_NAMES)))
    _rise_hold_fall(ev, "AU04", 10, 20, 80, 90)
    _rise_hold_fall(ev, "AU10", 50, 60, 71, 80)
    (seg,) = segment_expressions(ev, AU_NAMES, t)
    assert abs(seg.onset - 12) <= 3 and abs(seg.offset - 87) <= 3, seg
    assert 62 <= seg.apex <= 68, seg
    assert seg.pattern == "negative"


def test_segments_split_at_valleys_and_pattern_changes() -> None:
    t = np.arange(300) / 30
    ev = np.zeros((300, len(AU_NAMES)))
    ev[20:60, A["AU12"]] = 1.0  # smile
    ev[70:110, A["AU12"]] = 1.0  # a second smile after a neutral gap
    ev[150:190, A["AU12"]] = 1.0  # smile turning straight into a frown
    ev[190:230, A["AU04"]] = 1.0
    segs = segment_expressions(ev, AU_NAMES, t)
    assert [s.pattern for s in segs] == ["positive", "positive", "positive", "negative"]
    assert abs(segs[2].offset - 189) <= 3 and abs(segs[3].onset - 190) <= 3
    # speech AUs alone are no expression
    ev2 = np.zeros((300, len(AU_NAMES)))
    ev2[:, A["AU26"]] = 1.0
    assert segment_expressions(ev2, AU_NAMES, t) == []
    # nor is a chin raise alone (lips closing after words); with lowered brows it is one
    ev3 = np.zeros((300, len(AU_NAMES)))
    ev3[40:70, A["AU17"]] = 1.0
    assert segment_expressions(ev3, AU_NAMES, t) == []
    ev3[40:70, A["AU04"]] = 1.0
    (seg,) = segment_expressions(ev3, AU_NAMES, t)
    assert abs(seg.onset - 40) <= 2 and abs(seg.offset - 69) <= 2


def test_speech_is_rhythmic_mouth_motion_and_blinks_are_short() -> None:
    t = np.arange(150) / 30
    talk = 0.2 + 0.15 * np.sin(2 * np.pi * 4.5 * t)
    cfg = EventConfig()
    assert speech_mask(talk, t, cfg)[30:120].all()
    held = np.where((t > 1) & (t < 3), 0.6, 0.0)  # a held open mouth (surprise)
    assert not speech_mask(held, t, cfg).any()
    # one quick jaw drop and close (0.6 s, a surprise's mouth) crosses its running median
    # twice: one cycle, not the 2-8 Hz rhythm of syllables
    once = np.where((t > 2) & (t < 2.6), 0.5 * np.sin(np.pi * (t - 2) / 0.6), 0.0)
    assert not speech_mask(once, t, cfg).any()
    slow = 0.2 + 0.15 * np.sin(2 * np.pi * 1.2 * t)  # 1.2 Hz: slower than syllables
    assert not speech_mask(slow, t, cfg).any()
    closed = np.zeros(150)
    closed[40:44] = 0.9  # 0.13 s blink
    closed[90:140] = 0.9  # 1.7 s eye closure: not a blink
    m = blink_mask(closed, closed, t, cfg)
    assert m[40:44].all() and not m[90:140].any()


@pytest.fixture(scope="module")
def bs_config():
    from mer.pipeline import AnalysisConfig

    return AnalysisConfig(blendshapes=True, include_blendshapes=True)


def test_pipeline_with_blendshapes_on_the_real_smile(single_face_video: Path, bs_config) -> None:
    from mer.pipeline import analyze_video

    r = analyze_video(single_face_video, config=bs_config)
    expr = [iv for iv in r.intervals if iv.kind in ("micro", "macro")]
    assert len(expr) == 1 and expr[0].onset <= 24 and expr[0].offset >= 64
    assert expr[0].emotion is not None and expr[0].emotion.label == "positive"
    assert expr[0].emotion.method.startswith("au-evidence")
    assert r.frames[40].blendshapes is not None and r.frames[40].blendshapes["mouthSmileLeft"] > 0.5
    assert r.frames[40].au["AU12"] > 0.9 and r.frames[3].au["AU12"] < 0.2
    assert "blendshape-au" in r.au_method
    for iv in r.intervals:
        if iv.kind not in ("micro", "macro"):
            assert iv.emotion is not None and iv.emotion.label == "none"


def test_pipeline_with_blendshapes_names_real_surprises(shared_data: Path, bs_config) -> None:
    from mer.pipeline import analyze_video

    clip = shared_data.parent / "data" / "dev" / "fexmetrica_ex_surp1.mov"
    if not clip.is_file():
        clip = shared_data / "dev" / "fexmetrica_ex_surp1.mov"
    r = analyze_video(clip, config=bs_config)
    # two labelled surprises (25-55, 86-129): two separate surprise intervals
    hits = [iv for iv in r.intervals if iv.emotion is not None and iv.emotion.label == "surprise"]
    assert any(iv.onset <= 36 <= iv.offset for iv in hits)
    assert any(iv.onset <= 98 <= iv.offset for iv in hits)
    assert not any(iv.onset <= 36 and iv.offset >= 98 for iv in r.intervals)


def test_a_held_expression_bridges_a_short_dip_but_two_smiles_stay_two() -> None:
    # the Pexels man's sad face: held 3.8 s, neutral evidence for 0.57 s while his hand
    # covers his brows, held again: one expression
    t = np.arange(300) / 30
    ev = np.zeros((300, len(AU_NAMES)))
    ev[0:114, A["AU04"]] = 1.0
    ev[131:300, A["AU04"]] = 1.0
    (seg,) = segment_expressions(ev, AU_NAMES, t)
    assert seg.onset == 0 and seg.offset >= 295 and seg.pattern == "negative"
    # how long it was held is what joins them
    assert len(segment_expressions(ev, AU_NAMES, t, SegmentConfig(held_s=60.0))) == 2
    # the same dip after a 1-s expression is a return to neutral between two
    ev2 = np.zeros((300, len(AU_NAMES)))
    ev2[84:114, A["AU04"]] = 1.0
    ev2[131:170, A["AU04"]] = 1.0
    assert len(segment_expressions(ev2, AU_NAMES, t)) == 2
    # and a dip longer than hold_gap_s always is
    ev3 = ev.copy()
    ev3[114:150, A["AU04"]] = 0.0
    assert len(segment_expressions(ev3, AU_NAMES, t)) == 2


def test_the_gap_between_segments_counts_the_frames_in_neither() -> None:
    # OpenDBM 01's sad face: held 21-103, evidence below threshold 104-132 (29 frames at
    # 30 fps, 0.97 s), held again from 133: a dip within hold_gap_s (1 s), one expression
    from mer.segments import Segment, _gap_s

    t = np.arange(200) / 30
    a, b = Segment(21, 60, 103, 1.0, "negative"), Segment(133, 140, 157, 1.0, "negative")
    assert abs(_gap_s(t, a, b) - 29 / 30) < 1e-9
    assert _gap_s(t, a, Segment(104, 110, 120, 1.0, "negative")) == 0.0  # touching
    ev = np.zeros((200, len(AU_NAMES)))
    ev[21:104, A["AU04"]] = 1.0
    ev[133:158, A["AU04"]] = 1.0
    (seg,) = segment_expressions(ev, AU_NAMES, t)
    assert seg.onset <= 21 and seg.offset >= 157
