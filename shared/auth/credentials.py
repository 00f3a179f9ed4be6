"""The credentials a request's headers carry: a bearer token, an API key.

API keys arrive in `X-API-Key` (documented) or `Authorization: Bearer` (what the legacy code
read). Keys issued here have the `nxt_` shape; keys the legacy system issued have none (some
look like JWTs), so a bearer of another shape may still be a key: the gate decides.
"""

from __future__ import annotations

from collections.abc import Mapping


def bearer_token(authorization_header: str | None) -> str | None:
    """The credential of an ``Authorization: Bearer <token>`` header, or None.

    None when the header is absent, empty, or uses another scheme (Basic, ...); the scheme is
    matched case-insensitively as RFC 7235 requires.
    """
    if not authorization_header:
        return None
    parts = authorization_header.strip().split(None, 1)
    if len(parts) != 2 or parts[0].lower() != "bearer":
        return None
    token = parts[1].strip()
    return token or None


def api_key_from_headers(headers: Mapping[str, str]) -> str | None:
    """The API key a request names as one: `X-API-Key`, else a Bearer in our key shape. (A
    Bearer of any other shape may still be a legacy key: the gate looks it up when it is not
    a JWT it accepts.)"""
    from shared.auth.api_keys import looks_like_api_key  # hashing and secrets: not at cold start

    explicit = (headers.get("x-api-key") or "").strip()
    if explicit:
        return explicit
    token = bearer_token(headers.get("authorization"))
    if token and looks_like_api_key(token):
        return token
    return None
