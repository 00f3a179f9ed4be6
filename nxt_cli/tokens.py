"""Minting JWTs shaped the way Supabase Auth issues them: for `nxt token`, the local stack's
anon and service-role keys, the tests and the benchmarks.

Tooling, not runtime: a deployed function only verifies tokens (shared/auth/verifier.py), so signing
lives here, where no bundle can carry it (nxt_cli is never bundled).
"""

from __future__ import annotations

import time
from collections.abc import Mapping
from typing import Any

import jwt

from shared.auth.verifier import MIN_HS256_SECRET_BYTES

__all__ = ["mint_token"]


def mint_token(
    secret: str,
    *,
    role: str,
    sub: str | None = None,
    organization_id: int | None = None,
    organization_type: str | None = None,
    expires_in: int = 3600,
    audience: str | None = "authenticated",
    extra: Mapping[str, Any] | None = None,
) -> str:
    """Mint an HS256 token shaped the way Supabase Auth would.

    With ``audience=None`` the token looks like Supabase's local anon/service-role keys: no
    ``aud`` and ``iss: "supabase-demo"``. ``extra`` is merged last (its ``app_metadata`` is
    merged into, not replacing, the organisation fields). A negative ``expires_in`` mints an
    already expired token.
    """
    # A secret the verifier would refuse would only mint tokens nothing accepts.
    if len(secret.encode("utf-8")) < MIN_HS256_SECRET_BYTES:
        raise ValueError(f"JWT secret must be at least {MIN_HS256_SECRET_BYTES} bytes")
    now = int(time.time())
    payload: dict[str, Any] = {"role": role, "iat": now, "exp": now + expires_in}
    if audience is None:
        payload["iss"] = "supabase-demo"
    else:
        payload["aud"] = audience
    if sub is not None:
        payload["sub"] = sub
    app_metadata: dict[str, Any] = {}
    if organization_id is not None:
        app_metadata["organization_id"] = organization_id
    if organization_type is not None:
        app_metadata["organization_type"] = organization_type
    if extra:
        extra_app_metadata = extra.get("app_metadata")
        if isinstance(extra_app_metadata, Mapping):
            app_metadata.update(extra_app_metadata)
        payload.update({k: v for k, v in extra.items() if k != "app_metadata"})
    if app_metadata:
        payload["app_metadata"] = app_metadata
    return jwt.encode(payload, secret.encode("utf-8"), algorithm="HS256")
