"""Long synthetic multi-event clips (`mer synth-long`): the timeline, labels in the real dev
set's format, the rendered video through the normal decode path, and determinism. Rendering
needs the London faces (skipped without ../shared/data, failing under CI)."""

from __future__ import annotations

import dataclasses
import hashlib
import json
from pathlib import Path

import cv2
import numpy as np
import pytest
from fixtures_datasets import require_london
from typer.testing import CliRunner

from mer.cli import app
from mer.schemas import AU_NAMES
from mer.synth import load_london_faces
from mer.synth.long_dataset import clip_labels, heldout_identities, write_video
from mer.synth.long_render import LongRig, plateau_course, render_long_clip
from mer.synth.long_spec import SEGMENT_WEIGHTS, LongClipConfig
from mer.synth.long_timeline import sample_long_clip
from mer.synth.render import FaceRig, crop_matrix
from mer.video import iter_frames, probe_video

REAL_AUS = {"AU01", "AU02", "AU04", "AU05", "AU06", "AU07", "AU09", "AU10", "AU12", "AU14",
            "AU15", "AU17", "AU25", "AU26"}  # fmt: skip
EVENT_KEYS = {"onset", "apex", "offset", "apex_range", "aus", "emotion", "intensity",
              "confidence", "kind", "apex_scoreable", "desc"}  # fmt: skip
CLIP_KEYS = {"fps", "frames", "resolution", "rest_frames", "events", "blinks", "no_face_frames",
             "notes"}  # fmt: skip
QUIET = dict(head_motion=0.0, lighting=0.0, noise=0.0, pose_jitter=0.0)


def check_labels(entry: dict) -> None:
    """The fields and value sets of ../shared/data/dev/README.md, and non-overlapping
    segments after the rest."""
    assert set(entry) >= CLIP_KEYS
    assert isinstance(entry["fps"], float) and entry["fps"] > 0
    n = entry["frames"]
    assert entry["no_face_frames"] == []
    a, b = entry["rest_frames"]
    assert 0 == a <= b < n
    last = b
    for ev in entry["events"]:
        assert set(ev) >= EVENT_KEYS, set(ev) ^ EVENT_KEYS
        assert ev["kind"] in {"expression", "speech", "gaze", "head_turn", "eyes"}
        assert ev["emotion"] in {"positive", "negative", "surprise", "other"}
        assert ev["confidence"] in {"high", "medium", "low"}
        assert ev["intensity"] in {"subtle", "moderate", "strong"}
        assert set(ev["aus"]) <= REAL_AUS
        assert all(isinstance(ev[k], int) for k in ("onset", "apex", "offset"))
        lo, hi = ev["apex_range"]
        assert ev["onset"] <= lo <= hi <= ev["offset"] and lo <= ev["apex"] <= hi
        assert ev["onset"] > last, "segments overlap or start in the rest"
        assert ev["offset"] < n
        last = ev["offset"]
        if ev["kind"] == "expression":
            assert ev["emotion"] != "other" and ev["aus"] and ev["apex_scoreable"]
        else:
            assert ev["emotion"] == "other" and not ev["apex_scoreable"]
    assert all(isinstance(f, int) and b < f < n for f in entry["blinks"])


# ---- no media needed ------------------------------------------------------------------------
def test_timeline_durations_kinds_and_seed() -> None:
    cfg = LongClipConfig()
    spec = sample_long_clip(np.random.default_rng(7), "001", cfg)
    assert spec == sample_long_clip(np.random.default_rng(7), "001", cfg)
    assert spec != sample_long_clip(np.random.default_rng(8), "001", cfg)
    kinds, scales = set(), set()
    for s in range(20):
        sp = sample_long_clip(np.random.default_rng(s), "001", cfg)
        assert sp.n_frames == 600
        entry = clip_labels(sp, cfg.out_size)
        check_labels(entry)
        for ev, lab in zip(sp.events, entry["events"], strict=True):
            kinds.add(ev.kind)
            if ev.kind == "expression":
                scales.add(ev.scale)
                dur = (lab["offset"] - lab["onset"]) / cfg.fps
                if ev.scale == "micro":
                    assert 0.15 <= dur < 0.5, dur
                else:
                    assert 0.5 < dur <= 3.1, dur
        expr = [e for e in sp.events if e.kind == "expression"]
        assert {e.scale for e in expr[:2]} == {"micro", "macro"} or len(expr) < 2
    assert kinds == set(SEGMENT_WEIGHTS) and scales == {"micro", "macro"}


