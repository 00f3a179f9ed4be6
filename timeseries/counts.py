"""Kept counts of `public.meter_snapshot_1_h`: per whole UTC hour, how many rows meter-consumption
lists there, in all (`ts.meter_snapshot_counts`) and per site (`ts.meter_snapshot_site_counts`,
the lower-cased grid name, as the function's `site` filter compares it). Revision ts0004.

meter-consumption's `total` is the sum of the counted hours inside its window plus a live count
of the rest (the window's partial first and last hours, and any hour not counted yet), so its
first page costs the same at 0.2M and at 100M rows in the window. Counting the window instead
costs ~0.1 s per million rows.

When a count is right:
- the snapshot build recounts the hours of each window it writes, in the build's transaction
  (`arecount`): the build's own rows are always counted exactly, and the open hour is never
  counted (the job builds closed hours only), so it is counted live;
- shards of the job (functions/snapshot-meters, `{"shard": k, "shards": n}`) write some meters
  of the same hours in parallel transactions, each recounting its windows' hours: recounts take
  a lock in turn (`COUNTS_LOCK`), so the last one of an hour counts every shard's rows and the
  counts are exact once every shard has built it;
- each run of the job recounts the last `RECENT` closed hours and counts hours that have rows
  but no count yet (`acatch_up`): the legacy writers' rows land within an hour or two of theirs,
  and the history written before ts0004 (or before adoption) is counted a month of hours per
  run, newest first (finding them walks the hours that have rows: one index probe each);
- rows a legacy writer adds to an hour after it was last counted (more than `RECENT` hours
  after it closed) are missing from `total` until that hour is recounted: `nxt backfill
  snapshots` over it, or `acatch_up(conn, now, recent=...)` with a longer reach.
"""

from __future__ import annotations

from datetime import datetime, timedelta
from typing import Any

from shared.meter_snapshots import LISTED

HOUR = timedelta(hours=1)
RECENT = 3  # closed hours recounted by every run of the job
HISTORY_BATCH = 31 * 24  # uncounted hours of history counted per run

_BIN = "date_bin('1 hour', h.created_at, timestamp '2000-01-01')"

# Recounts take turns, whoever runs them: parallel shards of the snapshot job (and the job's
# catch-up beside them) each write some meters of the same hours, and a recount computes its
# counts from its statement's snapshot, which lacks the rows of a shard that has not committed.
# Taken as the first statement of the recount's transaction and held to its commit, the lock
# orders the recounts: each one's snapshot is taken after every earlier one committed, so the
# last recount of an hour (one runs after each write of it) sees every committed row there.
COUNTS_LOCK = "nxt-counts:meter_snapshot_1_h"
_LOCK = "select pg_advisory_xact_lock(hashtext(%(lock)s))"

# One scan of the hours' rows, grouped twice (per hour; per hour and site), written into both
# tables in the same statement: hours upserted (zero included), site rows upserted, and the
# site rows the hours no longer have deleted (disjoint from the upserted ones).
_RECOUNT = f"""
with n as materialized (
    select {_BIN} as hour, lower(h.grid_name) as site,
           grouping(lower(h.grid_name)) = 1 as every_site, count(*) as readings,
           min(h.created_at) as first_at, max(h.created_at) as last_at
      from public.meter_snapshot_1_h h
     where h.created_at >= %(lo)s and h.created_at < %(hi)s and {LISTED}
     group by grouping sets (({_BIN}), ({_BIN}, lower(h.grid_name)))
),
hours as (
    insert into ts.meter_snapshot_counts as c (hour, readings, first_at, last_at, counted_at)
    select s.hour, coalesce(n.readings, 0), n.first_at, n.last_at, now()
      from unnest(%(hours)s::timestamp[]) s(hour)
      left join n on n.hour = s.hour and n.every_site
    on conflict (hour) do update set readings = excluded.readings,
      first_at = excluded.first_at, last_at = excluded.last_at, counted_at = excluded.counted_at
    returning 1
),
sites as (
    insert into ts.meter_snapshot_site_counts as c (site, hour, readings)
    select n.site, n.hour, n.readings from n
     where not n.every_site and n.site is not null and n.hour = any(%(hours)s::timestamp[])
    on conflict (site, hour) do update set readings = excluded.readings
    returning 1
),
gone as (
    delete from ts.meter_snapshot_site_counts c
     where c.hour = any(%(hours)s::timestamp[])
       and not exists (select 1 from n where not n.every_site and n.site = c.site
                                         and n.hour = c.hour)
    returning 1
)
select (select count(*) from hours), (select count(*) from sites), (select count(*) from gone)
"""

