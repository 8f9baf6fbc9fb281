"""Streaming multipart upload to disk, with a size limit and a server-chosen file name.

The request body is parsed as it arrives (``python-multipart``) and the ``file`` part is
written chunk by chunk to ``<data_dir>/uploads/<job_id>/input<suffix>``. The size limit is
enforced while receiving (413 ``file_too_large`` as soon as it is crossed), nothing is
spooled elsewhere first, and the client's file name is kept only as sanitised metadata:
the stored file's suffix comes from a whitelist (else ``.bin``).
"""

from __future__ import annotations

import contextlib
import logging
import shutil
import time
import unicodedata
from dataclasses import dataclass, field
from pathlib import Path, PurePosixPath
from typing import IO, Any

import anyio.to_thread
from starlette.requests import Request

from mer.errors import EmptyUploadError, VideoLimitError
from service.errors import RequestBodyError, UploadTimeoutError
from service.settings import ServiceSettings
from workers.jobstore import JobStore, is_valid_job_id

try:  # python-multipart >= 0.0.13
    import python_multipart as multipart
    from python_multipart.multipart import parse_options_header
except ModuleNotFoundError:  # pragma: no cover - older python-multipart
    import multipart  # type: ignore[no-redef]
    from multipart.multipart import parse_options_header  # type: ignore[no-redef]

logger = logging.getLogger(__name__)

#: Container suffixes kept for the stored file; anything else is stored as ``.bin``.
ALLOWED_SUFFIXES: frozenset[str] = frozenset(
    {
        ".mp4", ".m4v", ".mov", ".avi", ".mkv", ".webm", ".mpg", ".mpeg",
        ".wmv", ".flv", ".3gp", ".ts", ".mts", ".ogv",
    }
)  # fmt: skip
#: Multipart framing allowed on top of ``max_upload_bytes`` before Content-Length is refused.
MULTIPART_OVERHEAD_BYTES = 64 * 1024
_MAX_FILENAME_CHARS = 200


def uploads_root(settings: ServiceSettings) -> Path:
    """Absolute directory holding one sub-directory per job's upload."""
    return Path(settings.data_dir).resolve() / "uploads"


def upload_dir_for(settings: ServiceSettings, job_id: str) -> Path:
    """The upload directory of ``job_id`` (the id must be well formed)."""
    if not is_valid_job_id(job_id):
        raise ValueError(f"malformed job id {job_id!r}")
    return uploads_root(settings) / job_id


def sanitize_filename(name: str | None) -> str:
    """Reduce a client-supplied file name to a harmless display name.

    Keeps the last path component only, drops control and separator characters, trims
    leading dots and whitespace and the length (keeping the suffix). Never used as a path.
    """
    if not name:
        return "upload"
    name = unicodedata.normalize("NFC", name).replace("\\", "/").rsplit("/", 1)[-1]
    name = "".join(
        ch
        for ch in name
        if unicodedata.category(ch)[0] != "C" and ch not in '<>:"|?*' and ch != "\x7f"
    )
    name = name.strip().lstrip(".").strip()
    if len(name) > _MAX_FILENAME_CHARS:
        suffix = PurePosixPath(name).suffix[:16]
        name = name[: _MAX_FILENAME_CHARS - len(suffix)] + suffix
    return name or "upload"


def stored_suffix(filename: str) -> str:
    """The suffix for the stored file: the client's if whitelisted, else ``.bin``."""
    suffix = PurePosixPath(filename).suffix.lower()
    return suffix if suffix in ALLOWED_SUFFIXES else ".bin"


@dataclass(frozen=True)
class StoredUpload:
    """An upload written to disk.

    Attributes:
        path: absolute server path of the stored file.
        filename: the client's file name, sanitised (metadata only).
        size: bytes written.
        fields: the accepted text fields of the form (see ``text_fields`` of
            :func:`receive_upload`), e.g. ``{"callback_url": "https://..."}``.
    """

    path: Path
    filename: str
    size: int
    fields: dict[str, str] = field(default_factory=dict)


#: Text form fields accepted beside the file, and the longest value of each (bytes).
TEXT_FIELDS: dict[str, int] = {
    "callback_url": 2048,
    "include_blendshapes": 16,
    "neutral_start_s": 32,
    "neutral_end_s": 32,
}


