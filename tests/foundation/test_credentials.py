"""Credentials against the real database: API keys by hash, locked keys, JWTs."""

from __future__ import annotations

import asyncio
from collections.abc import Awaitable, Callable
from typing import TypeVar

import psycopg
import pytest

from nxt_cli.localkeys import supabase_local_jwt_secret
from nxt_cli.seed import AGGREGATOR_ID, DEV_A_ID, create_api_key
from nxt_cli.tokens import mint_token
from shared.auth.api_keys import generate_api_key, hash_api_key
from shared.auth.caller import caller_from_claims
from shared.auth.configured import resolve_jwt_secret
from shared.auth.credentials import api_key_from_headers, bearer_token
from shared.auth.errors import AuthError
from shared.auth.key_lookup import caller_from_api_key
from shared.auth.verifier import JWTVerifier
from shared.db import Database
from shared.settings import Settings
from tests.conftest import Seeded

pytestmark = pytest.mark.db
T = TypeVar("T")


def _with_db(url: str, fn: Callable[[Database], Awaitable[T]]) -> T:
    async def run() -> T:
        db = Database(url, max_size=1)
        try:
            return await fn(db)
        finally:
            await db.close()
    return asyncio.run(run())


def test_demo_api_key_resolves_to_its_organization(seeded: Seeded) -> None:
    _, key = seeded.api_keys[0]
    caller = _with_db(seeded.url, lambda db: caller_from_api_key(key, db))
    assert caller.via == "api_key"
    assert caller.role == "authenticated"
    assert (caller.organization_id, caller.organization_type) == (AGGREGATOR_ID,
                                                                  "DATA_AGGREGATOR")
    assert caller.claims["app_metadata"]["organization_id"] == AGGREGATOR_ID
    assert caller.api_key_id is not None and caller.account_id is not None


def test_only_the_hash_is_stored(seeded: Seeded) -> None:
    _, key = seeded.api_keys[0]
    with psycopg.connect(seeded.url) as conn:
        rows = conn.execute("select key_hash, key_prefix from public.api_keys").fetchall()
        # No column of any table holds the plaintext.
        dump = conn.execute("select string_agg(t::text, ' ') from public.api_keys t").fetchone()
    assert (hash_api_key(key), key[:12]) in [(bytes(h), p) for h, p in rows]
    assert dump is not None and key not in dump[0] and key[13:] not in dump[0]


@pytest.mark.parametrize("key", [
    generate_api_key().plaintext,  # well formed, unknown
    "nxt_abcdefgh_short",
    "' or 1=1 --",
    "",
])
def test_unknown_or_malformed_keys_are_refused(seeded_db: str, key: str) -> None:
    with pytest.raises(AuthError, match="invalid API key"):
        _with_db(seeded_db, lambda db: caller_from_api_key(key, db))


def test_a_locked_key_is_refused(seeded_db: str) -> None:
    with psycopg.connect(seeded_db) as conn:
        key = create_api_key(conn, DEV_A_ID, "to be locked")
    assert _with_db(seeded_db, lambda db: caller_from_api_key(key, db)).organization_id == DEV_A_ID
    with psycopg.connect(seeded_db) as conn:
        conn.execute("update public.api_keys set is_locked = true where key_hash = %s",
                     (hash_api_key(key),))
    with pytest.raises(AuthError, match="locked"):
        _with_db(seeded_db, lambda db: caller_from_api_key(key, db))


def test_last_used_is_recorded(seeded_db: str) -> None:
    with psycopg.connect(seeded_db) as conn:
        key = create_api_key(conn, AGGREGATOR_ID, "usage")
    _with_db(seeded_db, lambda db: caller_from_api_key(key, db))
    with psycopg.connect(seeded_db) as conn:
        row = conn.execute("select last_used_at is not null from public.api_keys"
                           " where key_hash = %s", (hash_api_key(key),)).fetchone()
    assert row == (True,)


def test_key_is_read_from_x_api_key_or_bearer() -> None:
    key = generate_api_key().plaintext
    assert api_key_from_headers({"x-api-key": key}) == key
    assert api_key_from_headers({"authorization": f"Bearer {key}"}) == key
    jwt = mint_token(supabase_local_jwt_secret(), role="anon", audience=None)
    assert api_key_from_headers({"authorization": f"Bearer {jwt}"}) is None
    assert api_key_from_headers({}) is None


def test_jwt_headers_give_the_caller() -> None:
    secret = supabase_local_jwt_secret()
    verifier = JWTVerifier(hs256_secret=secret)
    token = mint_token(secret, role="authenticated", sub="00000000-0000-4000-8000-000000000003",
                       organization_id=DEV_A_ID, organization_type="SOLAR_DEVELOPER")
    bearer = bearer_token(f"Bearer {token}")
    assert bearer is not None
    caller = caller_from_claims(asyncio.run(verifier.averify(bearer)))
    assert (caller.organization_id, caller.via) == (DEV_A_ID, "jwt")
    assert bearer_token(None) is None
    with pytest.raises(AuthError, match="missing bearer token"):
        asyncio.run(verifier.averify(""))


def test_jwt_secret_resolution(tmp_path) -> None:
    base = {"NXT_SUPABASE_CONFIG": str(tmp_path / "config.toml")}
    (tmp_path / "config.toml").write_text('[auth]\njwt_secret = "env(MY_SECRET)"\n')
    with_config = {**base, "MY_SECRET": "x" * 40}
    assert resolve_jwt_secret(Settings.from_env(with_config), with_config) == "x" * 40
    explicit = {**base, "SUPABASE_JWT_SECRET": "y" * 40}
    assert resolve_jwt_secret(Settings.from_env(explicit), explicit) == "y" * 40
    # Nothing configured: no secret, wherever it runs (attack finding 10: off Cloud Run the
    # runtime fell back to Supabase's public local secret). Only the tooling uses that one.
    for env in (base, {**base, "K_SERVICE": "customers"}):
        assert resolve_jwt_secret(Settings.from_env(env), env) is None
    tooling = dict(base)
    from nxt_cli.localkeys import local_jwt_secret

    assert local_jwt_secret(tooling) == supabase_local_jwt_secret()
    assert tooling["SUPABASE_JWT_SECRET"] == supabase_local_jwt_secret()
    assert local_jwt_secret(dict(with_config)) == "x" * 40
