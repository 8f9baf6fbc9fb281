"""The synthetic micro-expression generator: AU definitions, sampling statistics, rendering
on real London faces (skipped without ../shared/data, failing under CI), the written CASME II
layout and determinism."""

from __future__ import annotations

import csv
import dataclasses
from collections import Counter
from pathlib import Path

import cv2
import numpy as np
import pytest
from fixtures_datasets import require_london

from mer.datasets import load_casme2
from mer.face.align import load_template
from mer.schemas import AU_NAMES
from mer.synth import ACTION_UNITS, SynthConfig, generate_dataset, load_london_faces
from mer.synth.aus import au_fields, grid_shape, interocular, resolve_anchors
from mer.synth.dataset import SHEET_COLUMNS
from mer.synth.render import FaceRig, render_clip
from mer.synth.sampling import (
    CASME2_EMOTION_COUNTS,
    assign_names,
    blink_course,
    movement_course,
    raised_cosine_course,
    sample_aus,
    sample_clip_spec,
    sample_duration_s,
    sample_nonemotional_spec,
)

IDS = ["001", "002", "003"]
QUIET = dict(head_motion=0.0, lighting=0.0, noise=0.0, pose_jitter=0.0, blink_prob=0.0)


# ---- no media needed ------------------------------------------------------------------------
def test_au_landmark_pairs_are_mirror_symmetric() -> None:
    """Every (right, left) pair of every AU mirrors on the canonical template."""
    t = load_template()
    for au in ACTION_UNITS.values():
        for g in au.groups:
            for r, left in g.pairs:
                assert abs(t[r, 0] + t[left, 0] - 1.0) < 0.03, (au.au, r, left)
                assert abs(t[r, 1] - t[left, 1]) < 0.03, (au.au, r, left)


def test_au_fields_peak_and_pins() -> None:
    """Field peak = gain IOD; pinned landmarks move much less than the peak."""
    lm = load_template().astype(np.float64) * 400
    iod = interocular(lm)
    shape = grid_shape((400, 400), 2)
    for au in ACTION_UNITS.values():
        field, _ = au_fields(au, lm, shape, 2)
        mag = np.sqrt((field**2).sum(-1))
        assert mag.max() == pytest.approx(au.gain * iod, rel=1e-4)
        _, _, _, pins, _ = resolve_anchors(au, lm)
        for p in pins:
            assert mag[int(round(p[1] / 2)), int(round(p[0] / 2))] < 0.5 * mag.max(), au.au


def test_time_courses() -> None:
    n = np.arange(10, 31)
    c = raised_cosine_course(n, 12, 20, 30)
    assert c[n == 12][0] == 0 and c[n == 20][0] == 1 and c[n == 30][0] == pytest.approx(0)
    assert int(n[np.argmax(c)]) == 20 and (c[n < 12] == 0).all()
    b = blink_course(np.arange(0, 40.0), (5.0, 4.0, 2.0, 8.0, 0.8))
    assert b.max() == pytest.approx(0.8) and b[0] == 0 and b[-1] == 0


def meta_mode(meta: dict, s) -> str:
    return meta[(s.subject, s.clip)]["mode"]


def test_nonemotional_sampling_fraction_and_labels() -> None:
    """A share ``nonemotional_fraction`` of the clips is non-emotional (speech, blink,
    head); the emotional clips keep their distribution; spans and apex on the grid."""
    rng = np.random.default_rng(1)
    cfg = SynthConfig(nonemotional_fraction=0.3)
    specs = [sample_clip_spec(rng, "001", fps, cfg) for fps in (25, 60, 200) * 500]
    none = [s for s in specs if s.emotion == "none"]
    assert abs(len(none) / len(specs) - 0.3) < 0.04
    modes = Counter(s.mode for s in none)
    assert set(modes) == {"speech", "blink", "head"} and min(modes.values()) > 0.2 * len(none)
    emo = [s for s in specs if s.emotion != "none"]
    assert {s.mode for s in emo} <= {"au", "smile"}
    counts = Counter(s.emotion for s in emo)
    assert abs(counts["others"] / len(emo) - 99 / 257) < 0.05  # CASME II share kept
    for s in none:
        assert s.megc3 is None and s.first < s.onset < s.apex < s.offset < s.last
        assert len(s.frame_numbers) <= cfg.max_frames
        n = np.asarray(s.frame_numbers, np.float64)
        c = movement_course(s, n)
        assert c[s.frame_numbers.index(s.apex)] == 1.0 and c.max() == 1.0
        if s.mode == "speech":
            assert {25, 26} <= set(s.aus) and 12 not in s.aus and len(s.syllables) >= 2
            assert s.au_string == "+".join(str(a) for a in sorted(s.aus))
        else:
            assert s.aus == () and s.au_string == ""
        if s.mode == "blink":
            assert 1 <= len(s.blinks) <= 2 and all(b[4] == 1.0 for b in s.blinks)
        if s.mode == "head":
            assert abs(s.head_move[0]) >= 2.0
    # no non-emotional clips when the fraction is 0, and the stream is then unchanged
    r0 = np.random.default_rng(3)
    plain = [sample_clip_spec(r0, "001", 100, SynthConfig(nonemotional_fraction=0.0))
             for _ in range(50)]  # fmt: skip
    assert all(s.emotion != "none" for s in plain)
    named = assign_names(none[:3])
    assert all(x.filename.startswith("EP08_") for x in named)