def test_plan_and_errors() -> None:
    cfg = LongClipConfig(duration_s=6.0)
    plan = ["expression", "speech", "expression"]
    spec = sample_long_clip(np.random.default_rng(0), "001", cfg, plan)
    assert [e.kind for e in spec.events] == plan
    with pytest.raises(ValueError, match="unknown segment"):
        sample_long_clip(np.random.default_rng(0), "001", cfg, ["dance"])
    with pytest.raises(ValueError, match="does not fit"):
        sample_long_clip(np.random.default_rng(0), "001", cfg, ["speech"] * 12)
    no_gaze = LongClipConfig(gaze=False)
    for s in range(10):
        sp = sample_long_clip(np.random.default_rng(s), "001", no_gaze)
        assert all(e.kind != "gaze" for e in sp.events)


def test_course_plateau_and_speech() -> None:
    spec = sample_long_clip(np.random.default_rng(1), "001", LongClipConfig(), ["expression"])
    ev = spec.events[0]
    n = np.arange(spec.n_frames, dtype=np.float64)
    c = plateau_course(n, ev)
    inside = (n > ev.onset) & (n < ev.offset)
    assert np.all(c[~inside] == 0) and np.all(c[inside] > 0)
    assert np.all(c[(n >= ev.peak_start) & (n <= ev.peak_end)] == 1.0)
    sp = sample_long_clip(np.random.default_rng(1), "001", LongClipConfig(), ["speech"]).events[0]
    cs = plateau_course(n, sp)
    # syllables at 3-6 Hz: the mouth opens and closes several times
    peaks = np.sum((cs[1:-1] > cs[:-2]) & (cs[1:-1] >= cs[2:]) & (cs[1:-1] > 0.4))
    dur = (sp.offset - sp.onset) / 30.0
    assert 2.5 * dur <= peaks <= 6.5 * dur


def test_held_out_identities_are_the_evaluate_folds() -> None:
    from mer.training import group_folds

    ids = [f"{i:03d}" for i in range(1, 103)]
    parts = [heldout_identities(f, 3, ids) for f in range(3)]
    assert sorted(sum(parts, [])) == ids and all(30 <= len(p) <= 36 for p in parts)
    keys = group_folds([f"synth/sub{int(i):02d}" for i in ids], 3, 0)
    assert {f"synth/sub{int(i):02d}" for i in parts[1]} == keys[1]
    with pytest.raises(ValueError):
        heldout_identities(3, 3, ids)


@pytest.mark.parametrize("codec", ["libx264", "mpeg4"])
def test_write_video_decodes_every_frame(tmp_path: Path, codec: str) -> None:
    rng = np.random.default_rng(0)
    frames = [rng.integers(0, 255, (48, 64, 3), dtype=np.uint8) for _ in range(17)]
    path = tmp_path / "v.mp4"
    assert write_video(path, frames, 30.0, codec=codec) == codec
    probe = probe_video(path)
    assert (probe.width, probe.height, probe.fps) == (64, 48, 30.0)
    assert sum(1 for _ in iter_frames(path)) == 17


# ---- real faces ------------------------------------------------------------------------------
@pytest.fixture(scope="module")
def rig(tmp_path_factory: pytest.TempPathFactory) -> LongRig:
    root = require_london()
    faces = load_london_faces(root, ["002"], cache_path=tmp_path_factory.mktemp("lm") / "lm.npz")
    return LongRig(FaceRig(faces["002"]))


