"""The cost of row-level security on the customers and orders pages (`make bench`, group
`rls`): each function's own listing SQL (its `queries` module, with the first page's total
counted) run in a transaction as the function runs it (role `authenticated`, the caller's JWT
claims) against the same SQL run by the connecting superuser, whom the policies do not bind.

The caller is the operator, who may read every row: both sides return the same rows, so the
difference is what the policies cost. A developer organization's page (its own rows only) is
measured too, in the note: there the bypassing side would list every organization's rows, so
it has no floor of the same rows."""

from __future__ import annotations

import asyncio
import json
import time
from typing import Any

import psycopg

from bench.run import Bench, Row, function_module, median
from shared.db import BEGIN_REQUEST_SQL

# Copies of the seeded orders, a day apart per copy, to reach the row's number of orders (the
# seed makes one to five per meter); new ids from the sequence, the rest as seeded.
_COPY_ORDERS = """
insert into public.orders ({columns})
select {shifted}
  from public.orders o, generate_series(1, %(copies)s) k
 where o.id <= %(seeded)s
"""


def grow_orders(url: str, orders: int) -> int:
    """Copies the seeded orders until there are about `orders`; returns how many there are."""
    with psycopg.connect(url, autocommit=True) as conn:
        seeded = conn.execute("select count(*), max(id) from public.orders").fetchone()
        assert seeded is not None
        copies = max(0, -(-orders // seeded[0]) - 1)
        if copies:
            columns = [r[0] for r in conn.execute(
                "select column_name from information_schema.columns where table_schema ="
                " 'public' and table_name = 'orders' and column_name <> 'id'"
                " and is_generated = 'NEVER' order by ordinal_position")]
            shifted = ", ".join(f"o.{c} - k * interval '1 day'" if c in ("created_at",
                                                                         "updated_at")
                                else f"o.{c}" for c in columns)
            conn.execute(_COPY_ORDERS.format(columns=", ".join(columns), shifted=shifted),
                         {"copies": copies, "seeded": seeded[1]})
        conn.execute("vacuum analyze public.orders")
        return int(conn.execute("select count(*) from public.orders").fetchone()[0])  # type: ignore[index]


def rls(b: Bench) -> list[Row]:
    from nxt_cli.migrate import migrate
    from nxt_cli.seed import DEV_A_ID, STAFF, seed

    url = b.scratch.create("bench_rls")
    migrate(url)
    seed(url, customers=b.size.rls_customers)
    orders = grow_orders(url, b.size.rls_orders)
    with psycopg.connect(url, autocommit=True) as conn:
        conn.execute("vacuum analyze")
        customers = conn.execute("select count(*) from public.customers").fetchone()[0]  # type: ignore[index]
    import jwt

    # The claims the functions see: the bench's operator token, and the same for a developer.
    operator = jwt.decode(b.tokens["operator"], options={"verify_signature": False})
    developer_sub = next(uid for uid, _, _, org in STAFF if org == DEV_A_ID)
    developer = {**operator, "sub": developer_sub,
                 "app_metadata": {**operator["app_metadata"], "organization_id": DEV_A_ID}}
    claims = {"operator": operator, "developer": developer}
    customers_q = function_module("customers", "queries")
    customers_m = function_module("customers", "models")
    orders_q = function_module("orders", "queries")
    orders_m = function_module("orders", "models")
    listings = {
        "customers": lambda conn: customers_q.list_customers(
            conn, customers_m.CustomerListQuery(), masked=False),
        "orders": lambda conn: orders_q.list_orders(conn, orders_m.OrderListQuery(), named=True),
    }

    async def sample(conn: psycopg.AsyncConnection[Any], name: str, caller: str | None,
                     user: str) -> tuple[float, int, list[int]]:
        started = time.perf_counter()
        async with conn.transaction():
            # Both sides pay the functions' prologue (one round trip); the bypassing side keeps
            # the connecting superuser as its role.
            c = claims[caller or "operator"]
            await conn.execute(BEGIN_REQUEST_SQL, ("authenticated" if caller else user,
                                                   json.dumps(c), c["sub"], "authenticated",
                                                   "10000"))
            total, entries = await listings[name](conn)
        return time.perf_counter() - started, total, [e["id"] for e in entries]

    async def measure(name: str) -> dict[str, list[float]]:
        times: dict[str, list[float]] = {"rls": [], "bypass": [], "developer": []}
        async with await psycopg.AsyncConnection.connect(url, prepare_threshold=None) as conn:
            user = conn.info.user
            for i in range(b.size.page_samples + 2):  # the first two warm up
                seconds = {}
                answers = {}
                for side, caller in (("rls", "operator"), ("bypass", None),
                                     ("developer", "developer")):
                    seconds[side], *answers[side] = await sample(conn, name, caller, user)
                if answers["rls"] != answers["bypass"]:
                    raise RuntimeError(f"{name}: the operator under RLS and the bypassing role"
                                       " list different rows")
                if i >= 2:
                    for side, s in seconds.items():
                        times[side].append(s * 1000)
        return times

    rows = []
    for name, count in (("customers", customers), ("orders", orders)):
        t = asyncio.run(measure(name))
        rows.append(Row(
            f"{name} page (100 rows) with total under row-level security, operator,"
            f" {count:,} {name} (p50 ms)",
            "the same SQL as the superuser, whom no policy binds (p50 ms)",
            round(median(t["rls"]), 2), round(median(t["bypass"]), 2), "<= 1.2",
            f"{b.size.page_samples} sequential samples per side; a developer organization's"
            f" own page under RLS: {median(t['developer']):.2f} ms p50"))
    return rows
