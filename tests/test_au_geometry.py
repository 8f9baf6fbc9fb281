"""AU15 / AU17 from the lower-lip arch against the neutral population (mer.aus.geometry),
its fusion, and AU25 as a state: on arrays and on real frames of the dev set."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest

from mer.aus.fusion import FusionConfig, fuse_scores
from mer.aus.geometry import (
    MAX_ABS_YAW,
    arch_evidence,
    arch_z,
    geometry_prior,
    lower_lip_arch,
)
from mer.face.landmarks import MediaPipeLandmarker, pose_ratios
from mer.schemas import AU_NAMES
from mer.video import iter_frames

A = {n: j for j, n in enumerate(AU_NAMES)}


def _landmarks(path: Path, frames: set[int]) -> dict[int, np.ndarray]:
    """478 refined landmarks of the main face in the given frames (photos mode)."""
    lm = MediaPipeLandmarker(max_faces=1, static=True, refine_landmarks=True)
    out = {}
    try:
        for fr in iter_frames(path):
            if fr.index in frames:
                faces = lm.process(np.ascontiguousarray(fr.image))
                if faces:
                    out[fr.index] = faces[0].landmarks
            if fr.index >= max(frames):
                break
    finally:
        lm.close()
    return out


def test_the_arch_ignores_rotation_scale_and_translation() -> None:
    rng = np.random.default_rng(0)
    p = rng.uniform(0, 100, (478, 2))
    th = np.deg2rad(20)
    rot = np.array([[np.cos(th), -np.sin(th)], [np.sin(th), np.cos(th)]])
    q = 2.5 * p @ rot.T + np.array([40.0, -7.0])
    assert np.isclose(lower_lip_arch(p), lower_lip_arch(q))
    assert lower_lip_arch(np.stack([p, q])).shape == (2,)


def test_the_population_median_is_no_au_and_an_inverted_arch_is() -> None:
    pr = geometry_prior()
    pose = np.array([[0.0, pr["pitch0"]]] * 3 + [[MAX_ABS_YAW + 0.1, pr["pitch0"]]])
    arch = np.array([pr["a"], pr["a"] - 2.0 * pr["s"], -0.02, -0.02])
    ev = arch_evidence(arch, pose)
    assert ev.dtype == np.float32 and ev[0] == 0.0 and ev[1] == 0.0  # within neutral faces
    assert ev[2] == 1.0  # lower lip above the corners: z about -3.7
    assert ev[3] == 0.0  # turned beyond the population's yaw: not judged
    # seen from below (lower pitch), a flatter arch is expected: z rises
    z = arch_z(np.array([0.1, 0.1]), np.array([[0.0, 0.45], [0.0, 0.35]]))
    assert z[1] > z[0]


def test_fusion_takes_the_geometric_evidence_and_the_lip_gap_at_any_amplitude() -> None:
    T = 3
    rules = np.zeros((T, len(AU_NAMES)), np.float32)
    rules[:, A["AU25"]] = 1.0  # lips apart (the inner-lip gap)
    learned = np.full((T, len(AU_NAMES)), 0.1, np.float32)
    ev = np.full((T, len(AU_NAMES)), np.nan, np.float32)
    ev[:, A["AU12"]] = 0.9
    geo = np.full((T, len(AU_NAMES)), np.nan, np.float32)
    geo[:, A["AU15"]] = [0.0, 0.7, np.nan]
    strength = np.zeros(T)  # no movement: the learned detector alone makes the motion score
    out = fuse_scores(rules, learned, ev, strength, AU_NAMES, FusionConfig(), geometry=geo)
    assert np.allclose(out[:, A["AU25"]], 1.0)  # an open mouth held still is AU25
    assert np.allclose(out[:, A["AU15"]], [0.1, 0.7, 0.1])
    with pytest.raises(ValueError):
        fuse_scores(rules, learned, ev, strength, AU_NAMES, FusionConfig(), geometry=geo[:2])


def test_sad_apex_scores_and_grid_speech_does_not(shared_data: Path) -> None:
    """Pexels upset man (lip corners down, chin raised, labelled AU15 + AU17; apex range
    190-306): the evidence is on; GRID sentences read with a neutral face and single_face's
    rest and smile: off in every frame."""
    sad = shared_data / "dev" / "pexels_8164110_upset_man.mp4"
    if not sad.is_file():
        pytest.skip(f"{sad} is missing")
    lms = _landmarks(sad, {250, 280})
    assert len(lms) == 2
    for lm in lms.values():
        ev = arch_evidence(np.array([lower_lip_arch(lm)]), pose_ratios(lm)[None])
        assert ev[0] >= 0.5
    for name in ("grid_pwij3p.mpg", "grid_bbaf2n.mpg", "single_face.mp4"):
        lms = _landmarks(shared_data / "videos" / name, set(range(0, 72, 3)))
        arch = np.array([lower_lip_arch(v) for v in lms.values()])
        pose = np.array([pose_ratios(v) for v in lms.values()])
        assert len(arch) >= 20 and arch_evidence(arch, pose).max() == 0.0, name
        assert np.nanmin(arch_z(arch, pose)) > -2.05 + 0.2, name  # a margin below the ramp
