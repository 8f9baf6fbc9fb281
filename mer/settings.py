"""Settings of the science library: input limits, model and media locations, the inference
backend and the reporting threshold, as ``mer/`` reads them.

Every field is read from an environment variable with the ``MER_`` prefix (for example
``MER_MAX_UPLOAD_BYTES``, ``MER_MODEL_DIR``) or from a ``.env`` file. Built on
pydantic-settings. The queue's settings (:class:`workers.settings.WorkerSettings`) and the
API's (:class:`service.settings.ServiceSettings`) extend this class with the same prefix,
so one environment configures all three.
"""

from __future__ import annotations

from functools import lru_cache
from pathlib import Path
from typing import Literal

from pydantic import Field
from pydantic_settings import BaseSettings, SettingsConfigDict

REPO_ROOT = Path(__file__).resolve().parent.parent


class Settings(BaseSettings):
    """What the science library reads (``MER_*`` environment variables).

    Units are given in each field's name or description: bytes, seconds, pixels, frames.
    """

    model_config = SettingsConfigDict(env_prefix="MER_", env_file=".env", extra="ignore")

    # --- input limits -------------------------------------------------------------------
    max_upload_bytes: int = Field(512 * 1024 * 1024, description="Largest upload (bytes).")
    max_duration_s: float = Field(600.0, description="Longest video (seconds).")
    max_width: int = Field(3840, description="Widest frame (pixels).")
    max_height: int = Field(2160, description="Tallest frame (pixels).")
    max_frames: int = Field(60_000, description="Most decoded frames.")
    min_face_fraction: float = Field(
        0.2, ge=0.0, le=1.0, description="Fraction of frames that must show a face."
    )

    # --- science ----------------------------------------------------------------------
    landmarker: Literal["mediapipe", "dlib"] = "mediapipe"
    model_dir: Path = Field(REPO_ROOT / "model_store", description="Shipped weights.")
    shared_data_dir: Path = Field(
        REPO_ROOT.parent / "shared" / "data",
        description="The real face media (London Set faces, test videos); never copied in.",
    )
    inference_backend: Literal["inprocess", "torchserve"] = "inprocess"
    emotion_min_score: float = Field(
        0.7,
        ge=0.0,
        le=1.0,
        description="The video's top-level emotion is reported only when the strongest "
        "interval's emotion probability reaches this; each interval keeps its own.",
    )


@lru_cache
def get_settings() -> Settings:
    """Return the process-wide :class:`Settings` (cached; tests build their own)."""
    return Settings()
