"""SQL of the orders function on the legacy order model: listing, creating an energy top-up,
and the lifecycle transitions that move its money between wallets and credit the meter.

A top-up is what the legacy services write for one: an order from the banking system's wallet
(`identifier = 'BANKING_SYSTEM'`) to the meter's wallet, with its `meta_*` fields filled as the
legacy order-meta logic fills them; completing it writes the two `transactions` rows (the
receiver's +amount, the sender's -amount, each with the wallet's balance before and after),
the wallets' balances, the order's tariff (-1, the legacy default, until then) and the meter's
kWh credit, all in one transaction. Money is computed as `numeric` (the `*_exact` columns; a
trigger keeps the legacy double precision columns equal to them).
"""

from __future__ import annotations

import math
from decimal import Decimal
from typing import Any

from psycopg import AsyncConnection

from .models import CreateOrder, OrderListQuery

MASK = "*******"
BANKING_SYSTEM = "BANKING_SYSTEM"
ORDER_COLUMNS = {"id": "o.id", "created_at": "o.created_at", "updated_at": "o.updated_at",
                 "amount": "o.amount"}

# The lifecycle: which statuses each transition leaves from, and where it goes. Cancelling is
# only for an order nobody has paid yet (INITIALISED), as the legacy cancel allows.
TRANSITIONS = {
    "complete": (("INITIALISED", "PENDING"), "COMPLETED"),
    "fail": (("INITIALISED", "PENDING"), "FAILED"),
    "cancel": (("INITIALISED",), "CANCELLED"),
}

AMOUNT = "coalesce(o.amount_exact, app.exact(o.amount))"
# -1 is the legacy's "no tariff yet": shown as null.
TARIFF = "nullif(coalesce(o.tariff_exact, app.exact(o.tariff)), -1)"

# The legacy listing joins the order's grid (orders without one are not listed) and lists only
# what is not hidden from reporting; the operator and the owning organization may ask for the
# hidden ones too.
FILTERS = """
  from public.orders o
  join public.grids g on g.id = o.historical_grid_id
 where o.order_status = %(status)s::public.order_status_enum
   and o.meta_order_type = %(type)s::public.order_type_enum
   and (%(include_hidden)s or o.meta_is_hidden_from_reporting is false)
   and (%(grid)s::integer is null or o.historical_grid_id = %(grid)s::integer)
   and (%(created_from)s::timestamptz is null or o.created_at >= %(created_from)s::timestamptz)
   and (%(created_to)s::timestamptz is null or o.created_at < %(created_to)s::timestamptz)
"""

# The count and the page in one statement; the page's rows carry their grid's name (one index
# probe per row). The total always yields one row, so a page past the end still carries it; a
# total known from shared.totals is passed in instead of counted.
COUNT = "count(*) as total {filters}"
KNOWN = "%(known_total)s::bigint as total"
LIST = """
select t.total, p.id, p.created_at, p.amount, p.order_status, p.currency, p.tariff, p.grid,
       {customer}
  from (select {total}) t
  left join lateral (
    select o.id, o.created_at, """ + AMOUNT + """ as amount, o.order_status::text,
           o.currency::text, """ + TARIFF + """ as tariff, g.name as grid,
           o.meta_receiver_name_part_2 as customer, {key} as k {filters}
     order by {key} {direction}, o.id {direction}
     limit %(limit)s offset %(offset)s) p on true
 order by p.k {direction}, p.id {direction}
"""
LIST_KEYS = ("id", "created_at", "amount", "order_status", "currency", "tariff", "grid",
             "customer")

# A completed top-up's kWh is derived from the order (amount / tariff, the legacy rounding),
# and when it completed from its successful transactions: no second record of either.
ORDER_SQL = """
select o.id, o.created_at, o.updated_at,
       (select min(t.created_at) from public.transactions t
         where t.order_id = o.id and t.transaction_status = 'SUCCESSFUL'),
       """ + AMOUNT + """, o.currency::text, o.order_status::text, o.meta_order_type::text,
       """ + TARIFF + """, o.tariff_type::text, o.payment_method::text,
       o.payment_channel::text, o.external_reference,
       case when o.meta_receiver_type = 'METER' then o.meta_receiver_id end,
       case when o.meta_receiver_type = 'METER' then o.meta_receiver_id_part_2 end,
       o.historical_grid_id, o.sender_wallet_id, o.receiver_wallet_id,
       o.meta_is_hidden_from_reporting
  from public.orders o where o.id = %s
"""
ORDER_KEYS = ("id", "created_at", "updated_at", "completed_at", "amount", "currency",
              "order_status", "meta_order_type", "tariff", "tariff_type", "payment_method",
              "payment_channel", "external_reference", "meter_id", "customer_id", "grid_id",
              "sender_wallet_id", "receiver_wallet_id", "is_hidden_from_reporting")


