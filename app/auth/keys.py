"""API keys: how they look, how they are hashed, who they name.

Why sha256 and no salt or slow hash: a key is 256 random bits, not a password, so it cannot be
guessed from its hash and a fast hash costs the hot path nothing (LiteLLM and vLLM do the same).
Only the hash and a short display prefix are ever stored; the key itself is printed once.
"""

from __future__ import annotations

import hashlib
import hmac
import secrets
from dataclasses import dataclass
from typing import Literal

#: Every Slipway key starts with this, so a leaked one is recognisable (and secret scanners can match it).
PREFIX = "sk-slw-"
#: Characters of a key shown by `keys list` (the prefix and a few random ones): enough to tell keys apart.
DISPLAY_CHARS = len(PREFIX) + 5

Source = Literal["static", "database", "anonymous"]


@dataclass(frozen=True, slots=True)
class Identity:
    """Who a request is from: the key's name (for people), its id (owns data), its limits; never the key."""

    name: str
    key_id: str
    rpm: int | None = None
    tpm: int | None = None
    source: Source = "database"


ANONYMOUS = Identity(name="anonymous", key_id="anonymous", source="anonymous")
#: The names of static keys (SLIPWAY_API_KEYS) start with this; database keys may not.
STATIC_PREFIX = "static-"


def generate_key() -> str:
    """A new key: the prefix and 43 URL-safe characters (32 random bytes)."""
    return PREFIX + secrets.token_urlsafe(32)


def hash_key(key: str) -> str:
    return hashlib.sha256(key.encode("utf-8")).hexdigest()


def display_prefix(key: str) -> str:
    return key[:DISPLAY_CHARS]


def same_hash(a: str, b: str) -> bool:
    """Constant-time comparison, so response timing says nothing about how much of a hash matched."""
    return hmac.compare_digest(a.encode("ascii"), b.encode("ascii"))


def static_identity(key: str, rpm: int | None, tpm: int | None) -> Identity:
    """A key from SLIPWAY_API_KEYS: named by a stable digest fragment, the same on every replica."""
    digest = hash_key(key)
    return Identity(
        name=f"{STATIC_PREFIX}{digest[:8]}", key_id=f"static:{digest[:8]}", rpm=rpm, tpm=tpm, source="static"
    )
