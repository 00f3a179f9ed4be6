"""SQL of the customers function. Row-level security bounds every query to what the caller may
see; the WHERE clauses here only express the listing's own rules, which are the legacy
listing's: a customer with an account (the legacy joins accounts), on a grid that is not
deleted, and, unless the operator or the owning organization asks for them, neither the
customer nor its grid hidden from reporting."""

from __future__ import annotations

from typing import Any

from psycopg import AsyncConnection, sql

from .models import MASK, CustomerListQuery

# Sortable fields map to fixed expressions; the client never supplies SQL.
ORDER_COLUMNS = {"id": "c.id", "created_at": "c.created_at", "grid": "g.name",
                 "grid_id": "c.grid_id"}

# `account_id is not null` is the legacy inner join on accounts (the foreign key guarantees the
# row), without reading accounts, which lenders may not.
FILTERS = """
  from public.customers c
  join public.grids g on g.id = c.grid_id
 where g.deleted_at is null and c.account_id is not null
   and (%(include_hidden)s or (not c.is_hidden_from_reporting and not g.is_hidden_from_reporting))
   and (%(grid)s::integer is null or c.grid_id = %(grid)s::integer)
   and (%(created_from)s::timestamptz is null or c.created_at >= %(created_from)s::timestamptz)
   and (%(created_to)s::timestamptz is null or c.created_at < %(created_to)s::timestamptz)
"""
NAMED = "left join public.accounts a on a.id = c.account_id"

# The count and the page in one statement. Names are looked up for the page's rows only: a
# window count over the joined rows made the database look up every visible customer's
# account (8k index probes for 10k customers) to return 100 of them, and a join to the page
# was planned as a hash of every account; a scalar subquery is one index probe per row. The
# total always yields one row, so a page past the end still carries it. A total known from
# shared.totals is passed in instead of counted.
COUNT = "count(*) as total {filters}"
KNOWN = "%(known_total)s::bigint as total"
ACCOUNT_NAME = "(select a.full_name from public.accounts a where a.id = p.account_id)"
LIST = """
select t.total, p.id, {name} as full_name, p.grid
  from (select {total}) t
  left join lateral (
    select c.id, c.account_id, g.name as grid, {key} as k {filters}
     order by {key} {direction}, c.id {direction}
     limit %(limit)s offset %(offset)s) p on true
 order by p.k {direction}, p.id {direction}
"""


def _name_column(masked: bool) -> str:
    return "%(mask)s::text" if masked else "a.full_name"


async def list_customers(conn: AsyncConnection[Any], q: CustomerListQuery, masked: bool,
                         known_total: int | None = None) -> tuple[int, list[dict[str, Any]]]:
    """(total, the page's entries); counts the total unless `known_total` is given."""
    total = COUNT.format(filters=FILTERS) if known_total is None else KNOWN
    query = sql.SQL(LIST.format(
        name="%(mask)s::text" if masked else ACCOUNT_NAME, filters=FILTERS, total=total,
        key=ORDER_COLUMNS[q.order], direction="asc" if q.ascending else "desc"))
    params = {**q.model_dump(), "mask": MASK, "limit": q.size, "offset": (q.page - 1) * q.size,
              "known_total": known_total}
    cur = await conn.execute(query, params)
    rows = await cur.fetchall()
    entries = [{"id": r[1], "full_name": r[2], "grid": r[3]} for r in rows if r[1] is not None]
    return rows[0][0], entries


async def get_customer(conn: AsyncConnection[Any], customer_id: int,
                       masked: bool) -> dict[str, Any] | None:
    query = sql.SQL(
        "select c.id, " + _name_column(masked) + " as full_name, g.name, c.grid_id,"
        " c.created_at, c.is_hidden_from_reporting"
        " from public.customers c join public.grids g on g.id = c.grid_id "
        + ("" if masked else NAMED) +
        " where c.id = %(id)s and g.deleted_at is null and c.account_id is not null"
        # Lenders never see what is hidden, whatever the policies let them read.
        + (" and not g.is_hidden_from_reporting and not c.is_hidden_from_reporting"
           if masked else "")
    )
    cur = await conn.execute(query, {"id": customer_id, "mask": MASK})
    row = await cur.fetchone()
    if row is None:
        return None
    keys = ("id", "full_name", "grid", "grid_id", "created_at", "is_hidden_from_reporting")
    return dict(zip(keys, row, strict=True))
