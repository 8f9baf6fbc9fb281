"""Synthetic micro-expressions rendered on real faces (Face Research Lab London Set).

FACS Action Units are rendered as landmark-anchored displacement fields (:mod:`.aus`) with
CASME II-like timing and AU statistics (:mod:`.sampling`) on real neutral photos, with head
micro-motion, blinks, lighting changes, sensor noise and JPEG compression
(:mod:`.render`); happiness clips can instead morph toward the identity's real smiling
photo. :func:`generate_dataset` writes the CASME II layout, readable by
:func:`mer.datasets.load_casme2`. Long clips with several expressions, speech, blinks, gaze
shifts and head turns, as videos with labels in the real dev set's format:
:func:`mer.synth.long_dataset.generate_long_clips` (``mer synth-long``).

Face photos: DeBruine & Jones (2017), doi:10.6084/m9.figshare.5047666.v5, CC BY 4.0 -
credit them wherever rendered data or models trained on it are distributed.
"""

from __future__ import annotations

from mer.synth.au_types import ActionUnit
from mer.synth.aus import ACTION_UNITS, RENDERABLE_AUS
from mer.synth.dataset import SynthSummary, generate_dataset
from mer.synth.faces import LondonFace, default_london_root, load_london_faces
from mer.synth.render import FaceRig, RenderedClip, render_clip
from mer.synth.sampling import sample_clip_spec
from mer.synth.spec import ClipSpec, SynthConfig

__all__ = [
    "ACTION_UNITS",
    "RENDERABLE_AUS",
    "ActionUnit",
    "ClipSpec",
    "FaceRig",
    "LondonFace",
    "RenderedClip",
    "SynthConfig",
    "SynthSummary",
    "default_london_root",
    "generate_dataset",
    "load_london_faces",
    "render_clip",
    "sample_clip_spec",
]
