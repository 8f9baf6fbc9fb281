"""Stage: Action Units (mer.pipeline.aus)."""

from __future__ import annotations

from dataclasses import replace
from types import SimpleNamespace

import numpy as np

from mer.aus import rules as au_rules
from mer.aus.fusion import FusionConfig
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
