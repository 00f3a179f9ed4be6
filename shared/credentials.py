"""From a request's headers to a verified Caller: a Supabase JWT or an API key.

API keys arrive in `X-API-Key` (documented) or `Authorization: Bearer` (what the legacy code
read); they are hashed and looked up by hash through `app.api_key_lookup`, which runs as
`anon` because the caller has no JWT yet. Keys issued here have the `nxt_` shape; keys the
legacy system issued have none (some look like JWTs) and were hashed in place at adoption.
"""

from __future__ import annotations

import logging
from collections.abc import Mapping
from functools import lru_cache
from typing import Any

from shared.api_keys import hash_api_key, looks_like_api_key, may_be_api_key
from shared.auth import (
    MSG_UNAVAILABLE,
    AuthError,
    AuthUnavailable,
    Caller,
    JWTVerifier,
    bearer_token,
    caller_from_claims,
)
from shared.db import Database
from shared.settings import Settings, get_settings

MSG_BAD_API_KEY = "invalid API key"
MSG_LOCKED_API_KEY = "API key is locked"

_LOOKUP_SQL = (
    "select api_key_id, account_id, supabase_id, organization_id, organization_type::text,"
    " is_locked from app.api_key_lookup(%s)"
)


def resolve_jwt_secret(settings: Settings, env: Mapping[str, str] | None = None) -> str | None:
    """The HS256 secret: SUPABASE_JWT_SECRET, else config.toml's [auth] jwt_secret, else none.
    Never a default: Supabase's public local secret would let anyone mint tokens, wherever the
    function runs (the local tools pass it explicitly: nxt_cli/localkeys.py)."""
    if settings.jwt_secret:
        return settings.jwt_secret
    from shared.supabase_config import ConfigError, load_config

    try:
        configured = load_config(env=env).jwt_secret(env=env)
    except ConfigError:
        configured = None
    return configured or None


_unconfigured_logged = False


@lru_cache(maxsize=1)
def _configured_verifier() -> JWTVerifier | None:
    settings = get_settings()
    secret = resolve_jwt_secret(settings)
    if secret is None and settings.jwks_url is None:
        return None
    return JWTVerifier(hs256_secret=secret, jwks_url=settings.jwks_url,
                       audiences=settings.jwt_audiences)


def jwt_verifier() -> JWTVerifier:
    """The verifier of this instance; AuthUnavailable (503) when it has neither a secret nor
    a JWKS URL to verify with, logged once."""
    global _unconfigured_logged

    verifier = _configured_verifier()
    if verifier is None:
        if not _unconfigured_logged:
            _unconfigured_logged = True
            logging.getLogger("nxt.auth").error(
                "JWT verification is not configured: set SUPABASE_JWT_SECRET or"
                " SUPABASE_JWKS_URL; every request with a JWT is answered 503")
        raise AuthUnavailable(MSG_UNAVAILABLE)
    return verifier


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



# -- a JWT caller, as the database has it now --------------------------------------------------

_ACCOUNT_SQL = ("select account_id, organization_id, organization_type"
                " from app.caller_account(%s::uuid)")


class _CallerStates:
    """user id -> (live account row or None, monotonic expiry), bounded in size and age."""

    def __init__(self, limit: int = 10_000) -> None:
        self.limit = limit
        self.rows: dict[str, tuple[tuple[Any, ...] | None, float]] = {}

    def get(self, user_id: str, now: float) -> tuple[bool, tuple[Any, ...] | None]:
        found = self.rows.get(user_id)
        if found is None or found[1] <= now:
            return False, None
        return True, found[0]

    def put(self, user_id: str, row: tuple[Any, ...] | None, expires: float) -> None:
        if len(self.rows) >= self.limit:
            self.rows.clear()  # crude, bounded: a burst of distinct users costs lookups only
        self.rows[user_id] = (row, expires)


_STATES = _CallerStates()


async def current_caller(caller: Caller, db: Database) -> Caller:
    """`caller` with the organization and type its account has now, not when its token was
    issued: none when the account or its organization was deleted since (or the user has no
    account), so it reads nothing and gets 403 where an organization is needed. Only a user's
    JWT is looked up (API keys already are, service-role and anon tokens have no account); the
    answer is kept CALLER_STATE_TTL_SECONDS (5) per user, the bound on how late a change to an
    account or organization takes effect."""
    import time

    if caller.via != "jwt" or caller.role != "authenticated" or caller.user_id is None:
        return caller
    ttl = get_settings().caller_state_ttl_seconds
    now = time.monotonic()
    known, row = _STATES.get(caller.user_id, now) if ttl else (False, None)
    if not known:
        async with db.transaction("anon") as conn:
            cur = await conn.execute(_ACCOUNT_SQL, (caller.user_id,))
            row = await cur.fetchone()
        if ttl:
            _STATES.put(caller.user_id, row, now + ttl)
    account_id, org_id, org_type = row if row is not None else (None, None, None)
    if org_id is None:  # no organization, or a deleted one
        org_type = None
    app_metadata = dict(caller.claims.get("app_metadata") or {})
    app_metadata.update(organization_id=org_id, organization_type=org_type)
    claims = {**caller.claims, "app_metadata": app_metadata}
    return Caller(role=caller.role, user_id=caller.user_id, organization_id=org_id,
                  organization_type=org_type, claims=claims, via="jwt",
                  account_id=account_id)