def kwh_for(amount: Decimal, tariff: Decimal) -> Decimal:
    """kWh a completed top-up credits: amount / tariff rounded up to 0.1 kWh, in the customer's
    favour, as the legacy order processing rounds it."""
    return Decimal(math.ceil(amount / tariff * 10)) / 10


def _order(row: tuple[Any, ...]) -> dict[str, Any]:
    order = dict(zip(ORDER_KEYS, row, strict=True))
    completed = order["order_status"] == "COMPLETED" and order["meta_order_type"] == "ENERGY_TOPUP"
    order["kwh"] = (kwh_for(order["amount"], order["tariff"])
                    if completed and order["tariff"] else None)
    return order


async def list_orders(conn: AsyncConnection[Any], q: OrderListQuery, named: bool,
                      known_total: int | None = None) -> tuple[int, list[dict[str, Any]]]:
    """(total, the page's entries); counts the total unless `known_total` is given."""
    total = COUNT.format(filters=FILTERS) if known_total is None else KNOWN
    query = LIST.format(
        customer="p.customer" if named else "%(mask)s::text", filters=FILTERS, total=total,
        key=ORDER_COLUMNS[q.order], direction="asc" if q.ascending else "desc")
    params = {**q.model_dump(), "status": q.status or "COMPLETED",
              "type": q.type or "ENERGY_TOPUP", "mask": MASK, "limit": q.size,
              "offset": (q.page - 1) * q.size, "known_total": known_total}
    cur = await conn.execute(query, params)
    rows = await cur.fetchall()
    return rows[0][0], [dict(zip(LIST_KEYS, r[1:], strict=True)) for r in rows if r[1] is not None]


async def get_order(conn: AsyncConnection[Any], order_id: int) -> dict[str, Any] | None:
    cur = await conn.execute(ORDER_SQL, (order_id,))
    row = await cur.fetchone()
    return None if row is None else _order(row)


# -- creating a top-up --------------------------------------------------------------------------

# The meter's tariff: its own when it has one, else its grid's for its type (essential service
# for HPS, full service for FS), as the legacy order processing chooses it.
METER_TARIFF = """coalesce(app.exact(m.kwh_tariff), case m.meter_type
         when 'FS' then app.exact(g.kwh_tariff_full_service)
         else app.exact(g.kwh_tariff_essential_service) end)"""
METER_SQL = """
select m.id, m.external_reference, m.meter_type::text, n.currency::text,
       """ + METER_TARIFF + """,
       c.id, a.full_name, c.is_hidden_from_reporting or g.is_hidden_from_reporting,
       g.id, g.organization_id, (select w.id from public.wallets w where w.meter_id = m.id)
  from public.meters m
  join public.connections n on n.id = m.connection_id
  join public.customers c on c.id = n.customer_id
  join public.grids g on g.id = c.grid_id
  left join public.accounts a on a.id = c.account_id
 where m.id = %s and m.deleted_at is null and g.deleted_at is null
"""
METER_KEYS = ("id", "reference", "meter_type", "currency", "tariff", "customer_id",
              "customer_name", "hidden", "grid_id", "organization_id", "wallet_id")

BANKING_WALLET_SQL = ("select id from public.wallets where identifier = %s"
                      " order by id limit 1")

# Every meter that can be topped up has a wallet (the legacy commissioning creates it); one is
# made here for a meter that has none yet, as commissioning would have.
NEW_WALLET_SQL = """
insert into public.wallets (meter_id, balance_exact, wallet_type, rls_organization_id)
values (%s, 0, 'REAL', %s)
on conflict (meter_id) do nothing
"""

INSERT_SQL = """
insert into public.orders (
  amount_exact, currency, order_status, meta_order_type, payment_method, payment_channel,
  external_reference, historical_grid_id, rls_organization_id, sender_wallet_id,
  receiver_wallet_id, author_id, meta_author_type, meta_author_name, meta_sender_type,
  meta_sender_name, meta_receiver_type, meta_receiver_name, meta_receiver_id,
  meta_receiver_name_part_2, meta_receiver_id_part_2, meta_is_hidden_from_reporting,
  updated_at)
select %(amount)s, %(currency)s, 'INITIALISED', 'ENERGY_TOPUP', %(payment_method)s,
       %(payment_channel)s, %(external_reference)s, %(grid_id)s, %(organization_id)s,
       %(sender)s, %(receiver)s, a.id,
       case when a.id is not null then 'MEMBER'::public.account_type_enum end, a.full_name,
       'BANKING_SYSTEM', 'Banking system', 'METER', %(reference)s, %(meter_id)s,
       %(customer_name)s, %(customer_id)s, %(hidden)s, now()
  from (select) one
  left join public.accounts a on a.supabase_id = (select auth.uid()) and a.deleted_at is null
returning id
"""


