"""The JWT secret of the local stack: what `nxt dev`, `nxt serve` and `nxt token` sign and
verify with when none is configured.

Only the tooling knows Supabase's public local secret. A function reads its secret from
SUPABASE_JWT_SECRET or config.toml's `[auth] jwt_secret` and nowhere else (see
shared/auth/configured.py): run anywhere without one, it refuses JWTs rather than accept tokens
anyone can mint. The tooling exports the secret it chose to the functions it starts.
"""

from __future__ import annotations

import os
from collections.abc import MutableMapping

ENV = "SUPABASE_JWT_SECRET"


def supabase_local_jwt_secret() -> str:
    """The JWT secret of every local Supabase stack (``supabase start``).

    This value is public: it is printed in Supabase's documentation and CLI output and is the
    same on every developer machine. Local development and tests only.
    """
    return "super-secret-jwt-token-with-at-least-32-characters-long"


def local_jwt_secret(env: MutableMapping[str, str] | None = None) -> str:
    """The configured secret, else the public local one, which it then puts in `env` (default:
    this process's environment) so the functions this tool starts verify with it too."""
    from shared.auth.configured import resolve_jwt_secret
    from shared.settings import Settings, SettingsError

    env = os.environ if env is None else env
    try:
        configured = resolve_jwt_secret(Settings.from_env(env), env)
    except SettingsError:
        # Another setting is malformed: the functions say so on every request, and must
        # still verify tokens with the secret they are given.
        configured = env.get(ENV) or env.get("JWT_SECRET") or None
    if configured:
        return configured
    env[ENV] = supabase_local_jwt_secret()
    return env[ENV]
