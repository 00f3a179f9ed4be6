"""Run SQL the way a function does: through shared.db, as a role with JWT claims."""

from __future__ import annotations

import asyncio
from typing import Any

from shared.db import Database


def claims_for(org_id: int | None, org_type: str | None, sub: str | None = None,
               role: str = "authenticated") -> dict[str, Any]:
    app_metadata: dict[str, Any] = {}
    if org_id is not None:
        app_metadata["organization_id"] = org_id
    if org_type is not None:
        app_metadata["organization_type"] = org_type
    claims: dict[str, Any] = {"role": role, "aud": "authenticated", "app_metadata": app_metadata}
    if sub:
        claims["sub"] = sub
    return claims


async def _run(url: str, role: str, claims: dict[str, Any], sql: str,
               params: tuple[Any, ...]) -> list[tuple[Any, ...]]:
    db = Database(url, max_size=1)
    try:
        async with db.transaction(role, claims) as conn:
            cur = await conn.execute(sql, params)
            return await cur.fetchall() if cur.description else []
    finally:
        await db.close()


def query_as(url: str, role: str, claims: dict[str, Any] | None, sql: str,
             params: tuple[Any, ...] = ()) -> list[tuple[Any, ...]]:
    return asyncio.run(_run(url, role, claims or {}, sql, params))
