"""Tests for mer.models: registry, SMA-STN (STMA, ablations), DE-Loss, AU detector,
self-describing checkpoints, and a tiny training loop. Small inputs (32x32) keep it fast."""

from __future__ import annotations

import pytest
import torch

from mer.models import (
    SMASTN,
    ModelCard,
    create_model,
    de_loss,
    list_models,
    load_checkpoint,
    neutral_like,
    save_checkpoint,
    sha256_file,
    sma_stn_loss,
)
from mer.models.layers import NonLocalBlock
from mer.schemas import AU_NAMES, EMOTION_CLASSES_MEGC

H = 32


@pytest.fixture(autouse=True, scope="module")
def _flush_denormals():
    """Tiny training steps produce denormal floats that are slow on CPU; flush them here
    and restore the default afterwards."""
    torch.set_flush_denormal(True)
    yield
    torch.set_flush_denormal(False)


def _input_for(model: torch.nn.Module, batch: int = 2) -> torch.Tensor:
    if isinstance(model, SMASTN):
        return torch.randn(batch, model.num_segments + 1, model.in_chans, H, H)
    return torch.randn(batch, 2, model.in_chans, H, H)


def test_registry_lists_and_rejects_unknown() -> None:
    names = list_models()
    assert {"sma_stn", "sma_stn_nostma", "au_detector"} <= set(names)
    with pytest.raises(ValueError, match="sma_stn"):
        create_model("no_such_model")
    m = create_model("sma_stn", num_classes=5)
    assert m.model_name == "sma_stn" and m.model_kwargs == {"num_classes": 5}


@pytest.mark.parametrize("name", list_models())
def test_smoke_every_model(name: str) -> None:
    torch.manual_seed(0)
    model = create_model(name)
    x = _input_for(model)
    out = model(x)
    expected = len(AU_NAMES) if name == "au_detector" else len(EMOTION_CLASSES_MEGC)
    assert out.shape == (2, expected) and out.dtype == torch.float32
    assert torch.isfinite(out).all()
    feats = model.forward_features(x)
    assert feats.shape == (2, model.num_features)
    out.sum().backward()
    grads = [p.grad for p in model.parameters() if p.requires_grad]
    assert all(g is not None and torch.isfinite(g).all() for g in grads)
    assert "input_size" in model.default_cfg and "mean" in model.default_cfg


def test_sma_stn_options_and_bad_input() -> None:
    m = create_model("sma_stn", num_classes=5, num_segments=2, in_chans=3)
    assert m(torch.randn(2, 3, 3, H, H)).shape == (2, 5)
    with pytest.raises(ValueError):
        m(torch.randn(2, 4, 3, H, H))
    separate = create_model("sma_stn", share_backbone=False)
    assert separate.global_backbone is not None
    assert separate(torch.randn(2, 4, 1, H, H)).shape == (2, 3)
    local_only = create_model("sma_stn", use_global=False)
    assert local_only.forward_features(torch.randn(2, 4, 1, H, H)).shape == (2, 256)


def test_stma_segment_weights_sum_to_one() -> None:
    torch.manual_seed(0)
    m = create_model("sma_stn").eval()
    x = torch.randn(3, 4, 1, H, H)
    out = m.forward_intermediates(x)
    w = out["segment_weights"]
    assert w.shape == (3, 3) and (w >= 0).all()
    torch.testing.assert_close(w.sum(dim=1), torch.ones(3))
    m(x)
    torch.testing.assert_close(m.segment_weights, w.detach())
    plain = create_model("sma_stn", use_stma=False).eval()
    plain(x)
    torch.testing.assert_close(plain.segment_weights, torch.full((3, 3), 1 / 3))


def test_ablation_flag_changes_module_set() -> None:
    full = create_model("sma_stn")
    ablated = create_model("sma_stn", use_stma=False)
    assert any(isinstance(mod, NonLocalBlock) for mod in full.modules())
    assert not any(isinstance(mod, NonLocalBlock) for mod in ablated.modules())
    assert full.segment_attention is not None and ablated.segment_attention is None
    n_full = sum(p.numel() for p in full.parameters())
    n_abl = sum(p.numel() for p in ablated.parameters())
    assert n_abl < n_full < 2_000_000
    assert type(create_model("sma_stn_nostma").non_local) is type(ablated.non_local)


def test_non_local_block_starts_as_identity() -> None:
    blk = NonLocalBlock(16).eval()
    x = torch.randn(2, 16, 5, 5)
    torch.testing.assert_close(blk(x), x)
    assert blk.last_attention is not None and blk.last_attention.shape == (2, 25, 25)


def test_de_loss_hinge() -> None:
    f = torch.randn(4, 8)
    assert de_loss(f, f.clone(), margin=1.0).item() == pytest.approx(1.0)
    assert de_loss(f, f + 2.0, margin=1.0).item() == 0.0  # RMS deviation 2 > margin 1
    g = torch.zeros(4, 8, requires_grad=True)
    loss = de_loss(g + 0.1, torch.zeros(8), margin=1.0)
    assert 0 < loss.item() < 1
    loss.backward()
    assert g.grad is not None and g.grad.abs().sum() > 0


