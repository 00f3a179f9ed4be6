"""Settings from the environment, validated once per process.

A plain dataclass rather than pydantic-settings: it is read at every cold start and needs no
more than a few typed environment variables.
"""

from __future__ import annotations

import os
import re
from collections.abc import Mapping
from dataclasses import dataclass, field
from functools import lru_cache
from urllib.parse import urlsplit

# Legacy code hard-codes the operator organization as id 2; keep that as the default.
DEFAULT_OPERATOR_ORGANIZATION_ID = 2

# libpq decodes %XX in every part of a URL and refuses a '%' that starts no escape (or %00) by
# quoting that part back in its error, which then lands in logs: often it is the password.
_BAD_PERCENT = re.compile(r"%(?![0-9A-Fa-f]{2})|%00")


class SettingsError(ValueError):
    """A setting is missing or malformed. The message names the variable, never its value."""


def _int(env: Mapping[str, str], name: str, default: int, lo: int, hi: int) -> int:
    raw = env.get(name)
    if raw is None or raw.strip() == "":
        return default
    try:
        value = int(raw.strip())
    except ValueError:
        raise SettingsError(f"{name} must be a whole number, got {raw!r}") from None
    if not lo <= value <= hi:
        raise SettingsError(f"{name} must be between {lo} and {hi}, got {value}")
    return value


def _float(env: Mapping[str, str], name: str, default: float, lo: float, hi: float) -> float:
    raw = env.get(name)
    if raw is None or raw.strip() == "":
        return default
    try:
        value = float(raw.strip())
    except ValueError:
        raise SettingsError(f"{name} must be a number, got {raw!r}") from None
    if not lo <= value <= hi:
        raise SettingsError(f"{name} must be between {lo} and {hi}, got {value}")
    return value


def _database_url(env: Mapping[str, str], name: str) -> str | None:
    raw = env.get(name)
    if raw is None or raw.strip() == "":
        return None
    raw = raw.strip()
    # Only the scheme is echoed back: the URL may carry a password.
    scheme = urlsplit(raw).scheme if "://" in raw else ""
    if scheme not in ("postgres", "postgresql", "postgresql+psycopg"):
        raise SettingsError(
            f"{name} must be a postgresql:// URL (got scheme {scheme or 'none'!r})"
        )
    if _BAD_PERCENT.search(raw):
        raise SettingsError(
            f"{name} is not a valid URL: percent-encode special characters of the user name"
            " and password ('%' is %25, '@' is %40)"
        )
    return raw.replace("postgresql+psycopg://", "postgresql://", 1)


