"""Build the hourly per-meter snapshot for every closed hour that readings touched.

The join strategy (the two planes live in different databases): the meters' dimension (meter,
customer, grid, organization, DCU) is read from the transactional plane in one query and copied
into a session temp table on the time-series connection; the build then joins readings with
that copy in SQL. No cross-database join, no foreign data wrapper, and the dimension is read
once per run rather than once per hour. A snapshot row records the dimension as it was when the
hour was first built, which is what the legacy snapshot did (timeseries/hourly.py, Dimensions).

The dimension is read from the legacy transactional tables with the legacy writer's mapping:
power limits in kW (meters.power_limit / 1000, as a float division), the customer's name from
its account, the grid and organization through the customer, and is_hidden_from_reporting the
customer's own flag (the legacy hourly writer copies that flag and nothing else; a meter
without a customer has no flag and is hidden).

Which hours: ingest appends the hour of every new reading to ts.pending_hours (append-only,
so concurrent ingests never wait on each other). A run takes the queued entries of closed hours,
widens them to every hour the new readings change (up to the neighbouring readings on both
sides), and rebuilds those hours one day-long window per transaction. Each transaction first
deletes the entries it took for its window, then rebuilds: an entry queued after the run read
the queue is never deleted by it, so its hours are rebuilt by the next run; a run killed
mid-way rolls back its open window and leaves those entries queued.

Shards: with a payload `{"shard": k, "shards": n}` the run builds only the meters with
meter_id % n = k, and an entry is deleted only once all n shards have built it (sharded.py).
"""

from __future__ import annotations

from datetime import UTC, datetime, timedelta
from typing import TYPE_CHECKING, Any

if TYPE_CHECKING:
    from shared.shards import Shard

CHUNK = timedelta(hours=24)

# In timeseries.hourly.DIM_COLUMNS' order.
_DIMENSION = """
select m.id, m.meter_type::text, m.external_reference, m.external_system::text,
       m.meter_phase::text, a.full_name, c.id, d.id, d.external_reference,
       d.external_system::text, g.id, o.id, g.name, o.name,
       m.power_limit::double precision / 1000, m.power_limit_should_be::double precision / 1000,
       m.meter_type = 'FS', m.meter_type = 'HPS', m.is_on, m.should_be_on, n.id,
       coalesce(c.is_hidden_from_reporting, true), m.is_cabin_meter
  from public.meters m
  left join public.connections n on n.id = m.connection_id
  left join public.customers c on c.id = n.customer_id
  left join public.accounts a on a.id = c.account_id
  left join public.grids g on g.id = c.grid_id
  left join public.organizations o on o.id = g.organization_id
  left join public.dcus d on d.id = m.dcu_id
 -- A shard's meters only (sharded.py); every meter for the whole job.
 where %(shards)s::int is null or mod(m.id, %(shards)s::int) = %(shard)s::int
"""

_PENDING = "select id, hour from ts.pending_hours where hour < %s"
_TAKE = "delete from ts.pending_hours where id = any(%s)"


def _chunks(lo: datetime, hi: datetime) -> list[tuple[datetime, datetime]]:
    out = []
    while lo < hi:
        out.append((lo, min(hi, lo + CHUNK)))
        lo += CHUNK
    return out


async def load_dimension(ts: Any, transactional: Any, shard: Shard | None = None) -> int:
    from timeseries.hourly import DIM_COLUMNS, acreate_meter_dim

    params = {"shard": None if shard is None else shard.shard,
              "shards": None if shard is None else shard.shards}
    async with transactional.transaction("service_role") as conn:
        cur = await conn.execute(_DIMENSION, params)
        rows = await cur.fetchall()
    await acreate_meter_dim(ts)
    columns = ", ".join(["meter_id", *(name for name, _ in DIM_COLUMNS)])
    async with ts.cursor().copy(f"copy pg_temp.meter_dim ({columns}) from stdin") as copy:
        for row in rows:
            await copy.write_row(row)
    return len(rows)


async def build_window(ts: Any, lo: datetime, hi: datetime, count: bool = True,
                       **options: Any) -> Any:
    """One build of [lo, hi), in the caller's transaction, with the snapshot table's partitions
    for it (a no-op unless the table is natively partitioned), and unless `count` is false its
    hours counted again for meter-consumption's totals (timeseries/counts.py)."""
    from timeseries.counts import arecount
    from timeseries.hourly import abuild_hours
    from timeseries.partitions import aensure_partitions

    await aensure_partitions(ts, "meter_snapshot_1_h", lo, hi - timedelta(microseconds=1))
    result = await abuild_hours(ts, lo, hi, **options)
    if count:
        await arecount(ts, _naive(lo), _naive(hi))
    return result


def _naive(value: datetime) -> datetime:
    return value.astimezone(UTC).replace(tzinfo=None) if value.tzinfo else value


async def build(ts: Any, transactional: Any, now: datetime | None = None,
                shard: Shard | None = None) -> dict[str, Any]:
    """`ts`: the job's direct connection (autocommit, holding the job's lock, or with `shard`
    the shard's locks: shared/jobs.py). With `shard`, only its meters (sharded.py)."""
    from timeseries.counts import acatch_up, arecount
    from timeseries.hourly import ahours_to_rebuild

    if shard is not None:
        from .sharded import build_shard

        return await build_shard(ts, transactional, shard, now)

    now = now or datetime.now(UTC)
    closed = now.replace(minute=0, second=0, microsecond=0)
    cur = await ts.execute(_PENDING, (closed,))
    taken = await cur.fetchall()
    if not taken:
        counts = await acatch_up(ts, _naive(now))
        return {"status": "done", "queued": 0, "hours": 0, "rows": 0, "counts": counts}
    meters = await load_dimension(ts, transactional)
    ranges = await ahours_to_rebuild(ts, hours=sorted({hour for _, hour in taken}))
    rows = 0
    windows = _chunks(min(r.lo for r in ranges), max(r.hi for r in ranges)) if ranges else []
    for lo, hi in windows:
        async with ts.transaction():
            await ts.execute(_TAKE, ([i for i, hour in taken if lo <= hour < hi],))
            parts = [(max(r.lo, lo), min(r.hi, hi), r) for r in ranges if r.lo < hi and r.hi > lo]
            for a, b, r in parts:
                result = await build_window(ts, a, b, count=False, meters=list(r.meters))
                rows += result.written
            if parts:  # the window's hours once, whichever meters' ranges they came from
                await arecount(ts, _naive(min(a for a, _, _ in parts)),
                               _naive(max(b for _, b, _ in parts)))
    # Entries whose hours had no readings left to build from (nothing to widen).
    leftover = [i for i, hour in taken if not any(lo <= hour < hi for lo, hi in windows)]
    if leftover:
        await ts.execute(_TAKE, (leftover,))
    hours = sum(int((hi - lo) / timedelta(hours=1)) for lo, hi in windows)
    counts = await acatch_up(ts, _naive(now))
    return {"status": "done", "queued": len(taken), "hours": hours, "rows": rows,
            "meters": meters, "counts": counts}
