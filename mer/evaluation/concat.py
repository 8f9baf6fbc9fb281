"""Real multi-event clips made of labelled clips of one person played back to back.

The dev set holds mostly one or two expressions per clip; the same person's clips in a row
make real clips where expressions follow each other with speech between them, with labels
(shifted) in the same format (``shared/data/dev/README.md``). Used by
``scripts/concat_dev_clips.py`` (``reports/real_multi``) and the tests.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from pathlib import Path
from typing import Any

import numpy as np

from mer.video_writer import write_video


def shift_event(event: Mapping[str, Any], offset: int, source: str) -> dict[str, Any]:
    """A labelled event (a label file's JSON object) moved ``offset`` frames later, its
    ``desc`` prefixed with the clip it came from."""
    out = dict(event)
    for key in ("onset", "apex", "offset"):
        out[key] = int(event[key]) + offset
    lo, hi = event["apex_range"]
    out["apex_range"] = [int(lo) + offset, int(hi) + offset]
    out["desc"] = f"{source}: {event.get('desc', '')}"
    return out


def concatenate_clips(
    folder: Path,
    names: Sequence[str],
    out: Path,
    fps: int,
    labels: Mapping[str, Mapping[str, Any]] | None = None,
) -> dict[str, Any]:
    """Decode the clips ``names`` of ``folder`` and write them back to back to ``out``
    (:func:`mer.video_writer.write_video`: H.264, ``fps`` frames/s, the first clip's size: the
    clips must share it).

    Args:
        folder: where the clips are.
        names: clip file names, in order.
        out: the video written (``.mp4``).
        fps: its frame rate (frames/s).
        labels: the clips' label entries by name (a label file's JSON), or None.

    Returns:
        The new clip's label entry: ``fps``, ``frames``, ``resolution``, the events of
        every part shifted by the part's first frame (``starts``: each part's first frame).

    Raises:
        FileNotFoundError: a clip is missing. KeyError: ``labels`` lacks a clip.
        ValueError: the clips differ in size.
    """
    import av

    frames: list[np.ndarray] = []
    events: list[dict[str, Any]] = []
    starts: list[int] = []
    for name in names:
        starts.append(len(frames))
        if not (folder / name).is_file():
            raise FileNotFoundError(folder / name)
        with av.open(str(folder / name)) as src:
            frames += [f.to_ndarray(format="rgb24") for f in src.decode(video=0)]
        if labels is not None:
            events += [shift_event(e, starts[-1], name) for e in labels[name]["events"]]
    h, w = frames[0].shape[:2]
    if any(f.shape[:2] != (h, w) for f in frames):
        raise ValueError(f"the clips {list(names)} differ in size")
    write_video(out, frames, fps)
    return {
        "fps": fps,
        "frames": len(frames),
        "resolution": [w, h],
        "rest_frames": None,
        "events": events,
        "starts": starts,
        "blinks": [],
        "no_face_frames": [],
        "no_face_detail": [],
        "notes": "clips played back to back: " + ", ".join(names),
    }