# Closed hours near now that have rows and no count (the open hour is never counted).
_UNCOUNTED_RECENT = """
select s.hour
  from generate_series(%(lo)s::timestamp, %(hi)s::timestamp - interval '1 hour',
                       interval '1 hour') s(hour)
 where not exists (select 1 from ts.meter_snapshot_counts c where c.hour = s.hour)
   and exists (select 1 from public.meter_snapshot_1_h h
                where h.created_at >= s.hour and h.created_at < s.hour + interval '1 hour')
"""

# Hours with rows and no count below `hi`, newest first: a skip scan down the created_at index
# (one probe per hour that has rows, however many rows it has), stopping after `limit` finds.
_UNCOUNTED_HISTORY = f"""
with recursive hours(hour, found) as (
    select (select {_BIN} from public.meter_snapshot_1_h h
             where h.created_at < %(hi)s order by h.created_at desc limit 1), 0
    union all
    select (select {_BIN} from public.meter_snapshot_1_h h
             where h.created_at < hours.hour order by h.created_at desc limit 1),
           found + (not exists (select 1 from ts.meter_snapshot_counts c
                                 where c.hour = hours.hour))::int
      from hours where hours.hour is not null and found < %(limit)s
)
select hour from hours
 where hour is not null
   and not exists (select 1 from ts.meter_snapshot_counts c where c.hour = hours.hour)
 order by hour desc
 limit %(limit)s
"""


def whole_hour(value: datetime) -> datetime:
    return value.replace(minute=0, second=0, microsecond=0)


async def arecount(conn: Any, lo: datetime, hi: datetime) -> int:
    """Count every hour of [lo, hi) again (naive UTC, whole hours), in the caller's transaction."""
    hours = []
    hour = whole_hour(lo)
    while hour < hi:
        hours.append(hour)
        hour += HOUR
    return await _recount(conn, hours)


def recount_statements(hours: list[datetime]) -> list[tuple[str, dict[str, Any]]]:
    """The statements that count `hours` (naive UTC, whole) again, to run in one transaction
    in this order, for a runner of any kind (the tests' sync helpers run them too): the lock
    that orders recounts, then the recount."""
    if not hours:
        return []
    params = {"hours": hours, "lo": min(hours), "hi": max(hours) + HOUR, "lock": COUNTS_LOCK}
    return [(_LOCK, params), (_RECOUNT, params)]


async def _recount(conn: Any, hours: list[datetime]) -> int:
    for statement, params in recount_statements(hours):
        await conn.execute(statement, params)
    return len(hours)


async def acatch_up(conn: Any, now: datetime, recent: int = RECENT,
                    history: int = HISTORY_BATCH) -> dict[str, int]:
    """The job's end-of-run step (autocommit `conn`, holding the job's lock): recount the last
    `recent` closed hours, count the uncounted closed hours of the last week, then up to
    `history` uncounted hours older than that. `now` is naive UTC."""
    closed = whole_hour(now)
    week = closed - timedelta(days=7)
    cur = await conn.execute(_UNCOUNTED_RECENT, {"lo": week, "hi": closed - recent * HOUR})
    missing = [row[0] for row in await cur.fetchall()]
    async with conn.transaction():
        recounted = await arecount(conn, closed - recent * HOUR, closed)
        await _recount(conn, missing)
    cur = await conn.execute(_UNCOUNTED_HISTORY, {"hi": week, "limit": history})
    old = [row[0] for row in await cur.fetchall()]
    for start in range(0, len(old), 24):  # a day of hours per transaction
        async with conn.transaction():
            await _recount(conn, old[start:start + 24])
    return {"recounted": recounted, "counted": len(missing) + len(old)}