async def meter_for_topup(conn: AsyncConnection[Any], meter_id: int) -> dict[str, Any] | None:
    cur = await conn.execute(METER_SQL, (meter_id,))
    row = await cur.fetchone()
    return None if row is None else dict(zip(METER_KEYS, row, strict=True))


async def banking_wallet(conn: AsyncConnection[Any]) -> int | None:
    cur = await conn.execute(BANKING_WALLET_SQL, (BANKING_SYSTEM,))
    row = await cur.fetchone()
    return None if row is None else row[0]


async def reference_taken(conn: AsyncConnection[Any], reference: str) -> bool:
    cur = await conn.execute(
        "select exists (select from public.orders where external_reference = %s)", (reference,))
    row = await cur.fetchone()
    return bool(row and row[0])


async def insert_topup(conn: AsyncConnection[Any], body: CreateOrder, meter: dict[str, Any],
                       sender: int) -> dict[str, Any]:
    if meter["wallet_id"] is None:
        await conn.execute(NEW_WALLET_SQL, (meter["id"], meter["organization_id"]))
        cur = await conn.execute("select id from public.wallets where meter_id = %s",
                                 (meter["id"],))
        meter = {**meter, "wallet_id": (await cur.fetchone() or (None,))[0]}
    cur = await conn.execute(INSERT_SQL, {
        **body.model_dump(), "grid_id": meter["grid_id"],
        "organization_id": meter["organization_id"], "sender": sender,
        "receiver": meter["wallet_id"], "reference": meter["reference"],
        "meter_id": meter["id"], "customer_name": meter["customer_name"],
        "customer_id": meter["customer_id"], "hidden": meter["hidden"]})
    row = await cur.fetchone()
    assert row is not None
    order = await get_order(conn, row[0])
    assert order is not None
    return order


# -- transitions ------------------------------------------------------------------------------

# The order's row lock serializes concurrent transitions of one order: the losers wait, then
# find it no longer in a status they may leave. `lock_session` is the legacy order loop's
# claim on an order or wallet it is processing: such rows are left to it.
# FOR NO KEY UPDATE (what an UPDATE of these rows takes anyway), not FOR UPDATE: it does not
# conflict with the KEY SHARE locks that inserting an order or a transaction takes on the
# rows its foreign keys point to. With FOR UPDATE, a completion holding the banking system's
# wallet and waiting for a meter's wallet deadlocked with an order being created for that
# meter, which held its wallet KEY SHARE and waited for the banking system's.
LOCK_ORDER_SQL = """
select o.order_status::text, o.lock_session, o.meta_order_type::text, o.sender_wallet_id,
       o.receiver_wallet_id, """ + AMOUNT + """, o.rls_organization_id
  from public.orders o where o.id = %s for no key update
"""
# Both wallets, locked in id order so that two transfers between the same wallets cannot
# deadlock (every top-up shares the banking system's wallet).
LOCK_WALLETS_SQL = """
select w.id, coalesce(w.balance_exact, app.exact(w.balance)), w.lock_session, w.meter_id,
       w.identifier
  from public.wallets w where w.id = any(%s) order by w.id for no key update
"""
TARIFF_SQL = """
select m.deleted_at is not null or g.deleted_at is not null, m.meter_type::text,
       """ + METER_TARIFF + """
  from public.meters m
  join public.connections n on n.id = m.connection_id
  join public.customers c on c.id = n.customer_id
  join public.grids g on g.id = c.grid_id
 where m.id = %s
"""
TRANSACTION_SQL = """
insert into public.transactions (amount_exact, transaction_status, balance_before_exact,
                                 balance_after_exact, wallet_id, order_id, rls_organization_id)
values (%s, 'SUCCESSFUL', %s, %s, %s, %s, %s)
"""
BALANCE_SQL = ("update public.wallets set balance_exact = %s, balance_updated_at = now()"
               " where id = %s")
