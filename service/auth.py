"""API keys: parsing the configured (hashed) keys and authenticating requests.

Keys are never stored in clear: the service knows only ``name:sha256hex`` entries (the
SHA-256 of each key), from ``MER_API_KEYS`` (comma-separated) and/or ``MER_API_KEYS_FILE``
(one entry per line, ``#`` comments; re-read when it changes, so a key can be added or
revoked without a restart). An entry ending in ``:revoked``, or whose name or hash is in
``MER_REVOKED_KEYS``, is refused with 403. Make an entry with ``python -m service.keys``.

A request sends its key as ``Authorization: Bearer <key>`` or ``X-API-Key: <key>``:
none -> 401 ``missing_api_key``; unknown -> 401 ``invalid_api_key``; revoked -> 403
``api_key_revoked``. The key's hash is compared with :func:`hmac.compare_digest` against
every entry, so the time taken does not tell which entry came close.
"""

from __future__ import annotations

import hashlib
import hmac
import logging
import re
import threading
import time
from dataclasses import dataclass
from pathlib import Path

from service.settings import ServiceSettings

logger = logging.getLogger(__name__)

_NAME_RE = re.compile(r"[A-Za-z0-9_.@-]{1,64}")
_HEX_RE = re.compile(r"[0-9a-f]{64}")
#: Longest key accepted in a header (longer ones are refused without hashing).
MAX_KEY_CHARS = 512
#: Name of the caller when authentication is off.
ANONYMOUS = "anonymous"


def hash_key(key: str) -> str:
    """The stored form of an API key: SHA-256 of its UTF-8 bytes, lowercase hex."""
    return hashlib.sha256(key.encode("utf-8")).hexdigest()


@dataclass(frozen=True)
class ApiKeyEntry:
    """One configured key: its owner ``name``, the key's SHA-256 ``digest``, ``revoked``."""

    name: str
    digest: str
    revoked: bool = False


@dataclass(frozen=True)
class Principal:
    """Who is calling: the key's ``name`` (``anonymous`` when auth is off)."""

    name: str
    authenticated: bool


def parse_key_entries(text: str, source: str = "MER_API_KEYS") -> list[ApiKeyEntry]:
    """Parse ``name:sha256hex[:revoked]`` entries separated by commas or new lines.

    Raises:
        ValueError: an entry is malformed (the message names ``source``, never a key).
    """
    entries = []
    for raw in re.split(r"[,\n]", text):
        item = raw.split("#", 1)[0].strip()
        if not item:
            continue
        parts = [p.strip() for p in item.split(":")]
        revoked = len(parts) == 3 and parts[2].lower() == "revoked"
        if len(parts) not in (2, 3) or (len(parts) == 3 and not revoked):
            raise ValueError(
                f"{source}: expected 'name:sha256hex[:revoked]', got {len(parts)} parts"
            )
        name, digest = parts[0], parts[1].lower()
        if not _NAME_RE.fullmatch(name):
            raise ValueError(f"{source}: bad key name {name[:64]!r} (letters, digits, _.@-)")
        if not _HEX_RE.fullmatch(digest):
            raise ValueError(
                f"{source}: the entry for {name!r} is not a SHA-256 hex digest "
                "(store the hash, never the key: python -m service.keys KEY)"
            )
        entries.append(ApiKeyEntry(name=name, digest=digest, revoked=revoked))
    return entries


class KeyRing:
    """The configured keys; re-reads ``api_keys_file`` when its modification time changes."""

    def __init__(self, settings: ServiceSettings, recheck_s: float = 1.0) -> None:
        """Load the keys of ``settings``.

        Raises:
            ValueError: a malformed entry (the API refuses to start).
        """
        self._inline = parse_key_entries(settings.api_keys, "MER_API_KEYS")
        raw_file = str(settings.api_keys_file or "").strip()
        self._file = Path(raw_file) if raw_file not in ("", ".") else None  # "" reads as "."
        self._revoked = {r.strip().lower() for r in settings.revoked_keys.split(",") if r.strip()}
        self._recheck_s = recheck_s
        self._lock = threading.Lock()
        self._file_mtime: float | None = None
        self._file_entries: list[ApiKeyEntry] = []
        self._checked_at = 0.0
        self._reload_file(force=True)

    def _reload_file(self, force: bool = False) -> None:
        if self._file is None:
            return
        now = time.monotonic()
        if not force and now - self._checked_at < self._recheck_s:
            return
        with self._lock:
            self._checked_at = now
            try:
                mtime = self._file.stat().st_mtime
            except OSError as exc:
                if force:
                    raise ValueError(f"MER_API_KEYS_FILE {self._file} unreadable: {exc}") from exc
                logger.error(
                    "API key file %s unreadable (%s); keeping the old keys", self._file, exc
                )
                return
            if mtime == self._file_mtime:
                return
            try:
                entries = parse_key_entries(self._file.read_text(encoding="utf-8"), str(self._file))
            except (OSError, ValueError) as exc:
                if force:
                    raise ValueError(str(exc)) from exc
                logger.error(
                    "API key file %s is invalid (%s); keeping the old keys", self._file, exc
                )
                return
            self._file_entries, self._file_mtime = entries, mtime
            if not force:
                logger.info("API key file %s reloaded: %d entries", self._file, len(entries))

    @property
    def entries(self) -> list[ApiKeyEntry]:
        """All configured entries (inline first, then the file's)."""
        self._reload_file()
        return [*self._inline, *self._file_entries]

    def __len__(self) -> int:
        return len(self.entries)

    def lookup(self, key: str) -> ApiKeyEntry | None:
        """The entry whose digest matches ``key`` (revocation applied), or ``None``.

        Compares against every entry with :func:`hmac.compare_digest`.
        """
        digest = hash_key(key)
        found: ApiKeyEntry | None = None
        for entry in self.entries:
            if hmac.compare_digest(entry.digest, digest) and found is None:
                found = entry
        if found is not None and (
            found.name.lower() in self._revoked or found.digest in self._revoked
        ):
            found = ApiKeyEntry(found.name, found.digest, revoked=True)
        return found


def key_from_headers(authorization: str | None, x_api_key: str | None) -> str | None:
    """The key sent as ``Authorization: Bearer <key>`` or ``X-API-Key`` (``None`` if none)."""
    if x_api_key and x_api_key.strip():
        return x_api_key.strip()
    if authorization:
        scheme, _, value = authorization.strip().partition(" ")
        if scheme.lower() == "bearer" and value.strip():
            return value.strip()
    return None
