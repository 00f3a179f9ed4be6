"""The floor of the page rows: the SQL that `customers` and `orders` run for the operator's
default page, through a bare psycopg pool, the rows returned as JSON.

No JWT verification, no query validation, no pool health check: only the same statements,
sent the same way (no prepared statements, as shared.db), including the one that sets the
caller's role and claims, so row-level security returns the same rows (the benchmark checks
that it does before it measures).
"""

from __future__ import annotations

import asyncio
import importlib
import json
import os
from datetime import date
from decimal import Decimal
from pathlib import Path
from types import ModuleType
from typing import Any

import functions_framework.aio
from psycopg_pool import AsyncConnectionPool
from starlette.requests import Request
from starlette.responses import Response

from nxt_cli.functions import import_main, module_name
from shared.db import BEGIN_REQUEST_SQL

ROOT = Path(__file__).resolve().parents[2]

CLAIMS: dict[str, Any] = json.loads(os.environ.get("FLOOR_CLAIMS", "{}"))

# The statements themselves, taken from the code that sends them (so the floor cannot drift):
# shared.db's request prologue, and each function's page SQL rendered for the operator's
# named view and the default order, counting the total every time.
BEGIN = BEGIN_REQUEST_SQL


def _queries(name: str) -> ModuleType:
    import_main(ROOT / "functions" / name / "main.py", name)
    return importlib.import_module(f"{module_name(name)}.queries")


_customers, _orders = _queries("customers"), _queries("orders")
CUSTOMERS = _customers.LIST.format(
    name=_customers.ACCOUNT_NAME, filters=_customers.FILTERS,
    total=_customers.COUNT.format(filters=_customers.FILTERS),
    key=_customers.ORDER_COLUMNS["id"], direction="asc")
ORDERS = _orders.LIST.format(
    customer="p.customer", filters=_orders.FILTERS,
    total=_orders.COUNT.format(filters=_orders.FILTERS),
    key=_orders.ORDER_COLUMNS["id"], direction="asc")

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
                                    "include_hidden": False}, ORDER_KEYS)
    else:
        body = await _page(CUSTOMERS, {**common, "include_hidden": False}, CUSTOMER_KEYS)
    return Response(json.dumps(body, default=_default), media_type="application/json")
