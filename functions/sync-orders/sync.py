"""Copy orders changed since the watermark into the legacy order snapshots,
`public.order_snapshots` (key (order_id, created_at)).

The watermark is the newest `updated_at` copied. `updated_at` is stamped at its transaction's
start, so a transaction that commits late can carry a time already behind the watermark: each
run re-reads an overlap before the watermark (far longer than any statement may run), and the
upsert keeps the newer version, so reading a row twice changes nothing.

The columns are the legacy snapshot's, from the legacy orders: created_at the order's creation
time as UTC timestamp without time zone, status, sender and receiver (wallets, types and
names from the meta_* columns), created_by from meta_author_*, grid and organization with
their names, is_hidden_from_reporting from meta_is_hidden_from_reporting; amount and tariff
both as the legacy doubles and exactly (`coalesce(x_exact, x::numeric)`: the exact twin where
the transactional plane has one); and this project's order_type, updated_at and synced_at.

A row a legacy writer left (synced_at NULL) is kept as it is: it is the record of what the
legacy copied, and this job never rewrites it. The result counts such orders, and those whose
snapshot already holds a newer version, as `kept`.
"""

from __future__ import annotations

from datetime import UTC, datetime, timedelta
from typing import Any

OVERLAP = timedelta(minutes=10)
BATCH = 5_000
EPOCH = datetime(1970, 1, 1, tzinfo=UTC)

# The order's columns as order_snapshots names and types them (the recordset below).
COLUMNS: tuple[tuple[str, str], ...] = (
    ("order_id", "integer"),
    ("created_at", "timestamp without time zone"),
    ("amount", "double precision"),
    ("currency", "character varying"),
    ("sender_wallet_id", "integer"),
    ("receiver_wallet_id", "integer"),
    ("sender_type", "character varying"),
    ("receiver_type", "character varying"),
    ("sender_name", "character varying"),
    ("receiver_name", "character varying"),
    ("status", "character varying"),
    ("external_reference", "character varying"),
    ("created_by_id", "integer"),
    ("created_by_name", "character varying"),
    ("payment_method", "character varying"),
    ("payment_channel", "character varying"),
    ("tariff_type", "character varying"),
    ("tariff", "double precision"),
    ("grid_name", "character varying"),
    ("grid_id", "integer"),
    ("organization_name", "character varying"),
    ("organization_id", "integer"),
    ("is_hidden_from_reporting", "boolean"),
    ("order_type", "text"),
    ("updated_at", "timestamp with time zone"),
    ("amount_exact", "numeric"),
    ("tariff_exact", "numeric"),
)
_NAMES = [name for name, _ in COLUMNS]
_ID, _CREATED, _UPDATED = (_NAMES.index(n) for n in ("order_id", "created_at", "updated_at"))

# In COLUMNS' order. created_at is read as UTC wall-clock time, whatever the session's zone.
_CHANGED = """
select o.id, (o.created_at at time zone 'UTC'), o.amount, o.currency::text,
       o.sender_wallet_id, o.receiver_wallet_id, o.meta_sender_type::text,
       o.meta_receiver_type::text, o.meta_sender_name, o.meta_receiver_name,
       o.order_status::text, o.external_reference, o.meta_author_id, o.meta_author_name,
       o.payment_method::text, o.payment_channel::text, o.tariff_type::text, o.tariff, g.name,
       o.historical_grid_id, r.name, o.rls_organization_id, o.meta_is_hidden_from_reporting,
       o.meta_order_type::text, o.updated_at, coalesce(o.amount_exact, o.amount::numeric),
       coalesce(o.tariff_exact, o.tariff::numeric)
  from public.orders o
  left join public.grids g on g.id = o.historical_grid_id
  left join public.organizations r on r.id = o.rls_organization_id
 where (o.updated_at, o.id) > (%s, %s)
 order by o.updated_at, o.id
 limit %s
"""

