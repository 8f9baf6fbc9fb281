"""Model registry, in the manner of timm's ``timm.models._registry``.

Entry points are functions decorated with :func:`register_model`; the function's name is the
model name. :func:`create_model` builds a model by name and records the name and keyword
arguments on the instance (``model.model_name``, ``model.model_kwargs``) so that a checkpoint
(:mod:`mer.models.weights`) can rebuild it.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Any, TypeVar

from torch import nn

_F = TypeVar("_F", bound=Callable[..., nn.Module])

_MODEL_ENTRYPOINTS: dict[str, Callable[..., nn.Module]] = {}


def register_model(fn: _F) -> _F:
    """Register ``fn`` (a function returning an ``nn.Module``) under ``fn.__name__``.

    Raises:
        ValueError: a model of that name is already registered.
    """
    name = fn.__name__
    if name in _MODEL_ENTRYPOINTS and _MODEL_ENTRYPOINTS[name] is not fn:
        raise ValueError(f"model {name!r} is already registered")
    _MODEL_ENTRYPOINTS[name] = fn
    return fn


def list_models() -> list[str]:
    """Sorted names of the registered models."""
    return sorted(_MODEL_ENTRYPOINTS)


def is_model(name: str) -> bool:
    """Whether ``name`` is a registered model."""
    return name in _MODEL_ENTRYPOINTS


def create_model(name: str, **kwargs: Any) -> nn.Module:
    """Build the registered model ``name`` with ``kwargs`` passed to its entry point.

    Raises:
        ValueError: unknown name (the message lists the registered names).
    """
    try:
        fn = _MODEL_ENTRYPOINTS[name]
    except KeyError:
        raise ValueError(
            f"unknown model {name!r}; registered models: {', '.join(list_models())}"
        ) from None
    model = fn(**kwargs)
    model.model_name = name
    model.model_kwargs = dict(kwargs)
    return model
