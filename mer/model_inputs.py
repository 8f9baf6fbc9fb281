"""Model inputs: the uint8 samples SMA-STN and the AU detector take, made from aligned grey
face crops (input preparation only: no torch, no backends; those are :mod:`mer.inference`).

- Emotion: ``(S + 1, C, M, M)`` uint8 DSSI (local segment dynamic images, then the global
  one) from :func:`dssi_u8_from_crops`; ``M`` = :data:`MODEL_SIZE`; ``C`` = 1 (the dynamic
  image) or 3 (dynamic image + the optical flow ``u, v`` of the same span, when the
  checkpoint's ``dssi["flow"]`` is true).
- AUs: ``(K, 1, M, M)`` uint8 from :func:`au_input_u8`: the aligned frame and its local
  neutral reference (``K = 2``), plus the optical flow ``u, v`` from the reference to the
  frame (``K = 4``) when the checkpoint's ``pair["flow"]`` is true.

Flow channels (both models) are computed on the aligned crops at ``flow_size`` pixels
(:data:`FLOW_SIZE` = the pipeline's 128 px crops for weights v1.2 on; checkpoints without the
key used :data:`MODEL_SIZE`) and area-averaged down to ``M``, in model-crop pixels: at 64 px a
micro-expression moves the lip corners by 0.2-0.7 px, where DIS is at its noise floor.
"""

from __future__ import annotations

import threading
from collections.abc import Mapping

import cv2
import numpy as np

from mer.dssi import dssi_indices, dynamic_image
from mer.motion import FlowEstimator

MODEL_SIZE = 64  #: side (pixels) of the grey face crops the learned models see
DSSI_GAIN = 1.0  #: uint8 encoding of a dynamic image: 128 + gain * d, clipped
#: uint8 encoding of optical flow: 128 + gain * flow (model-crop pixels), clipped (+-2 px)
FLOW_GAIN = 64.0
FLOW_PRESET = "medium"  #: OpenCV DIS preset of the DSSI flow channels
FLOW_SIZE = 128  #: side (pixels) of the aligned crops the flow channels are computed on
AU_FLOW_PRESET = "fast"  #: OpenCV DIS preset of the AU detector's flow (one per frame)


def model_crop(crop: np.ndarray) -> np.ndarray:
    """``(S, S)`` uint8 aligned grey crop -> ``(MODEL_SIZE, MODEL_SIZE)`` uint8 (area)."""
    return _resized(crop, MODEL_SIZE)


def dssi_needed(onset: int, offset: int, params: Mapping[str, int | bool]) -> list[int]:
    """Frame indices :func:`dssi_u8_from_crops` reads for an onset-to-offset span."""
    segs, glob = dssi_indices(onset, max(offset, onset + 1), *_dssi_args(params))
    return sorted({int(i) for i in np.concatenate([*segs, glob])})


def _dssi_args(params: Mapping[str, int | bool]) -> tuple[int, int, int]:
    return (
        int(params.get("n_segments", 3)),
        int(params.get("frames_per_segment", 5)),
        int(params.get("global_frames", 9)),
    )


def _flow_args(params: Mapping[str, int | bool | str], preset: str) -> tuple[int, str]:
    """``(flow_size, preset)`` of a checkpoint's ``dssi`` / ``pair`` parameters (defaults of
    the checkpoints written before the keys existed: model-crop size, ``preset``)."""
    return int(params.get("flow_size", MODEL_SIZE)), str(params.get("flow_preset", preset))


def _resized(crop: np.ndarray, size: int) -> np.ndarray:
    """``(A, A)`` image -> ``(size, size)`` (area interpolation); the input when ``A == size``."""
    if crop.shape[0] == size:
        return crop
    return cv2.resize(crop, (size, size), interpolation=cv2.INTER_AREA)


_flow_local = threading.local()


def _estimator(preset: str) -> FlowEstimator:
    """One DIS estimator per (thread, preset): they keep internal buffers."""
    ests = getattr(_flow_local, "ests", None)
    if ests is None:
        ests = _flow_local.ests = {}
    if preset not in ests:
        ests[preset] = FlowEstimator(preset)
    return ests[preset]


def flow_to_model(flow: np.ndarray) -> np.ndarray:
    """``(S, S, 2)`` float32 flow in ``S``-pixel units -> ``(M, M, 2)`` float32 in model-crop
    pixels (area average, scaled by ``M / S``); identity when ``S == M``."""
    s = flow.shape[0]
    if s == MODEL_SIZE:
        return flow
    small = cv2.resize(flow, (MODEL_SIZE, MODEL_SIZE), interpolation=cv2.INTER_AREA)
    return small * np.float32(MODEL_SIZE / s)


def encode_flow(flow: np.ndarray) -> np.ndarray:
    """``(..., M, M, 2)`` float flow (model-crop pixels) -> ``(..., 2, M, M)`` uint8
    ``128 + FLOW_GAIN * flow``, clipped to +-2 px."""
    f = np.clip(np.round(128.0 + FLOW_GAIN * np.asarray(flow)), 0, 255).astype(np.uint8)
    return np.moveaxis(f, -1, -3)


