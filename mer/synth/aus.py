"""FACS Action Units as landmark-anchored displacement fields and furrow shading.

Each Action Unit is a set of *anchor groups*: MediaPipe FaceMesh landmarks that move together,
with one displacement vector per group in a face frame (``out``: away from the facial
midline, ``down``: towards the chin; the frame's x axis runs from the subject's right outer
eye corner, landmark 33, to the left one, 263). *Pins* are landmarks that an AU must not move
(they pull the field back to zero near them). A dense backward-warpable field is made from
the anchors by normalised Gaussian radial-basis weights (:func:`gaussian_field`) and scaled
so that its largest displacement is 1 inter-ocular distance (IOD, outer eye corners); the
renderer multiplies it by the clip's amplitude (a fraction of the IOD, e.g. 0.02).

*Furrows* add the appearance change that displacement alone cannot show: the darkening of
wrinkles and furrows (glabellar lines of AU4, nasal-root wrinkles of AU9, the nasolabial
furrow of AU10 / AU12, crow's feet of AU6, the dimple of AU14, the dark gap of parted lips).
A furrow is a polyline on landmarks with a Gaussian cross profile; its ``depth`` is the
darkening fraction reached at :data:`SHADE_REF_AMPLITUDE`.

The descriptions paraphrase Ekman, Friesen & Hager, *Facial Action Coding System: The Manual*
(Research Nexus, 2002), "appearance changes" of each AU. Landmark indices are those of the
MediaPipe 468-point canonical mesh (subject's right side = image left); every pair below is
``(subject-right, subject-left)`` and was checked for mirror symmetry on the canonical
template of :func:`mer.face.align.load_template`. Vectors are relative (the field is
normalised); sigmas and furrow widths are in IOD units.

Design choices (ours): Gaussian sigmas of 0.03-0.09 IOD (a lid is ~0.1 IOD tall, a brow
~0.25 IOD long); the smooth normalisation ``u = sum(w d) / (1 + S^4)^(1/4)`` (S the summed
weights of anchors and pins) is the weighted mean of nearby anchor vectors inside an anchor
cluster and decays like a Gaussian outside it.
"""

from __future__ import annotations

from dataclasses import dataclass

import cv2
import numpy as np

from mer.face.landmarks import LEFT_EYE_OUTER, RIGHT_EYE_OUTER

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


def _v(*terms: tuple[Pair, float]) -> Vertex:
    return tuple(terms)


def _p(i: int, j: int | None = None) -> Pair:
    return (i, i if j is None else j)


# ---- landmark groups (pairs: subject right, subject left) ---------------------------------
INNER_BROW = ((107, 336), (55, 285), (66, 296), (65, 295))
MID_BROW = ((105, 334), (52, 282))
OUTER_BROW = ((70, 300), (63, 293), (46, 276), (53, 283))
UPPER_LID = ((159, 386), (158, 385), (160, 387), (157, 384), (161, 388))
LOWER_LID = ((145, 374), (144, 373), (153, 380), (163, 390), (154, 381))
UPPER_CREASE = ((27, 257), (28, 258), (29, 259), (30, 260), (56, 286))
LOWER_RING = ((23, 253), (22, 252), (24, 254), (110, 339), (25, 255))
CHEEK = ((117, 346), (118, 347), (119, 348), (101, 330), (50, 280), (123, 352), (116, 345),
         (100, 329), (36, 266))  # fmt: skip
NOSE_WING = ((129, 358), (102, 331), (48, 278), (49, 279), (64, 294), (98, 327), (219, 439),
             (235, 455))  # fmt: skip
NOSE_SIDE = ((198, 420), (209, 429), (131, 360), (217, 437), (236, 456))
LIP_CORNER = ((61, 291), (76, 306), (62, 292), (78, 308))
UPPER_LIP_OUTER = ((0, 0), (37, 267), (39, 269))
UPPER_LIP_OUTER_LAT = ((40, 270), (185, 409))
LOWER_LIP_OUTER = ((17, 17), (84, 314), (181, 405), (91, 321))
LOWER_LIP_INNER = ((14, 14), (87, 317), (178, 402), (88, 318))
CHIN_BOSS = ((200, 200), (199, 199), (201, 421), (208, 428), (194, 418), (32, 262))

#: Nasolabial furrow, from the nasal wing to beside the mouth corner (subject's right).
NASOLABIAL: tuple[Vertex, ...] = (
    _v(((129, 358), 1.0)),
    _v(((203, 423), 1.0)),
    _v(((206, 426), 0.5), ((92, 322), 0.5)),
    _v(((186, 410), 1.0)),
    _v(((57, 287), 0.7), ((212, 432), 0.3)),
)
#: The line where the lips meet (drawn once, across the midline).
LIP_LINE: tuple[Vertex, ...] = (
    _v((_p(78), 1.0)),
    _v((_p(81), 0.5), (_p(178), 0.5)),
    _v((_p(13), 0.5), (_p(14), 0.5)),
    _v((_p(311), 0.5), (_p(402), 0.5)),
    _v((_p(308), 1.0)),
)