def test_sampling_matches_casme2_statistics() -> None:
    rng = np.random.default_rng(0)
    d = np.array([sum(sample_duration_s(rng, "micro")) for _ in range(4000)]) * 200
    assert 55 < np.median(d) < 65
    assert 35 < np.percentile(d, 10) < 45 and 85 < np.percentile(d, 90) < 100
    assert d.min() >= 23 - 1e-9 and d.max() <= 145 + 1e-9
    sizes = Counter(len(sample_aus(rng, "disgust")) for _ in range(3000))
    assert 0.55 < sizes[1] / 3000 < 0.69 and sizes[3] > 0
    cfg = SynthConfig(nonemotional_fraction=0.0)
    specs = [sample_clip_spec(rng, "001", 200, cfg) for _ in range(800)]
    emo = Counter(s.emotion for s in specs)
    assert emo["others"] > emo["disgust"] > emo["happiness"] > emo["fear"]
    assert set(emo) <= set(CASME2_EMOTION_COUNTS)
    for s in specs:
        assert s.first < s.onset < s.apex < s.offset < s.last
        for n in (s.onset, s.apex, s.offset, s.last):
            assert (n - s.first) % s.frame_step == 0
        assert len(s.frame_numbers) <= cfg.max_frames
        if s.emotion in ("others", "fear", "sadness"):
            assert s.megc3 is None
    assert all(s.megc3 == "negative" for s in specs if s.emotion in ("disgust", "repression"))
    named = assign_names(specs[:5])
    assert named[0].subject == "01" and named[0].filename.startswith("EP")


# ---- real faces ------------------------------------------------------------------------------
@pytest.fixture(scope="module")
def faces(tmp_path_factory: pytest.TempPathFactory) -> dict:
    root = require_london()
    cache = tmp_path_factory.mktemp("lm") / "london_landmarks.npz"
    out = load_london_faces(root, IDS, cache_path=cache)
    assert sorted(out) == IDS
    assert cache.is_file()
    return {"faces": out, "cache": cache}


@pytest.fixture(scope="module")
def rig(faces: dict) -> FaceRig:
    return FaceRig(faces["faces"]["001"])


def _single_au_spec(au: int, amplitude: float = 0.03, fps: float = 100.0):
    cfg = SynthConfig(out_size=128, max_frames=16, **QUIET)
    spec = sample_clip_spec(np.random.default_rng(au), "001", fps, cfg, emotion="others")
    spec = dataclasses.replace(
        spec, mode="au", au_order=(au,), aus=(au,), au_gain=(1.0,),
        au_onset=(float(spec.onset),), au_offset=(float(spec.offset),), amplitude=amplitude,
    )  # fmt: skip
    return spec, cfg


def _region_mask(lm: np.ndarray, idx: list[int], size: int, radius: float) -> np.ndarray:
    m = np.zeros((size, size), np.uint8)
    for i in idx:
        cv2.circle(m, (int(round(lm[i, 0])), int(round(lm[i, 1]))), int(radius), 1, -1)
    return m.astype(bool)


