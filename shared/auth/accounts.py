"""A JWT caller as the database has it now: access never rests on claims that went stale."""

from __future__ import annotations

import time
from typing import TYPE_CHECKING, Any

from shared.auth.caller import Caller
from shared.settings import get_settings

if TYPE_CHECKING:
    from shared.db import Database

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