ACTION_UNITS: dict[int, ActionUnit] = {
    1: ActionUnit(
        1, "Inner Brow Raiser", "frontalis, pars medialis",
        "Pulls the inner portion of the eyebrows upwards; the brows take an oblique shape; "
        "horizontal wrinkles appear or deepen in the centre of the forehead; the skin above "
        "the inner eye cover fold is stretched up.",
        groups=(
            AnchorGroup(INNER_BROW, 0.0, -1.0, 0.07),
            AnchorGroup(MID_BROW, 0.0, -0.45, 0.07),
            AnchorGroup(((108, 337), (151, 151), (9, 9)), 0.0, -0.35, 0.09),
            AnchorGroup(((28, 258), (56, 286)), 0.0, -0.25, 0.05),
        ),
        pins=(70, 300, 46, 276, 159, 386, 145, 374, 133, 362),
        furrows=(
            Furrow((_v((_p(107), 0.55), (_p(108), 0.45)), _v((_p(9), 0.55), (_p(151), 0.45)),
                    _v((_p(336), 0.55), (_p(337), 0.45))), 0.012, 0.05, bilateral=False),
            Furrow((_v((_p(107), 0.2), (_p(108), 0.8)), _v((_p(9), 0.2), (_p(151), 0.8)),
                    _v((_p(336), 0.2), (_p(337), 0.8))), 0.012, 0.04, bilateral=False),
        ),
    ),
    2: ActionUnit(
        2, "Outer Brow Raiser", "frontalis, pars lateralis",
        "Pulls the lateral portion of the eyebrows upwards; the brows arch; short horizontal "
        "wrinkles appear above the lateral brows; the lateral eye cover fold is stretched up.",
        groups=(
            AnchorGroup(OUTER_BROW, 0.0, -1.0, 0.07),
            AnchorGroup(MID_BROW, 0.0, -0.6, 0.07),
            AnchorGroup(((104, 333), (69, 299)), 0.0, -0.3, 0.09),
            AnchorGroup(((29, 259), (30, 260), (224, 444)), 0.0, -0.3, 0.05),
        ),
        pins=(107, 336, 55, 285, 159, 386, 145, 374, 33, 263),
        furrows=(
            Furrow((_v(((63, 293), 0.6), ((104, 333), 0.4)),
                    _v(((105, 334), 0.5), ((69, 299), 0.5))), 0.012, 0.04),
            Furrow((_v(((63, 293), 0.3), ((104, 333), 0.7)),
                    _v(((105, 334), 0.2), ((69, 299), 0.8))), 0.012, 0.03),
        ),
    ),
    4: ActionUnit(
        4, "Brow Lowerer", "corrugator supercilii, depressor supercilii, procerus",
        "Lowers the eyebrows and pulls them together; vertical wrinkles or a bulge appear "
        "between the brows; the skin of the upper lid is pushed down and the eye narrows; the "
        "procerus lowers the skin at the root of the nose (short horizontal line).",
        groups=(
            AnchorGroup(INNER_BROW, -0.6, 0.8, 0.07),
            AnchorGroup(MID_BROW, -0.3, 0.6, 0.07),
            AnchorGroup(OUTER_BROW, -0.1, 0.3, 0.07),
            AnchorGroup(((27, 257), (28, 258), (56, 286), (222, 442), (221, 441)), -0.1, 0.3,
                        0.05),
            AnchorGroup(((9, 9),), 0.0, 0.3, 0.06),
        ),
        pins=(159, 386, 145, 374, 133, 362, 33, 263, 108, 337, 151),
        pin_sigma=0.05,
        furrows=(
            Furrow((_v(((107, 336), 0.5), ((9, 9), 0.5)), _v(((55, 285), 0.5), ((168, 168), 0.5))),
                   0.012, 0.06),
            Furrow((_v((_p(193), 1.0)), _v((_p(168), 1.0)), _v((_p(417), 1.0))), 0.012, 0.03,
                   bilateral=False),
        ),
        gain=0.8,
    ),
    5: ActionUnit(
        5, "Upper Lid Raiser", "levator palpebrae superioris",
        "Raises the upper lid, widening the eye aperture; more of the iris and of the sclera "
        "above it shows; the upper lid fold may disappear into the eye cover fold.",
        groups=(
            AnchorGroup(UPPER_LID, 0.0, -1.0, 0.035),
            AnchorGroup(((27, 257), (28, 258), (29, 259), (56, 286)), 0.0, -0.5, 0.04),
        ),
        pins=(145, 374, 144, 373, 153, 380, 105, 334, 52, 282, 65, 295, 33, 263, 133, 362),
        pin_sigma=0.035,
        gain=0.4,
    ),
    6: ActionUnit(
        6, "Cheek Raiser", "orbicularis oculi, pars orbitalis",
        "Draws the skin of the cheeks and temples towards the eye: the infraorbital triangle "
        "and cheek rise, the lower lid skin bags or bulges, the eye narrows from below, "
        "crow's-feet wrinkles radiate from the outer eye corners and the lateral brow may "
        "lower slightly.",
        groups=(
            AnchorGroup(CHEEK, -0.15, -1.0, 0.09),
            AnchorGroup(LOWER_RING + ((228, 448), (229, 449), (230, 450), (231, 451)), 0.0, -0.6,
                        0.05),
            AnchorGroup(LOWER_LID[:4], 0.0, -0.35, 0.04),
            AnchorGroup(((35, 265), (226, 446), (113, 342)), -0.3, -0.2, 0.05),
            AnchorGroup(((46, 276), (70, 300)), 0.0, 0.2, 0.06),
        ),
        pins=(159, 386, 61, 291, 1),
        pin_sigma=0.04,
        furrows=(
            Furrow((_v(((226, 446), 1.0)), _v(((35, 265), 2.0), ((226, 446), -1.0))), 0.01, 0.04),
            Furrow((_v(((113, 342), 1.0)), _v(((113, 342), 2.0), ((33, 263), -1.0))), 0.01, 0.04),
            Furrow((_v(((110, 339), 0.5), ((25, 255), 0.5)),
                    _v(((228, 448), 2.0), ((110, 339), -1.0))), 0.01, 0.035),
            Furrow((_v(((229, 449), 1.0)), _v(((230, 450), 1.0)), _v(((231, 451), 1.0))),
                   0.015, 0.03),
        ),
        gain=0.6,
    ),
    7: ActionUnit(
        7, "Lid Tightener", "orbicularis oculi, pars palpebralis",
        "Tightens the eyelids: the lower lid rises and straightens (it may bulge), the upper "
        "lid may lower slightly; the eye aperture narrows.",
        groups=(
            AnchorGroup(LOWER_LID, 0.0, -1.0, 0.035),
            AnchorGroup(LOWER_RING[:3], 0.0, -0.35, 0.04),
            AnchorGroup(UPPER_LID[:3], 0.0, 0.25, 0.03),
        ),
        pins=(33, 263, 133, 362, 118, 347, 101, 330, 105, 334, 52, 282),
        pin_sigma=0.035,
        gain=0.4,
    ),
    9: ActionUnit(
        9, "Nose Wrinkler", "levator labii superioris alaeque nasi",
        "Wrinkles the skin along the sides and across the root of the nose; pulls the nasal "
        "wings and the infraorbital triangle up; raises the centre of the upper lip; lowers "
        "the medial brows; deepens the upper nasolabial furrow.",
        groups=(
            AnchorGroup(NOSE_WING, 0.05, -1.0, 0.06),
            AnchorGroup(NOSE_SIDE, -0.05, -0.7, 0.06),
            AnchorGroup(((100, 329), (101, 330), (142, 371), (36, 266), (203, 423)), 0.0, -0.5,
                        0.06),
            AnchorGroup(UPPER_LIP_OUTER, 0.0, -0.35, 0.05),
            AnchorGroup(((164, 164), (167, 393)), 0.0, -0.5, 0.04),
            AnchorGroup(((55, 285), (107, 336)), 0.0, 0.25, 0.05),
        ),
        pins=(4, 17, 14, 145, 374),
        pin_sigma=0.035,
        furrows=(
            Furrow((_v((_p(245), 1.0)), _v((_p(6), 1.0)), _v((_p(465), 1.0))), 0.012, 0.06,
                   bilateral=False),
            Furrow((_v((_p(188), 1.0)), _v((_p(197), 1.0)), _v((_p(412), 1.0))), 0.012, 0.05,
                   bilateral=False),
            Furrow(NASOLABIAL[:3], 0.015, 0.04),
        ),
        gain=0.5,
    ),
    10: ActionUnit(
        10, "Upper Lip Raiser", "levator labii superioris, caput infraorbitalis",
        "Raises the upper lip, the centre most; pushes the infraorbital triangle up; deepens "
        "the nasolabial furrow and raises its upper part; widens and lifts the nasal wings a "
        "little. The inner lip edge is not anchored (it touches the lower lip, which must "
        "stay): the red of the upper lip stretches upwards, as when it everts.",
        groups=(
            AnchorGroup(UPPER_LIP_OUTER, 0.0, -1.0, 0.05),
            AnchorGroup(UPPER_LIP_OUTER_LAT, 0.0, -0.7, 0.05),
            AnchorGroup(((164, 164), (167, 393), (165, 391)), 0.0, -0.6, 0.05),
            AnchorGroup(((92, 322), (206, 426), (203, 423)), 0.1, -0.45, 0.06),
            AnchorGroup(((98, 327), (64, 294)), 0.1, -0.25, 0.04),
        ),
        pins=(14, 87, 317, 178, 402, 17, 84, 314, 61, 291, 145, 374),
        pin_sigma=0.035,
        furrows=(Furrow(NASOLABIAL, 0.015, 0.05),),
        gain=0.6,
    ),
    12: ActionUnit(
        12, "Lip Corner Puller", "zygomaticus major",
        "Pulls the lip corners obliquely up and back towards the cheekbones; deepens the "
        "nasolabial furrow and raises the infraorbital triangle; at higher intensity raises "
        "the cheeks and narrows the eyes (then usually scored with AU6).",
        groups=(
            AnchorGroup(LIP_CORNER, 0.8, -0.6, 0.065),
            AnchorGroup(((185, 409), (40, 270), (184, 408)), 0.65, -0.45, 0.055),
            AnchorGroup(((146, 375), (91, 321), (77, 307)), 0.65, -0.4, 0.055),
            AnchorGroup(((57, 287), (186, 410), (212, 432)), 0.5, -0.5, 0.06),
            AnchorGroup(((205, 425), (206, 426), (216, 436), (207, 427)), 0.2, -0.35, 0.08),
            AnchorGroup(((101, 330), (50, 280), (36, 266)), 0.0, -0.15, 0.08),
        ),
        pins=(0, 17, 13, 14, 1, 2, 145, 374, 18, 200),
        pin_sigma=0.04,
        furrows=(Furrow(NASOLABIAL, 0.015, 0.06),),
    ),
    14: ActionUnit(
        14, "Dimpler", "buccinator",
        "Tightens the lip corners and pulls them inwards (into the cheek); the corners "
        "narrow and often rise slightly; a dimple-like wrinkle or bulge forms just beyond "
        "the lip corners. The inward (depth) pull is rendered by its image-plane projection "
        "(a small lateral-upward corner shift) plus skin bunching and a dimple crease.",
        groups=(
            AnchorGroup(LIP_CORNER[:3], 0.35, -0.2, 0.035),
            AnchorGroup(((185, 409), (40, 270)), 0.15, 0.3, 0.035),
            AnchorGroup(((146, 375), (91, 321)), 0.15, -0.3, 0.035),
            AnchorGroup(((57, 287), (186, 410), (43, 273)), -0.6, 0.0, 0.04),
        ),
        pins=(0, 17, 13, 14, 205, 425, 2),
        pin_sigma=0.04,
        furrows=(
            Furrow((_v(((186, 410), 0.5), ((57, 287), 0.5)),
                    _v(((57, 287), 0.7), ((43, 273), 0.3))), 0.01, 0.06),
        ),
        gain=0.6,
    ),
    15: ActionUnit(
        15, "Lip Corner Depressor", "depressor anguli oris (triangularis)",
        "Pulls the lip corners down; the lips angle down at the corners; the lower lip is "
        "stretched laterally and may be pushed down; wrinkles or a bulge may appear below the "
        "corners.",
        groups=(
            AnchorGroup(LIP_CORNER, 0.1, 1.0, 0.06),
            AnchorGroup(((146, 375), (91, 321)), 0.15, 0.7, 0.05),
            AnchorGroup(((185, 409), (40, 270)), 0.0, 0.6, 0.05),
            AnchorGroup(((57, 287), (43, 273), (202, 422)), 0.0, 0.5, 0.055),
        ),
        pins=(0, 13, 14, 17, 2, 200, 18),
        pin_sigma=0.035,
        furrows=(Furrow((_v(((57, 287), 1.0)), _v(((202, 422), 1.0))), 0.012, 0.04),),
        gain=0.7,
    ),
    17: ActionUnit(
        17, "Chin Raiser", "mentalis",
        "Pushes the chin boss and the lower lip upwards; the lower lip may protrude and the "
        "mouth takes an inverted-U shape; the chin skin wrinkles and the mentolabial furrow "
        "below the lower lip deepens.",
        groups=(
            AnchorGroup(CHIN_BOSS, 0.0, -1.0, 0.07),
            AnchorGroup(((175, 175), (171, 396), (140, 369)), 0.0, -0.5, 0.07),
            AnchorGroup(LOWER_LIP_OUTER[:3], 0.0, -0.6, 0.045),
            AnchorGroup(LOWER_LIP_INNER[:3], 0.0, -0.35, 0.04),
            AnchorGroup(((18, 18), (83, 313), (182, 406)), 0.0, -0.8, 0.05),
            AnchorGroup(((61, 291),), 0.0, 0.15, 0.03),
        ),
        pins=(0, 37, 267, 148, 377, 176, 400, 149, 378, 2),
        pin_sigma=0.05,
        furrows=(
            Furrow((_v((_p(106), 1.0)), _v((_p(182), 1.0)), _v((_p(18), 1.0)), _v((_p(406), 1.0)),
                    _v((_p(335), 1.0))), 0.014, 0.04, bilateral=False),
        ),
        gain=0.8,
    ),
    25: ActionUnit(
        25, "Lips Part", "depressor labii inferioris (or relaxed mentalis / orbicularis oris)",
        "The lips part a little without a marked jaw drop; the inner lips, the teeth or the "
        "dark mouth interior become visible between them. Rendered as a downward shift of the "
        "lower lip, a slight rise of the upper lip and a darkening of the lip line.",
        groups=(
            AnchorGroup(LOWER_LIP_INNER + ((95, 324),), 0.0, 1.0, 0.035),
            AnchorGroup(LOWER_LIP_OUTER + ((146, 375),), 0.0, 0.85, 0.045),
            AnchorGroup(UPPER_LIP_OUTER + ((40, 270),), 0.0, -0.25, 0.035),
            AnchorGroup(((61, 291),), 0.0, 0.2, 0.03),
        ),
        pins=(200, 199, 2),
        pin_sigma=0.06,
        furrows=(Furrow(LIP_LINE, 0.008, 0.25, bilateral=False),),
        gain=0.6,
    ),
    26: ActionUnit(
        26, "Jaw Drop", "masseter, temporalis and internal pterygoid relaxed",
        "The mandible is lowered by relaxing the jaw-closing muscles: the chin moves down, "
        "the lips usually part and space between the teeth may show; the face lengthens.",
        groups=(
            AnchorGroup(((152, 152), (175, 175), (199, 199), (200, 200), (171, 396), (148, 377),
                         (208, 428), (140, 369), (176, 400), (32, 262)), 0.0, 1.0, 0.09),
            AnchorGroup(((18, 18), (83, 313), (201, 421)), 0.0, 1.0, 0.07),
            AnchorGroup(LOWER_LIP_OUTER + LOWER_LIP_INNER[:3], 0.0, 0.85, 0.05),
            AnchorGroup(((149, 378), (150, 379)), 0.0, 0.8, 0.09),
            AnchorGroup(((136, 365),), 0.0, 0.5, 0.08),
            AnchorGroup(((172, 397),), 0.0, 0.25, 0.07),
            AnchorGroup(((61, 291), (57, 287)), 0.0, 0.35, 0.05),
            AnchorGroup(((43, 273), (202, 422)), 0.0, 0.6, 0.06),
        ),
        pins=(0, 37, 267, 39, 269, 2, 98, 327, 50, 280, 205, 425, 58, 288, 132, 361),
        pin_sigma=0.04,
        furrows=(Furrow(LIP_LINE, 0.008, 0.2, bilateral=False),),
        gain=1.5,
    ),
}  # fmt: skip

