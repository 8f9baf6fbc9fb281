"""The MEGC 2019 composite set: CASME II + SAMM + SMIC-HS in 3 classes.

See et al., "MEGC 2019 - The Second Facial Micro-Expressions Grand Challenge", FG 2019:
442 clips of 68 subjects (CASME II 145 / 24 subjects, SAMM 133 / 28, SMIC-HS 164 / 16);
labels negative / positive / surprise (mappings in :mod:`mer.datasets.emotion_labels`). Evaluation
is leave-one-subject-out over the 68 subjects (:attr:`Sample.subject_key` is unique across
the three sets); UF1 and UAR are computed on the predictions pooled over all folds.
"""

from __future__ import annotations

from collections import Counter
from pathlib import Path

from mer.datasets.casme2 import load_casme2
from mer.datasets.samm import load_samm
from mer.datasets.sample import Sample
from mer.datasets.smic import load_smic_hs

#: Published composite size (clips, subjects) per part, for sanity checks on real copies.
MEGC2019_COUNTS: dict[str, tuple[int, int]] = {
    "casme2": (145, 24),
    "samm": (133, 28),
    "smic": (164, 16),
}


def load_megc2019(
    casme2_root: Path | str | None = None,
    samm_root: Path | str | None = None,
    smic_root: Path | str | None = None,
    casme2_cropped: bool = False,
    samm_sheet: Path | str | None = None,
    casme2_sheet: Path | str | None = None,
) -> list[Sample]:
    """The MEGC 2019 composite: the 3-class samples of each given data set.

    Args:
        casme2_root, samm_root, smic_root: data set folders; a part left as None is left out
            (the composite is then partial: say so when reporting).
        casme2_cropped: use CASME II's ``Cropped`` frames.
        samm_sheet, casme2_sheet: explicit coding sheets (else found in the roots).

    Returns:
        samples with ``megc3`` not None, CASME II first, then SAMM, then SMIC-HS.

    Raises:
        ValueError: no root given.
    """
    if casme2_root is None and samm_root is None and smic_root is None:
        raise ValueError("give at least one of casme2_root, samm_root, smic_root")
    out: list[Sample] = []
    if casme2_root is not None:
        out += load_casme2(casme2_root, sheet=casme2_sheet, cropped=casme2_cropped)
    if samm_root is not None:
        out += load_samm(samm_root, sheet=samm_sheet)
    if smic_root is not None:
        out += load_smic_hs(smic_root)
    return [s for s in out if s.megc3 is not None]


def summarize(samples: list[Sample]) -> dict[str, dict[str, int]]:
    """Per data set: clip count, subject count and 3-class counts (for logs and checks)."""
    out: dict[str, dict[str, int]] = {}
    for ds in sorted({s.dataset for s in samples}):
        part = [s for s in samples if s.dataset == ds]
        c = Counter(s.megc3 or "dropped" for s in part)
        out[ds] = {"clips": len(part), "subjects": len({s.subject for s in part}), **c}
    return out
