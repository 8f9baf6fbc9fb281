"""Training/evaluation plumbing: metrics, folds, and the learned-model path end to end.

The tiny models trained here prove the plumbing only (a few steps on a handful of
synthetic clips); the shipped weights come from `mer train` (see model_store/MODEL_CARD.md).
"""

from pathlib import Path

import numpy as np
import pytest

from mer.training import confusion, emotional_metrics, group_folds, per_au_f1, uf1_uar


def test_uf1_uar_on_a_known_confusion() -> None:
    cm = confusion(np.array([0, 0, 1, 1, 2, 2]), np.array([0, 1, 1, 1, 2, 0]), 3)
    assert cm.tolist() == [[1, 1, 0], [0, 2, 0], [1, 0, 1]]
    uf1, uar = uf1_uar(cm)
    f1 = [2 * 1 / (2 + 1 + 1), 2 * 2 / (4 + 1 + 0), 2 * 1 / (2 + 0 + 1)]
    assert uf1 == pytest.approx(np.mean(f1)) and uar == pytest.approx((0.5 + 1 + 0.5) / 3)


def test_emotional_metrics_drop_none_clips_and_mask_the_none_class() -> None:
    classes = ["negative", "positive", "surprise", "none"]
    y = np.array([0, 1, 2, 3, 0])
    probs = np.array([
        [0.2, 0.1, 0.1, 0.6],  # negative clip called none -> best emotion: negative
        [0.1, 0.5, 0.3, 0.1],
        [0.5, 0.1, 0.3, 0.1],  # surprise clip called negative
        [0.1, 0.1, 0.1, 0.7],  # none clip: not counted
        [0.6, 0.2, 0.1, 0.1],
    ])  # fmt: skip
    m = emotional_metrics(y, probs, classes)
    assert m["classes"] == classes[:3] and m["n_test_clips"] == 4
    assert m["confusion"] == [[2, 0, 0], [0, 1, 0], [1, 0, 0]]
    assert m["uar"] == pytest.approx((1 + 1 + 0) / 3)


def test_group_folds_never_share_a_subject() -> None:
    groups = [f"s{i % 7}" for i in range(40)]
    folds = group_folds(groups, 3)
    assert len(folds) == 3 and set().union(*folds) == set(groups)
    assert sum(len(f) for f in folds) == 7  # disjoint
    assert len(group_folds(groups, None)) == 7  # LOSO


def test_per_au_f1() -> None:
    t = np.zeros((4, 14), np.float32)
    t[:2, 8] = 1  # AU12 in two samples
    p = np.zeros_like(t)
    p[0, 8] = 0.9
    p[2, 8] = 0.8
    assert per_au_f1(t, p) == {"AU12": pytest.approx(0.5)}


def test_trained_checkpoints_drive_the_pipeline(
    trained_store: Path, single_face_video: Path
) -> None:
    from mer.inference import AU_FILE, EMOTION_FILE
    from mer.models.weights import load_checkpoint
    from mer.pipeline import analyze_video
    from mer.settings import Settings

    _, meta = load_checkpoint(trained_store / EMOTION_FILE)
    assert meta.labels[:3] == ["negative", "positive", "surprise"] and meta.dssi["n_segments"] == 3
    assert "London Set" in meta.license and "mer train" in meta.training_data
    r = analyze_video(single_face_video, settings=Settings(model_dir=trained_store))
    tasks = {m.task: m for m in r.models}
    assert tasks["emotion"].method == "learned" and tasks["emotion"].sha256
    au_models = [m.name for m in r.models if m.task == "au"]
    assert "au_detector" in au_models and "au_detector" in r.au_method
    assert r.intervals and all(iv.emotion is not None for iv in r.intervals)
    expr = [iv for iv in r.intervals if iv.kind in ("micro", "macro")]
    assert expr, r.intervals
    p = expr[0].emotion.probabilities
    assert set(p) >= {"negative", "positive", "surprise"} and sum(p.values()) == pytest.approx(
        1.0, abs=1e-3
    )
    assert (trained_store / AU_FILE).is_file()
    card = (trained_store / "MODEL_CARD.md").read_text()
    assert "London Set" in card and "sha256" in card