@pytest.mark.parametrize("au", [4, 12, 17])
def test_micro_displacement_is_local_and_peaks_at_apex(rig: FaceRig, au: int) -> None:
    spec, cfg = _single_au_spec(au)
    r = render_clip(spec, rig, cfg)
    ia = r.frame_numbers.index(spec.apex)
    io = r.frame_numbers.index(spec.onset)
    assert int(np.argmax(r.intensity)) == ia and r.intensity[ia] == 1.0
    assert r.au_intensity[ia, AU_NAMES.index(f"AU{au:02d}")] == pytest.approx(
        spec.amplitude * ACTION_UNITS[au].gain
    )
    frames = np.stack(r.frames).astype(np.float64)
    diff = np.abs(frames[ia] - frames[io]).mean(-1)
    idx = [i for g in ACTION_UNITS[au].groups for pair in g.pairs for i in pair]
    iod = interocular(r.landmarks)
    region = _region_mask(r.landmarks, idx, cfg.out_size, 0.12 * iod)
    inside, outside = diff[region].mean(), diff[~region].mean()
    assert inside > 5 * outside, (inside, outside)
    assert inside > 0.3  # grey levels: measurable although micro
    # the movement (change from the onset frame, in the AU region) is largest at the apex
    change = [np.abs(f - frames[io]).mean(-1)[region].mean() for f in frames]
    assert int(np.argmax(change)) == ia
    assert change[0] == 0 and change[-1] < 0.05 * change[ia]


def test_smile_mode_and_blink(faces: dict) -> None:
    face = faces["faces"]["002"]
    rig = FaceRig(face)
    geo = face.smile_geometry()
    assert geo is not None and geo.corner > 0.05
    cfg = SynthConfig(out_size=128, max_frames=16, **QUIET)
    spec = sample_clip_spec(np.random.default_rng(5), "002", 60, cfg, emotion="happiness",
                            smile_corner=geo.corner, smile_lip_gap=geo.lip_gap)  # fmt: skip
    spec = dataclasses.replace(spec, mode="smile", smile_alpha=0.25, aus=(6, 12))
    r = render_clip(spec, rig, cfg)
    ia, io = r.frame_numbers.index(spec.apex), r.frame_numbers.index(spec.onset)
    diff = np.abs(r.frames[ia].astype(float) - r.frames[io]).mean(-1)
    mouth = _region_mask(
        r.landmarks, [61, 291, 0, 17, 13, 14], 128, 0.15 * interocular(r.landmarks)
    )
    assert diff[mouth].mean() > 4 * diff[~mouth].mean()
    assert r.au_intensity[ia, AU_NAMES.index("AU12")] == pytest.approx(0.25 * geo.corner)
    # a full blink at the first frames closes the eyes: strong change around the eyes only
    blink = dataclasses.replace(
        spec, smile_alpha=0.0, blink=(spec.first - 1.0, 1.0, 3.0 * spec.frame_step, 1.0, 1.0)
    )
    rb = render_clip(blink, rig, cfg)
    assert rb.blink[1] == 1.0 and rb.blink[-1] == 0.0
    d = np.abs(rb.frames[1].astype(float) - rb.frames[-1]).mean(-1)
    eyes = _region_mask(rb.landmarks, [159, 145, 386, 374], 128, 0.12 * interocular(rb.landmarks))
    assert d[eyes].mean() > 8 * d[~eyes].mean()


def test_generate_writes_casme2_layout_and_is_deterministic(faces: dict, tmp_path: Path) -> None:
    kw = dict(
        identities=IDS, fps_choices=(30, 200), workers=1, progress=False,
        landmark_cache=faces["cache"], out_size=96, max_frames=10, blink_prob=0.3,
    )  # fmt: skip
    s1 = generate_dataset(tmp_path / "a", 6, seed=7, **kw)
    assert s1.n_clips == 6 and s1.n_frames > 6 * 5
    root = tmp_path / "a"
    with (root / "CASME2-coding.csv").open(newline="") as fh:
        rows = list(csv.reader(fh))
    assert tuple(rows[0]) == SHEET_COLUMNS and len(rows) == 7
    assert not list(root.glob("*.jpg")) and (root / "CREDITS.txt").is_file()

    samples = load_casme2(root)
    assert len(samples) == 6 and all(s.dataset == "synth" for s in samples)
    assert {s.subject for s in samples} <= {"sub01", "sub02", "sub03"}
    meta = {
        (f"sub{m['Subject']}", m["Filename"]): m
        for m in csv.DictReader((root / "synth_meta.csv").open())
    }
    frames_csv = list(csv.DictReader((root / "synth_frames.csv").open()))
    for s in samples:
        m = meta[(s.subject, s.clip)]
        assert s.fps == float(m["fps"]) and s.n_frames == int(m["n_frames"]) <= 10
        assert s.frame_numbers[s.apex_index] == s.apex and s.apex_annotated
        assert s.frame_numbers[s.onset_index] == s.onset
        assert s.frame_numbers[s.offset_index] == s.offset
        assert list(s.frame_numbers) == sorted(s.frame_numbers)
        if s.emotion == "none":
            assert s.megc3 is None and meta_mode(meta, s) in ("speech", "blink", "head")
        else:
            assert s.aus and s.emotion in CASME2_EMOTION_COUNTS
        img = cv2.imread(str(s.frame_paths[0]))
        assert img is not None and img.shape == (96, 96, 3)
        # the per-frame ground truth peaks at the sheet's ApexFrame
        mine = [
            r for r in frames_csv if f"sub{r['Subject']}" == s.subject and r["Filename"] == s.clip
        ]
        assert len(mine) == s.n_frames
        peak = max(mine, key=lambda r: float(r["intensity"]))
        assert int(peak["Frame"]) == s.apex and float(peak["intensity"]) == 1.0

    s2 = generate_dataset(tmp_path / "b", 6, seed=7, **kw)
    files_a = sorted(
        p.relative_to(root) for p in root.rglob("*") if p.is_file() and p.suffix != ".npz"
    )
    files_b = sorted(p.relative_to(tmp_path / "b") for p in (tmp_path / "b").rglob("*")
                     if p.is_file() and p.suffix != ".npz")  # fmt: skip
    assert files_a == files_b
    for rel in files_a:
        assert (root / rel).read_bytes() == (tmp_path / "b" / rel).read_bytes(), rel
    assert [x.seed for x in s2.specs] == [x.seed for x in s1.specs]
    s3 = generate_dataset(tmp_path / "c", 6, seed=8, **kw)
    assert [x.seed for x in s3.specs] != [x.seed for x in s1.specs]
    with pytest.raises(FileExistsError):
        generate_dataset(root, 2, seed=7, **kw)


