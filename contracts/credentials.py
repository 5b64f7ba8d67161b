"""The shape of the integration keys auth issues and the gateway checks (no I/O here).

A key reads `sck_<key id>_<secret>`: the key id says which stored hash to compare with, so checking a
key is one lookup and one constant-time comparison, and a key is recognisable in a leak scan."""

from __future__ import annotations

import hashlib
import re

KEY_PREFIX = "sck_"
KEY_SHAPE = re.compile(r"sck_(k_[0-9a-f]{32})_([A-Za-z0-9_-]{43})")


def secret_sha256(secret: str) -> str:
    """Enough for secrets of 256 random bits: nobody can guess one, so a slow hash adds nothing."""
    return hashlib.sha256(secret.encode()).hexdigest()


def parse_integration_key(presented: str) -> tuple[str, str] | None:
    """(key id, secret) of a well-formed key, else None."""
    match = KEY_SHAPE.fullmatch(presented)
    return (match.group(1), match.group(2)) if match else None