# One statement a batch. A row is updated only when the job wrote it (synced_at set) and the
# order's version is not older than the one it holds. Returns (rows written, of which new):
# the keys there before are read in the same snapshot (xmax, the usual tell, is not readable
# from a partitioned table).
_UPSERT = (
    "with batch as (select * from jsonb_to_recordset(%s::jsonb) as r("
    + ", ".join(f"{n} {t}" for n, t in COLUMNS) + ")),\n"
    "there as (select order_id, created_at from public.order_snapshots"
    " join batch using (order_id, created_at)),\n"
    "written as (insert into public.order_snapshots as s (" + ", ".join(_NAMES)
    + ", synced_at)\n"
    "select " + ", ".join(_NAMES) + ", now() from batch\n"
    "on conflict (order_id, created_at) do update set "
    + ", ".join(f"{c} = excluded.{c}" for c in _NAMES[2:])
    + ", synced_at = now()\n"
    " where s.synced_at is not null"
    " and (s.updated_at is null or s.updated_at <= excluded.updated_at)\n"
    "returning order_id, created_at)\n"
    "select (select count(*) from written),"
    " (select count(*) from written w where not exists (select from there t"
    " where t.order_id = w.order_id and t.created_at = w.created_at))"
)

_WATERMARK = "select watermark from ts.job_watermarks where job = 'sync-orders'"
_SET_WATERMARK = """
insert into ts.job_watermarks (job, watermark, details, updated_at)
values ('sync-orders', %s, %s, now())
on conflict (job) do update set watermark = greatest(ts.job_watermarks.watermark,
  excluded.watermark), details = excluded.details, updated_at = now()
"""


def _json(value: Any) -> Any:
    # Numbers travel as text, which the recordset reads back exactly as numeric or as the same
    # double (repr is the shortest text of a float; NaN and infinities included, which JSON
    # numbers cannot carry); times as ISO 8601.
    if isinstance(value, datetime):
        return value.isoformat()
    if value is not None and not isinstance(value, bool | int | str):
        return repr(value) if isinstance(value, float) else str(value)
    return value


async def sync(ts: Any, transactional: Any) -> dict[str, Any]:
    """`ts`: the job's direct connection (autocommit); `transactional`: the orders' pool."""
    from psycopg.types.json import Jsonb

    from timeseries.partitions import aensure_partitions

    cur = await ts.execute(_WATERMARK)
    row = await cur.fetchone()
    watermark = row[0] if row and row[0] else EPOCH
    after: tuple[datetime, int] = (max(EPOCH, watermark - OVERLAP), 0)
    copied = inserted = kept = 0
    newest = watermark
    while True:
        async with transactional.transaction("service_role") as conn:
            cur = await conn.execute(_CHANGED, (*after, BATCH))
            rows = await cur.fetchall()
        if not rows:
            break
        created = [r[_CREATED].replace(tzinfo=UTC) for r in rows]
        batch = Jsonb([{n: _json(v) for n, v in zip(_NAMES, r, strict=True)} for r in rows])
        async with ts.transaction():
            await aensure_partitions(ts, "order_snapshots", min(created), max(created))
            cur = await ts.execute(_UPSERT, (batch,))
            written, new = (await cur.fetchone()) or (0, 0)
            # Each batch moves the watermark: a run stopped mid-way resumes from here.
            newest = max(newest, rows[-1][_UPDATED])
            await ts.execute(_SET_WATERMARK, (newest, Jsonb({"last_id": rows[-1][_ID]})))
        copied += len(rows)
        inserted += new
        kept += len(rows) - written
        after = (rows[-1][_UPDATED], rows[-1][_ID])
        if len(rows) < BATCH:
            break
    if copied == 0:
        await ts.execute(_SET_WATERMARK, (watermark if watermark > EPOCH else None,
                                          Jsonb({"idle": True})))
    return {"status": "done", "orders": copied, "inserted": inserted,
            "updated": copied - inserted - kept, "kept": kept, "watermark": newest}
