"""The page floor in the other server mode: the same SQL as bench/floor/main.py, through a
synchronous psycopg pool, as a plain (WSGI) functions-framework function, which the framework
serves with gunicorn threads. bench/sweep.py compares the two modes with it."""

from __future__ import annotations

import json
import os
import threading
from typing import Any

import functions_framework
from flask import Request, Response
from psycopg_pool import ConnectionPool

# The statements themselves, as the async floor sends them.
from bench.floor.main import BEGIN, CLAIMS, CUSTOMER_KEYS, CUSTOMERS, _default

_pool: ConnectionPool | None = None
_lock = threading.Lock()


def pool() -> ConnectionPool:
    global _pool
    with _lock:
        if _pool is None:
            _pool = ConnectionPool(os.environ["DATABASE_URL"], min_size=0,
                                   max_size=int(os.environ.get("DB_POOL_MAX_SIZE", "4")),
                                   kwargs={"prepare_threshold": None}, open=True)
    return _pool


@functions_framework.http
def floor_sync(request: Request) -> Response:
    size = int(request.args.get("size", "100"))
    page = int(request.args.get("page", "1"))
    params: dict[str, Any] = {"grid": None, "created_from": None, "created_to": None,
                              "limit": size, "offset": (page - 1) * size,
                              "include_hidden": False}
    role = CLAIMS.get("role", "authenticated")
    claims = json.dumps({**CLAIMS, "role": role}, separators=(",", ":"), default=str)
    with pool().connection() as conn, conn.transaction():
        conn.execute(BEGIN, (role, claims, str(CLAIMS.get("sub") or ""), role, "10000"))
        rows = conn.execute(CUSTOMERS, params).fetchall()
    body = {"total": rows[0][0] if rows else 0,
            "entries": [dict(zip(CUSTOMER_KEYS, r[1:], strict=True)) for r in rows
                        if r[1] is not None]}
    return Response(json.dumps(body, default=_default), mimetype="application/json")


@functions_framework.http
def bare_sync(request: Request) -> Response:
    """The constant handler in this mode (bench/bare/main.py's, served with threads)."""
    return Response(b'{"ok": true}', mimetype="application/json")
