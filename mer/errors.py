"""Error types with stable, documented codes.

Every failure that reaches a user carries a ``code`` (stable, snake_case, listed in the
README) and a human ``message``. The library knows no HTTP: the service maps codes to
statuses (:data:`service.errors.HTTP_STATUS`); job records store ``code`` and ``message``
only, never a traceback.
"""

from __future__ import annotations


class MERError(Exception):
    """Base class of every expected failure.

    Attributes:
        code: stable machine-readable code, e.g. ``"no_face_detected"``.
        message: human-readable explanation.
    """

    code: str = "internal_error"

    def __init__(self, message: str, *, code: str | None = None) -> None:
        super().__init__(message)
        self.message = message
        if code is not None:
            self.code = code

    def to_dict(self) -> dict[str, str]:
        """Return ``{"code": ..., "message": ...}``."""
        return {"code": self.code, "message": self.message}


class InvalidVideoError(MERError):
    """The input is not a decodable video (empty, text, truncated, audio only, ...)."""

    code = "invalid_video"


class EmptyUploadError(InvalidVideoError):
    """Zero bytes were uploaded."""

    code = "empty_upload"


class UnsupportedCodecError(InvalidVideoError):
    """The container holds a video stream whose codec FFmpeg cannot decode here."""

    code = "unsupported_codec"


class NoVideoStreamError(InvalidVideoError):
    """The container holds no video stream (e.g. audio only)."""

    code = "no_video_stream"


class TruncatedVideoError(InvalidVideoError):
    """The file ends or breaks before its declared end, or yields no decodable frame."""

    code = "truncated_video"


class VideoLimitError(MERError):
    """A configured limit (size, duration, resolution, frame count) is exceeded.

    ``code`` is one of ``file_too_large``, ``video_too_long``, ``resolution_too_large``,
    ``too_many_frames``, ``resolution_too_small``.
    """

    code = "video_limit_exceeded"

    def __init__(self, message: str, *, code: str) -> None:
        super().__init__(message, code=code)


class NoFaceDetectedError(MERError):
    """No face was found in enough frames to analyse the video."""

    code = "no_face_detected"


class NeutralReferenceError(MERError):
    """The neutral reference asked for is unusable: an empty or reversed stretch, or one
    with no frame showing a face."""

    code = "invalid_neutral_reference"


class ModelUnavailableError(MERError):
    """A model needed for the request is not installed or failed to load."""

    code = "model_unavailable"


class JobCancelledError(MERError):
    """The job was cancelled by its owner while it ran (or before it started)."""

    code = "job_cancelled"

    def __init__(self, message: str = "the job was cancelled") -> None:
        super().__init__(message)


class InferenceUnavailableError(MERError):
    """The inference service (TorchServe) did not answer, or not usably, after retries."""

    code = "inference_unavailable"
