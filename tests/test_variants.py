"""Altered copies of labelled clips (mer.evaluation.variants, scripts/make_dev_variants.py)."""

from __future__ import annotations

import json
from pathlib import Path

import av
import numpy as np

from mer.evaluation.variants import VARIANTS, remap_labels, write_variant
from mer.video_writer import write_video

SAMPLE = Path(__file__).resolve().parents[1] / "samples" / "single_face.mp4"


def _entry(frames: int = 72) -> dict:
    event = {
        "onset": 17, "apex": 36, "offset": 71, "apex_range": [30, 44], "aus": ["AU12"],
        "emotion": "positive", "confidence": "high", "kind": "expression", "desc": "smile",
    }  # fmt: skip
    return {
        "fps": 30.0, "frames": frames, "resolution": [640, 360], "rest_frames": [0, 15],
        "events": [event], "blinks": [[5, 7], 50], "no_face_frames": [], "notes": "n",
    }  # fmt: skip


def _frames(path: Path) -> list[np.ndarray]:
    with av.open(str(path)) as src:
        return [f.to_ndarray(format="rgb24") for f in src.decode(video=0)]


def test_half_rate_labels_keep_every_second_frame() -> None:
    e = remap_labels(_entry(), 2, 36)
    ev = e["events"][0]
    assert (ev["onset"], ev["apex"], ev["offset"], ev["apex_range"]) == (8, 18, 35, [15, 22])
    assert e["fps"] == 15.0 and e["frames"] == 36 and e["rest_frames"] == [0, 7]
    assert e["blinks"] == [[2, 3], 25]
    assert _entry()["events"][0]["onset"] == 17  # the original is not touched
    same = remap_labels(_entry(), 1, 72)
    assert same["events"] == _entry()["events"] and same["fps"] == 30.0


def test_variants_of_a_real_clip_and_their_labels(tmp_path: Path) -> None:
    from mer.evaluation.labels import load_labels

    original = _frames(SAMPLE)
    entries = {}
    for name in ("mirrored", "half_size", "third_size", "tilted", "dark", "half_rate"):
        file, entries[name] = write_variant(SAMPLE, _entry(), VARIANTS[name], tmp_path / name)
        assert file == "single_face.mp4.mp4"
        copy = _frames(tmp_path / name / file)
        assert len(copy) == entries[name]["frames"]
        h, w = copy[0].shape[:2]
        assert entries[name]["resolution"] == [w, h]
        (tmp_path / name / "labels.json").write_text(json.dumps({file: entries[name]}))
        (clip,) = load_labels(tmp_path / name / "labels.json")  # valid labels
        if name == "mirrored":  # the face's left is now on the right
            a = original[36].astype(float)
            assert np.abs(copy[36] - a[:, ::-1]).mean() < 4 < np.abs(copy[36] - a).mean()
        if name == "half_size":
            assert (w, h) == (320, 180)
        if name == "third_size":
            assert (w, h) == (212, 120)  # 213 x 120 cropped to even sides
        if name == "tilted":  # same size, the picture turned
            assert (w, h) == (640, 360) and np.abs(copy[36] - original[36].astype(float)).mean() > 8
        if name == "dark":
            assert copy[36].mean() < 0.6 * original[36].mean()
        if name == "half_rate":
            assert len(copy) == 36 and clip.labels.events[0].onset == 8
            assert abs(float(np.abs(copy[18] - original[36].astype(float)).mean())) < 4
    assert entries["mirrored"]["frames"] == 72 and "mirrored" in entries["mirrored"]["notes"]


def test_odd_sizes_are_cropped_to_even(tmp_path: Path) -> None:
    write_video(tmp_path / "a.mp4", [np.full((50, 66, 3), 90, np.uint8)] * 4, 10.0)
    entry = _entry(4)
    entry["events"] = []
    entry["rest_frames"] = None
    _, label = write_variant(tmp_path / "a.mp4", entry, VARIANTS["half_size"], tmp_path / "v")
    assert label["resolution"] == [32, 24]  # 33 x 25 cropped to even sides