#: AUs the generator can render (FACS numbers).
RENDERABLE_AUS: tuple[int, ...] = tuple(sorted(ACTION_UNITS))

#: Eyelid landmark pairs for blinks: upper-lid point -> the lower-lid point it closes onto.
BLINK_LID_PAIRS: tuple[tuple[int, int], ...] = (
    (159, 145), (158, 153), (160, 144), (157, 154), (161, 163), (173, 155), (246, 7),
    (386, 374), (385, 380), (387, 373), (384, 381), (388, 390), (398, 382), (466, 249),
)  # fmt: skip
#: Upper eye cover fold points -> the upper-lid point below them (they follow the lid).
BLINK_CREASE_PAIRS: tuple[tuple[int, int], ...] = (
    (27, 159), (28, 158), (29, 160), (30, 161), (56, 157),
    (257, 386), (258, 385), (259, 387), (260, 388), (286, 384),
)  # fmt: skip
#: Eye aperture polygons (upper lid then lower lid, corner to corner).
EYE_POLYGONS: tuple[tuple[int, ...], ...] = (
    (33, 246, 161, 160, 159, 158, 157, 173, 133, 155, 154, 153, 145, 144, 163, 7),
    (263, 466, 388, 387, 386, 385, 384, 398, 362, 382, 381, 380, 374, 373, 390, 249),
)
#: Lash line drawn when the lids close (the lower lid, where the upper lid lands).
LASH_LINES: tuple[tuple[int, ...], ...] = (
    (33, 7, 163, 144, 145, 153, 154, 155, 133),
    (263, 249, 390, 373, 374, 380, 381, 382, 362),
)


