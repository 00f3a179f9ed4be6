"""From a request's headers to a verified Caller: a Supabase JWT or an API key.

API keys arrive in `X-API-Key` (documented) or `Authorization: Bearer` (what the legacy code
read); they are hashed and looked up by hash through `app.api_key_lookup`, which runs as
`anon` because the caller has no JWT yet. Keys issued here have the `nxt_` shape; keys the
legacy system issued have none (some look like JWTs) and were hashed in place at adoption.
"""

from __future__ import annotations

import os
from collections.abc import Mapping
from functools import lru_cache
from typing import Any

from shared.api_keys import hash_api_key, looks_like_api_key, may_be_api_key
from shared.auth import (
    AuthError,
    Caller,
    JWTVerifier,
    bearer_token,
    caller_from_claims,
    supabase_local_jwt_secret,
)
from shared.db import Database
from shared.settings import Settings, get_settings

MSG_BAD_API_KEY = "invalid API key"
MSG_LOCKED_API_KEY = "API key is locked"

_LOOKUP_SQL = (
    "select api_key_id, account_id, supabase_id, organization_id, organization_type::text,"
    " is_locked from app.api_key_lookup(%s)"
)


def running_deployed(env: Mapping[str, str] | None = None) -> bool:
    """True on Cloud Run / Cloud Functions, which set K_SERVICE in every instance."""
    env = os.environ if env is None else env
    return bool(env.get("K_SERVICE"))


def resolve_jwt_secret(settings: Settings, env: Mapping[str, str] | None = None) -> str | None:
    """The HS256 secret: the environment, else config.toml's [auth] jwt_secret, else (only
    when running locally) Supabase's public local secret. A deployed function never falls back
    to the public one: that would let anyone mint tokens."""
    if settings.jwt_secret:
        return settings.jwt_secret
    from shared.supabase_config import ConfigError, load_config

    try:
        configured = load_config(env=env).jwt_secret(env=env)
    except ConfigError:
        configured = None
    if configured:
        return configured
    return None if running_deployed(env) else supabase_local_jwt_secret()


@lru_cache(maxsize=1)
def jwt_verifier() -> JWTVerifier:
    settings = get_settings()
    secret = resolve_jwt_secret(settings)
    if secret is None and settings.jwks_url is None:
        raise RuntimeError(
            "no way to verify JWTs: set SUPABASE_JWT_SECRET or SUPABASE_JWKS_URL"
        )
    return JWTVerifier(hs256_secret=secret, jwks_url=settings.jwks_url,
                       audiences=settings.jwt_audiences)


def api_key_from_headers(headers: Mapping[str, str]) -> str | None:
    """The API key a request names as one: `X-API-Key`, else a Bearer in our key shape. (A
    Bearer of any other shape may still be a legacy key: the gate looks it up when it is not
    a JWT it accepts.)"""
    explicit = (headers.get("x-api-key") or "").strip()
    if explicit:
        return explicit
    token = bearer_token(headers.get("authorization"))
    if token and looks_like_api_key(token):
        return token
    return None


async def verify_jwt_headers(headers: Mapping[str, str],
                             verifier: JWTVerifier | None = None) -> Caller:
    """The caller of a request that must carry a valid JWT in `Authorization: Bearer`."""
    token = bearer_token(headers.get("authorization"))
    if token is None:
        raise AuthError("missing bearer token")
    claims = await (verifier or jwt_verifier()).averify(token)
    return caller_from_claims(claims)


async def caller_from_api_key(key: str, db: Database) -> Caller:
    """Look the key up by its hash; unknown and locked keys are refused (401)."""
    if not may_be_api_key(key):
        raise AuthError(MSG_BAD_API_KEY)
    digest = hash_api_key(key)
    async with db.transaction("anon") as conn:
        cur = await conn.execute(_LOOKUP_SQL, (digest,))
        row = await cur.fetchone()
    if row is None:
        raise AuthError(MSG_BAD_API_KEY)
    api_key_id, account_id, supabase_id, org_id, org_type, is_locked = row
    if is_locked:
        raise AuthError(MSG_LOCKED_API_KEY)
    claims: dict[str, Any] = {
        "role": "authenticated",
        "aud": "authenticated",
        "app_metadata": {"organization_id": org_id, "organization_type": org_type,
                         "api_key_id": api_key_id},
    }
    if supabase_id is not None:
        claims["sub"] = str(supabase_id)
    return Caller(
        role="authenticated",
        user_id=str(supabase_id) if supabase_id else None,
        organization_id=org_id,
        organization_type=org_type,
        claims=claims,
        via="api_key",
        api_key_id=api_key_id,
        account_id=account_id,
    )

