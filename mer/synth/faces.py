"""The real base faces: Face Research Lab London Set, neutral and smiling photos.

DeBruine, L. & Jones, B. (2017). Face Research Lab London Set. figshare.
doi:10.6084/m9.figshare.5047666.v5. Licence CC BY 4.0: credit the authors wherever images
rendered from them, or models trained on those, are distributed. 102 adults, frontal,
600x600 px, ``neutral/NNN.jpg`` and ``smiling/NNN.jpg``.

The photos are read from ``../shared/data/faces/london`` next to the repository (never copied
into it). Landmarks (MediaPipe FaceMesh, 468 points) are detected once per photo and cached
in an ``.npz`` file.
"""

from __future__ import annotations

import logging
import os
import tempfile
from dataclasses import dataclass
from pathlib import Path

import cv2
import numpy as np

from mer.face.align import umeyama_similarity
from mer.face.landmarks import N_POINTS, STABLE_POINTS
from mer.synth.aus import CHEEK
from mer.synth.fields import interocular

log = logging.getLogger(__name__)

CREDIT = (
    "Faces: Face Research Lab London Set, DeBruine & Jones (2017), "
    "doi:10.6084/m9.figshare.5047666.v5, CC BY 4.0 (rendered with synthetic "
    "micro-expressions, i.e. altered)."
)
#: Bump when the cache's content changes meaning.
CACHE_VERSION = "mediapipe-facemesh-468-v1"


def default_london_root() -> Path:
    """``<shared data>/faces/london`` (``MER_SHARED_DATA_DIR``, default
    ``<repo>/../shared/data``; may not exist)."""
    from mer.settings import Settings

    return Settings().shared_data_dir / "faces" / "london"


def list_identities(root: Path | str | None = None) -> list[str]:
    """Identity ids (``"001"`` ...) that have a neutral photo, sorted.

    Raises:
        FileNotFoundError: ``root/neutral`` does not exist.
    """
    root = Path(root) if root is not None else default_london_root()
    d = root / "neutral"
    if not d.is_dir():
        raise FileNotFoundError(f"London Set not found: {d} (see ../shared/data/README.md)")
    return sorted(p.stem for p in d.glob("*.jpg"))


def read_rgb(path: Path) -> np.ndarray:
    """Read an image file as ``(H, W, 3)`` uint8 RGB.

    Raises:
        FileNotFoundError: unreadable file.
    """
    img = cv2.imread(str(path), cv2.IMREAD_COLOR)
    if img is None:
        raise FileNotFoundError(f"cannot read image {path}")
    return cv2.cvtColor(img, cv2.COLOR_BGR2RGB)


@dataclass(frozen=True)
class SmileGeometry:
    """The smiling photo of an identity, aligned to its neutral photo.

    Attributes:
        matrix: ``(2, 3)`` float64 similarity, smiling-photo pixels -> neutral-photo pixels
            (Umeyama fit on :data:`mer.face.landmarks.STABLE_POINTS`).
        displacement: ``(468, 2)`` float32, aligned smiling landmarks minus neutral ones, px.
        corner: mean lip-corner (61, 291) displacement, IOD units.
        cheek: mean cheek displacement (AU6 anchors), IOD units.
        lip_gap: increase of the inner-lip distance (13-14), IOD units.
    """

    matrix: np.ndarray
    displacement: np.ndarray
    corner: float
    cheek: float
    lip_gap: float


@dataclass(frozen=True)
class LondonFace:
    """One identity: photo paths and landmarks.

    Attributes:
        identity: ``"001"`` ...
        neutral_path: the neutral photo.
        landmarks: ``(468, 2)`` float32 pixels of the neutral photo.
        smiling_path: the smiling photo, or None.
        smiling_landmarks: ``(468, 2)`` float32 pixels of the smiling photo, or None when
            missing or undetected.
    """

    identity: str
    neutral_path: Path
    landmarks: np.ndarray
    smiling_path: Path | None = None
    smiling_landmarks: np.ndarray | None = None

    @property
    def iod(self) -> float:
        """Outer-eye-corner distance of the neutral photo, pixels."""
        return interocular(self.landmarks)

    @property
    def has_smile(self) -> bool:
        """Smiling photo and its landmarks available."""
        return self.smiling_path is not None and self.smiling_landmarks is not None

    def smile_geometry(self) -> SmileGeometry | None:
        """Align the smiling landmarks to the neutral ones; None without a smiling photo."""
        if not self.has_smile or self.smiling_landmarks is None:
            return None
        idx = list(STABLE_POINTS)
        m = umeyama_similarity(self.smiling_landmarks[idx], self.landmarks[idx])
        s = self.smiling_landmarks.astype(np.float64)
        aligned = s @ m[:, :2].T + m[:, 2]
        d = (aligned - self.landmarks).astype(np.float32)
        iod = self.iod
        cheek_idx = [i for pair in CHEEK for i in pair]
        gap_n = float(np.linalg.norm(self.landmarks[13] - self.landmarks[14]))
        gap_s = float(np.linalg.norm(aligned[13] - aligned[14]))
        return SmileGeometry(
            matrix=m,
            displacement=d,
            corner=float(np.linalg.norm(d[[61, 291]], axis=1).mean() / iod),
            cheek=float(np.linalg.norm(d[cheek_idx], axis=1).mean() / iod),
            lip_gap=max(0.0, (gap_s - gap_n) / iod),
        )


