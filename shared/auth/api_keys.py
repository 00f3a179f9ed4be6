"""API keys for machine callers (meters, partner systems): format, generation and hashing.

Pure functions, no database. A key is shown to its owner once, at creation; the database
keeps only its SHA-256 hash and its display prefix, and a request's key is found by hashing
it and looking the hash up.

Format::

    nxt_<8-char public prefix>_<43-char secret>      e.g. nxt_k3v9q2xa_<43 chars>

The public prefix (lowercase base32 or hex) identifies a key in listings and logs without
revealing it; the secret is 32 random bytes as unpadded urlsafe base64.
"""

from __future__ import annotations

import base64
import binascii
import hashlib
import hmac
import re
import secrets
from dataclasses import dataclass, field

__all__ = [
    "API_KEY_PREFIX",
    "GeneratedKey",
    "display_prefix",
    "generate_api_key",
    "hash_api_key",
    "hashes_equal",
    "is_supabase_platform_key",
    "looks_like_api_key",
    "may_be_api_key",
]

API_KEY_PREFIX = "nxt_"
_SECRET_BYTES = 32
# 32 bytes of unpadded base64 is always 43 characters.
_SECRET_CHARS = 43
# Public prefix: lowercase base32 (what generate_api_key() emits) or lowercase hex (accepted
# so that keys issued by other tooling in that shape are recognised too).
_API_KEY = re.compile(r"nxt_([a-z2-7]{8}|[0-9a-f]{8})_([A-Za-z0-9_-]{43})")
_DISPLAY_PREFIX_CHARS = len(API_KEY_PREFIX) + 8

# Supabase's newer project keys. They are opaque strings, not JWTs, so a function behind the
# gateway's verify_jwt gate never sees them; here they are only recognised, never accepted.
_SUPABASE_PLATFORM_KEY = re.compile(r"sb_(?:publishable|secret)_[A-Za-z0-9_-]{8,256}")


@dataclass(frozen=True)
class GeneratedKey:
    """A freshly generated key. ``plaintext`` is to be shown once and never stored."""

    # Kept out of repr so that logging the object cannot log the key.
    plaintext: str = field(repr=False)
    prefix: str
    hash: bytes = field(repr=False)


def generate_api_key() -> GeneratedKey:
    # 5 random bytes are exactly 8 base32 characters, without padding.
    public = base64.b32encode(secrets.token_bytes(5)).decode("ascii").lower()
    secret = base64.urlsafe_b64encode(secrets.token_bytes(_SECRET_BYTES)).decode("ascii")
    plaintext = f"{API_KEY_PREFIX}{public}_{secret.rstrip('=')}"
    return GeneratedKey(
        plaintext=plaintext,
        prefix=plaintext[:_DISPLAY_PREFIX_CHARS],
        hash=hash_api_key(plaintext),
    )


def hash_api_key(key: str) -> bytes:
    """SHA-256 of the whole key (32 bytes), the value stored and looked up.

    A fast unsalted hash is the right tool here, unlike for passwords: the secret part is 256
    bits from a CSPRNG, so there is no dictionary to guess from and brute force is hopeless
    however fast each guess is. A salt would defeat precomputed tables, which cannot exist for
    256-bit random inputs, and would make lookup by hash impossible (the salt would have to be
    found first, by an unauthenticated prefix). Hashing the whole key, prefix included, binds
    the prefix to the secret.
    """
    return hashlib.sha256(key.encode("utf-8")).digest()


def looks_like_api_key(value: str) -> bool:
    """True when ``value`` has the shape of one of our API keys.

    A shape check only, used to route ``Authorization: Bearer <value>`` to API-key lookup
    rather than JWT verification; it says nothing about whether the key exists. A JWT never
    matches: it starts with "eyJ" and contains dots.
    """
    if not isinstance(value, str):
        return False
    match = _API_KEY.fullmatch(value)
    if match is None:
        return False
    # 43 characters carry 258 bits, the last 2 of which must be zero for 32 bytes; checking
    # that the secret decodes and re-encodes identically rejects the near-misses.
    secret = match.group(2)
    try:
        raw = base64.urlsafe_b64decode(secret + "=")
    except (binascii.Error, ValueError):
        return False
    return (
        len(raw) == _SECRET_BYTES
        and base64.urlsafe_b64encode(raw).decode("ascii").rstrip("=") == secret
    )


# Keys issued by the legacy system are stored in plain text and have no fixed shape (some are
# JWT-shaped strings). Any visible-ASCII string of reasonable length may be one; it is hashed
# and looked up like ours.
_LEGACY_KEY = re.compile(r"[\x21-\x7e]{1,2048}")


def may_be_api_key(value: str) -> bool:
    """True when ``value`` could be a stored key: one of ours (checked exactly, so a mistyped
    ``nxt_`` key is refused without a lookup) or any other visible-ASCII string up to 2048
    characters (the legacy keys, hashed in place at adoption)."""
    if not isinstance(value, str):
        return False
    if value.startswith(API_KEY_PREFIX):
        return looks_like_api_key(value)
    return _LEGACY_KEY.fullmatch(value) is not None


def display_prefix(key: str) -> str | None:
    """The ``nxt_xxxxxxxx`` part of a well-formed key (safe to show and log), else None."""
    if not looks_like_api_key(key):
        return None
    return key[:_DISPLAY_PREFIX_CHARS]


def hashes_equal(a: bytes, b: bytes) -> bool:
    """Constant-time comparison, so the time taken does not reveal how many bytes matched."""
    return hmac.compare_digest(a, b)


def is_supabase_platform_key(value: str) -> bool:
    """True for Supabase's ``sb_publishable_...`` / ``sb_secret_...`` keys (shape only).

    These are not JWTs and never pass a verify_jwt gate; callers use this to answer with a
    precise error instead of "malformed token".
    """
    return isinstance(value, str) and _SUPABASE_PLATFORM_KEY.fullmatch(value) is not None
