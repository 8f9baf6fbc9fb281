"""Loaders for the licensed micro-expression data sets, in their distributed layouts.

Users bring their own copies (CASME II, SAMM, SMIC-HS, CAS(ME)^3 part A); every loader
returns :class:`Sample` records with frame paths sorted numerically, onset / apex / offset
frame numbers and indices, frame rate, AUs and the original and MEGC 2019 3-class labels.
The synthetic sets of :mod:`mer.synth` load through :func:`load_casme2`.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

from mer.datasets.au_codes import AUCode, au_name, parse_au_codes, parse_aus
from mer.datasets.casme2 import load_casme2
from mer.datasets.casme3 import load_casme3_part_a
from mer.datasets.emotion_labels import MEGC3_CLASSES, megc3_label
from mer.datasets.megc import load_megc2019
from mer.datasets.samm import load_samm
from mer.datasets.sample import Sample
from mer.datasets.smic import load_smic_hs

LOADERS = {
    "casme2": load_casme2,
    "synth": load_casme2,
    "samm": load_samm,
    "smic": load_smic_hs,
    "casme3": load_casme3_part_a,
}


def load_dataset(name: str, root: Path | str, **kwargs: Any) -> list[Sample]:
    """Load a data set by name (``casme2``, ``synth``, ``samm``, ``smic``, ``casme3``).

    Raises:
        ValueError: unknown name.
    """
    try:
        loader = LOADERS[name]
    except KeyError:
        raise ValueError(f"unknown data set {name!r}; available: {sorted(LOADERS)}") from None
    return loader(root, **kwargs)


__all__ = [
    "MEGC3_CLASSES",
    "AUCode",
    "LOADERS",
    "Sample",
    "au_name",
    "load_casme2",
    "load_casme3_part_a",
    "load_dataset",
    "load_megc2019",
    "load_samm",
    "load_smic_hs",
    "megc3_label",
    "parse_au_codes",
    "parse_aus",
]
