"""Copy orders changed since the watermark into ts.order_snapshots.

The watermark is the newest `updated_at` copied. `updated_at` is stamped at its transaction's
start, so a transaction that commits late can carry a time already behind the watermark: each
run re-reads an overlap before the watermark (far longer than any statement may run), and the
upsert keeps the newer version, so reading a row twice changes nothing.
"""

from __future__ import annotations

from datetime import UTC, datetime, timedelta
from typing import Any

OVERLAP = timedelta(minutes=10)
BATCH = 5_000
EPOCH = datetime(1970, 1, 1, tzinfo=UTC)

COLUMNS = ("id", "created_at", "updated_at", "completed_at", "amount", "currency",
           "order_status", "order_type", "tariff", "payment_method", "payment_channel",
           "grid_id", "organization_id", "meter_id", "customer_id", "is_hidden_from_reporting")

_CHANGED = """
select id, created_at, updated_at, completed_at, amount, currency::text, order_status::text,
       meta_order_type::text, tariff, payment_method::text, payment_channel, historical_grid_id,
       rls_organization_id, meter_id, customer_id, meta_is_hidden_from_reporting
  from public.orders
 where (updated_at, id) > (%s, %s)
 order by updated_at, id
 limit %s
"""

_UPSERT = (
    "insert into ts.order_snapshots (" + ", ".join(COLUMNS) + ") values ("
    + ", ".join(["%s"] * len(COLUMNS)) + ") on conflict (id) do update set "
    + ", ".join(f"{c} = excluded.{c}" for c in COLUMNS[1:])
    + ", synced_at = now() where ts.order_snapshots.updated_at <= excluded.updated_at"
)

_WATERMARK = "select watermark from ts.job_watermarks where job = 'sync-orders'"
_SET_WATERMARK = """
insert into ts.job_watermarks (job, watermark, details, updated_at)
values ('sync-orders', %s, %s, now())
on conflict (job) do update set watermark = greatest(ts.job_watermarks.watermark,
  excluded.watermark), details = excluded.details, updated_at = now()
"""


async def sync(ts: Any, transactional: Any) -> dict[str, Any]:
    """`ts`: the job's direct connection (autocommit); `transactional`: the orders' pool."""
    from psycopg.types.json import Jsonb

    cur = await ts.execute(_WATERMARK)
    row = await cur.fetchone()
    watermark = row[0] if row and row[0] else EPOCH
    after: tuple[datetime, int] = (max(EPOCH, watermark - OVERLAP), 0)
    copied = 0
    newest = watermark
    while True:
        async with transactional.transaction("service_role") as conn:
            cur = await conn.execute(_CHANGED, (*after, BATCH))
            rows = await cur.fetchall()
        if not rows:
            break
        async with ts.transaction():
            async with ts.cursor() as c:
                await c.executemany(_UPSERT, rows)
            # Each batch moves the watermark: a run stopped mid-way resumes from here.
            newest = max(newest, rows[-1][2])
            await ts.execute(_SET_WATERMARK, (newest, Jsonb({"last_id": rows[-1][0]})))
        copied += len(rows)
        after = (rows[-1][2], rows[-1][0])
        if len(rows) < BATCH:
            break
    if copied == 0:
        await ts.execute(_SET_WATERMARK, (watermark if watermark > EPOCH else None,
                                          Jsonb({"idle": True})))
    return {"status": "done", "orders": copied, "watermark": newest}