def dssi_u8_from_crops(
    crops: Mapping[int, np.ndarray], onset: int, offset: int, params: Mapping[str, int | bool]
) -> np.ndarray:
    """uint8 DSSI ``(S + 1, C, M, M)`` of the span [onset, offset] from sparse crops.

    The segment and global frames are :func:`mer.dssi.dssi_indices` of the span (frame
    indices of the clip), so the result does not depend on which other frames are loaded:
    the pipeline (all frames) and training (only these frames) get the same images. A
    missing index takes the nearest available crop.

    Args:
        crops: frame index -> ``(A, A)`` uint8 aligned grey crop, ``A >= M`` (the
            pipeline's 128 px crops; they are area-resized to ``M`` for the dynamic images
            and to ``flow_size`` for the flow).
        onset, offset: inclusive frame indices.
        params: ``n_segments``, ``frames_per_segment``, ``global_frames``; ``flow``
            (default False) adds the optical-flow channels of :func:`segment_flow`,
            computed at ``flow_size`` pixels (default :data:`MODEL_SIZE`) with DIS preset
            ``flow_preset`` (default :data:`FLOW_PRESET`).

    Returns:
        ``(S + 1, C, M, M)`` uint8, ``C`` = 3 with flow (dynamic image, u, v), else 1.

    Raises:
        ValueError: ``crops`` is empty.
    """
    if not crops:
        raise ValueError("no crops")
    keys = np.array(sorted(crops))

    def get(i: int) -> np.ndarray:
        if i in crops:
            return crops[i]
        return crops[int(keys[np.argmin(np.abs(keys - i))])]

    segs, glob = dssi_indices(onset, max(offset, onset + 1), *_dssi_args(params))
    spans = [*segs, glob]
    images = [
        dynamic_image(np.stack([model_crop(get(int(i))) for i in idx]).astype(np.float32))
        for idx in spans
    ]
    d = np.clip(np.round(128.0 + DSSI_GAIN * np.stack(images)), 0, 255).astype(np.uint8)
    if not params.get("flow", False):
        return d[:, None]
    size, preset = _flow_args(params, FLOW_PRESET)
    flows = [
        segment_flow([_resized(get(int(i)), size) for i in idx], peak=k == len(segs),
                     preset=preset)
        for k, idx in enumerate(spans)
    ]  # fmt: skip
    return np.concatenate([d[:, None], encode_flow(np.stack(flows))], axis=1)


def segment_flow(frames: list[np.ndarray], peak: bool, preset: str = FLOW_PRESET) -> np.ndarray:
    """Optical flow summarising one DSSI span: ``(M, M, 2)`` float32 model-crop pixels.

    A local segment's flow goes from its first to its last sampled frame (the movement made
    within the segment); the global span's (``peak=True``) from its first frame (the onset)
    to the sampled frame with the largest mean flow magnitude (the most displaced one, near
    the apex). OpenCV DIS (Kroeger et al., ECCV 2016), one estimator per thread and preset,
    at the frames' own resolution, then :func:`flow_to_model`. **Our addition** to SMA-STN's
    DSSI input (ablated in the report): the dynamic image alone carries the micro movements
    at the level of the sensor noise.

    Args:
        frames: ``(A, A)`` uint8 crops in time order, at least 1.
        peak: global-span rule (see above).
        preset: DIS preset name (:class:`mer.motion.FlowEstimator`).
    """
    est = _estimator(preset)
    if len(frames) < 2:
        return np.zeros((MODEL_SIZE, MODEL_SIZE, 2), np.float32)
    if not peak:
        return flow_to_model(est(frames[0], frames[-1]))
    flows = [est(frames[0], f) for f in frames[1:]]
    return flow_to_model(max(flows, key=lambda q: float(np.abs(q).mean())))


def au_input_u8(
    frame: np.ndarray, reference: np.ndarray, params: Mapping[str, int | bool | str]
) -> np.ndarray:
    """AU-detector input of one frame: ``(K, 1, M, M)`` uint8.

    Args:
        frame, reference: ``(A, A)`` uint8 aligned grey crops (``A >= M``) of the frame and
            its local neutral reference.
        params: the checkpoint's ``pair`` parameters: ``flow`` (default False) adds the DIS
            optical flow from the reference to the frame (preset ``flow_preset``, default
            :data:`AU_FLOW_PRESET`, at ``flow_size`` pixels, default :data:`MODEL_SIZE`) in
            model-crop pixels, encoded as in :func:`encode_flow`.

    Returns:
        ``K = 2`` (frame, reference) or ``K = 4`` (frame, reference, u, v).
    """
    grey = np.stack([model_crop(frame), model_crop(reference)])
    if not params.get("flow", False):
        return grey[:, None]
    size, preset = _flow_args(params, AU_FLOW_PRESET)
    flow = flow_to_model(_estimator(preset)(_resized(reference, size), _resized(frame, size)))
    return np.concatenate([grey, encode_flow(flow)])[:, None]
