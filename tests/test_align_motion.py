"""Alignment, optical-flow region motion and spotting on controlled inputs."""

import os
import tracemalloc
from pathlib import Path

import numpy as np
import pytest

from mer.face.align import load_template, smooth_params, umeyama_similarity
from mer.motion import (
    REGION_NAMES,
    FlowEstimator,
    TwoSidedMotion,
    build_region_masks,
    region_displacements,
    two_sided,
)
from mer.spotting import (
    SpottingConfig,
    apex_curve,
    spot_intervals,
)


def test_umeyama_recovers_similarity() -> None:
    rng = np.random.default_rng(1)
    src = rng.normal(size=(20, 2)) * 50
    angle, scale, t = 0.3, 1.7, np.array([5.0, -3.0])
    r = np.array([[np.cos(angle), -np.sin(angle)], [np.sin(angle), np.cos(angle)]])
    dst = src @ (scale * r).T + t
    m = umeyama_similarity(src, dst)
    np.testing.assert_allclose(m[:, :2], scale * r, atol=1e-9)
    np.testing.assert_allclose(m[:, 2], t, atol=1e-9)


def test_smoothing_removes_jitter_but_keeps_slow_motion() -> None:
    t = np.arange(90) / 30.0
    true = np.stack([np.ones(90), np.zeros(90), 10 * t, np.zeros(90)], 1)
    jitter = np.random.default_rng(2).normal(0, 0.5, true.shape)
    jitter[:, :2] = 0
    out = smooth_params(true + jitter, t, np.ones(90, bool), 0.1)
    inner = slice(10, 80)
    assert np.abs(out[inner] - true[inner]).max() < 0.5 * np.abs(jitter[inner]).max()


def test_template_is_in_unit_square() -> None:
    tpl = load_template()
    assert tpl.shape == (468, 2) and tpl.min() >= 0 and tpl.max() <= 1


def _texture(size: int, seed: int = 0) -> np.ndarray:
    import cv2

    img = np.random.default_rng(seed).integers(0, 255, (size, size)).astype(np.uint8)
    return cv2.GaussianBlur(img, (0, 0), 1.5)


def test_region_displacement_measures_local_shift_and_removes_rigid() -> None:
    masks = build_region_masks(128)
    flow = np.zeros((128, 128, 2), np.float32)
    flow[..., 0] = 2.0  # rigid shift of the whole face
    d = region_displacements(flow, masks)
    assert np.abs(d).max() < 1e-5
    i = REGION_NAMES.index("r_lip_corner")
    w = masks.weights[i].reshape(128, 128) > 0
    flow[w, 1] -= 1.5  # the right lip corner moves up
    d = region_displacements(flow, masks)
    assert abs(d[i, 1] + 1.5) < 0.2 and abs(d[i, 0]) < 0.2


def test_two_sided_motion_scores_the_movement_not_its_aftermath() -> None:
    import cv2

    masks = build_region_masks(96)
    base = _texture(96)
    frames = []
    for t in range(40):
        amp = 1.5 if 15 <= t <= 20 else 0.0  # a brief local movement, then back
        m = np.float32([[1, 0, 0], [0, 1, 0]])
        moved = cv2.warpAffine(base, m, (96, 96))
        if amp:
            y0, y1 = 60, 90
            shifted = np.roll(base, -int(amp), axis=0)
            moved = moved.copy()
            moved[y0:y1] = shifted[y0:y1]
        frames.append(moved)
    motion = TwoSidedMotion(masks, (10,), FlowEstimator("medium"))
    for i, f in enumerate(frames):
        motion.push(i, f)
    past, future = motion.finish()
    mag = np.linalg.norm(two_sided(past, future), axis=-1).max(axis=(1, 2))
    assert mag[17] > 0.5
    assert mag[27] < 0.2 < np.linalg.norm(past[27], axis=-1).max()  # past alone would fire


def test_spot_intervals_in_seconds_at_two_frame_rates() -> None:
    cfg = SpottingConfig()
    for fps in (25.0, 200.0):
        t = np.arange(int(3 * fps)) / fps
        score = np.exp(-0.5 * ((t - 1.5) / 0.06) ** 2) * 0.9
        ivs = spot_intervals(score, t, cfg)
        assert len(ivs) == 1
        iv = ivs[0]
        assert abs(t[iv.apex] - 1.5) < 1.5 / fps + 1e-9
        assert t[iv.onset] < 1.5 < t[iv.offset] and t[iv.offset] - t[iv.onset] < 0.5


