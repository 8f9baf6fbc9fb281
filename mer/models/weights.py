"""Self-describing checkpoints (in the manner of torchvision's ``WeightsEnum`` records).

The checkpoint's :class:`ModelCard` is the one record of the preprocessing its weights
expect (input size, normalisation, DSSI and AU-input parameters), like torchvision's
``Weights.transforms`` / timm's one ``pretrained_cfg`` per set of weights. A model's
``default_cfg`` (:class:`WeightsRecordMixin`) is derived from it: the loaded checkpoint's
card, or for a model without trained weights :func:`mer.models.cards.untrained_card`.

A checkpoint is ``torch.save`` of a plain dict::

    {"format": "mer-checkpoint", "format_version": 1,
     "state_dict": {name: tensor}, "meta": ModelCard.to_dict()}

The metadata holds only plain types (str, int, float, bool, None, lists, dicts), so
:func:`load_checkpoint` reads it with ``torch.load(weights_only=True)`` (no arbitrary
unpickling). The model is rebuilt from the registry with ``meta.model_name`` and
``meta.model_kwargs``.
"""

from __future__ import annotations

import dataclasses
import os
from dataclasses import dataclass, field
from datetime import UTC, datetime
from typing import Any

import torch
from torch import nn

from mer.hashing import sha256_file

from .registry import create_model

__all__ = [
    "FORMAT",
    "FORMAT_VERSION",
    "ModelCard",
    "WeightsRecordMixin",
    "load_checkpoint",
    "save_checkpoint",
    "sha256_file",
]

FORMAT = "mer-checkpoint"
FORMAT_VERSION = 1


def _plain(value: Any) -> Any:
    """Tuples -> lists, recursively; checks the value holds only plain types."""
    if isinstance(value, dict):
        return {str(k): _plain(v) for k, v in value.items()}
    if isinstance(value, list | tuple):
        return [_plain(v) for v in value]
    if value is None or isinstance(value, str | bool | int | float):
        return value
    raise TypeError(f"metadata must hold plain types, got {type(value).__name__}")


def _now() -> str:
    return datetime.now(UTC).isoformat(timespec="seconds")


@dataclass
class ModelCard:
    """Metadata carried by a checkpoint.

    Attributes:
        model_name: registry name (:func:`mer.models.create_model`).
        model_kwargs: keyword arguments for the registry entry point.
        labels: class names (emotion models) or AU names (AU detector), in output order.
        label_kind: ``"classes"`` (softmax) or ``"aus"`` (multi-label sigmoid).
        input_size: ``[C, H, W]`` of each input image.
        mean, std: per-channel normalisation ``(x - mean) / std``.
        dssi: DSSI parameters (``n_segments``, ``frames_per_segment``, ``global_frames``);
            empty for non-DSSI models.
        pair: AU-input parameters (:func:`mer.model_inputs.au_input_u8`: ``flow``,
            ``flow_size``, ``flow_preset``); empty for the emotion model and the v1.1 AU
            detector (frame and reference only).
        training_data: free-text description of the training data / protocol.
        metrics: evaluation metrics, e.g. ``{"loso_uf1": 0.71}``.
        version: weights version string.
        license: licence and credit text (data-set licences restrict use of the weights).
        created: ISO-8601 UTC timestamp.
        extra: any other plain-typed information.
    """

    model_name: str
    model_kwargs: dict[str, Any] = field(default_factory=dict)
    labels: list[str] = field(default_factory=list)
    label_kind: str = "classes"
    input_size: list[int] = field(default_factory=lambda: [1, 112, 112])
    mean: list[float] = field(default_factory=lambda: [0.0])
    std: list[float] = field(default_factory=lambda: [1.0])
    dssi: dict[str, int] = field(default_factory=dict)
    pair: dict[str, Any] = field(default_factory=dict)
    training_data: str = ""
    metrics: dict[str, float] = field(default_factory=dict)
    version: str = "0.0.0"
    license: str = ""
    created: str = field(default_factory=_now)
    extra: dict[str, Any] = field(default_factory=dict)

    def to_dict(self) -> dict[str, Any]:
        """Plain-typed dict (tuples become lists)."""
        return _plain(dataclasses.asdict(self))

    @classmethod
    def from_dict(cls, data: dict[str, Any]) -> ModelCard:
        """Inverse of :meth:`to_dict`; unknown keys go to ``extra``."""
        names = {f.name for f in dataclasses.fields(cls)}
        known = {k: v for k, v in data.items() if k in names}
        unknown = {k: v for k, v in data.items() if k not in names}
        card = cls(**known)
        card.extra.update(unknown)
        return card

    def default_cfg(self) -> dict[str, Any]:
        """The preprocessing in timm's ``pretrained_cfg`` form: ``input_size`` ``(C, H, W)``,
        ``mean`` / ``std`` per channel, ``num_classes`` (the labels' count, else the
        kwargs'), ``classes`` (class names) or ``aus`` (AU names; ``None`` when the card
        names none), ``dssi`` and ``pair`` parameters. :meth:`from_model` reads it back."""
        key = "aus" if self.label_kind == "aus" else "classes"
        return {
            "input_size": tuple(self.input_size),
            "mean": tuple(self.mean),
            "std": tuple(self.std),
            "num_classes": len(self.labels)
            or self.model_kwargs.get("num_aus" if self.label_kind == "aus" else "num_classes"),
            key: tuple(self.labels) if self.labels else None,
            "dssi": dict(self.dssi),
            "pair": dict(self.pair),
        }

    @classmethod
    def from_model(cls, model: nn.Module, **overrides: Any) -> ModelCard:
        """Card prefilled from a model made by :func:`~mer.models.create_model` and its
        ``default_cfg`` (name, kwargs, labels, input size, normalisation, DSSI)."""
        cfg: dict[str, Any] = dict(getattr(model, "default_cfg", {}) or {})
        aus = cfg.get("aus")
        labels = aus if aus is not None else cfg.get("classes")
        values: dict[str, Any] = {
            "model_name": getattr(model, "model_name", type(model).__name__),
            "model_kwargs": dict(getattr(model, "model_kwargs", {})),
            "labels": list(labels or []),
            "label_kind": "aus" if aus is not None else "classes",
            "input_size": list(cfg.get("input_size", (1, 112, 112))),
            "mean": list(cfg.get("mean", (0.0,))),
            "std": list(cfg.get("std", (1.0,))),
            "dssi": dict(cfg.get("dssi", {})),
            "pair": dict(cfg.get("pair", {})),
        }
        values.update(overrides)
        return cls(**values)


