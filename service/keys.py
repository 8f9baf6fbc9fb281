"""Make an API key entry: ``python -m service.keys [--name NAME] [KEY]``.

Prints the line to put in ``MER_API_KEYS`` (comma-separated) or ``MER_API_KEYS_FILE``
(one per line): ``name:sha256hex``. Without ``KEY`` a new random key is generated and
printed once on stderr: give it to the client; the service stores only the hash.
"""

from __future__ import annotations

import argparse
import secrets
import sys

from service.auth import _NAME_RE, hash_key


def main(argv: list[str] | None = None) -> int:
    """Command-line entry point; returns the exit status."""
    parser = argparse.ArgumentParser(prog="python -m service.keys", description=__doc__)
    parser.add_argument("key", nargs="?", help="the key to hash (default: generate one)")
    parser.add_argument("--name", default="client", help="owner name (letters, digits, _.@-)")
    args = parser.parse_args(argv)
    if not _NAME_RE.fullmatch(args.name):
        parser.error("--name: 1-64 letters, digits or _.@-")
    key = args.key
    if key is None:
        key = "mer_" + secrets.token_urlsafe(32)
        print(f"new API key (shown once, give it to the client): {key}", file=sys.stderr)
    print(f"{args.name}:{hash_key(key)}")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
