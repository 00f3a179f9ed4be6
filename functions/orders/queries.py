"""SQL of the orders function: listing, creation, and the lifecycle transitions."""

from __future__ import annotations

from typing import Any

from psycopg import AsyncConnection

from .models import CreateOrder, OrderListQuery

MASK = "*******"
ORDER_COLUMNS = {"id": "o.id", "created_at": "o.created_at", "updated_at": "o.updated_at",
                 "amount": "o.amount"}

# The lifecycle: which statuses each transition leaves from, and where it goes.
TRANSITIONS = {
    "complete": (("INITIALISED", "PENDING"), "COMPLETED"),
    "fail": (("INITIALISED", "PENDING"), "FAILED"),
    "cancel": (("INITIALISED", "PENDING"), "CANCELLED"),
}

FILTERS = """
  from public.orders o
 where o.order_status = %(status)s::public.order_status
   and o.meta_order_type = %(type)s::public.order_type
   and (%(named)s or not o.meta_is_hidden_from_reporting)
   and (%(grid)s::bigint is null or o.historical_grid_id = %(grid)s::bigint)
   and (%(created_from)s::timestamptz is null or o.created_at >= %(created_from)s::timestamptz)
   and (%(created_to)s::timestamptz is null or o.created_at < %(created_to)s::timestamptz)
"""
# One index probe per page row (a join was planned as a hash of every customer and account).
CUSTOMER_NAME = ("(select a.full_name from public.customers c"
                 " join public.accounts a on a.id = c.account_id where c.id = p.customer_id)")

# The count and the page in one statement; grid and customer names are looked up for the
# page's rows only, not for every order the count visits (see customers/queries.py). The
# total always yields one row, so a page past the end still carries it; a total known from
# shared.totals is passed in instead of counted.
COUNT = "count(*) as total {filters}"
KNOWN = "%(known_total)s::bigint as total"
LIST = """
select t.total, p.id, p.created_at, p.amount, p.order_status, p.currency, p.tariff,
       (select g.name from public.grids g where g.id = p.historical_grid_id), {customer}
  from (select {total}) t
  left join lateral (
    select o.id, o.created_at, o.amount, o.order_status::text, o.currency::text, o.tariff,
           o.historical_grid_id, o.customer_id, {key} as k {filters}
     order by {key} {direction}, o.id {direction}
     limit %(limit)s offset %(offset)s) p on true
 order by p.k {direction}, p.id {direction}
"""
LIST_KEYS = ("id", "created_at", "amount", "order_status", "currency", "tariff", "grid",
             "customer")

ORDER_FIELDS = (
    "o.id, o.created_at, o.updated_at, o.completed_at, o.amount, o.currency::text,"
    " o.order_status::text, o.meta_order_type::text, o.tariff, o.payment_method::text,"
    " o.payment_channel, o.external_reference, o.meter_id, o.customer_id,"
    " o.historical_grid_id"
)
ORDER_KEYS = ("id", "created_at", "updated_at", "completed_at", "amount", "currency",
              "order_status", "meta_order_type", "tariff", "payment_method", "payment_channel",
              "external_reference", "meter_id", "customer_id", "grid_id")


async def list_orders(conn: AsyncConnection[Any], q: OrderListQuery, named: bool,
                      known_total: int | None = None) -> tuple[int, list[dict[str, Any]]]:
    """(total, the page's entries); counts the total unless `known_total` is given."""
    total = COUNT.format(filters=FILTERS) if known_total is None else KNOWN
    query = LIST.format(
        customer=CUSTOMER_NAME if named else "%(mask)s::text", filters=FILTERS, total=total,
        key=ORDER_COLUMNS[q.order], direction="asc" if q.ascending else "desc")
    params = {**q.model_dump(), "status": q.status or "COMPLETED",
              "type": q.type or "ENERGY_TOPUP", "named": named, "mask": MASK,
              "limit": q.size, "offset": (q.page - 1) * q.size, "known_total": known_total}
    cur = await conn.execute(query, params)
    rows = await cur.fetchall()
    return rows[0][0], [dict(zip(LIST_KEYS, r[1:], strict=True)) for r in rows if r[1] is not None]