def _frame_change(frames: list, region: np.ndarray) -> np.ndarray:
    f = np.stack(frames).astype(np.float64)
    return np.array([np.abs(x - f[0]).mean(-1)[region].mean() for x in f])


def test_nonemotional_speech_oscillates_and_blink_is_local(rig: FaceRig) -> None:
    """Speech: the mouth opens and closes repeatedly (several maxima of the mouth-region
    frame difference); blink: change around the eyes only; neither has an AU for blink."""
    cfg = SynthConfig(out_size=128, max_frames=32, **QUIET)
    spec = sample_nonemotional_spec(np.random.default_rng(11), "001", 100, cfg, mode="speech")
    assert spec.emotion == "none" and len(spec.syllables) >= 3
    r = render_clip(spec, rig, cfg)
    iod = interocular(r.landmarks)
    mouth = _region_mask(r.landmarks, [61, 291, 0, 17, 13, 14, 152], 128, 0.15 * iod)
    eyes = _region_mask(r.landmarks, [159, 145, 386, 374], 128, 0.12 * iod)
    # frame-to-frame difference in the mouth region: one peak per opening and closing
    f = np.stack(r.frames).astype(np.float64)
    step = np.array([np.abs(f[i + 1] - f[i]).mean(-1)[mouth].mean() for i in range(len(f) - 1)])
    change = _frame_change(r.frames, mouth)
    maxima = [
        i
        for i in range(1, len(change) - 1)
        if change[i] > max(change[i - 1], 1.0) and change[i] >= change[i + 1]
    ]
    assert len(maxima) >= 2, np.round(change, 2)
    assert step.max() > 1.0
    ia = r.frame_numbers.index(spec.apex)
    assert int(np.argmax(r.intensity)) == ia and r.intensity[ia] == 1.0
    assert change[ia] > 3 * _frame_change(r.frames, eyes)[ia]
    assert r.au_intensity[ia, AU_NAMES.index("AU26")] > 0.04  # macro: speech is visible

    spec = sample_nonemotional_spec(np.random.default_rng(12), "001", 100, cfg, mode="blink")
    assert spec.aus == () and spec.blinks
    r = render_clip(spec, rig, cfg)
    ia = r.frame_numbers.index(spec.apex)
    assert r.blink[ia] == 1.0 and not r.au_intensity.any()
    d = np.abs(r.frames[ia].astype(float) - r.frames[0]).mean(-1)
    assert d[eyes].mean() > 8 * d[~eyes].mean() and d[mouth].mean() < 0.5

    spec = sample_nonemotional_spec(np.random.default_rng(13), "001", 100, cfg, mode="head")
    r = render_clip(spec, rig, cfg)
    ia = r.frame_numbers.index(spec.apex)
    d = np.abs(r.frames[ia].astype(float) - r.frames[0]).mean(-1)
    assert d.mean() > 3.0 and not r.au_intensity.any() and not r.blink.any()


