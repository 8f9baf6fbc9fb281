"""Multi-event clips from labelled clips played back to back (mer.evaluation.concat)."""

from __future__ import annotations

from pathlib import Path

import av
import numpy as np
import pytest

from mer.evaluation.concat import concatenate_clips, shift_event
from mer.video_writer import write_video


def _clip(path: Path, n: int, size: tuple[int, int] = (64, 48), value: int = 0) -> None:
    write_video(path, [np.full((size[1], size[0], 3), value, np.uint8)] * n, 10.0)


def _event(onset: int, apex: int, offset: int) -> dict:
    return {"onset": onset, "apex": apex, "offset": offset, "apex_range": [apex, apex],
            "aus": ["AU12"], "emotion": "positive", "confidence": "high",
            "kind": "expression", "desc": "smile"}  # fmt: skip


def test_shift_event_moves_every_frame_field() -> None:
    e = shift_event(_event(2, 4, 6), 10, "a.mp4")
    assert (e["onset"], e["apex"], e["offset"], e["apex_range"]) == (12, 14, 16, [14, 14])
    assert e["desc"] == "a.mp4: smile" and e["aus"] == ["AU12"]


def test_clips_back_to_back_with_their_labels(tmp_path: Path) -> None:
    from mer.evaluation.labels import load_labels

    _clip(tmp_path / "a.mp4", 12, value=40)
    _clip(tmp_path / "b.mp4", 8, value=200)
    labels = {"a.mp4": {"events": [_event(2, 4, 6)]}, "b.mp4": {"events": [_event(1, 3, 5)]}}
    entry = concatenate_clips(tmp_path, ["a.mp4", "b.mp4"], tmp_path / "ab.mp4", 10, labels)
    assert entry["frames"] == 20 and entry["starts"] == [0, 12]
    assert [(e["onset"], e["offset"]) for e in entry["events"]] == [(2, 6), (13, 17)]
    with av.open(str(tmp_path / "ab.mp4")) as src:
        grey = [float(f.to_ndarray(format="gray").mean()) for f in src.decode(video=0)]
    assert len(grey) == 20 and grey[11] < 100 < grey[12]  # a's frames, then b's
    # the entry is a valid label file entry (what mer evaluate-real reads)
    import json

    (tmp_path / "labels.json").write_text(json.dumps({"ab.mp4": entry}))
    (clip,) = load_labels(tmp_path / "labels.json")
    assert len(clip.labels.events) == 2


def test_clips_of_different_sizes_are_refused(tmp_path: Path) -> None:
    _clip(tmp_path / "a.mp4", 4)
    _clip(tmp_path / "b.mp4", 4, size=(32, 32))
    with pytest.raises(ValueError, match="differ in size"):
        concatenate_clips(tmp_path, ["a.mp4", "b.mp4"], tmp_path / "ab.mp4", 10)
    with pytest.raises(FileNotFoundError):
        concatenate_clips(tmp_path, ["a.mp4", "missing.mp4"], tmp_path / "ab.mp4", 10)
