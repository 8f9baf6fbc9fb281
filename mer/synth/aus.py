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

This module is the table of per-AU definitions (:data:`ACTION_UNITS`), kept together so that
each AU's anchors, pins and furrows read in one place; the types are
:mod:`mer.synth.au_types`, the fields made from them :mod:`mer.synth.fields` and the blinks
:mod:`mer.synth.blink` (their names stay importable from here).
"""

from __future__ import annotations

from mer.synth.au_types import SHADE_REF_AMPLITUDE, ActionUnit, AnchorGroup, Furrow, Pair, Vertex
from mer.synth.blink import (
    BLINK_CREASE_PAIRS,
    BLINK_LID_PAIRS,
    EYE_POLYGONS,
    LASH_LINES,
    blink_fields,
    blink_fill,
)
from mer.synth.fields import (
    au_fields,
    face_axes,
    gaussian_field,
    grid_shape,
    interocular,
    polyline_shade,
    resolve_anchors,
)

__all__ = [
    "ACTION_UNITS",
    "BLINK_CREASE_PAIRS",
    "BLINK_LID_PAIRS",
    "EYE_POLYGONS",
    "LASH_LINES",
    "RENDERABLE_AUS",
    "SHADE_REF_AMPLITUDE",
    "ActionUnit",
    "AnchorGroup",
    "Furrow",
    "Pair",
    "Vertex",
    "au_fields",
    "blink_fields",
    "blink_fill",
    "face_axes",
    "gaussian_field",
    "grid_shape",
    "interocular",
    "polyline_shade",
    "resolve_anchors",
]


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
