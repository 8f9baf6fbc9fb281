"""Which models TorchServe serves: name, checkpoint file, task, handler; where the
handlers and model configs live."""

from __future__ import annotations

from dataclasses import dataclass

from mer.inference import AU_FILE, EMOTION_FILE
from mer.settings import REPO_ROOT

#: Where the handlers and the model configs live (``model_store/`` of the checkout).
MODEL_STORE_DIR = REPO_ROOT / "model_store"
HANDLERS_DIR = MODEL_STORE_DIR / "handlers"
CONFIG_DIR = MODEL_STORE_DIR / "config"


@dataclass(frozen=True)
class ServedSpec:
    """One model served by TorchServe.

    Attributes:
        name: TorchServe model name (``/predictions/{name}``).
        checkpoint: file name of the :mod:`mer.models.weights` checkpoint.
        task: ``"emotion"`` (softmax over classes) or ``"au"`` (sigmoid per AU).
        handler: handler file in :data:`HANDLERS_DIR`.
    """

    name: str
    checkpoint: str
    task: str
    handler: str

    @property
    def multilabel(self) -> bool:
        """Sigmoid per output (AUs) rather than a softmax (classes)."""
        return self.task == "au"


#: The served models, by TorchServe name.
SERVED: dict[str, ServedSpec] = {
    "sma_stn": ServedSpec("sma_stn", EMOTION_FILE, "emotion", "sma_stn_handler.py"),
    "au_detector": ServedSpec("au_detector", AU_FILE, "au", "au_detector_handler.py"),
}
#: Handler code shared by both models' handlers (packed into each archive).
HANDLER_BASE = "mer_handler.py"
