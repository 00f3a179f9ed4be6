"""The caller an API key names: the key is hashed and looked up by hash through
`app.api_key_lookup`, which runs as `anon` because the caller has no JWT yet. Keys the legacy
system issued were hashed in place at adoption, so they are found the same way."""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

from shared.auth.api_keys import hash_api_key, may_be_api_key
from shared.auth.caller import Caller
from shared.auth.errors import AuthError

if TYPE_CHECKING:
    from shared.db import Database

MSG_BAD_API_KEY = "invalid API key"
MSG_LOCKED_API_KEY = "API key is locked"

_LOOKUP_SQL = (
    "select api_key_id, account_id, supabase_id, organization_id, organization_type::text,"
    " is_locked from app.api_key_lookup(%s)"
)


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