class _FilePartSink:
    """python-multipart callbacks that route one form field's bytes to a file."""

    def __init__(
        self, dest_dir: Path, field: str, max_bytes: int, text_fields: dict[str, int]
    ) -> None:
        self.dest_dir = dest_dir
        self.field = field
        self.max_bytes = max_bytes
        self.text_fields = text_fields
        self.texts: dict[str, bytearray] = {}
        self._text: str | None = None
        self.pending: list[bytes] = []
        self.fh: IO[bytes] | None = None
        self.path: Path | None = None
        self.filename = "upload"
        self.size = 0
        self.found = False
        self._in_target = False
        self._header_name = b""
        self._header_value = b""
        self._disposition = b""

    # python-multipart callbacks -------------------------------------------------------
    def on_part_begin(self) -> None:
        self._in_target = False
        self._text = None
        self._disposition = b""

    def on_header_field(self, data: bytes, start: int, end: int) -> None:
        self._header_name += data[start:end]

    def on_header_value(self, data: bytes, start: int, end: int) -> None:
        self._header_value += data[start:end]

    def on_header_end(self) -> None:
        if self._header_name.strip().lower() == b"content-disposition":
            self._disposition = self._header_value
        self._header_name = b""
        self._header_value = b""

    def on_headers_finished(self) -> None:
        _, options = parse_options_header(self._disposition)
        name = options.get(b"name", b"").decode("utf-8", "replace")
        if name in self.text_fields and b"filename" not in options and name not in self.texts:
            self._text = name
            self.texts[name] = bytearray()
            return
        if name != self.field or self.found:
            return  # other fields and repeated file fields are ignored
        self.found = True
        self._in_target = True
        raw = options.get(b"filename")
        self.filename = sanitize_filename(raw.decode("utf-8", "replace") if raw else None)
        self.dest_dir.mkdir(parents=True, exist_ok=True)
        self.path = self.dest_dir / f"input{stored_suffix(self.filename)}"
        self.fh = open(self.path, "wb")  # noqa: SIM115 - closed in close()

    def on_part_data(self, data: bytes, start: int, end: int) -> None:
        if self._text is not None:
            value = self.texts[self._text]
            value += data[start:end]
            if len(value) > self.text_fields[self._text]:
                raise RequestBodyError(
                    f"the form field {self._text!r} is longer than "
                    f"{self.text_fields[self._text]} bytes"
                )
            return
        if not self._in_target:
            return
        self.size += end - start
        if self.size > self.max_bytes:
            raise VideoLimitError(
                f"the upload exceeds the limit of {self.max_bytes} bytes",
                code="file_too_large",
            )
        self.pending.append(bytes(data[start:end]))

    def on_part_end(self) -> None:
        self._in_target = False
        self._text = None

    def callbacks(self) -> dict[str, Any]:
        return {
            "on_part_begin": self.on_part_begin,
            "on_part_data": self.on_part_data,
            "on_part_end": self.on_part_end,
            "on_header_field": self.on_header_field,
            "on_header_value": self.on_header_value,
            "on_header_end": self.on_header_end,
            "on_headers_finished": self.on_headers_finished,
        }

    # file side ------------------------------------------------------------------------
    def take_pending(self) -> bytes:
        data = b"".join(self.pending)
        self.pending.clear()
        return data

    def close(self) -> None:
        if self.fh is not None:
            self.fh.close()
            self.fh = None