@pytest.fixture(scope="module")
def clip(rig: LongRig, tmp_path_factory: pytest.TempPathFactory) -> dict:
    """A 6 s clip: a macro smile (AU6+AU12), speech, a micro frown (AU4), one blink; no head
    motion, lighting change or noise, written as H.264 and decoded by mer.video."""
    cfg = LongClipConfig(duration_s=6.0, out_size=256, blink_rate_hz=0.0, **QUIET)
    spec = sample_long_clip(np.random.default_rng(4), "002", cfg, ["expression", "speech",
                                                                   "expression"])  # fmt: skip
    e1, sp, e2 = spec.events
    e1 = dataclasses.replace(e1, name="happiness", emotion="positive", aus=(12, 6),
                             au_gain=(1.0, 0.7), amplitude=0.06, scale="macro", side=0,
                             peak_start=e1.onset + 6, peak_end=e1.onset + 12,
                             offset=e1.onset + 20)  # fmt: skip
    e2 = dataclasses.replace(e2, name="frown", emotion="negative", aus=(4,), au_gain=(1.0,),
                             amplitude=0.03, side=0)  # fmt: skip
    blink_at = float(sp.offset + 4)
    spec = dataclasses.replace(spec, events=(e1, sp, e2), blinks=((blink_at, 2.4, 1, 4.5, 1.0),))
    r = render_long_clip(spec, rig, cfg)
    out = tmp_path_factory.mktemp("long")
    path = out / "clip.mp4"
    write_video(path, r.frames, cfg.fps)
    labels = {path.name: clip_labels(spec, cfg.out_size)}
    (out / "labels.json").write_text(json.dumps(labels))
    big = cfg.out_size * cfg.supersample
    a0 = crop_matrix(rig.rig.landmarks, big, cfg.margin, spec.nuisance.pose)
    lm = (rig.rig.landmarks @ a0[:2, :2].T + a0[:2, 2]) / cfg.supersample - 0.5 / 2
    return {"spec": spec, "r": r, "path": path, "dir": out, "lm": lm, "cfg": cfg}


def _region(lm: np.ndarray, idx: list[int], size: int, radius: int) -> np.ndarray:
    m = np.zeros((size, size), np.uint8)
    for i in idx:
        cv2.circle(m, (int(round(lm[i, 0])), int(round(lm[i, 1]))), radius, 1, -1)
    return m.astype(bool)


def test_long_clip_labels_video_and_regions(clip: dict) -> None:
    entry = json.loads((clip["dir"] / "labels.json").read_text())["clip.mp4"]
    check_labels(entry)
    assert [e["kind"] for e in entry["events"]] == ["expression", "speech", "expression"]
    assert entry["events"][0]["aus"] == ["AU06", "AU12"]
    assert entry["events"][0]["emotion"] == "positive"
    assert entry["events"][2]["aus"] == ["AU04"] and entry["events"][2]["emotion"] == "negative"
    assert len(entry["blinks"]) == 1
    probe = probe_video(clip["path"])
    assert probe.fps == pytest.approx(entry["fps"]) and probe.width == entry["resolution"][0]
    frames = np.stack([f.image for f in iter_frames(clip["path"])]).astype(np.float64)
    assert len(frames) == entry["frames"] == 180
    size = clip["cfg"].out_size
    corners = _region(clip["lm"], [61, 291], size, 6)
    brows = _region(clip["lm"], [107, 336, 55, 285], size, 6)

    def change(k: int, j: int, region: np.ndarray) -> float:
        return float(np.abs(frames[k] - frames[j]).mean(-1)[region].mean())

    smile, speech, frown = entry["events"]
    busy = np.zeros(len(frames), bool)
    for e in entry["events"]:
        busy[e["onset"] : e["offset"] + 1] = True
    for b in entry["blinks"]:
        busy[b - 6 : b + 8] = True
    # outside the events the face is the rest face up to H.264 coding noise (no head motion,
    # lighting change or sensor noise here); a macro AU12 is 10x that at the lip corners
    ref = entry["rest_frames"][0]
    floor = max(change(k, ref, corners) for k in np.flatnonzero(~busy))
    assert floor < 3.0, floor
    assert change(smile["apex"], smile["onset"], corners) > max(10.0, 5 * floor)
    # a 3 % IOD AU4 lowers the brows and leaves the mouth alone
    assert change(frown["apex"], frown["onset"], brows) > 2.5
    assert change(frown["apex"], frown["onset"], corners) < 0.5
    assert change(frown["onset"], frown["onset"] - 1, brows) < 0.5
    # ground truth: the labelled AUs are active at the apex, nothing outside the events
    au = clip["r"].au_intensity
    assert au[smile["apex"], AU_NAMES.index("AU12")] > 0.05
    assert au[frown["apex"], AU_NAMES.index("AU04")] > 0.02
    assert au[speech["apex"], AU_NAMES.index("AU26")] > 0
    assert np.all(au[~busy] == 0)