def test_mer_evaluate_writes_report_with_ablation(trained_store: Path, tmp_path: Path) -> None:
    """`mer evaluate` end to end on a tiny synthetic set: grouped CV, three ablation groups
    (DSSI without the flow channels and AU inputs without flow, AU detector only: both the
    prepared inputs less their flow channels; 2 segments: prepared separately), apex MAE,
    JSON + MD + PNG; the apex spotted with each held-out fold's AU detector."""
    import json

    from typer.testing import CliRunner

    from mer.cli import app

    data = trained_store.parent / "set"
    out = tmp_path / "rep"
    args = ["evaluate", str(data), "--folds", "2", "--epochs", "1", "--au-epochs", "1",
            "--apex-clips", "2", "--out", str(out)]  # fmt: skip
    bad = CliRunner().invoke(app, [*args, "--ablate", "bogus"])
    assert bad.exit_code == 2 and not out.exists()
    bad = CliRunner().invoke(app, [*args, "--only", "bogus"])
    assert bad.exit_code == 2 and not out.exists()
    res = CliRunner().invoke(app, [*args, "--ablate", "flow", "--ablate", "au-flow",
                                   "--ablate", "segments"])  # fmt: skip
    assert res.exit_code == 0, res.output
    rep = json.loads((out / "report.json").read_text())
    assert rep["main"]["folds"] == 2 and rep["main"]["config"]["flow"] is True
    assert rep["main"]["config"]["au_flow"] is True
    no_flow, no_au_flow = "no flow channels (DSSI only)", "AU detector without flow channels"
    abl = rep["ablations"]
    assert set(abl) == {no_flow, no_au_flow, "segments=2", "segments=5", "full (reference)"}
    assert abl[no_flow]["config"]["flow"] is False
    assert "uf1" in abl[no_flow] and "au_macro_f1" not in abl[no_flow]
    assert abl[no_au_flow]["config"]["au_flow"] is False
    assert "au_macro_f1" in abl[no_au_flow] and "uf1" not in abl[no_au_flow]
    assert "au_macro_f1" in abl["full (reference)"]
    assert rep["apex"]["n"] == 2 and rep["apex"]["mae_frames"] >= 0 and "median_rel" in rep["apex"]
    # the apex used the AU detector of the fold that held each clip's identity out
    assert rep["apex"]["au_detector"] == "fold models (held-out identities)"
    assert "Ablations" in (out / "report.md").read_text() and (out / "report.png").is_file()
    assert {p.name for p in (out / "cache").glob("*.json")} == {
        "prep_s3_flow1_au1.json", "prep_s2_flow1_au1.json", "prep_s5_flow1_au1.json"}  # fmt: skip
    # the AU detector alone: a report without emotion figures (report.md and .png too)
    out_au = tmp_path / "rep_au"
    res = CliRunner().invoke(app, [*args[:-1], str(out_au), "--only", "au"])
    assert res.exit_code == 0, res.output
    rep = json.loads((out_au / "report.json").read_text())
    assert "uf1" not in rep["main"] and "au_macro_f1" in rep["main"] and rep["apex"]["n"] == 2
    md = (out_au / "report.md").read_text()
    assert "AU macro-F1" in md and "apex MAE" in md and "emotion UF1" not in md
    assert (out_au / "report.png").is_file()


def test_without_flow_gives_the_flow_free_inputs() -> None:
    """Dropping the flow channels of prepared clips is the flow-free preparation: DSSI
    channel 0 (the dynamic image), AU inputs 0-1 (frame, reference)."""
    from mer.training import PreparedClip, without_flow

    rng = np.random.default_rng(0)
    c = PreparedClip("synth/s1", "EP01_01", "positive", ("AU12",),
                     rng.integers(0, 256, (4, 3, 8, 8), dtype=np.uint8),
                     rng.integers(0, 256, (5, 4, 1, 8, 8), dtype=np.uint8),
                     np.zeros((5, 14), np.float32))  # fmt: skip
    (a,) = without_flow([c], dssi=True, au=False)
    assert a.dssi.shape == (4, 1, 8, 8) and np.array_equal(a.dssi[:, 0], c.dssi[:, 0])
    assert a.pairs is c.pairs
    (b,) = without_flow([c], dssi=False, au=True)
    assert b.dssi is c.dssi and b.pairs.shape == (5, 2, 1, 8, 8)
    assert np.array_equal(b.pairs, c.pairs[:, :2])


