"""SQL of the customers function. Row-level security bounds every query to what the caller may
see; the WHERE clauses here only express the listing's own rules."""

from __future__ import annotations

from typing import Any

from psycopg import AsyncConnection, sql

from .models import MASK, CustomerListQuery

# Sortable fields map to fixed expressions; the client never supplies SQL.
ORDER_COLUMNS = {"id": "c.id", "created_at": "c.created_at", "grid": "g.name",
                 "grid_id": "c.grid_id"}

FILTERS = """
  from public.customers c
  join public.grids g on g.id = c.grid_id
  {account_join}
 where g.deleted_at is null
   and (%(include_hidden)s or (not c.is_hidden_from_reporting and not g.is_hidden_from_reporting))
   and (%(grid)s::bigint is null or c.grid_id = %(grid)s::bigint)
   and (%(created_from)s::timestamptz is null or c.created_at >= %(created_from)s::timestamptz)
   and (%(created_to)s::timestamptz is null or c.created_at < %(created_to)s::timestamptz)
"""
NAMED = "left join public.accounts a on a.id = c.account_id"


def _name_column(masked: bool) -> str:
    return "%(mask)s::text" if masked else "a.full_name"


async def list_customers(conn: AsyncConnection[Any], q: CustomerListQuery,
                         masked: bool) -> tuple[int, list[dict[str, Any]]]:
    direction = "asc" if q.ascending else "desc"
    filters = FILTERS.format(account_join="" if masked else NAMED)
    query = sql.SQL(
        "select c.id, " + _name_column(masked) + " as full_name, g.name as grid,"
        " count(*) over () as total" + filters +
        " order by " + ORDER_COLUMNS[q.order] + f" {direction}, c.id {direction}"
        " limit %(limit)s offset %(offset)s"
    )
    params = {**q.model_dump(), "mask": MASK, "limit": q.size, "offset": (q.page - 1) * q.size}
    cur = await conn.execute(query, params)
    rows = await cur.fetchall()
    if rows:
        total = rows[0][3]
    else:  # past the last page: the window count has no row to ride on
        cur = await conn.execute(sql.SQL("select count(*)" + filters), params)
        total = (await cur.fetchone() or (0,))[0]
    return total, [{"id": r[0], "full_name": r[1], "grid": r[2]} for r in rows]


async def get_customer(conn: AsyncConnection[Any], customer_id: int,
                       masked: bool) -> dict[str, Any] | None:
    query = sql.SQL(
        "select c.id, " + _name_column(masked) + " as full_name, g.name, c.grid_id,"
        " c.created_at, c.is_hidden_from_reporting"
        " from public.customers c join public.grids g on g.id = c.grid_id "
        + ("" if masked else NAMED) +
        " where c.id = %(id)s and g.deleted_at is null"
        + (" and not g.is_hidden_from_reporting" if masked else "")
    )
    cur = await conn.execute(query, {"id": customer_id, "mask": MASK})
    row = await cur.fetchone()
    if row is None:
        return None
    keys = ("id", "full_name", "grid", "grid_id", "created_at", "is_hidden_from_reporting")
    return dict(zip(keys, row, strict=True))
