"""Pipeline parameters (:class:`AnalysisConfig`): every time in seconds, sizes in pixels."""

from __future__ import annotations

from dataclasses import dataclass, field

from mer.spotting import SpottingConfig


@dataclass(frozen=True)
class AnalysisConfig:
    """Pipeline parameters. Times are seconds; sizes are pixels of the aligned crop."""

    crop_size: int = 128
    lags_s: tuple[float, ...] = (0.2, 0.5, 1.2, 2.5)
    fuse_low: float = 0.02  #: landmark displacement (fraction of IOD) below which flow rules
    fuse_high: float = 0.05  #: ... and above which landmarks rule
    #: movement strength (fraction of IOD) up to which the learned AU detector scores alone
    #: (its synthetic training movements are mostly below ~3 %) and from which the FACS
    #: rules do; linear blend in between
    au_blend_low: float = 0.03
    au_blend_high: float = 0.06
    align_sigma_s: float = 0.1
    flow_preset: str = "ultrafast"
    max_faces: int = 3
    detect_every: int = 5
    spotting: SpottingConfig = field(default_factory=SpottingConfig)
