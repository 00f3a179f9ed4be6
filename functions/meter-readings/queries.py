"""SQL of meter-readings: which meters exist (transactional plane), and the bulk write into the
time-series plane: COPY into a staging table, then one idempotent INSERT."""

from __future__ import annotations

from typing import Any

from psycopg import AsyncConnection

from .models import Reading

_KNOWN_METERS = "select id from public.meters where id = any(%s) and deleted_at is null"

# Dropped at commit: nothing outlives the transaction, so a transaction-mode pooler is safe.
_STAGING = """
create temp table _readings_in (
  idx integer, meter_id bigint, ts timestamptz, counter_kwh numeric(14, 4),
  power_w numeric(12, 3), voltage_v numeric(8, 3), credit_kwh numeric(14, 4)
) on commit drop
"""
_COPY = ("copy _readings_in (idx, meter_id, ts, counter_kwh, power_w, voltage_v, credit_kwh)"
         " from stdin (format binary)")
_TYPES = ["int4", "int8", "timestamptz", "numeric", "numeric", "numeric", "numeric"]

# One statement: store what is new, queue its hours for the snapshot job, and name the rows
# that were already there (the duplicates of a resent batch).
_INSERT = """
with inserted as (
  insert into ts.meter_readings (meter_id, ts, counter_kwh, power_w, voltage_v, credit_kwh)
  select meter_id, ts, counter_kwh, power_w, voltage_v, credit_kwh from _readings_in
  on conflict (meter_id, ts) do nothing
  returning meter_id, ts
), queued as (
  insert into ts.pending_hours (hour)
  select distinct date_trunc('hour', ts, 'UTC') from inserted
)
select s.idx from _readings_in s
 where not exists (select 1 from inserted i where i.meter_id = s.meter_id and i.ts = s.ts)
 order by s.idx
"""


async def known_meters(conn: AsyncConnection[Any], meter_ids: set[int]) -> set[int]:
    cur = await conn.execute(_KNOWN_METERS, (list(meter_ids),))
    return {row[0] for row in await cur.fetchall()}


async def store(conn: AsyncConnection[Any], rows: list[Reading]) -> list[int]:
    """Write the rows that are new; returns the indexes of those already stored."""
    await conn.execute(_STAGING)
    async with conn.cursor().copy(_COPY) as copy:
        copy.set_types(_TYPES)
        for index, r in enumerate(rows):
            await copy.write_row((index, r.meter_id, r.ts, r.counter_kwh, r.power_w,
                                  r.voltage_v, r.credit_kwh))
    cur = await conn.execute(_INSERT)
    return [row[0] for row in await cur.fetchall()]