def test_generate_nonemotional_clips_load_as_none(faces: dict, tmp_path: Path) -> None:
    s = generate_dataset(
        tmp_path / "n", 4, seed=2, identities=IDS, fps_choices=(25,), workers=1,
        progress=False, landmark_cache=faces["cache"], out_size=64, max_frames=8,
        nonemotional_fraction=1.0,
    )  # fmt: skip
    assert s.n_clips == 4 and all(x.emotion == "none" for x in s.specs)
    root = tmp_path / "n"
    sheet = list(csv.DictReader((root / "CASME2-coding.csv").open()))
    assert {r["Estimated Emotion"] for r in sheet} == {"none"}
    meta = {
        (f"sub{m['Subject']}", m["Filename"]): m
        for m in csv.DictReader((root / "synth_meta.csv").open())
    }
    samples = load_casme2(root)
    assert len(samples) == 4
    for x in samples:
        m = meta[(x.subject, x.clip)]
        assert x.emotion == "none" and x.megc3 is None and m["megc3"] == ""
        assert m["mode"] in ("speech", "blink", "head") and x.clip.startswith("EP08_")
        assert (25 in x.aus and 26 in x.aus) if m["mode"] == "speech" else x.aus == ()
        assert x.frame_numbers[x.apex_index] == x.apex and x.apex_annotated


def test_open_mouth_smiles_are_macro_happiness_only_and_leave_the_stream_alone() -> None:
    """``open_mouth_smile = 1``: every macro happiness clip is AU6+12+25+26 (AU12 primary,
    the rest at their documented relative gains); micro clips and other emotions are drawn
    as before; with the default 0 the random stream, hence every clip, is unchanged."""
    from mer.synth.sampling import OPEN_MOUTH_SMILE

    cfg = SynthConfig(kind="mixed", nonemotional_fraction=0.0, open_mouth_smile=1.0)
    rng = np.random.default_rng(5)
    specs = [sample_clip_spec(rng, "001", 100, cfg, smile_corner=0.03, emotion="happiness")
             for _ in range(200)]  # fmt: skip
    macro = [s for s in specs if s.kind == "macro"]
    micro = [s for s in specs if s.kind == "micro"]
    assert macro and micro
    for s in macro:
        assert s.mode == "au" and s.aus == (6, 12, 25, 26) and s.au_order[0] == 12
        for a, g in zip(s.au_order, s.au_gain, strict=True):
            lo, hi = OPEN_MOUTH_SMILE[a]
            assert lo <= g <= hi
    assert not any(26 in s.aus for s in micro)
    other = sample_clip_spec(np.random.default_rng(1), "001", 100, cfg, emotion="disgust")
    assert 26 not in other.aus
    # only macro happiness draws the extra number: other clips keep the stream of the default
    base = SynthConfig(kind="mixed", nonemotional_fraction=0.0)
    for emo in ("disgust", "surprise"):
        r1, r2 = np.random.default_rng(9), np.random.default_rng(9)
        a = [sample_clip_spec(r1, "001", 100, base, emotion=emo) for _ in range(20)]
        b = [sample_clip_spec(r2, "001", 100, cfg, emotion=emo) for _ in range(20)]
        assert a == b


def test_python_m_mer_synth_is_mer_synth(tmp_path: Path) -> None:
    """``python -m mer.synth`` runs the ``mer synth`` command: the same files for the same
    options, its several-values-after-one-flag lists handed on as repeated flags, and a
    second run into the same folder refused (exit 2) without ``--overwrite``."""
    from typer.testing import CliRunner

    from mer.cli import app
    from mer.synth.__main__ import main, repeat_list_flags

    require_london()
    assert repeat_list_flags(["o", "--fps", "30", "60", "--clips", "2", "--grayscale"]) == [
        "o", "--fps", "30", "--fps", "60", "--clips", "2", "--grayscale"]  # fmt: skip
    common = ["--clips", "2", "--seed", "1", "--workers", "1", "--max-frames", "6",
              "--size", "64", "--no-progress"]  # fmt: skip
    assert main([str(tmp_path / "a"), *common, "--identities", "001", "002"]) == 0
    res = CliRunner().invoke(
        app, ["synth", str(tmp_path / "b"), *common, "--identities", "001", "--identities", "002"]
    )
    assert res.exit_code == 0, res.output
    files = sorted(p.relative_to(tmp_path / "a") for p in (tmp_path / "a").rglob("*.jpg"))
    assert files and files == sorted(
        p.relative_to(tmp_path / "b") for p in (tmp_path / "b").rglob("*.jpg")
    )
    for f in files:
        assert (tmp_path / "a" / f).read_bytes() == (tmp_path / "b" / f).read_bytes()
    assert main([str(tmp_path / "a"), *common]) == 2