def test_au_thresholds_are_set_on_held_out_clips_and_folded_into_the_bias() -> None:
    """An AU whose held-out positives are exactly the clips with probability above 0.6 gets
    threshold 0.6 (the perfect one nearest 0.5), and after the bias shift the model's
    probability 0.5 is that threshold; an AU without positives keeps 0.5 and its bias."""
    import torch

    from mer.models import create_model
    from mer.schemas import AU_NAMES
    from mer.training import PAIR_MEAN, PAIR_STD, PreparedClip, calibrate_au_thresholds, predict

    torch.manual_seed(0)
    model = create_model("au_detector", channels=[4, 8, 8, 8]).eval()
    with torch.no_grad():
        model.fc.weight.mul_(200.0)  # spread the probabilities over (0, 1)
    rng = np.random.default_rng(0)
    pairs = rng.integers(0, 256, (40, 2, 1, 16, 16), dtype=np.uint8)
    before = predict(model, pairs, PAIR_MEAN, PAIR_STD, True)
    j = AU_NAMES.index("AU12")
    t = np.zeros((40, len(AU_NAMES)), np.float32)
    t[:, j] = before[:, j] > 0.6
    # decidable: positives and negatives, and negatives in (0.55, 0.6] rule out 0.55
    assert 0 < t[:, j].sum() < 40 and ((before[:, j] > 0.55) & (before[:, j] <= 0.6)).any()
    clip = PreparedClip("s", "c", None, (), np.zeros((4, 1, 16, 16), np.uint8), pairs, t)
    bias0 = model.fc.bias.detach().clone()
    thr = calibrate_au_thresholds(model, [clip])
    assert thr["AU01"] == 0.5 and model.fc.bias[0] == bias0[0]
    assert thr["AU12"] == 0.6
    after = predict(model, pairs, PAIR_MEAN, PAIR_STD, True)
    assert np.array_equal(after[:, j] >= 0.5, before[:, j] >= thr["AU12"])


def test_mer_train_one_model_on_several_roots(trained_store: Path, tmp_path: Path) -> None:
    """`mer train ROOT --extra-data ROOT2 --only emotion`: the clips of both roots (each
    prepared and cached on its own), only the SMA-STN written, the card naming both roots;
    a bad --only is refused before any work."""
    from typer.testing import CliRunner

    from mer.cli import app
    from mer.inference import AU_FILE, EMOTION_FILE
    from mer.models.weights import load_checkpoint
    from mer.synth.dataset import generate_dataset

    data = trained_store.parent / "set"
    more = tmp_path / "more"
    generate_dataset(more, 4, seed=5, identities=["001", "002"], progress=False,
                     max_frames=12)  # fmt: skip
    out = tmp_path / "store"
    args = ["train", str(data), "--extra-data", str(more), "--out", str(out), "--epochs", "1"]
    bad = CliRunner().invoke(app, [*args, "--only", "both"])
    assert bad.exit_code == 2 and not out.exists()
    res = CliRunner().invoke(app, [*args, "--only", "emotion"])
    assert res.exit_code == 0, res.output
    assert (out / EMOTION_FILE).is_file() and not (out / AU_FILE).exists()
    assert {p.name for p in (out / ".cache").glob("*.json")} == {"prep.json", "prep_more.json"}
    _, meta = load_checkpoint(out / EMOTION_FILE)
    assert "set, more" in meta.training_data and "--only emotion" in meta.training_data
    n_main = len(list(data.glob("sub*/*")))
    assert f"{n_main + 4} clips" in meta.training_data


