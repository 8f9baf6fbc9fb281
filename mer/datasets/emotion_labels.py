"""Emotion labels of the data sets and their MEGC 2019 3-class mapping.

The composite 3-class mapping: See et al., "MEGC 2019 - The Second Facial Micro-Expressions
Grand Challenge", FG 2019.
"""

from __future__ import annotations

#: MEGC 2019 composite classes, in the order used by the models.
MEGC3_CLASSES: tuple[str, ...] = ("negative", "positive", "surprise")

#: CASME II ``Estimated Emotion`` -> MEGC 2019 3-class (others / fear / sadness dropped).
CASME2_TO_MEGC3: dict[str, str | None] = {
    "disgust": "negative",
    "repression": "negative",
    "happiness": "positive",
    "surprise": "surprise",
    "others": None,
    "fear": None,
    "sadness": None,
}

#: SAMM ``Estimated Emotion`` -> MEGC 2019 3-class (``other`` dropped).
SAMM_TO_MEGC3: dict[str, str | None] = {
    "anger": "negative",
    "contempt": "negative",
    "disgust": "negative",
    "sadness": "negative",
    "fear": "negative",
    "happiness": "positive",
    "surprise": "surprise",
    "other": None,
    "others": None,
}

#: CAS(ME)^3 ``emotion`` -> 3 classes. Not part of MEGC 2019 (CAS(ME)^3 came later); this is
#: our extension by the same rule as SAMM (every negative emotion -> negative, ``others``
#: dropped), as in the MEGC 2022+ unseen-data protocol.
CASME3_TO_MEGC3: dict[str, str | None] = {
    "anger": "negative",
    "disgust": "negative",
    "fear": "negative",
    "sad": "negative",
    "sadness": "negative",
    "happy": "positive",
    "happiness": "positive",
    "surprise": "surprise",
    "others": None,
    "other": None,
}

#: CASME II 5-class protocol (SMA-STN and most papers): fear and sadness dropped.
CASME2_5CLASS: tuple[str, ...] = ("happiness", "disgust", "repression", "surprise", "others")
#: SAMM 5-class protocol: classes with at least 10 clips.
SAMM_5CLASS: tuple[str, ...] = ("anger", "contempt", "happiness", "surprise", "other")

#: Spelling variants seen in the public sheets -> canonical lower-case label.
_EMOTION_ALIASES: dict[str, str] = {
    "happy": "happiness",
    "happiness": "happiness",
    "sad": "sadness",
    "sadness": "sadness",
    "others": "others",
    "other": "other",
    "repression": "repression",
    "disgust": "disgust",
    "surprise": "surprise",
    "fear": "fear",
    "anger": "anger",
    "contempt": "contempt",
}


def normalize_emotion(label: str) -> str:
    """Lower-case, strip and unify a few spellings (``Happy`` -> ``happiness``).

    ``other`` and ``others`` are kept apart (SAMM says ``Other``, CASME II ``others``); the
    mapping tables accept both.
    """
    key = label.strip().lower()
    return _EMOTION_ALIASES.get(key, key)


def megc3_label(dataset: str, emotion: str) -> str | None:
    """MEGC 2019 3-class label of an emotion of ``dataset``; None when the class is dropped.

    Args:
        dataset: ``"casme2"``, ``"synth"`` (CASME II terms), ``"samm"``, ``"smic"``
            (already negative / positive / surprise) or ``"casme3"``.
        emotion: the data set's own label (any case).

    Raises:
        ValueError: unknown data set.
    """
    e = normalize_emotion(emotion)
    if dataset in ("casme2", "synth"):
        return CASME2_TO_MEGC3.get(e)
    if dataset == "samm":
        return SAMM_TO_MEGC3.get(e)
    if dataset == "smic":
        return e if e in MEGC3_CLASSES else None
    if dataset == "casme3":
        return CASME3_TO_MEGC3.get(e)
    raise ValueError(f"unknown data set {dataset!r}")
