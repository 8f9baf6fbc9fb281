"""Webhook target checks: a client's ``callback_url`` must be an absolute http(s) URL whose
host does not resolve to a private, loopback, link-local, multicast, reserved or unspecified
address (checked at submission and again before every delivery attempt;
:mod:`workers.webhooks`).
"""

from __future__ import annotations

import ipaddress
import socket
from urllib.parse import urlsplit

from mer.errors import MERError

#: Longest accepted ``callback_url`` (characters).
MAX_CALLBACK_URL_CHARS = 2048


class InvalidCallbackUrlError(MERError):
    """``callback_url`` is not an absolute http(s) URL with a resolvable host."""

    code = "invalid_callback_url"


class CallbackUrlNotAllowedError(MERError):
    """``callback_url`` points at a private, loopback or link-local address."""

    code = "callback_url_not_allowed"


def _address_refused(address: str) -> bool:
    ip = ipaddress.ip_address(address.split("%", 1)[0])
    if isinstance(ip, ipaddress.IPv6Address) and ip.ipv4_mapped is not None:
        ip = ip.ipv4_mapped
    return bool(
        ip.is_private
        or ip.is_loopback
        or ip.is_link_local
        or ip.is_multicast
        or ip.is_reserved
        or ip.is_unspecified
    )


def check_callback_url(url: str, *, allow_private: bool) -> str:
    """Validate a client's ``callback_url``; return it stripped.

    Args:
        url: the URL as sent.
        allow_private: accept private, loopback and link-local targets.

    Raises:
        InvalidCallbackUrlError: not http(s), no host, too long, or the host does not
            resolve.
        CallbackUrlNotAllowedError: the host resolves to a refused address.
    """
    url = url.strip()
    if not url or len(url) > MAX_CALLBACK_URL_CHARS:
        raise InvalidCallbackUrlError(
            f"callback_url must be an http(s) URL of at most {MAX_CALLBACK_URL_CHARS} characters"
        )
    try:
        parts = urlsplit(url)
        port = parts.port
    except ValueError as exc:
        raise InvalidCallbackUrlError(f"callback_url is not a valid URL ({exc})") from exc
    if parts.scheme not in ("http", "https") or not parts.hostname:
        raise InvalidCallbackUrlError("callback_url must be an absolute http:// or https:// URL")
    if parts.username or parts.password:
        raise InvalidCallbackUrlError("callback_url must not carry credentials")
    if allow_private:
        return url
    try:
        infos = socket.getaddrinfo(parts.hostname, port or 443, proto=socket.IPPROTO_TCP)
    except (OSError, UnicodeError) as exc:
        raise InvalidCallbackUrlError(
            f"the host of callback_url ({parts.hostname}) does not resolve"
        ) from exc
    refused = sorted({str(info[4][0]) for info in infos if _address_refused(str(info[4][0]))})
    if refused:
        raise CallbackUrlNotAllowedError(
            f"callback_url resolves to a private, loopback or link-local address "
            f"({', '.join(refused)}); such targets are refused"
        )
    return url