def test_crop_store_keeps_the_crops_out_of_memory_and_reads_them_back() -> None:
    from mer.pipeline import CropStore

    rng = np.random.default_rng(0)
    crops = {i: rng.integers(0, 256, (128, 128), dtype=np.uint8) for i in (0, 1, 5, 9)}
    store = CropStore(128)
    for i, c in crops.items():
        store.add(i, c)
    assert len(store) == 4 and sorted(store) == [0, 1, 5, 9] and 5 in store and 3 not in store
    assert all(np.array_equal(store[i], c) for i, c in crops.items())
    store.add(12, crops[0])  # appending after a read: read back too
    assert np.array_equal(store[12], crops[0]) and np.array_equal(store[9], crops[9])
    with pytest.raises(KeyError):
        store[3]
    with pytest.raises(ValueError):
        store.add(13, crops[0][:64])
    store.close()


@pytest.mark.skipif(not Path("/proc/self/maps").is_file(), reason="needs Linux /proc")
def test_crop_store_holds_many_crops_neither_in_memory_nor_mapped() -> None:
    """3000 crops (49 MB, 100 s of video): the store holds only their index, and reading
    every one back maps nothing of its file into the process (a memory map would count
    each page read in the worker's resident set; the OS page cache keeps them instead)."""
    from mer.pipeline import CropStore

    base = np.random.default_rng(1).integers(0, 256, (128, 128), dtype=np.uint8)
    n = 3000
    with CropStore(128) as store:
        tracemalloc.start()
        try:
            for i in range(n):
                store.add(i, np.roll(base, i, axis=1))
            held_after_adding = tracemalloc.get_traced_memory()[0]
            tracemalloc.reset_peak()
            same = all(np.array_equal(store[i], np.roll(base, i, axis=1)) for i in range(n))
            read_peak = tracemalloc.get_traced_memory()[1]
        finally:
            tracemalloc.stop()
        assert same and len(store) == n
        assert held_after_adding < 2 * 2**20  # the index, not 49 MB of crops
        assert read_peak < 2**20  # a crop or two at a time
        st = os.fstat(store._file.fileno())
        dev = f"{os.major(st.st_dev):02x}:{os.minor(st.st_dev):02x}"
        maps = [m.split() for m in Path("/proc/self/maps").read_text().splitlines()]
        assert not [m for m in maps if m[3] == dev and m[4] == str(st.st_ino)]


def test_apex_curve_follows_the_au_detector_at_the_noise_floor() -> None:
    """A micro movement below the flow noise: the motion maximum is a noise spike (0.4 s),
    the AU detector's activity peaks at the true apex (1.5 s); with ``au_weight`` the apex
    curve peaks there, without it (or without activity) on the spike."""
    fps = 50.0
    t = np.arange(int(3 * fps)) / fps
    strength = 0.002 + 0.001 * np.exp(-0.5 * ((t - 1.5) / 0.1) ** 2)
    strength[20] = 0.01  # a noise spike larger than the movement
    act = np.exp(-0.5 * ((t - 1.5) / 0.08) ** 2)
    cfg = SpottingConfig()
    assert cfg.au_weight > 0
    assert abs(t[np.argmax(apex_curve(strength, t, cfg, act))] - 1.5) <= 1 / fps + 1e-9
    assert np.argmax(apex_curve(strength, t, cfg)) == 20
    off = SpottingConfig(au_weight=0.0)
    assert np.array_equal(apex_curve(strength, t, off, act), apex_curve(strength, t, cfg))
    with pytest.raises(ValueError, match="shape"):
        apex_curve(strength, t, cfg, act[:-1])


def test_interval_apex_is_the_curve_maximum_inside_the_interval_only() -> None:
    """Onset/offset from the score, the apex from the given apex curve, inside them."""
    t = np.arange(30) / 30
    score = np.zeros(30)
    score[8:21] = 0.9
    curve = np.zeros(30)
    curve[[5, 12, 25]] = [3.0, 2.0, 9.0]  # 5 and 25 are outside the interval
    (iv,) = spot_intervals(score, t, SpottingConfig(), curve=curve)
    assert (iv.onset, iv.apex, iv.offset) == (8, 12, 20) and iv.score == pytest.approx(score[12])