# ------------------------------------------------------------------------------------------
# geometry helpers
# ------------------------------------------------------------------------------------------


def interocular(landmarks: np.ndarray) -> float:
    """Outer-eye-corner distance (landmarks 33-263) in the landmarks' pixels."""
    return float(np.linalg.norm(landmarks[LEFT_EYE_OUTER] - landmarks[RIGHT_EYE_OUTER]))


def face_axes(landmarks: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """Unit face axes in image coordinates.

    Returns:
        ``ex`` ``(2,)`` float64 from the subject's right outer eye corner to the left one
        (image left -> right for a frontal face) and ``ey`` ``(2,)`` perpendicular, pointing
        towards the chin.
    """
    d = landmarks[LEFT_EYE_OUTER].astype(np.float64) - landmarks[RIGHT_EYE_OUTER]
    ex = d / np.linalg.norm(d)
    return ex, np.array([-ex[1], ex[0]])


def resolve_anchors(
    au: ActionUnit, landmarks: np.ndarray
) -> tuple[np.ndarray, np.ndarray, np.ndarray, np.ndarray, np.ndarray]:
    """Anchor positions, vectors and sigmas of an AU on one face.

    Args:
        au: the Action Unit.
        landmarks: ``(468, 2)`` pixels.

    Returns:
        ``points`` ``(K, 2)`` px, ``vectors`` ``(K, 2)`` relative units in image axes,
        ``sigmas`` ``(K,)`` px, ``pins`` ``(P, 2)`` px, ``pin_sigmas`` ``(P,)`` px.
    """
    lm = np.asarray(landmarks, np.float64)
    iod = interocular(lm)
    ex, ey = face_axes(lm)
    pts, vecs, sig = [], [], []
    for g in au.groups:
        for r, left in g.pairs:
            if r == left:
                pts.append(lm[r])
                vecs.append(g.down * ey)
                sig.append(g.sigma * iod)
            else:
                pts += [lm[r], lm[left]]
                vecs += [-g.out * ex + g.down * ey, g.out * ex + g.down * ey]
                sig += [g.sigma * iod] * 2
    pins = lm[list(au.pins)] if au.pins else np.zeros((0, 2))
    return (
        np.asarray(pts),
        np.asarray(vecs),
        np.asarray(sig),
        pins,
        np.full(len(pins), au.pin_sigma * iod),
    )


def grid_shape(image_shape: tuple[int, ...], stride: int) -> tuple[int, int]:
    """Rows and columns of the field grid of an image (grid point (i, j) = pixel (j*s, i*s))."""
    return (image_shape[0] + stride - 1) // stride, (image_shape[1] + stride - 1) // stride


def _window(c: float, radius: float, stride: int, n: int) -> tuple[int, int, np.ndarray]:
    lo = max(0, int(np.floor((c - radius) / stride)))
    hi = min(n, int(np.ceil((c + radius) / stride)) + 1)
    return lo, hi, np.arange(lo, hi, dtype=np.float64) * stride


def gaussian_field(
    points: np.ndarray,
    vectors: np.ndarray,
    sigmas: np.ndarray,
    pins: np.ndarray,
    pin_sigmas: np.ndarray,
    shape: tuple[int, int],
    stride: int,
) -> np.ndarray:
    """Dense displacement field from sparse anchors by normalised Gaussian weights.

    ``u(x) = sum_k w_k(x) d_k / (1 + S(x)^4)^(1/4)`` with ``w_k = exp(-|x - p_k|^2 /
    (2 sigma_k^2))`` and ``S`` the sum of the anchor and pin weights: a smooth maximum of
    1 and ``S``, so that ``u`` is the weighted mean of nearby anchor vectors inside dense
    anchor clusters, decays as a Gaussian away from them and is pulled to 0 near pins.
    Weights are evaluated in a +-3.5 sigma window (separable products).

    Args:
        points: ``(K, 2)`` anchor positions, pixels.
        vectors: ``(K, 2)`` displacements (any unit; the field has the same unit).
        sigmas: ``(K,)`` pixels.
        pins: ``(P, 2)`` positions held at zero displacement, pixels.
        pin_sigmas: ``(P,)`` pixels.
        shape: ``(rows, cols)`` of the grid.
        stride: grid spacing in pixels (grid point (i, j) is pixel (x=j*stride, y=i*stride)).

    Returns:
        ``(rows, cols, 2)`` float32 field (x, y components).
    """
    gh, gw = shape
    num = np.zeros((gh, gw, 2), np.float64)
    s = np.zeros((gh, gw), np.float64)
    allp = [(p, v, sg) for p, v, sg in zip(points, vectors, sigmas, strict=True)]
    allp += [(p, None, sg) for p, sg in zip(pins, pin_sigmas, strict=True)]
    for p, v, sg in allp:
        r = 3.5 * sg
        i0, i1, ys = _window(p[1], r, stride, gh)
        j0, j1, xs = _window(p[0], r, stride, gw)
        if i1 <= i0 or j1 <= j0:
            continue
        w = np.outer(np.exp(-0.5 * ((ys - p[1]) / sg) ** 2), np.exp(-0.5 * ((xs - p[0]) / sg) ** 2))
        s[i0:i1, j0:j1] += w
        if v is not None:
            num[i0:i1, j0:j1, 0] += w * v[0]
            num[i0:i1, j0:j1, 1] += w * v[1]
    den = (1.0 + s**4) ** 0.25
    return (num / den[..., None]).astype(np.float32)


def _resolve_vertex(vertex: Vertex, lm: np.ndarray, side: int) -> np.ndarray:
    return sum((w * lm[pair[side]] for pair, w in vertex), np.zeros(2))


def polyline_shade(
    polyline: np.ndarray, width: float, depth: float, shape: tuple[int, int], stride: int
) -> np.ndarray:
    """Darkening along a polyline: Gaussian cross profile, tapered to 0 at both ends.

    Args:
        polyline: ``(V, 2)`` vertices, pixels (V >= 2).
        width: Gaussian sigma across the line, pixels.
        depth: peak darkening fraction.
        shape, stride: the grid (see :func:`gaussian_field`).

    Returns:
        ``(rows, cols)`` float32 darkening in [0, depth].
    """
    gh, gw = shape
    out = np.zeros((gh, gw), np.float32)
    seg_len = np.linalg.norm(np.diff(polyline, axis=0), axis=1)
    total = float(seg_len.sum())
    if total <= 0:
        return out
    lo = polyline.min(0) - 3.5 * width
    hi = polyline.max(0) + 3.5 * width
    j0, j1 = max(0, int(lo[0] // stride)), min(gw, int(hi[0] // stride) + 2)
    i0, i1 = max(0, int(lo[1] // stride)), min(gh, int(hi[1] // stride) + 2)
    if i1 <= i0 or j1 <= j0:
        return out
    yy, xx = np.mgrid[i0:i1, j0:j1].astype(np.float64) * stride
    best = np.zeros(xx.shape)
    start = 0.0
    for k in range(len(polyline) - 1):
        a, b = polyline[k], polyline[k + 1]
        ab = b - a
        ll = float(ab @ ab)
        if ll <= 0:
            continue
        t = np.clip(((xx - a[0]) * ab[0] + (yy - a[1]) * ab[1]) / ll, 0.0, 1.0)
        d2 = (xx - a[0] - t * ab[0]) ** 2 + (yy - a[1] - t * ab[1]) ** 2
        along = (start + t * np.sqrt(ll)) / total
        val = np.sin(np.pi * along) * np.exp(-0.5 * d2 / width**2)
        best = np.maximum(best, val)
        start += np.sqrt(ll)
    out[i0:i1, j0:j1] = (depth * best).astype(np.float32)
    return out


def au_fields(
    au: ActionUnit, landmarks: np.ndarray, shape: tuple[int, int], stride: int
) -> tuple[np.ndarray, np.ndarray | None]:
    """The unit displacement field and the furrow shading of one AU on one face.

    Args:
        au: the Action Unit.
        landmarks: ``(468, 2)`` pixels of the neutral face.
        shape, stride: the grid (see :func:`gaussian_field`).

    Returns:
        ``field`` ``(rows, cols, 2)`` float32, pixels, scaled so that its largest
        displacement is exactly ``au.gain`` IOD (multiply by the intensity amplitude), and
        ``shade`` ``(rows, cols)`` float32 darkening at :data:`SHADE_REF_AMPLITUDE` (None if
        the AU has no furrow).
    """
    lm = np.asarray(landmarks, np.float64)
    iod = interocular(lm)
    pts, vecs, sig, pins, psig = resolve_anchors(au, lm)
    field = gaussian_field(pts, vecs, sig, pins, psig, shape, stride)
    peak = float(np.sqrt((field**2).sum(-1)).max())
    if peak > 0:
        field *= au.gain * iod / peak
    shade = None
    if au.furrows:
        shade = np.zeros(shape, np.float32)
        for f in au.furrows:
            sides = (0, 1) if f.bilateral else (0,)
            for side in sides:
                poly = np.array([_resolve_vertex(v, lm, side) for v in f.vertices])
                shade += polyline_shade(poly, f.width * iod, f.depth, shape, stride)
        np.clip(shade, 0.0, 0.6, out=shade)
    return field, shade


def blink_fields(
    landmarks: np.ndarray,
    shape: tuple[int, int],
    stride: int,
    closure: float = 0.85,
) -> tuple[np.ndarray, np.ndarray]:
    """Eyelid closure field and lash-line shading for a full blink.

    The upper-lid margin moves down ``closure`` of the way to the lower lid, the eye cover
    fold follows at 60 %, the lower lid rises by 10 % of the aperture; brows, eye corners
    and the cheek below are pinned. The remaining gap and the squeezed eyeball are hidden by
    the skin fill of :func:`blink_fill`.

    Args:
        landmarks: ``(468, 2)`` pixels.
        shape, stride: the grid.
        closure: fraction of the aperture closed by the warp (the fill does the rest).

    Returns:
        ``field`` ``(rows, cols, 2)`` float32 pixels at full closure and ``shade``
        ``(rows, cols)`` float32 lash-line darkening at full closure.
    """
    lm = np.asarray(landmarks, np.float64)
    iod = interocular(lm)
    pts, vecs, sig = [], [], []
    for up, lo in BLINK_LID_PAIRS:
        gap = lm[lo] - lm[up]
        pts += [lm[up], lm[lo]]
        vecs += [closure * gap, -0.1 * gap]
        sig += [0.045 * iod, 0.035 * iod]
    lid_of = dict(BLINK_LID_PAIRS)
    for crease, up in BLINK_CREASE_PAIRS:
        pts.append(lm[crease])
        vecs.append(0.6 * closure * (lm[lid_of[up]] - lm[up]))
        sig.append(0.05 * iod)
    pin_idx = [
        105,
        334,
        52,
        282,
        66,
        296,
        65,
        295,
        70,
        300,
        46,
        276,
        23,
        253,
        22,
        252,
        24,
        254,
        110,
        339,
        33,
        263,
        133,
        362,
    ]
    field = gaussian_field(
        np.array(pts),
        np.array(vecs),
        np.array(sig),
        lm[pin_idx],
        np.full(len(pin_idx), 0.03 * iod),
        shape,
        stride,
    )
    shade = np.zeros(shape, np.float32)
    for line in LASH_LINES:
        shade += polyline_shade(lm[list(line)], 0.008 * iod, 0.35, shape, stride)
    return field, shade


def blink_fill(image: np.ndarray, landmarks: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """Closed-lid appearance: the eye apertures filled with upper-lid skin.

    The fill is the image shifted down by 1.3 apertures (so the lid skin above the upper
    margin covers the opening) and blurred; the mask is the aperture polygon, dilated and
    feathered. During a blink the renderer blends ``image * (1 - c^2 m) + fill * c^2 m``
    (c the closure) before warping.

    Args:
        image: ``(H, W, 3)`` uint8 RGB neutral photo.
        landmarks: ``(468, 2)`` pixels.

    Returns:
        ``fill`` ``(H, W, 3)`` float32 and ``mask`` ``(H, W)`` float32 in [0, 1].
    """
    lm = np.asarray(landmarks, np.float64)
    iod = interocular(lm)
    h, w = image.shape[:2]
    mask = np.zeros((h, w), np.float32)
    fill = image.astype(np.float32).copy()
    for poly, (up, lo) in zip(EYE_POLYGONS, ((159, 145), (386, 374)), strict=True):
        cv2.fillPoly(mask, [np.round(lm[list(poly)]).astype(np.int32)], 1.0)
        ap = float(np.linalg.norm(lm[lo] - lm[up]))
        shift = np.float32([[1, 0, 0], [0, 1, 1.3 * ap]])
        moved = cv2.warpAffine(
            image, shift, (w, h), flags=cv2.INTER_LINEAR, borderMode=cv2.BORDER_REFLECT101
        )
        xs = lm[list(poly), 0]
        ys = lm[list(poly), 1]
        x0, x1 = int(max(0, xs.min() - 0.1 * iod)), int(min(w, xs.max() + 0.1 * iod + 1))
        y0, y1 = int(max(0, ys.min() - 0.1 * iod)), int(min(h, ys.max() + 0.1 * iod + 1))
        fill[y0:y1, x0:x1] = moved[y0:y1, x0:x1]
    k = max(1, int(round(0.02 * iod)))
    mask = cv2.dilate(mask, np.ones((2 * k + 1, 2 * k + 1), np.uint8))
    mask = cv2.GaussianBlur(mask, (0, 0), 0.012 * iod)
    fill = cv2.GaussianBlur(fill, (0, 0), 0.006 * iod)
    return fill, np.clip(mask, 0.0, 1.0)
