"""Model cards and constructor arguments of the shipped models, one definition each.

A checkpoint (:mod:`mer.models.weights`) carries its :class:`~mer.models.weights.ModelCard`:
registry kwargs, labels, input size, normalisation, DSSI / AU-input parameters (as
torchvision's weight records carry their transforms, one config per set of weights as in
timm). ``mer train`` writes these cards, :func:`write_random_checkpoints` writes the same
with random weights, and every backend reads them back; the training recipe
(:class:`mer.training.config.TrainConfig`) decides the parameters. A model's ``default_cfg``
is its weights' card (:class:`~mer.models.weights.WeightsRecordMixin`); a model without
trained weights is described by :func:`untrained_card`.
"""

from __future__ import annotations

from collections.abc import Sequence
from pathlib import Path
from typing import TYPE_CHECKING, Any

import torch

from mer.inference import AU_FILE, EMOTION_FILE
from mer.model_inputs import MODEL_SIZE
from mer.models.au_detector import AUDetector
from mer.models.registry import create_model
from mer.models.sma_stn import SMASTN
from mer.models.weights import ModelCard, save_checkpoint
from mer.schemas import AU_NAMES, EMOTION_CLASSES_MEGC

if TYPE_CHECKING:
    from mer.training.config import TrainConfig

DSSI_MEAN, DSSI_STD = 128.0, 32.0  #: normalisation of the uint8 DSSI payload
PAIR_MEAN, PAIR_STD = 128.0, 64.0  #: normalisation of the uint8 AU pair payload
#: backbone widths for CPU training at 64x64 (about 4x fewer FLOPs than the defaults)
CHANNELS = (16, 32, 64, 128)
#: Side (pixels) of the input a model *without trained weights* is described with: the
#: architectures' nominal input as first written. No shipped weights use it (theirs is
#: :data:`~mer.model_inputs.MODEL_SIZE`, on their cards); the networks pool adaptively.
UNTRAINED_SIZE = 112


def emotion_kwargs(cfg: TrainConfig, n_classes: int) -> dict[str, Any]:
    """Registry kwargs of the SMA-STN trained with ``cfg`` (recorded in the checkpoint)."""
    return {"num_classes": n_classes, "num_segments": cfg.n_segments,
            "in_chans": cfg.emotion_in_chans, "use_stma": cfg.use_stma,
            "channels": list(CHANNELS), "flip_tta": cfg.flip_tta}  # fmt: skip


def au_kwargs(cfg: TrainConfig) -> dict[str, Any]:
    """Registry kwargs of the AU detector trained with ``cfg`` (recorded in the checkpoint)."""
    return {"num_aus": len(AU_NAMES), "in_chans": 1, "channels": list(CHANNELS),
            "flow": cfg.au_flow}  # fmt: skip


def emotion_card(cfg: TrainConfig, classes: Sequence[str], **fields: Any) -> ModelCard:
    """The :class:`~mer.models.weights.ModelCard` of an SMA-STN trained with ``cfg``: model
    kwargs, labels, input size ``[C, M, M]``, DSSI normalisation and parameters; ``fields``
    add the rest (version, training data, metrics, ...)."""
    c = cfg.emotion_in_chans
    return ModelCard(
        model_name="sma_stn", model_kwargs=emotion_kwargs(cfg, len(classes)),
        labels=list(classes), label_kind="classes", input_size=[c, MODEL_SIZE, MODEL_SIZE],
        mean=[DSSI_MEAN] * c, std=[DSSI_STD] * c, dssi=cfg.dssi_params, **fields,
    )  # fmt: skip


def au_card(cfg: TrainConfig, **fields: Any) -> ModelCard:
    """The :class:`~mer.models.weights.ModelCard` of an AU detector trained with ``cfg``
    (:func:`au_kwargs`, :data:`mer.schemas.AU_NAMES`, input normalisation, ``pair``
    parameters of :func:`mer.model_inputs.au_input_u8`) plus ``fields``."""
    return ModelCard(
        model_name="au_detector", model_kwargs=au_kwargs(cfg), labels=list(AU_NAMES),
        label_kind="aus", input_size=[1, MODEL_SIZE, MODEL_SIZE], mean=[PAIR_MEAN],
        std=[PAIR_STD], pair=cfg.pair_params, **fields,
    )  # fmt: skip


def untrained_card(model: SMASTN | AUDetector) -> ModelCard:
    """The record of a model built without trained weights (``create_model`` alone): its
    kwargs and labels, input ``[C, UNTRAINED_SIZE, UNTRAINED_SIZE]``, the architecture's
    reference normalisation (SMA-STN: a zero-mean dynamic image, std 64; AU detector: pixels
    in [0, 1], mean 0.5, std 0.25) and, for SMA-STN, the recipe's DSSI frame counts.

    Raises:
        TypeError: ``model`` is neither architecture.
    """
    from mer.training.config import TrainConfig  # the default recipe (no import cycle)

    c, size = model.in_chans, [model.in_chans, UNTRAINED_SIZE, UNTRAINED_SIZE]
    kwargs = dict(getattr(model, "model_kwargs", {}))
    name = getattr(model, "model_name", type(model).__name__)
    if isinstance(model, SMASTN):
        recipe = TrainConfig(n_segments=model.num_segments)
        classes = EMOTION_CLASSES_MEGC if model.num_classes == len(EMOTION_CLASSES_MEGC) else ()
        return ModelCard(
            model_name=name, model_kwargs=kwargs, labels=list(classes), label_kind="classes",
            input_size=size, mean=[0.0] * c, std=[64.0] * c,
            dssi={"n_segments": recipe.n_segments, "frames_per_segment":
                  recipe.frames_per_segment, "global_frames": recipe.global_frames},
        )  # fmt: skip
    if isinstance(model, AUDetector):
        aus = AU_NAMES if model.num_classes == len(AU_NAMES) else ()
        return ModelCard(
            model_name=name, model_kwargs=kwargs, labels=list(aus), label_kind="aus",
            input_size=size, mean=[0.5] * c, std=[0.25] * c,
        )  # fmt: skip
    raise TypeError(f"no untrained record for {type(model).__name__}")


def write_random_checkpoints(out_dir: Path, version: str = "0.0.0-random", seed: int = 0) -> Path:
    """Checkpoints of the shipped architectures with **random weights** and the cards
    ``mer train`` writes, in ``out_dir`` (created). For speed benchmarks and plumbing
    tests of the serving path only: their predictions mean nothing.

    Returns:
        ``out_dir``, holding :data:`~mer.inference.EMOTION_FILE` and
        :data:`~mer.inference.AU_FILE`.
    """
    from mer.training.config import TrainConfig  # the default recipe (no import cycle)

    torch.manual_seed(seed)
    out_dir = Path(out_dir)
    out_dir.mkdir(parents=True, exist_ok=True)
    cfg = TrainConfig()
    classes = list(EMOTION_CLASSES_MEGC)
    note = "random weights (benchmarks and tests of the serving path only)"
    emo = create_model("sma_stn", **emotion_kwargs(cfg, len(classes)))
    save_checkpoint(out_dir / EMOTION_FILE, emo,
                    emotion_card(cfg, classes, version=version, training_data=note))  # fmt: skip
    save_checkpoint(out_dir / AU_FILE, create_model("au_detector", **au_kwargs(cfg)),
                    au_card(cfg, version=version, training_data=note))  # fmt: skip
    return out_dir
