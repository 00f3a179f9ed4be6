"""The floor of the page rows: the SQL that `customers` and `orders` run for the operator's
default page, through a bare psycopg pool, the rows returned as JSON.

No JWT verification, no query validation, no pool health check: only the same statements,
sent the same way (no prepared statements, as shared.db), including the one that sets the
caller's role and claims, so row-level security returns the same rows (the benchmark checks
that it does before it measures).
"""

from __future__ import annotations

import asyncio
import json
import os
from datetime import date
from decimal import Decimal
from typing import Any

import functions_framework.aio
from psycopg_pool import AsyncConnectionPool
from starlette.requests import Request
from starlette.responses import Response

CLAIMS: dict[str, Any] = json.loads(os.environ.get("FLOOR_CLAIMS", "{}"))

# shared.db's request prologue, byte for byte.
BEGIN = (
    "select set_config('role', %s, true),"
    " set_config('request.jwt.claims', %s, true),"
    " set_config('request.jwt.claim.sub', %s, true),"
    " set_config('request.jwt.claim.role', %s, true),"
    " set_config('statement_timeout', %s, true)"
)

# functions/customers/queries.py, rendered for the named view and the default order.
_CUSTOMER_FILTERS = """
  from public.customers c
  join public.grids g on g.id = c.grid_id
 where g.deleted_at is null
   and (%(include_hidden)s or (not c.is_hidden_from_reporting and not g.is_hidden_from_reporting))
   and (%(grid)s::bigint is null or c.grid_id = %(grid)s::bigint)
   and (%(created_from)s::timestamptz is null or c.created_at >= %(created_from)s::timestamptz)
   and (%(created_to)s::timestamptz is null or c.created_at < %(created_to)s::timestamptz)
"""
CUSTOMERS = f"""
select t.total, p.id,
       (select a.full_name from public.accounts a where a.id = p.account_id) as full_name, p.grid
  from (select count(*) as total {_CUSTOMER_FILTERS}) t
  left join lateral (
    select c.id, c.account_id, g.name as grid, c.id as k {_CUSTOMER_FILTERS}
     order by c.id asc, c.id asc
     limit %(limit)s offset %(offset)s) p on true
 order by p.k asc, p.id asc
"""

# functions/orders/queries.py, likewise (named view: customer names joined).
_ORDER_FILTERS = """
  from public.orders o
 where o.order_status = %(status)s::public.order_status
   and o.meta_order_type = %(type)s::public.order_type
   and (%(named)s or not o.meta_is_hidden_from_reporting)
   and (%(grid)s::bigint is null or o.historical_grid_id = %(grid)s::bigint)
   and (%(created_from)s::timestamptz is null or o.created_at >= %(created_from)s::timestamptz)
   and (%(created_to)s::timestamptz is null or o.created_at < %(created_to)s::timestamptz)
"""
ORDERS = f"""
select t.total, p.id, p.created_at, p.amount, p.order_status, p.currency, p.tariff,
       (select g.name from public.grids g where g.id = p.historical_grid_id),
       (select a.full_name from public.customers c join public.accounts a on a.id = c.account_id
         where c.id = p.customer_id)
  from (select count(*) as total {_ORDER_FILTERS}) t
  left join lateral (
    select o.id, o.created_at, o.amount, o.order_status::text, o.currency::text, o.tariff,
           o.historical_grid_id, o.customer_id, o.id as k {_ORDER_FILTERS}
     order by o.id asc, o.id asc
     limit %(limit)s offset %(offset)s) p on true
 order by p.k asc, p.id asc
"""

CUSTOMER_KEYS = ("id", "full_name", "grid")
ORDER_KEYS = ("id", "created_at", "amount", "order_status", "currency", "tariff", "grid",
              "customer")

_pool: AsyncConnectionPool | None = None
_lock = asyncio.Lock()


async def pool() -> AsyncConnectionPool:
    global _pool
    async with _lock:
        if _pool is None:
            _pool = AsyncConnectionPool(os.environ["DATABASE_URL"], min_size=0,
                                        max_size=int(os.environ.get("DB_POOL_MAX_SIZE", "4")),
                                        kwargs={"prepare_threshold": None}, open=False)
            await _pool.open()
    return _pool


def _default(value: Any) -> Any:
    if isinstance(value, date):
        return value.isoformat()
    if isinstance(value, Decimal):
        return str(value)
    raise TypeError(type(value).__name__)


async def _page(sql: str, params: dict[str, Any], keys: tuple[str, ...]) -> dict[str, Any]:
    role = CLAIMS.get("role", "authenticated")
    claims = json.dumps({**CLAIMS, "role": role}, separators=(",", ":"), default=str)
    async with (await pool()).connection() as conn, conn.transaction():
        await conn.execute(BEGIN, (role, claims, str(CLAIMS.get("sub") or ""), role, "10000"))
        cur = await conn.execute(sql, params)
        rows = await cur.fetchall()
    return {"total": rows[0][0] if rows else 0,
            "entries": [dict(zip(keys, r[1:], strict=True)) for r in rows if r[1] is not None]}


@functions_framework.aio.http
async def floor(request: Request) -> Response:
    size = int(request.query_params.get("size", "100"))
    page = int(request.query_params.get("page", "1"))
    common = {"grid": None, "created_from": None, "created_to": None, "limit": size,
              "offset": (page - 1) * size}
    if request.url.path.rstrip("/").endswith("/select1"):
        # The least a handler that touches the database can do: the throughput row's reference.
        async with (await pool()).connection() as conn, conn.transaction():
            await (await conn.execute("select 1")).fetchone()
        return Response(b'{"ok": true}', media_type="application/json")
    if request.url.path.rstrip("/").endswith("/orders"):
        body = await _page(ORDERS, {**common, "status": "COMPLETED", "type": "ENERGY_TOPUP",
                                    "named": True}, ORDER_KEYS)
    else:
        body = await _page(CUSTOMERS, {**common, "include_hidden": False}, CUSTOMER_KEYS)
    return Response(json.dumps(body, default=_default), media_type="application/json")
