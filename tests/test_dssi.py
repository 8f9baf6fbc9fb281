"""Approximate rank pooling and DSSI against the reference values of the mission doc."""

import numpy as np
import pytest

from mer.dssi import dssi, dssi_indices, dynamic_image, rank_pooling_weights, to_uint8


def test_rank_pooling_reference_values() -> None:
    np.testing.assert_allclose(rank_pooling_weights(3), [-4 / 3, 2 / 3, 2 / 3], atol=1e-4)
    np.testing.assert_allclose(rank_pooling_weights(5), [-3.7, 0.3, 1.3, 1.3, 0.8], atol=1e-4)


@pytest.mark.parametrize("T", [1, 2, 3, 7, 40, 200])
def test_rank_pooling_weights_sum_to_zero(T: int) -> None:
    assert abs(rank_pooling_weights(T).sum()) < 1e-9


def test_rank_pooling_rejects_empty() -> None:
    with pytest.raises(ValueError):
        rank_pooling_weights(0)


def test_dynamic_image_encodes_direction_of_change() -> None:
    # a pixel that brightens over time gets a positive value, one that darkens negative
    T = 9
    frames = np.zeros((T, 2, 2), np.float32)
    frames[:, 0, 0] = np.linspace(0, 100, T)
    frames[:, 1, 1] = np.linspace(100, 0, T)
    frames[:, 0, 1] = 50.0
    di = dynamic_image(frames)
    assert di[0, 0] > 0 > di[1, 1]
    assert abs(di[0, 1]) < 1e-3  # constant pixels vanish (weights sum to 0)


def test_dssi_shapes_and_sparse_indices() -> None:
    frames = np.random.default_rng(0).integers(0, 255, (60, 16, 16, 3)).astype(np.uint8)
    out = dssi(frames, n_segments=3, frames_per_segment=5, global_frames=9)
    assert out.shape == (4, 16, 16, 3) and out.dtype == np.float32
    segs, glob = dssi_indices(0, 59, 3, 5, 9)
    assert [len(s) for s in segs] == [5, 5, 5] and len(glob) == 9
    assert segs[0][0] == 0 and segs[-1][-1] == 59 and glob[-1] == 59
    assert to_uint8(out[0]).dtype == np.uint8


