"""FACS Action Unit strings of the coding sheets: ``"L4+R7"``, ``"12C"``, ``"12(?)"``."""

from __future__ import annotations

import logging
import re
from dataclasses import dataclass

log = logging.getLogger(__name__)


@dataclass(frozen=True)
class AUCode:
    """One parsed FACS code.

    Attributes:
        au: Action Unit number (``4`` for ``L4``).
        side: ``"L"``, ``"R"`` (unilateral), ``"T"``/``"B"`` (top / bottom, used for AU 12/14
            asymmetries in some sheets), or None (bilateral / unspecified).
        intensity: FACS intensity letter ``A``-``E`` when given (``12C``), else None.
        uncertain: the coder marked it with ``?`` (``12(?)``).
    """

    au: int
    side: str | None = None
    intensity: str | None = None
    uncertain: bool = False

    @property
    def name(self) -> str:
        """OpenFace / py-feat spelling: ``AU04``."""
        return au_name(self.au)


_AU_TOKEN = re.compile(
    r"""^\(?\s*
        (?:AU)?\s*                # optional 'AU' prefix
        (?P<side>[LRTBU])?\s*     # laterality / position prefix
        (?:AU)?\s*                # 'LAU4' and 'L AU4' both seen in the wild
        (?P<num>\d{1,3})(?:\.0+)? # the number (Excel may hand '4.0')
        \s*(?P<int>[A-Ea-e])?     # intensity letter
        \s*(?P<q>\(\s*\?\s*\)|\?)?
        \s*\)?$""",
    re.VERBOSE | re.IGNORECASE,
)


def au_name(au: int) -> str:
    """``4`` -> ``"AU04"`` (OpenFace / py-feat spelling, two digits at least)."""
    return f"AU{au:02d}"


def parse_au_codes(text: object) -> list[AUCode]:
    """Parse a coding-sheet AU cell into :class:`AUCode` records, in order of appearance.

    Accepted forms (all seen in CASME II, SAMM, CAS(ME)^3 sheets): ``4+7``, ``L4+R7``,
    ``4+7+R10``, ``12(?)``, ``12?``, ``AU4``, ``AU 4``, ``R12C``, ``L AU4``, ``4.0`` (numeric
    Excel cell), separators ``+``, ``,``, ``;``, ``/``, ``&``, ``and`` and white space. Empty
    cells and placeholders (``-``, ``/``, ``none``, ``nan``) give ``[]``. Tokens that are not
    AU codes (free-text remarks) are skipped with a debug log entry; the same AU number may
    appear twice (``L4+R4``) and is kept twice here (see :func:`parse_aus`).

    Args:
        text: the cell value (str, int, float or None).

    Returns:
        list of :class:`AUCode`.
    """
    if text is None:
        return []
    if isinstance(text, float):
        if text != text:  # NaN
            return []
        if text.is_integer():
            text = int(text)
    s = str(text).strip()
    if s.lower() in ("", "-", "/", "none", "nan", "n/a", "na", "null"):
        return []
    codes: list[AUCode] = []
    s = re.sub(r"\band\b", "+", s, flags=re.IGNORECASE)
    for tok in re.split(r"[+,;/&]|\s{2,}", s):
        tok = tok.strip()
        if not tok:
            continue
        m = _AU_TOKEN.match(tok)
        if m is None:
            # e.g. 'R12 L14' (single space): retry on single spaces
            parts = tok.split()
            if len(parts) > 1 and all(_AU_TOKEN.match(p) for p in parts):
                for p in parts:
                    codes.append(_code_from_match(_AU_TOKEN.match(p)))  # type: ignore[arg-type]
                continue
            log.debug("skipping non-AU token %r in %r", tok, s)
            continue
        codes.append(_code_from_match(m))
    return codes


def _code_from_match(m: re.Match[str]) -> AUCode:
    side = m.group("side")
    inten = m.group("int")
    return AUCode(
        au=int(m.group("num")),
        side=side.upper() if side else None,
        intensity=inten.upper() if inten else None,
        uncertain=m.group("q") is not None,
    )


def parse_aus(text: object) -> list[int]:
    """AU numbers of a coding-sheet cell: sorted, unique, laterality and intensity dropped.

    ``"L4+R7"`` -> ``[4, 7]``; ``"4+7+R10"`` -> ``[4, 7, 10]``; ``"12(?)"`` -> ``[12]``;
    ``"AU4"`` -> ``[4]``; ``"L4+R4"`` -> ``[4]``. Uncertain codes are kept (the coder saw
    the movement but was unsure of the unit). See :func:`parse_au_codes` for the grammar.
    """
    return sorted({c.au for c in parse_au_codes(text)})
