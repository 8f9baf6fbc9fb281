"""Stage: Action Units (mer.pipeline.aus)."""

from __future__ import annotations

from dataclasses import replace
from types import SimpleNamespace

import numpy as np
import pytest

from mer.aus import rules as au_rules
from mer.aus.fusion import FusionConfig
from mer.pipeline import aus as aus_module
from mer.pipeline.aus import score_aus
from mer.pipeline.config import AnalysisConfig
from mer.schemas import AU_NAMES
from tests.pipeline.streaming import Streamed


class ConstantAUBackend:
    """A backend whose AU detector answers 0.9 for every AU (records its inputs)."""

    name = "constant-au"  # no `au` attribute (as TorchServe's): the labels are AU_NAMES

    def __init__(self) -> None:
        self.seen: tuple[int, ...] = ()

    def predict_au(self, pairs: np.ndarray) -> np.ndarray:
        self.seen = pairs.shape
        return np.full((len(pairs), len(AU_NAMES)), 0.9, np.float32)


def test_rules_only_without_a_backend(smile_streamed: Streamed) -> None:
    s = smile_streamed
    r = score_aus(s.track, s.motion, s.crops, None, s.cfg)
    assert r.method == au_rules.METHOD_NAME and r.activity is None
    assert r.scores.shape == (72, len(AU_NAMES)) and r.scores.dtype == np.float32
    au12 = r.scores[:, AU_NAMES.index("AU12")]
    assert au12[30:60].max() >= au12[:5].max() + 0.5


def test_a_backend_without_an_au_model_falls_back_to_the_rules(smile_streamed: Streamed) -> None:
    s = smile_streamed
    backend = SimpleNamespace(name="emotion-only", au=None)
    r = score_aus(s.track, s.motion, s.crops, backend, s.cfg)  # type: ignore[arg-type]
    assert r.method == au_rules.METHOD_NAME and r.activity is None


def test_learned_scores_rule_small_movements_and_rules_large_ones(smile_streamed: Streamed) -> None:
    s = smile_streamed
    backend = ConstantAUBackend()
    rules = score_aus(s.track, s.motion, s.crops, None, s.cfg).scores
    r = score_aus(s.track, s.motion, s.crops, backend, s.cfg)  # type: ignore[arg-type]
    assert backend.seen[0] == 72  # one input per face frame
    assert r.activity is not None and np.allclose(r.activity, 0.9)
    assert r.method.startswith("constant-au+")
    small = s.motion.strength <= s.cfg.fusion.au_blend_low
    large = s.motion.strength >= s.cfg.fusion.au_blend_high
    assert small.any() and large.any()
    assert np.allclose(r.scores[small], 0.9)
    assert np.allclose(r.scores[large], rules[large])
    # a blend window below every movement: the rules decide everywhere the face moves
    cfg = replace(AnalysisConfig(), fusion=FusionConfig(au_blend_low=-2.0, au_blend_high=-1.0))
    assert np.allclose(score_aus(s.track, s.motion, s.crops, backend, cfg).scores, rules)


class PixelMeanBackend:
    """An AU detector answering each input's mean grey level (records its batch sizes)."""

    name = "pixel-mean"

    def __init__(self) -> None:
        self.batches: list[int] = []

    def predict_au(self, pairs: np.ndarray) -> np.ndarray:
        self.batches.append(len(pairs))
        mean = pairs.reshape(len(pairs), -1).mean(axis=1, dtype=np.float64) / 255.0
        return np.repeat(mean[:, None], len(AU_NAMES), axis=1).astype(np.float32)


def test_the_learned_detector_runs_in_bounded_chunks_in_frame_order(
    smile_streamed: Streamed, monkeypatch: pytest.MonkeyPatch
) -> None:
    """A long video's inputs go to the detector a chunk at a time (not all of them stacked),
    and every frame gets its own answer back."""
    s = smile_streamed
    whole = PixelMeanBackend()
    want = score_aus(s.track, s.motion, s.crops, whole, s.cfg)  # type: ignore[arg-type]
    assert whole.batches == [72]
    monkeypatch.setattr(aus_module, "AU_CHUNK", 16)
    chunked = PixelMeanBackend()
    got = score_aus(s.track, s.motion, s.crops, chunked, s.cfg)  # type: ignore[arg-type]
    assert chunked.batches == [16, 16, 16, 16, 8]
    assert want.activity is not None and got.activity is not None
    assert np.array_equal(got.activity, want.activity) and len(np.unique(got.activity)) > 10
    assert np.array_equal(got.scores, want.scores)


def test_the_segments_see_the_lower_lip_geometry(smile_streamed: Streamed) -> None:
    # the blendshapes are blind to AU15 (mouthFrown ~0 on real sad faces); the lower-lip
    # arch sees it: the evidence the expression segments are cut from holds both
    from dataclasses import replace as dc_replace

    from mer.aus.geometry import geometry_prior
    from mer.face.blendshapes import BLENDSHAPE_NAMES

    s = smile_streamed
    pr = geometry_prior()
    pose = np.asarray(s.track.pose, np.float64)
    arch = pr["a"] + pr["b"] * (pose[:, 1] - pr["pitch0"])  # the population's neutral
    arch[5:15] -= 3.5 * pr["s"]  # lip corners down, lower lip pushed up: z = -3.5
    bs = np.zeros((s.track.n_frames, len(BLENDSHAPE_NAMES)), np.float32)
    bs[
        30:45, [BLENDSHAPE_NAMES.index("mouthSmileLeft"), BLENDSHAPE_NAMES.index("mouthSmileRight")]
    ] = 0.9
    track = dc_replace(s.track, lip_arch=arch, blendshapes=bs)
    r = score_aus(track, s.motion, s.crops, None, s.cfg)
    j15, j12 = AU_NAMES.index("AU15"), AU_NAMES.index("AU12")
    assert r.evidence is not None
    assert (r.evidence[5:15, j15] >= 0.5).all()
    assert (r.evidence[20:, j15] == 0.0).all()  # a neutral arch: no AU15, and no NaN
    assert r.evidence[36, j12] > 0.9  # the smile's blendshape evidence is kept
    assert (r.scores[5:15, j15] >= 0.5).all()
