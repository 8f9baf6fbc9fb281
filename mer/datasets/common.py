"""Shared pieces of the data set loaders, one module each, re-exported here: the
:class:`Sample` record (:mod:`.sample`), AU-string parsing (:mod:`.au_codes`), emotion label
mappings (:mod:`.emotion_labels`), coding-sheet reading, xlsx or CSV (:mod:`.sheets`) and
frame listing (:mod:`.frames`).

Sources of the conventions implemented here:

- CASME II: Yan et al., "CASME II: An Improved Spontaneous Micro-Expression Database and the
  Baseline Evaluation", PLoS ONE 9(1), 2014 (200 fps; coding sheet with Subject, Filename,
  OnsetFrame, ApexFrame, OffsetFrame, Action Units, Estimated Emotion).
- SAMM: Davison et al., "SAMM: A Spontaneous Micro-Facial Movement Dataset", IEEE TAFFC 9(1),
  2018 (200 fps, grey; sheet header on row 12).
- SMIC: Li et al., "A Spontaneous Micro-expression Database: Inducement, collection and
  baseline", FG 2013 (HS camera 100 fps; no apex annotation).
- CAS(ME)^3: Li et al., "CAS(ME)^3: A Third Generation Facial Spontaneous Micro-Expression
  Database with Depth Information and High Ecological Validity", IEEE TPAMI 45(3), 2023.
- MEGC 2019 composite 3-class mapping: See et al., "MEGC 2019 - The Second Facial
  Micro-Expressions Grand Challenge", FG 2019.
"""

from __future__ import annotations

from mer.datasets.au_codes import AUCode, au_name, parse_au_codes, parse_aus
from mer.datasets.emotion_labels import (
    CASME2_5CLASS,
    CASME2_TO_MEGC3,
    CASME3_TO_MEGC3,
    MEGC3_CLASSES,
    SAMM_5CLASS,
    SAMM_TO_MEGC3,
    megc3_label,
    normalize_emotion,
)
from mer.datasets.frames import FRAME_SUFFIXES, frame_number, list_frames, nearest_index
from mer.datasets.sample import Sample, build_sample
from mer.datasets.sheets import (
    cell,
    cell_str,
    find_dir_containing,
    find_sheet,
    locate_sheet,
    norm_col,
    parse_frame,
    read_sheet,
)

__all__ = [
    "CASME2_5CLASS",
    "CASME2_TO_MEGC3",
    "CASME3_TO_MEGC3",
    "FRAME_SUFFIXES",
    "MEGC3_CLASSES",
    "SAMM_5CLASS",
    "SAMM_TO_MEGC3",
    "AUCode",
    "Sample",
    "au_name",
    "build_sample",
    "cell",
    "cell_str",
    "find_dir_containing",
    "find_sheet",
    "frame_number",
    "list_frames",
    "locate_sheet",
    "megc3_label",
    "nearest_index",
    "norm_col",
    "normalize_emotion",
    "parse_au_codes",
    "parse_aus",
    "parse_frame",
    "read_sheet",
]