def test_one_sided_au_and_gaze_stay_local(rig: LongRig) -> None:
    """Contempt moves the subject's left lip corner only; a gaze shift changes the eye
    apertures only."""
    lm, iod = rig.rig.landmarks, rig.rig.iod
    st = rig.rig.stride

    def at(field: np.ndarray, i: int) -> float:
        v = field[int(round(lm[i, 1] / st)), int(round(lm[i, 0] / st))]
        return float(np.hypot(v[0], v[1]))

    one, both = rig.au(14, side=1)[0], rig.au(14)[0]
    assert at(both, 61) > 0 and at(both, 291) > 0
    assert at(one, 291) > 0.95 * at(both, 291) and at(one, 61) < 0.02 * at(both, 61)
    moved = rig.gazed_photo((0.04 * iod, 0.0)).astype(np.float64)
    diff = np.abs(moved - rig.rig.photo).mean(-1)
    eyes = np.zeros(diff.shape, bool)
    for roi, _, _ in rig.eyes:
        eyes[roi] = True
    assert diff[eyes].max() > 40 and diff[~eyes].max() == 0


def test_render_is_deterministic(rig: LongRig, clip: dict) -> None:
    spec, cfg = clip["spec"], clip["cfg"]
    short = dataclasses.replace(spec, n_frames=45, events=spec.events[:1], blinks=())
    noisy = dataclasses.replace(cfg, head_motion=1.0, noise=1.0)
    a = render_long_clip(short, rig, noisy).frames
    b = render_long_clip(short, rig, noisy).frames
    assert all(np.array_equal(x, y) for x, y in zip(a, b, strict=True))


def test_write_video_gives_the_same_bytes_every_time(rig: LongRig, tmp_path: Path) -> None:
    # x264's macroblock-tree rate control read memory it had not written: one second of a
    # 320 px clip gave six different files in six writes, depending on what the freed heap
    # held (as after rendering); the regression clips must not depend on the run
    cfg = LongClipConfig(duration_s=1.0, out_size=320)
    frames = render_long_clip(
        sample_long_clip(np.random.default_rng(4), "002", cfg), rig, cfg
    ).frames
    rng = np.random.default_rng(0)
    digests = set()
    for k in range(6):
        junk = [rng.integers(0, 255, 2_000_000 + 4096 * j, dtype=np.uint8) for j in range(8)]
        del junk  # freed memory full of bytes, where the encoder's buffers come from
        write_video(tmp_path / f"v{k}.mp4", frames, cfg.fps)
        digests.add(hashlib.sha256((tmp_path / f"v{k}.mp4").read_bytes()).hexdigest())
    assert len(digests) == 1


def test_cli_writes_reproducible_set(tmp_path: Path) -> None:
    root = require_london()
    digests = []
    for k in range(2):
        out = tmp_path / f"set{k}"
        res = CliRunner().invoke(app, [
            "synth-long", str(out), "--clips", "2", "--seed", "3", "--duration", "4",
            "--size", "128", "--identity", "001", "--identity", "004",
            "--london-root", str(root),
        ])  # fmt: skip
        assert res.exit_code == 0, res.output
        labels = json.loads((out / "labels.json").read_text())
        assert sorted(labels) == ["synth_long_000.mp4", "synth_long_001.mp4"]
        for name, entry in labels.items():
            check_labels(entry)
            assert entry["frames"] == 120 and entry["resolution"] == [128, 128]
            assert sum(1 for _ in iter_frames(out / name)) == 120
            assert (out / "gt" / name.replace(".mp4", ".npz")).is_file()
        blob = (out / "labels.json").read_bytes() + b"".join(
            (out / n).read_bytes() for n in sorted(labels)
        )
        digests.append(hashlib.sha256(blob).hexdigest())
    assert digests[0] == digests[1]
    bad = CliRunner().invoke(app, ["synth-long", str(tmp_path / "x"), "--held-out-fold", "5"])
    assert bad.exit_code == 2