CREDIT_SQL = """
update public.meters
   set kwh_credit_available_exact
         = coalesce(kwh_credit_available_exact, app.exact(kwh_credit_available), 0) + %s,
       kwh_credit_available_updated_at = now()
 where id = %s
"""
STATUS_SQL = """
update public.orders set order_status = %s::public.order_status_enum, updated_at = now(),
       tariff_exact = coalesce(%s, tariff_exact),
       tariff_type = coalesce(%s::public.meter_type_enum, tariff_type)
 where id = %s
"""


class TransitionRefused(Exception):
    """The order exists but cannot take this transition now; `retry` when it may later."""

    def __init__(self, message: str, *, retry: bool = False) -> None:
        super().__init__(message)
        self.message = message
        self.retry = retry


async def transition(conn: AsyncConnection[Any], order_id: int,
                     action: str) -> dict[str, Any] | None:
    """The order after the transition; None when there is no such order (visible to the caller).
    Raises TransitionRefused when the order cannot move now."""
    sources, target = TRANSITIONS[action]
    cur = await conn.execute(LOCK_ORDER_SQL, (order_id,))
    row = await cur.fetchone()
    if row is None:
        return None
    status, lock_session, order_type, sender, receiver, amount, organization = row
    if status not in sources:
        raise TransitionRefused(f"cannot {action} order {order_id}: it is {status}")
    if lock_session is not None:
        raise TransitionRefused(f"cannot {action} order {order_id}: the legacy order loop is"
                                " processing it", retry=True)
    tariff = meter_type = None
    if target == "COMPLETED":
        tariff, meter_type = await _transfer(conn, order_id, order_type, sender, receiver,
                                             amount, organization)
    await conn.execute(STATUS_SQL, (target, tariff, meter_type, order_id))
    return await get_order(conn, order_id)


async def _transfer(conn: AsyncConnection[Any], order_id: int, order_type: str,
                    sender: int | None, receiver: int | None, amount: Decimal,
                    organization: int | None) -> tuple[Decimal | None, str | None]:
    """Move the order's amount from its sender's wallet to its receiver's, and credit the meter
    of an energy top-up; returns the tariff and meter type the order records."""
    if sender is None or receiver is None:
        raise TransitionRefused(f"cannot complete order {order_id}: it has no"
                                f" {'sender' if sender is None else 'receiver'} wallet")
    cur = await conn.execute(LOCK_WALLETS_SQL, ([sender, receiver],))
    wallets = {w[0]: w for w in await cur.fetchall()}
    if sender not in wallets or receiver not in wallets:
        raise TransitionRefused(f"cannot complete order {order_id}: its wallets are not visible")
    if any(w[2] is not None for w in wallets.values()):
        raise TransitionRefused(f"cannot complete order {order_id}: the legacy order loop"
                                " holds one of its wallets", retry=True)
    amount = abs(amount)
    sender_balance, receiver_balance = wallets[sender][1], wallets[receiver][1]
    # Only the banking system may go below zero (it pays for every top-up).
    if sender_balance < amount and wallets[sender][4] != BANKING_SYSTEM:
        raise TransitionRefused(f"cannot complete order {order_id}: the sender's wallet holds"
                                f" {sender_balance}, less than {amount}")
    tariff = meter_type = None
    meter_id = wallets[receiver][3]
    if order_type == "ENERGY_TOPUP" and meter_id is not None:
        cur = await conn.execute(TARIFF_SQL, (meter_id,))
        found = await cur.fetchone()
        deleted, meter_type, tariff = found if found else (False, None, None)
        # Paid for while the meter was live; crediting a meter replaced since would lose the
        # energy. The order stays open for the operator to refund or move.
        if deleted:
            raise TransitionRefused(f"cannot complete order {order_id}: meter {meter_id} (or"
                                    " its grid) was deleted after the order was created")
        if not tariff or tariff <= 0:
            raise TransitionRefused(f"cannot complete order {order_id}: meter {meter_id} has no"
                                    " kWh tariff (its own or its grid's)")
    async with conn.cursor() as cur:
        await cur.executemany(TRANSACTION_SQL, [
            (amount, receiver_balance, receiver_balance + amount, receiver, order_id,
             organization),
            (-amount, sender_balance, sender_balance - amount, sender, order_id, organization),
        ])
        await cur.executemany(BALANCE_SQL, [(receiver_balance + amount, receiver),
                                            (sender_balance - amount, sender)])
    if tariff is not None:
        await conn.execute(CREDIT_SQL, (kwh_for(amount, tariff), meter_id))
    return tariff, meter_type