async def get_order(conn: AsyncConnection[Any], order_id: int) -> dict[str, Any] | None:
    cur = await conn.execute(
        "select " + ORDER_FIELDS + ", (select kwh from public.credit_ledger l"
        " where l.order_id = o.id) from public.orders o where o.id = %s", (order_id,))
    row = await cur.fetchone()
    return None if row is None else dict(zip((*ORDER_KEYS, "kwh"), row, strict=True))


async def meter_for_topup(conn: AsyncConnection[Any], meter_id: int) -> tuple | None:
    """(organization, customer, grid, tariff, meter type) of a live meter, or None."""
    cur = await conn.execute(
        "select m.rls_organization_id, c.id, g.id, g.kwh_tariff, m.meter_type::text"
        " from public.meters m"
        " join public.connections n on n.id = m.connection_id"
        " join public.customers c on c.id = n.customer_id"
        " join public.grids g on g.id = c.grid_id"
        " where m.id = %s and m.deleted_at is null and g.deleted_at is null", (meter_id,))
    return await cur.fetchone()


async def insert_topup(conn: AsyncConnection[Any], body: CreateOrder, org_id: int,
                       customer_id: int, grid_id: int, tariff: Any,
                       meter_type: str) -> dict[str, Any]:
    cur = await conn.execute(
        "insert into public.orders as o (amount, currency, order_status, meta_order_type,"
        " tariff, tariff_type, payment_method, payment_channel, external_reference,"
        " historical_grid_id, rls_organization_id, meter_id, customer_id) values"
        " (%s, %s, 'PENDING', 'ENERGY_TOPUP', %s, %s, %s, %s, %s, %s, %s, %s, %s)"
        " returning " + ORDER_FIELDS,
        (body.amount, body.currency, tariff, meter_type, body.payment_method,
         body.payment_channel, body.external_reference, grid_id, org_id, body.meter_id,
         customer_id))
    row = await cur.fetchone()
    assert row is not None
    return {**dict(zip(ORDER_KEYS, row, strict=True)), "kwh": None}


# Completing a top-up credits amount / tariff kWh in the same statement that changes the
# status. The row lock of the UPDATE serializes concurrent completions: the losers re-check
# the status after the winner commits, match nothing, and credit nothing.
_TRANSITION_SQL = """
with o as (
  update public.orders set order_status = %(to)s::public.order_status,
         completed_at = case when %(to)s = 'COMPLETED' then now() else completed_at end
   where id = %(id)s and order_status = any(%(from)s::public.order_status[])
  returning *
), l as (
  insert into public.credit_ledger (meter_id, order_id, kwh, amount, currency, tariff,
                                    rls_organization_id)
  select meter_id, id, round(amount / tariff, 4), amount, currency, tariff, rls_organization_id
    from o where %(to)s = 'COMPLETED' and meta_order_type = 'ENERGY_TOPUP'
  returning meter_id, kwh
), m as (
  update public.meters set kwh_credit_available = kwh_credit_available + l.kwh
    from l where meters.id = l.meter_id
  returning meters.id
)
select {fields}, (select kwh from l), (select count(*) from m)
  from o
"""


async def transition(conn: AsyncConnection[Any], order_id: int,
                     action: str) -> tuple[dict[str, Any] | None, str | None]:
    """(the order after the transition, None) or (None, its current status or None)."""
    sources, target = TRANSITIONS[action]
    cur = await conn.execute(_TRANSITION_SQL.format(fields=ORDER_FIELDS),
                             {"id": order_id, "to": target, "from": list(sources)})
    row = await cur.fetchone()
    if row is not None:
        return dict(zip((*ORDER_KEYS, "kwh"), row[:-1], strict=True)), None
    cur = await conn.execute("select order_status::text from public.orders where id = %s",
                             (order_id,))
    current = await cur.fetchone()
    return None, current[0] if current else None
