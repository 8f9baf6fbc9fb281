"""Model cards and constructor arguments of the shipped models, one definition each.

A checkpoint (:mod:`mer.models.weights`) carries its :class:`~mer.models.weights.ModelCard`:
registry kwargs, labels, input size, normalisation, DSSI / AU-input parameters (as
torchvision's weight records carry their transforms, one config per set of weights as in
timm). ``mer train`` writes these cards, :func:`write_random_checkpoints` writes the same
with random weights, and every backend reads them back; the training recipe
(:class:`mer.training.config.TrainConfig`) decides the parameters.
"""

from __future__ import annotations

from collections.abc import Sequence
from pathlib import Path
from typing import TYPE_CHECKING, Any

import torch

from mer.inference import AU_FILE, EMOTION_FILE, MODEL_SIZE
from mer.models.registry import create_model
from mer.models.weights import ModelCard, save_checkpoint
from mer.schemas import AU_NAMES, EMOTION_CLASSES_MEGC

if TYPE_CHECKING:
    from mer.training.config import TrainConfig

DSSI_MEAN, DSSI_STD = 128.0, 32.0  #: normalisation of the uint8 DSSI payload
PAIR_MEAN, PAIR_STD = 128.0, 64.0  #: normalisation of the uint8 AU pair payload
#: backbone widths for CPU training at 64x64 (about 4x fewer FLOPs than the defaults)
CHANNELS = (16, 32, 64, 128)


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
    parameters of :func:`mer.inference.au_input_u8`) plus ``fields``."""
    return ModelCard(
        model_name="au_detector", model_kwargs=au_kwargs(cfg), labels=list(AU_NAMES),
        label_kind="aus", input_size=[1, MODEL_SIZE, MODEL_SIZE], mean=[PAIR_MEAN],
        std=[PAIR_STD], pair=cfg.pair_params, **fields,
    )  # fmt: skip


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