class WeightsRecordMixin:
    """``default_cfg`` of a model class, derived from the record of the weights it holds.

    ``card``: the :class:`ModelCard` of the loaded checkpoint (set by
    :func:`load_checkpoint`); ``None`` for a model without trained weights, whose
    ``default_cfg`` is :func:`mer.models.cards.untrained_card`'s.
    """

    card: ModelCard | None = None

    @property
    def default_cfg(self) -> dict[str, Any]:
        """The preprocessing of this model's weights (:meth:`ModelCard.default_cfg`)."""
        card = self.card
        if card is None:
            from mer.models.cards import untrained_card  # beside the models; imports this

            card = untrained_card(self)
        return card.default_cfg()


def save_checkpoint(path: str | os.PathLike[str], model: nn.Module, meta: ModelCard) -> str:
    """Write ``model``'s state dict and ``meta`` to ``path``; returns the file's sha256.

    Raises:
        TypeError: the metadata holds non-plain values.
    """
    payload = {
        "format": FORMAT,
        "format_version": FORMAT_VERSION,
        "state_dict": {k: v.detach().cpu() for k, v in model.state_dict().items()},
        "meta": meta.to_dict(),
    }
    torch.save(payload, os.fspath(path))
    return sha256_file(path)


def load_checkpoint(
    path: str | os.PathLike[str],
    map_location: str | torch.device = "cpu",
    expected_sha256: str | None = None,
) -> tuple[nn.Module, ModelCard]:
    """Rebuild the model from a checkpoint written by :func:`save_checkpoint`.

    Loads with ``torch.load(weights_only=True)``, builds
    ``create_model(meta.model_name, **meta.model_kwargs)``, loads the state dict strictly and
    returns ``(model in eval mode, meta)``; ``model.card`` is ``meta`` (its ``default_cfg``).

    Raises:
        ValueError: not a mer checkpoint, unsupported format version, or sha256 mismatch.
    """
    if expected_sha256 is not None and sha256_file(path) != expected_sha256.lower():
        raise ValueError(f"sha256 mismatch for {os.fspath(path)}")
    payload = torch.load(os.fspath(path), map_location=map_location, weights_only=True)
    if not isinstance(payload, dict) or payload.get("format") != FORMAT:
        raise ValueError(f"{os.fspath(path)} is not a {FORMAT} file")
    if payload.get("format_version") != FORMAT_VERSION:
        raise ValueError(f"unsupported checkpoint format version {payload.get('format_version')}")
    meta = ModelCard.from_dict(payload["meta"])
    model = create_model(meta.model_name, **meta.model_kwargs)
    model.load_state_dict(payload["state_dict"], strict=True)
    model.card = meta  # its default_cfg: this checkpoint's preprocessing
    model.to(map_location)
    model.eval()
    return model, meta
