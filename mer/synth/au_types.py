"""The types of the FACS Action Unit table: anchor groups, furrows, Action Units.

The table itself is :data:`mer.synth.aus.ACTION_UNITS`; the fields made from it are drawn by
:mod:`mer.synth.fields`.
"""

from __future__ import annotations

from dataclasses import dataclass

Pair = tuple[int, int]
#: One furrow vertex: an affine combination of landmarks, ``((pair, weight), ...)``.
Vertex = tuple[tuple[Pair, float], ...]

#: Amplitude (IOD fraction of the AU's largest displacement) at which a furrow reaches its
#: ``depth``; weaker movements darken proportionally less. Roughly a clear macro expression.
SHADE_REF_AMPLITUDE = 0.08


@dataclass(frozen=True)
class AnchorGroup:
    """Landmarks moved together by one Action Unit.

    Attributes:
        pairs: ``(subject-right, subject-left)`` landmark indices; a midline point is
            written ``(i, i)`` and gets only the ``down`` component.
        out: displacement away from the facial midline (relative units; negative = towards
            the midline).
        down: displacement towards the chin (negative = up).
        sigma: Gaussian radius of influence, IOD units.
    """

    pairs: tuple[Pair, ...]
    out: float
    down: float
    sigma: float


@dataclass(frozen=True)
class Furrow:
    """A wrinkle or furrow that darkens as the AU contracts.

    Attributes:
        vertices: polyline on the subject's right side (or across the midline when not
            bilateral); each vertex an affine combination of landmarks (weights sum to 1,
            negative weights extrapolate).
        width: Gaussian sigma of the cross profile, IOD units.
        depth: darkening fraction (0-1) at :data:`SHADE_REF_AMPLITUDE`.
        bilateral: also draw the mirror image (second index of every pair).
    """

    vertices: tuple[Vertex, ...]
    width: float
    depth: float
    bilateral: bool = True


@dataclass(frozen=True)
class ActionUnit:
    """One FACS Action Unit.

    Attributes:
        au: FACS number.
        name: FACS name.
        muscles: muscular basis.
        description: appearance changes (after the FACS Manual, 2002).
        groups: moving anchor groups.
        pins: landmarks held still, with ``pin_sigma`` (IOD units).
        furrows: wrinkles deepened by the AU.
        gain: largest displacement of the AU at unit intensity, relative to the others (the
            lids travel less than the brows or the jaw); the field's peak is ``gain`` IOD.
    """

    au: int
    name: str
    muscles: str
    description: str
    groups: tuple[AnchorGroup, ...]
    pins: tuple[int, ...] = ()
    pin_sigma: float = 0.04
    furrows: tuple[Furrow, ...] = ()
    gain: float = 1.0
