"""SQL of meter-readings: which meters exist (transactional plane), and the bulk write into the
time-series plane: one statement that reads the batch's JSON, checks it and inserts it."""

from __future__ import annotations

import asyncio
from collections.abc import Awaitable
from datetime import datetime
from typing import Any

from psycopg import AsyncConnection, errors

from shared.db import timeseries

from .validation import MAX_SPAN

# The ids of the batch that are not live meters (usually none, so almost nothing comes back);
# the ids go as one binary array, not as 10,000 numbers in text.
_UNKNOWN_METERS = """
select u.id from unnest(%b::int8[]) u(id)
 where not exists (select 1 from public.meters m where m.id = u.id and m.deleted_at is null)
"""

# The batch goes to the database as the JSON it arrived in (already validated), and the
# database turns it into rows: no per-reading Python, no staging table (a temp table per
# request also churns the catalog). One statement checks what a schema cannot (clocks in
# range, no key twice) and writes only if nothing is broken; it stores what is new, queues
# its hours for the snapshot job, and names the rows that were already there (the
# duplicates of a resent batch).
_BATCH = """
select (r.i - 1)::int as idx, r.meter_id, r.ts, r.counter_kwh, r.power_w, r.voltage_v,
       r.credit_kwh
  from rows from (json_to_recordset(%(batch)s::json) as (
         meter_id bigint, ts timestamptz, counter_kwh numeric, power_w numeric,
         voltage_v numeric, credit_kwh numeric)) with ordinality
       as r(meter_id, ts, counter_kwh, power_w, voltage_v, credit_kwh, i)
"""
_STORE = f"""
with batch as materialized ({_BATCH}
), verdict as (
  select count(*) filter (where ts < %(oldest)s or ts > %(newest)s)
         + (select count(*) from (select meter_id, ts from batch group by 1, 2
                                  having count(*) > 1) twice)
         + (max(ts) - min(ts) > %(max_span)s)::int as broken
    from batch
), inserted as (
  -- In key order, whatever order the batch came in: two overlapping batches then meet on
  -- their first common key, and the later waits for the earlier, instead of each holding a
  -- key the other needs (in opposite orders they deadlocked, 8 pairs out of 8).
  insert into ts.meter_readings (meter_id, ts, counter_kwh, power_w, voltage_v, credit_kwh)
  select meter_id, ts, counter_kwh, power_w, voltage_v, credit_kwh from batch
   where (select broken from verdict) = 0
   order by meter_id, ts
  on conflict (meter_id, ts) do nothing
  returning meter_id, ts
), queued as (
  insert into ts.pending_hours (hour)
  select distinct date_trunc('hour', ts, 'UTC') from inserted
)
select (select broken from verdict),
       array(select b.idx from batch b
              where not exists (select 1 from inserted i
                                 where i.meter_id = b.meter_id and i.ts = b.ts)
              order by b.idx)
"""
_SPAN = f"select min(ts), max(ts) from ({_BATCH}) b"


async def unknown_meters(conn: AsyncConnection[Any], meter_ids: set[int]) -> set[int]:
    cur = await conn.execute(_UNKNOWN_METERS, (list(meter_ids),))
    return {row[0] for row in await cur.fetchall()}


async def store(conn: AsyncConnection[Any], batch: str, oldest: datetime,
                newest: datetime) -> list[int] | None:
    """Write the readings that are new; returns the indexes of those already stored, or None
    (and writes nothing) if a reading is outside [oldest, newest] or a key comes twice."""
    cur = await conn.execute(_STORE, {"batch": batch, "oldest": oldest, "newest": newest,
                                      "max_span": MAX_SPAN})
    broken, duplicates = await cur.fetchone() or (1, [])
    return None if broken else list(duplicates)


TRANSIENT_RETRIES = 3


class _Refused(Exception):
    """Rolls back a write that must not commit."""


async def store_batch(batch: str, oldest: datetime, newest: datetime,
                      unknown_meters: Awaitable[set[int]]) -> list[int] | None:
    """`store` in a transaction of its own on the time-series plane, committed only if
    `unknown_meters` (looked up on the other plane meanwhile) is empty. Native partitions are
    made ahead by the maintenance job; a batch that reaches past them (a backfill) makes its
    own and is written again. None: something in the batch is wrong, nothing was written
    (an unknown meter, the checks, or a date the schema let through such as February 30)."""
    unknown = asyncio.ensure_future(unknown_meters)  # awaited once, whatever the retries
    partitions_made = False
    for attempt in range(1, TRANSIENT_RETRIES + 2):
        try:
            async with timeseries().work(statement_timeout_ms=20_000) as conn:  # < deadline
                duplicates = await store(conn, batch, oldest, newest)
                if duplicates is None or await asyncio.shield(unknown):
                    raise _Refused
                return duplicates
        except _Refused:
            return None
        except errors.CheckViolation as exc:
            if partitions_made or "no partition" not in str(exc):
                raise
        except errors.DataError:
            return None
        except (errors.DeadlockDetected, errors.SerializationFailure):
            # A conflict with a concurrent writer, not an outage: the batch is written again
            # (it is idempotent), and only after a few losses does it fail (as 503).
            if attempt > TRANSIENT_RETRIES:
                raise
            await asyncio.sleep(0.05 * attempt)
            continue
        from timeseries.partitions import aensure_partitions

        async with timeseries().work() as conn:
            await aensure_partitions(conn, "meter_readings", *await span(conn, batch))
        partitions_made = True
    raise AssertionError("unreachable")


async def span(conn: AsyncConnection[Any], batch: str) -> tuple[datetime, datetime]:
    """The first and last reading time of a batch."""
    cur = await conn.execute(_SPAN, {"batch": batch})
    lo, hi = await cur.fetchone() or (None, None)
    assert lo is not None and hi is not None, "an empty batch"
    return lo, hi
