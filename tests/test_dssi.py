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