def test_cross_validate_train_only_clips_join_training_but_are_never_scored(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    """Training-only clips (an extra data set of the same subjects) go into the folds whose
    test subjects they do not share; the test clips, hence the metrics, are the main set's."""
    import mer.training as T
    import mer.training.crossval as CV

    rng = np.random.default_rng(0)

    def clip(subject: str, name: str, label: str) -> T.PreparedClip:
        return T.PreparedClip(subject, name, label, (),
                              rng.integers(0, 256, (4, 1, 8, 8), dtype=np.uint8),
                              rng.integers(0, 256, (5, 2, 1, 8, 8), dtype=np.uint8),
                              np.zeros((5, 14), np.float32))  # fmt: skip

    main = [clip(f"s{i % 4}", f"m{i}", ["negative", "positive"][i % 2]) for i in range(16)]
    extra = [clip(f"s{i % 4}", f"x{i}", "positive") for i in range(8)]
    seen: list[set[str]] = []

    def fake_train(train, classes, cfg):
        seen.append({c.clip for c in train})
        return object()

    monkeypatch.setattr(CV, "train_emotion", fake_train)
    monkeypatch.setattr(CV, "predict", lambda m, x, *a: np.tile([0.6, 0.4], (len(x), 1)))
    cfg = T.TrainConfig()
    res = T.cross_validate(main, ["negative", "positive"], cfg, 2, train_aus=False,
                           train_only=extra)  # fmt: skip
    assert res["n_test_clips"] == 16  # every main clip scored once, no extra clip
    folds = T.group_folds([c.subject for c in main], 2, cfg.seed)
    for test, names in zip(folds, seen, strict=True):
        want = {c.clip for c in [*main, *extra] if c.subject not in test}
        assert names == want and any(n.startswith("x") for n in names)


def test_cross_validate_hands_each_fold_au_detector_to_on_fold(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    """``on_fold`` gets every fold's AU detector with that fold's test subjects, which the
    detector never trained on; :func:`fold_backends` maps each subject to its fold's
    detector (the apex MAE then spots with a detector that never saw the clip)."""
    import mer.training as T
    import mer.training.crossval as CV

    rng = np.random.default_rng(0)
    clips = [T.PreparedClip(f"s{i % 6}", f"c{i}", "positive", (),
                            rng.integers(0, 256, (4, 1, 8, 8), dtype=np.uint8),
                            rng.integers(0, 256, (5, 4, 1, 8, 8), dtype=np.uint8),
                            np.zeros((5, 14), np.float32)) for i in range(12)]  # fmt: skip

    class FakeAU:
        def __init__(self, subjects: set[str]) -> None:
            self.subjects = subjects

    monkeypatch.setattr(CV, "train_au", lambda train, cfg: FakeAU({c.subject for c in train}))
    monkeypatch.setattr(CV, "predict", lambda m, x, *a: np.zeros((len(x), 14), np.float32))
    got: list[tuple[set[str], FakeAU]] = []
    cfg = T.TrainConfig()
    T.cross_validate(clips, ["positive"], cfg, 3, fit_emotion=False,
                     on_fold=lambda test, au: got.append((test, au)))  # fmt: skip
    assert len(got) == 3
    assert set().union(*(t for t, _ in got)) == {f"s{i}" for i in range(6)}
    for test, model in got:
        assert test and not test & model.subjects
    backends = T.fold_backends(got, cfg)
    assert set(backends) == {f"s{i}" for i in range(6)}
    for test, model in got:
        for subject in test:
            assert backends[subject].au.model is model and backends[subject].emotion is None


def test_tune_apex_script_scores_only_clips_evaluate_does_not(
    trained_store: Path, tmp_path: Path
) -> None:
    """scripts/tune_apex.py end to end on the tiny set: fold AU detectors, one apex MAE per
    weight, on clips outside those `mer evaluate --apex-clips N` scores."""
    import subprocess
    import sys

    data = trained_store.parent / "set"
    script = Path(__file__).resolve().parents[1] / "scripts" / "tune_apex.py"
    res = subprocess.run(
        [sys.executable, str(script), str(data), "--clips", "20", "--eval-clips", "4",
         "--weights", "0", "1", "--folds", "2", "--au-epochs", "1", "--cache", str(tmp_path),
         "--workers", "1"],  # fmt: skip
        capture_output=True, text=True, timeout=600, check=False,
    )  # fmt: skip
    assert res.returncode == 0, res.stderr[-2000:]
    lines = [ln for ln in res.stdout.splitlines() if ln.startswith("au_weight")]
    assert [ln.split(":")[0] for ln in lines] == [
        "au_weight 0 au_smooth_s 0.03", "au_weight 1 au_smooth_s 0.03"]  # fmt: skip
    assert all(ln.endswith(", 8 clips)") for ln in lines), lines  # 12 clips, 4 evaluated
