"""Neural models: SMA-STN (DSSI emotion classifier), the per-frame AU detector, the DE-Loss,
a model registry and self-describing checkpoints.

Importing this package registers the models (``list_models()``).
"""

from . import au_detector as _au_detector  # noqa: F401  (registers models)
from . import sma_stn as _sma_stn  # noqa: F401  (registers models)
from .au_detector import AUDetector
from .losses import de_loss, neutral_features, neutral_like, sma_stn_loss
from .registry import create_model, is_model, list_models, register_model
from .sma_stn import SMASTN, TemporalSegmentAttention
from .weights import ModelCard, load_checkpoint, save_checkpoint, sha256_file

__all__ = [
    "SMASTN",
    "AUDetector",
    "ModelCard",
    "TemporalSegmentAttention",
    "create_model",
    "de_loss",
    "is_model",
    "list_models",
    "load_checkpoint",
    "neutral_features",
    "neutral_like",
    "register_model",
    "save_checkpoint",
    "sha256_file",
    "sma_stn_loss",
]