@dataclass(frozen=True)
class Settings:
    database_url: str | None
    timeseries_database_url: str | None
    jwt_secret: str | None
    jwks_url: str | None
    jwt_audiences: tuple[str, ...]
    operator_organization_id: int
    pool_min_size: int
    pool_max_size: int
    pool_timeout: float
    statement_timeout_ms: int
    # REQUEST_DEADLINE_SECONDS: every request answers within it (503 after), even when the
    # database stops answering altogether (a frozen server cannot enforce statement_timeout).
    # It must exceed DB_STATEMENT_TIMEOUT_MS/1000 + DB_POOL_TIMEOUT, the longest a request may
    # legitimately wait for a connection and then run a statement.
    request_deadline_seconds: float = 30.0
    # LIST_TOTAL_TTL_SECONDS: how long a list's total may be served from memory (shared.totals).
    list_total_ttl_seconds: float = 5.0
    # CALLER_STATE_TTL_SECONDS: how long a JWT caller's live account (organization, type) may
    # be served from memory before it is looked up again (shared.auth.accounts.current_caller).
    caller_state_ttl_seconds: float = 5.0
    extra: Mapping[str, str] = field(default_factory=dict, repr=False)

    def __repr__(self) -> str:  # never print URLs or secrets
        return (
            f"Settings(database_url={'set' if self.database_url else 'unset'}, "
            f"timeseries_database_url={'set' if self.timeseries_database_url else 'unset'}, "
            f"jwt_secret={'set' if self.jwt_secret else 'unset'}, jwks_url="
            f"{'set' if self.jwks_url else 'unset'}, audiences={self.jwt_audiences}, "
            f"operator_organization_id={self.operator_organization_id}, "
            f"pool={self.pool_min_size}..{self.pool_max_size})"
        )

    __str__ = __repr__

    def require_database_url(self) -> str:
        if not self.database_url:
            raise SettingsError(
                "DATABASE_URL is not set: point it at the transactional PostgreSQL"
                " (locally, `nxt dev` sets it)"
            )
        return self.database_url

    def require_timeseries_url(self) -> str:
        if not self.timeseries_database_url:
            raise SettingsError(
                "TIMESERIES_DATABASE_URL is not set: point it at the time-series PostgreSQL"
                " or TimescaleDB (locally, `nxt dev` sets it)"
            )
        return self.timeseries_database_url

    @classmethod
    def from_env(cls, env: Mapping[str, str] | None = None) -> Settings:
        env = os.environ if env is None else env
        jwt_secret = env.get("SUPABASE_JWT_SECRET") or env.get("JWT_SECRET") or None
        if jwt_secret is not None and len(jwt_secret) < 32:
            raise SettingsError("SUPABASE_JWT_SECRET must be at least 32 characters long")
        jwks_url = (env.get("SUPABASE_JWKS_URL") or "").strip() or None
        if jwks_url is not None and not jwks_url.startswith(("https://", "http://")):
            raise SettingsError("SUPABASE_JWKS_URL must be an http(s) URL")
        audiences = tuple(
            a.strip() for a in (env.get("JWT_AUDIENCE") or "authenticated").split(",") if a.strip()
        )
        if not audiences:
            raise SettingsError("JWT_AUDIENCE must name at least one audience")
        # One serverless instance serves a handful of concurrent requests; a small pool keeps
        # the sum over many instances under the database's (or pooler's) connection limit.
        pool_min = _int(env, "DB_POOL_MIN_SIZE", 0, 0, 100)
        pool_max = _int(env, "DB_POOL_MAX_SIZE", 4, 1, 100)
        if pool_min > pool_max:
            raise SettingsError("DB_POOL_MIN_SIZE must not exceed DB_POOL_MAX_SIZE")
        pool_timeout = _float(env, "DB_POOL_TIMEOUT", 5.0, 0.1, 120.0)
        statement_timeout_ms = _int(env, "DB_STATEMENT_TIMEOUT_MS", 10_000, 0, 3_600_000)
        deadline = _float(env, "REQUEST_DEADLINE_SECONDS", 30.0, 1.0, 3600.0)
        if deadline <= statement_timeout_ms / 1000 + pool_timeout:
            raise SettingsError(
                "REQUEST_DEADLINE_SECONDS must exceed DB_STATEMENT_TIMEOUT_MS/1000 +"
                f" DB_POOL_TIMEOUT ({statement_timeout_ms / 1000:g} + {pool_timeout:g} s),"
                f" got {deadline:g}"
            )
        return cls(
            database_url=_database_url(env, "DATABASE_URL"),
            timeseries_database_url=_database_url(env, "TIMESERIES_DATABASE_URL"),
            jwt_secret=jwt_secret,
            jwks_url=jwks_url,
            jwt_audiences=audiences,
            operator_organization_id=_int(
                env, "OPERATOR_ORGANIZATION_ID", DEFAULT_OPERATOR_ORGANIZATION_ID, 1, 2**63 - 1
            ),
            pool_min_size=pool_min,
            pool_max_size=pool_max,
            pool_timeout=pool_timeout,
            statement_timeout_ms=statement_timeout_ms,
            request_deadline_seconds=deadline,
            list_total_ttl_seconds=_float(env, "LIST_TOTAL_TTL_SECONDS", 5.0, 0.0, 300.0),
            caller_state_ttl_seconds=_float(env, "CALLER_STATE_TTL_SECONDS", 5.0, 0.0, 60.0),
        )


@lru_cache(maxsize=1)
def get_settings() -> Settings:
    return Settings.from_env()