def test_flow_channels_measure_the_movement_in_model_crop_pixels() -> None:
    """A texture moving right by 1 px per frame: the segment flows read u ~ +1 px (encoded
    128 + FLOW_GAIN), v ~ 0; the global flow is the onset-to-most-displaced one."""
    import cv2

    from mer.inference import FLOW_GAIN, dssi_u8_from_crops

    rng = np.random.default_rng(0)
    base = cv2.GaussianBlur(rng.integers(0, 255, (96, 96)).astype(np.uint8), (0, 0), 2.0)
    crops = {i: base[16:80, 16 - i : 80 - i].copy() for i in range(13)}  # content moves +x
    params = {"n_segments": 3, "frames_per_segment": 5, "global_frames": 9}
    plain = dssi_u8_from_crops(crops, 0, 12, params)
    flow = dssi_u8_from_crops(crops, 0, 12, params | {"flow": True})
    assert plain.shape == (4, 1, 64, 64) and flow.shape == (4, 3, 64, 64)
    assert np.array_equal(flow[:, :1], plain)  # channel 0 is the dynamic image
    inner = (slice(None), slice(16, 48), slice(16, 48))
    u = (flow[:, 1][inner].astype(float) - 128) / FLOW_GAIN
    v = (flow[:, 2][inner].astype(float) - 128) / FLOW_GAIN
    # segments span 4 frames (4 px, clipped at the +2 px encoding range); global: 12 px
    assert np.median(u[:3]) == pytest.approx(127 / FLOW_GAIN, abs=0.05)
    assert abs(np.median(v)) < 0.1
    small = {i: base[16:80, 16 - (i // 6) : 80 - (i // 6)].copy() for i in range(13)}
    f2 = dssi_u8_from_crops(small, 0, 12, params | {"flow": True})
    u2 = (f2[:, 1][inner].astype(float) - 128) / FLOW_GAIN
    assert np.median(u2[3]) == pytest.approx(2.0, abs=0.2)  # onset -> last (most moved)


def _texture(side: int, seed: int = 0) -> np.ndarray:
    import cv2

    rng = np.random.default_rng(seed)
    return cv2.GaussianBlur(rng.integers(0, 255, (side, side)).astype(np.uint8), (0, 0), 2.0)


def test_flow_at_128_px_is_reported_in_model_crop_pixels() -> None:
    """128 px crops (the pipeline's aligned crops) whose content jumps 2 px right at frames 6
    and 12: with ``flow_size`` 128 the DSSI flow is computed at 128 px and area-averaged to
    the 64 px model crop, so the global span (onset -> most displaced frame, 4 px at 128)
    reads u ~ 2 model px, v ~ 0."""
    from mer.inference import FLOW_GAIN, dssi_u8_from_crops

    base = _texture(192)
    crops = {i: base[32:160, 32 - i // 6 * 2 : 160 - i // 6 * 2].copy() for i in range(13)}
    params = {"n_segments": 3, "frames_per_segment": 5, "global_frames": 9, "flow": True}
    d = dssi_u8_from_crops(crops, 0, 12, params | {"flow_size": 128})
    assert d.shape == (4, 3, 64, 64)
    inner = (slice(16, 48), slice(16, 48))
    u_global = (d[3, 1][inner].astype(float) - 128) / FLOW_GAIN
    v_global = (d[3, 2][inner].astype(float) - 128) / FLOW_GAIN
    assert np.median(u_global) == pytest.approx(2.0, abs=0.15)  # 4 px at 128 = 2 model px
    assert abs(np.median(v_global)) < 0.1
    # the dynamic-image channel is the same whatever the flow resolution
    d64 = dssi_u8_from_crops(crops, 0, 12, params)
    assert np.array_equal(d[:, 0], d64[:, 0])


def test_au_input_carries_the_flow_from_reference_to_frame() -> None:
    """K = 2 without flow (frame, reference as model crops), K = 4 with it: u ~ the
    reference -> frame shift in model pixels (a 128 px shift of 1.5 px reads 0.75)."""
    import cv2

    from mer.inference import FLOW_GAIN, au_input_u8, model_crop

    base = _texture(160, seed=1)
    ref = base[16:144, 16:144].copy()
    m = np.float32([[1, 0, 1.5], [0, 1, -0.5]])  # content moves +1.5 px x, -0.5 px y
    frame = cv2.warpAffine(base, m, (160, 160), flags=cv2.INTER_CUBIC)[16:144, 16:144].copy()
    plain = au_input_u8(frame, ref, {})
    assert plain.shape == (2, 1, 64, 64) and plain.dtype == np.uint8
    assert np.array_equal(plain[0, 0], model_crop(frame))
    assert np.array_equal(plain[1, 0], model_crop(ref))
    x = au_input_u8(frame, ref, {"flow": True, "flow_size": 128, "flow_preset": "medium"})
    assert x.shape == (4, 1, 64, 64) and np.array_equal(x[:2], plain)
    inner = (slice(16, 48), slice(16, 48))
    u = (x[2, 0][inner].astype(float) - 128) / FLOW_GAIN
    v = (x[3, 0][inner].astype(float) - 128) / FLOW_GAIN
    assert np.median(u) == pytest.approx(0.75, abs=0.1)
    assert np.median(v) == pytest.approx(-0.25, abs=0.1)
    # no movement, no flow
    still = au_input_u8(ref, ref, {"flow": True, "flow_size": 128})
    assert np.abs(still[2:].astype(int) - 128).max() <= 2


def test_flip_augmentation_negates_the_horizontal_flow() -> None:
    """A mirrored movement to the right is a movement to the left: the flip must negate u
    (and leave v and the grey channels merely mirrored)."""
    import torch

    from mer.training import augment

    x = torch.randn(64, 4, 1, 8, 8)
    rng = np.random.default_rng(0)
    y = augment(x, rng, (2,))
    flipped = ~torch.isclose(y[:, 0], x[:, 0]).all(dim=(1, 2, 3))
    assert 0 < int(flipped.sum()) < 64
    xf = torch.flip(x[flipped], dims=[-1])
    assert torch.equal(y[flipped][:, [0, 1, 3]], xf[:, [0, 1, 3]])
    assert torch.equal(y[flipped][:, 2], -xf[:, 2])
    assert torch.equal(y[~flipped], x[~flipped])
    # DSSI layout (B, S+1, C, H, W): u is channel 1 of every image
    d = torch.randn(32, 4, 3, 8, 8)
    e = augment(d, np.random.default_rng(1), (slice(None), 1))
    f = ~torch.isclose(e[:, :, 0], d[:, :, 0]).all(dim=(1, 2, 3))
    assert torch.equal(e[f][:, :, 1], -torch.flip(d[f], dims=[-1])[:, :, 1])
    assert torch.equal(e[f][:, :, 2], torch.flip(d[f], dims=[-1])[:, :, 2])