async def receive_upload(
    request: Request,
    dest_dir: Path,
    *,
    max_bytes: int,
    field: str = "file",
    timeout_s: float | None = None,
    text_fields: dict[str, int] | None = None,
) -> StoredUpload:
    """Stream the multipart form field ``field`` of ``request`` into ``dest_dir``.

    Args:
        request: a ``multipart/form-data`` request.
        dest_dir: created if needed; receives ``input<suffix>``.
        max_bytes: largest accepted file (bytes).
        field: the form field holding the file.
        timeout_s: the whole body must arrive within this many seconds (slow clients
            would otherwise hold a connection and a job slot forever).
        text_fields: text fields kept beside the file, with their largest size in bytes
            (default :data:`TEXT_FIELDS`); other fields are ignored.

    Returns:
        The :class:`StoredUpload`.

    Raises:
        RequestBodyError: not multipart, malformed, no ``field`` part, or a text field
            too long or not UTF-8 (422).
        VideoLimitError: ``file_too_large`` (413), checked while receiving.
        EmptyUploadError: the file part is empty (422 ``empty_upload``).
        UploadTimeoutError: the body did not arrive within ``timeout_s`` (408).
    """
    content_type = request.headers.get("content-type", "")
    ctype, params = parse_options_header(content_type)
    if ctype != b"multipart/form-data" or b"boundary" not in params:
        raise RequestBodyError(f"expected a multipart/form-data body with a {field!r} file field")
    declared = request.headers.get("content-length")
    if declared and declared.isdigit() and int(declared) > max_bytes + MULTIPART_OVERHEAD_BYTES:
        raise VideoLimitError(
            f"the upload ({declared} bytes) exceeds the limit of {max_bytes} bytes",
            code="file_too_large",
        )

    sink = _FilePartSink(
        dest_dir, field, max_bytes, TEXT_FIELDS if text_fields is None else text_fields
    )
    parser = multipart.MultipartParser(params[b"boundary"], sink.callbacks())
    try:
        try:
            with anyio.fail_after(timeout_s):
                async for chunk in request.stream():
                    try:
                        parser.write(chunk)
                    except (VideoLimitError, RequestBodyError, OSError):
                        raise
                    except Exception as exc:  # python-multipart parse errors
                        raise RequestBodyError(f"malformed multipart body ({exc})") from exc
                    if sink.pending and sink.fh is not None:
                        await anyio.to_thread.run_sync(sink.fh.write, sink.take_pending())
        except TimeoutError as exc:
            raise UploadTimeoutError(
                f"the upload did not arrive within {timeout_s:.0f} s ({sink.size} bytes received)"
            ) from exc
        try:
            parser.finalize()
        except Exception as exc:
            raise RequestBodyError(f"malformed multipart body ({exc})") from exc
        if sink.pending and sink.fh is not None:
            await anyio.to_thread.run_sync(sink.fh.write, sink.take_pending())
    finally:
        sink.close()

    if not sink.found or sink.path is None:
        raise RequestBodyError(f"the form field {field!r} (the video file) is missing")
    if sink.size == 0:
        raise EmptyUploadError("the upload is empty (0 bytes)")
    fields: dict[str, str] = {}
    for name, raw in sink.texts.items():
        try:
            fields[name] = bytes(raw).decode("utf-8")
        except UnicodeDecodeError as exc:
            raise RequestBodyError(f"the form field {name!r} is not UTF-8 text") from exc
    return StoredUpload(path=sink.path, filename=sink.filename, size=sink.size, fields=fields)


def remove_upload_dir(settings: ServiceSettings, job_id: str) -> None:
    """Delete a job's upload directory, if any."""
    if is_valid_job_id(job_id):
        shutil.rmtree(upload_dir_for(settings, job_id), ignore_errors=True)


def sweep_orphans(settings: ServiceSettings, store: JobStore, min_age_s: float = 3600.0) -> int:
    """Retention sweep: delete uploads whose job is gone, and stale store bookkeeping.

    ``store.purge()`` expires old file-store records (leaving tombstones) and drops old
    tombstones and idempotency keys. An upload directory is removed when its job expired
    (at once) or has no record and is older than ``min_age_s`` (a younger one may still
    be arriving). Results expire with their records. Returns how many directories were
    removed.
    """
    store.purge()
    root = uploads_root(settings)
    if not root.is_dir():
        return 0
    removed = 0
    now = time.time()
    for entry in root.iterdir():
        if not entry.is_dir() or not is_valid_job_id(entry.name):
            continue
        with contextlib.suppress(OSError):
            if store.get(entry.name) is not None:
                continue
            if not store.is_expired(entry.name) and now - entry.stat().st_mtime < min_age_s:
                continue
            shutil.rmtree(entry, ignore_errors=True)
            removed += 1
    if removed:
        logger.info("retention: removed %d upload director(ies)", removed)
    return removed
