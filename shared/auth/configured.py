"""The JWT verifier this instance is configured with: SUPABASE_JWT_SECRET (or config.toml's
[auth] jwt_secret) for HS256, SUPABASE_JWKS_URL for asymmetric keys; one per process."""

from __future__ import annotations

import logging
from collections.abc import Mapping
from functools import lru_cache

from shared.auth.errors import MSG_UNAVAILABLE, AuthUnavailable
from shared.auth.verifier import JWTVerifier
from shared.settings import Settings, get_settings


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