def _detect(landmarker: object, path: Path) -> np.ndarray | None:
    img = read_rgb(path)
    faces = landmarker.process(img)  # type: ignore[attr-defined]
    if not faces:
        return None
    best = max(faces, key=lambda f: f.area)
    return best.landmarks.astype(np.float32)


def _load_cache(path: Path | None) -> dict[str, np.ndarray]:
    if path is None or not path.is_file():
        return {}
    try:
        with np.load(path, allow_pickle=False) as z:
            if str(z.get("version", "")) != CACHE_VERSION:
                return {}
            return {k: z[k] for k in z.files if k != "version"}
    except (OSError, ValueError) as exc:
        log.warning("ignoring unreadable landmark cache %s: %s", path, exc)
        return {}


def _save_cache(path: Path, data: dict[str, np.ndarray]) -> None:
    path.parent.mkdir(parents=True, exist_ok=True)
    fd, tmp = tempfile.mkstemp(suffix=".npz", dir=path.parent)
    os.close(fd)
    try:
        np.savez_compressed(tmp, version=np.array(CACHE_VERSION), **data)
        os.replace(tmp, path)
    finally:
        if os.path.exists(tmp):
            os.unlink(tmp)


def load_london_faces(
    root: Path | str | None = None,
    identities: list[str] | None = None,
    cache_path: Path | str | None = None,
) -> dict[str, LondonFace]:
    """Landmarks of the London Set photos, detected once and cached.

    Args:
        root: the ``london`` folder (default :func:`default_london_root`).
        identities: ids to load (``["001", "017"]``); None loads all.
        cache_path: ``.npz`` cache, read when present and updated with new detections;
            None disables caching.

    Returns:
        ``{identity: LondonFace}`` for identities whose neutral face was detected (others
        are left out with a warning).

    Raises:
        FileNotFoundError: the London Set folder or a requested identity is missing.
    """
    root = Path(root) if root is not None else default_london_root()
    ids = list_identities(root) if identities is None else [str(i).zfill(3) for i in identities]
    cache_file = Path(cache_path) if cache_path is not None else None
    cache = _load_cache(cache_file)
    landmarker = None
    changed = False
    out: dict[str, LondonFace] = {}
    try:
        for ident in ids:
            npath = root / "neutral" / f"{ident}.jpg"
            if not npath.is_file():
                raise FileNotFoundError(f"no neutral photo {npath}")
            spath: Path | None = root / "smiling" / f"{ident}.jpg"
            if spath is not None and not spath.is_file():
                spath = None
            got: dict[str, np.ndarray | None] = {}
            for kind, path in (("neutral", npath), ("smiling", spath)):
                key = f"{kind}_{ident}"
                if path is None:
                    got[kind] = None
                    continue
                if key not in cache:
                    if landmarker is None:
                        from mer.face.landmarks import create_landmarker

                        landmarker = create_landmarker(static=True, max_faces=1)
                    lm = _detect(landmarker, path)
                    cache[key] = (
                        lm if lm is not None else np.full((N_POINTS, 2), np.nan, np.float32)
                    )
                    changed = True
                arr = cache[key]
                got[kind] = None if np.isnan(arr).any() else arr.astype(np.float32)
            if got["neutral"] is None:
                log.warning("London %s: no face found in the neutral photo; skipped", ident)
                continue
            out[ident] = LondonFace(
                identity=ident,
                neutral_path=npath,
                landmarks=got["neutral"],
                smiling_path=spath if got["smiling"] is not None else None,
                smiling_landmarks=got["smiling"],
            )
    finally:
        if landmarker is not None:
            landmarker.close()  # type: ignore[attr-defined]
    if changed and cache_file is not None:
        _save_cache(cache_file, cache)
    return out