def test_total_loss_with_and_without_de() -> None:
    torch.manual_seed(0)
    m = create_model("sma_stn", num_classes=3)
    x, y = torch.randn(4, 4, 1, H, H), torch.tensor([0, 1, 2, 0])
    out = sma_stn_loss(m, x, y, lambda_de=0.5, margin=1.0)
    assert m.training  # neutral pass restores the mode
    torch.testing.assert_close(out["loss"], out["ce"] + 0.5 * out["de"])
    assert out["de"].item() > 0
    out["loss"].backward()
    off = sma_stn_loss(m, x, y, lambda_de=0.0)
    assert off["de"].item() == 0.0
    assert neutral_like(x).abs().sum() == 0


def _card(model: torch.nn.Module) -> ModelCard:
    return ModelCard.from_model(
        model,
        training_data="synthetic test batch",
        metrics={"uf1": 0.5, "uar": 0.25},
        version="0.1.0-test",
        license="MIT; credit: Liu, Zheng, Zong (arXiv 2010.09342)",
    )


@pytest.mark.parametrize(
    ("name", "kwargs"),
    [("sma_stn", {"num_classes": 5, "in_chans": 3}), ("au_detector", {})],
)
def test_checkpoint_round_trip(tmp_path, name: str, kwargs: dict) -> None:
    torch.manual_seed(0)
    model = create_model(name, **kwargs)
    # non-trivial BN running stats and weights
    model.train()
    model(_input_for(model, 4))
    model.eval()
    x = _input_for(model, 2)
    ref = model(x)
    card = _card(model)
    path = tmp_path / "m.pt"
    digest = save_checkpoint(path, model, card)
    assert digest == sha256_file(path) and len(digest) == 64
    loaded, meta = load_checkpoint(path, expected_sha256=digest)
    assert not loaded.training
    assert torch.equal(loaded(x), ref)
    assert meta == card
    assert meta.model_name == name and meta.model_kwargs == kwargs
    if name == "au_detector":
        assert meta.labels == list(AU_NAMES) and meta.label_kind == "aus"
    else:
        assert meta.dssi["n_segments"] == 3 and meta.input_size == [3, 112, 112]
    with pytest.raises(ValueError, match="sha256"):
        load_checkpoint(path, expected_sha256="0" * 64)


def test_checkpoint_rejects_foreign_file(tmp_path) -> None:
    path = tmp_path / "x.pt"
    torch.save({"state_dict": {}}, path)
    with pytest.raises(ValueError):
        load_checkpoint(path)
    with pytest.raises(TypeError):
        ModelCard("sma_stn", extra={"bad": object()}).to_dict()


def test_tiny_training_loop_reduces_loss() -> None:
    torch.manual_seed(0)
    n, s = 8, 3
    x = 0.1 * torch.randn(n, s + 1, 1, H, H)
    y = torch.tensor([0, 1] * (n // 2))
    x[y == 0, :, :, :8, :8] += 2.0  # class 0: blob top-left
    x[y == 1, :, :, -8:, -8:] += 2.0  # class 1: blob bottom-right
    model = create_model("sma_stn", num_classes=2, channels=(8, 16, 32, 32), drop_rate=0.0)
    opt = torch.optim.Adam(model.parameters(), lr=3e-3)
    model.train()
    losses = []
    for _ in range(20):
        out = sma_stn_loss(model, x, y, lambda_de=0.1)
        opt.zero_grad()
        out["loss"].backward()
        opt.step()
        losses.append(out["ce"].item())
    assert losses[-1] < 0.5 * losses[0]
    # BN running statistics are not settled after 20 steps: check in train mode
    assert (out["logits"].argmax(1) == y).all()


def test_sma_stn_flip_tta_averages_the_input_and_its_mirror() -> None:
    """In eval mode ``flip_tta`` averages the logits of x and of its mirror (u negated);
    training mode is unchanged; the mirror of the mirror is the input."""
    import torch

    from mer.models import create_model
    from mer.models.sma_stn import mirror_dssi

    torch.manual_seed(0)
    m = create_model("sma_stn", num_classes=4, in_chans=3, channels=[8, 8, 8, 8], flip_tta=True)
    x = torch.randn(2, 4, 3, 32, 32)
    assert torch.equal(mirror_dssi(mirror_dssi(x)), x)
    assert torch.equal(mirror_dssi(x)[:, :, 1], -torch.flip(x, dims=[-1])[:, :, 1])
    m.eval()
    with torch.no_grad():
        both = m(x)
        m.flip_tta = False
        plain, mirrored = m(x), m(mirror_dssi(x))
    assert torch.allclose(both, 0.5 * (plain + mirrored), atol=1e-5)
    assert not torch.allclose(plain, mirrored, atol=1e-3)  # the mirror is a different input
