"""Time partitions: created ahead of the data, dropped past retention.

On a fresh plain PostgreSQL the time-partitioned tables are range-partitioned, with no default
partition: a row whose partition is missing fails with check_violation instead of landing
silently in a partition no maintenance can split or drop.

- ts.meter_readings by UTC day (ts.meter_readings_pYYYYMMDD): raw telemetry, dropped a day at a
  time past retention;
- public.meter_snapshot_1_h by UTC month (public.meter_snapshot_1_h_pYYYYMM): ~7 M rows a month
  for 10,000 meters, and the unit reads come in (meter-consumption ranges are at most 93 days,
  so 4 partitions; a backfill works a month at a time);
- public.order_snapshots and public.grid_business_snapshot_1_d by UTC year (`_pYYYY`): tens of
  thousands of rows a month at most, kept forever, and an order or a day may be years old
  (the first sync copies the whole history): yearly keeps the partition count small.

The three legacy tables are timestamp without time zone holding UTC, so their bounds are
written and read as UTC wall-clock times, never through the session's TimeZone.

On a database adopted from the legacy system those tables are what the legacy built: plain
tables on plain PostgreSQL, hypertables on TimescaleDB. `ensure_partitions` sees that a table
is not partitioned and does nothing (one catalog query), so writers call it the same way on
every database. Writers call `ensure_partitions` (or `aensure_partitions`) for a batch's time
range before writing; the maintenance job (`maintain`) creates partitions ahead and drops raw
readings past retention. On TimescaleDB the extension creates chunks itself, so
`ensure_partitions` is a no-op and `drop_expired` is drop_chunks.

Locking, because ingest calls this inside its own transaction:
- the fast path (every partition exists) is one catalog query and takes no lock;
- a partition is created as a plain table and then ATTACHed, which takes SHARE UPDATE
  EXCLUSIVE on the parent until the caller commits; readers and writers of the parent are not
  blocked (CREATE TABLE ... PARTITION OF would take ACCESS EXCLUSIVE and block them all);
- creators serialize on a transaction-level advisory lock per table and re-check under it.
  Catching duplicate_table alone would not do: two concurrent CREATE TABLEs of one name make
  the second fail on pg_type's unique index instead.

The work is written once as a plan (a generator of statements) that a sync and an async
driver run, so the ingest function (async psycopg) and the jobs (sync) share it. Names are
built from a fixed table list and dates, and composed with sql.Identifier.
"""

from __future__ import annotations

from collections.abc import Generator, Sequence
from dataclasses import dataclass
from datetime import UTC, date, datetime, timedelta
from typing import Any, TypeVar

import psycopg
from psycopg import AsyncConnection, sql
from psycopg.types.json import Jsonb

from timeseries.engine import NATIVE, EngineInfo, driver_connection, engine_info, extension_schema

T = TypeVar("T")
Rows = list[tuple[Any, ...]]
Step = tuple[sql.Composable, Sequence[Any] | None]
Plan = Generator[Step, Rows, T]

SCHEMA = "ts"

# A guard against a bad timestamp (year 1970 or 2970) turning one batch into thousands of
# tables: twice the default raw retention in days.
MAX_PARTITIONS_PER_CALL = 800

# How far ahead the maintenance job keeps partitions, so writers rarely need DDL at all.
READINGS_AHEAD = timedelta(days=7)
SNAPSHOTS_AHEAD = timedelta(days=31)

MAINTENANCE_JOB = "timeseries.maintenance"

DAY, MONTH, YEAR = "day", "month", "year"


@dataclass(frozen=True)
class Layout:
    schema: str
    table: str
    column: str
    period: str  # DAY, MONTH or YEAR
    naive: bool = False  # the column is timestamp without time zone (holding UTC)

    @property
    def qualified(self) -> str:
        return f"{self.schema}.{self.table}"


LAYOUTS = {
    "meter_readings": Layout(SCHEMA, "meter_readings", "ts", DAY),
    "meter_snapshot_1_h": Layout("public", "meter_snapshot_1_h", "created_at", MONTH, naive=True),
    "order_snapshots": Layout("public", "order_snapshots", "created_at", YEAR, naive=True),
    "grid_business_snapshot_1_d": Layout("public", "grid_business_snapshot_1_d", "created_at",
                                         YEAR, naive=True),
}
# The snapshot tables the maintenance job keeps partitions ahead for (native engine).
SNAPSHOT_TABLES = ("meter_snapshot_1_h", "order_snapshots", "grid_business_snapshot_1_d")


@dataclass(frozen=True)
class Partition:
    name: str
    lower: datetime | None  # None: MINVALUE, or a bound this module cannot read
    upper: datetime | None


def layout(table: str) -> Layout:
    """The layout of `table` ("meter_readings", "ts.meter_readings", "public.order_snapshots",
    ...); ValueError otherwise."""
    schema, _, key = table.rpartition(".")
    try:
        found = LAYOUTS[key]
        if schema and schema != found.schema:
            raise KeyError(table)
        return found
    except KeyError:
        raise ValueError(f"{table!r} is not a time-partitioned table; expected one of"
                         f" {', '.join(sorted(LAYOUTS))}") from None


def _utc(value: datetime | date) -> datetime:
    if isinstance(value, datetime):
        if value.tzinfo is None:
            raise ValueError("naive datetime: partitions are in UTC, pass an aware datetime")
        return value.astimezone(UTC)
    return datetime(value.year, value.month, value.day, tzinfo=UTC)


def _floor(t: datetime, period: str) -> datetime:
    day = t.replace(hour=0, minute=0, second=0, microsecond=0)
    if period == DAY:
        return day
    return day.replace(day=1) if period == MONTH else day.replace(month=1, day=1)


def _next(t: datetime, period: str) -> datetime:
    if period == DAY:
        return t + timedelta(days=1)
    if period == YEAR:
        return t.replace(year=t.year + 1)
    return t.replace(year=t.year + 1, month=1) if t.month == 12 else t.replace(month=t.month + 1)


_SUFFIX = {DAY: "%Y%m%d", MONTH: "%Y%m", YEAR: "%Y"}


def planned(table: str, lo: datetime | date, hi: datetime | date) -> list[Partition]:
    """The partitions of `table` that cover [lo, hi], both ends included."""
    spec = layout(table)
    start, end = _utc(lo), _utc(hi)
    if end < start:
        start, end = end, start
    out: list[Partition] = []
    t = _floor(start, spec.period)
    while t <= end:
        if len(out) == MAX_PARTITIONS_PER_CALL:
            raise ValueError(f"{start:%Y-%m-%d}..{end:%Y-%m-%d} needs more than"
                             f" {MAX_PARTITIONS_PER_CALL} partitions of {spec.table}")
        upper = _next(t, spec.period)
        out.append(Partition(f"{spec.table}_p{t.strftime(_SUFFIX[spec.period])}", t, upper))
        t = upper
    return out


# -- the plans -----------------------------------------------------------------------------

# The recorded engine, whether the parent is partitioned (a legacy table on an adopted
# database is not), and which of the names do not exist yet (to_regclass reads the latest
# committed catalog, also under REPEATABLE READ, so the re-check under the lock sees a
# partition another session just committed).
_MISSING = sql.SQL(
    "select (select engine from ts.engine_info),"
    " (select relkind = 'p' from pg_class where oid = to_regclass(%s)),"
    " coalesce(array_agg(n order by n) filter"
    " (where to_regclass(format('%%I.%%I', %s::text, n)) is null), array[]::text[])"
    " from unnest(%s::text[]) as n"
)
_LOCK = sql.SQL("select pg_advisory_xact_lock(hashtextextended(%s, 0))")


def _lock_key(spec: Layout) -> str:
    return f"nxt.timeseries.partitions.{spec.qualified}"


def _check_plan(spec: Layout, names: list[str]) -> Plan[tuple[str | None, bool, list[str]]]:
    rows = yield (_MISSING, (spec.qualified, spec.schema, names))
    engine, partitioned, missing = rows[0]
    if engine is None:
        raise RuntimeError("ts.engine_info is empty: the time-series schema is not migrated")
    return engine, bool(partitioned), list(missing)


def _bound(spec: Layout, t: datetime | None) -> sql.Composable:
    # A timestamp-without-time-zone key gets UTC wall-clock bounds: a timestamptz literal would
    # be converted through the session's TimeZone.
    return sql.Literal(t.replace(tzinfo=None) if spec.naive and t is not None else t)


def _create_plan(spec: Layout, wanted: list[Partition]) -> Plan[list[str]]:
    yield (_LOCK, (_lock_key(spec),))
    _, _, missing = yield from _check_plan(spec, [p.name for p in wanted])
    parent = sql.Identifier(spec.schema, spec.table)
    created = []
    for p in wanted:
        if p.name not in missing:
            continue
        part = sql.Identifier(spec.schema, p.name)
        # LIKE ... INCLUDING ALL copies the columns, defaults, CHECK constraints and indexes,
        # so ATTACH adopts the indexes instead of building new ones.
        yield (sql.SQL("create table {} (like {} including all)").format(part, parent), None)
        yield (sql.SQL("alter table {} attach partition {} for values from ({}) to ({})")
               .format(parent, part, _bound(spec, p.lower), _bound(spec, p.upper)), None)
        created.append(p.name)
    return created


def _run(conn: psycopg.Connection[Any], plan: Plan[T]) -> T:
    try:
        step = next(plan)
        while True:
            cur = conn.execute(*step)
            step = plan.send(cur.fetchall() if cur.description else [])
    except StopIteration as stop:
        return stop.value  # type: ignore[no-any-return]


async def _arun(conn: AsyncConnection[Any], plan: Plan[T]) -> T:
    try:
        step = next(plan)
        while True:
            cur = await conn.execute(*step)
            step = plan.send(await cur.fetchall() if cur.description else [])
    except StopIteration as stop:
        return stop.value  # type: ignore[no-any-return]


# -- public API ----------------------------------------------------------------------------


def ensure_partitions(conn: Any, table: str, lo: datetime | date, hi: datetime | date
                      ) -> list[str]:
    """Create the partitions of `table` that [lo, hi] needs and that do not exist yet; returns
    the names created. Idempotent, safe from concurrent sessions, a no-op on TimescaleDB.

    A table that is not partitioned (a legacy plain table on an adopted database) needs none:
    nothing is created.

    Inside a transaction the work runs in a savepoint and becomes visible when the caller
    commits; in autocommit mode it commits on its own.
    """
    spec = layout(table)
    wanted = planned(table, lo, hi)
    raw = driver_connection(conn)
    engine, partitioned, missing = _run(raw, _check_plan(spec, [p.name for p in wanted]))
    if engine != NATIVE or not partitioned or not missing:
        return []
    with raw.transaction():
        return _run(raw, _create_plan(spec, wanted))


async def aensure_partitions(conn: AsyncConnection[Any], table: str, lo: datetime | date,
                             hi: datetime | date) -> list[str]:
    """`ensure_partitions` for an async psycopg connection (the ingest function's)."""
    spec = layout(table)
    wanted = planned(table, lo, hi)
    engine, partitioned, missing = await _arun(conn, _check_plan(spec, [p.name for p in wanted]))
    if engine != NATIVE or not partitioned or not missing:
        return []
    async with conn.transaction():
        return await _arun(conn, _create_plan(spec, wanted))


# pg_get_expr prints the bounds as literals in this session's settings, and the cast reads
# them back in the same session, so the round trip holds whatever the time zone. Bounds of a
# timestamp-without-time-zone key are UTC wall-clock times.
_BOUND = {False: "{}::timestamptz", True: "{}::timestamp at time zone 'UTC'"}
_NATIVE_PARTITIONS = (
    "select c.relname::text, {lower}, {upper}"
    " from pg_inherits i join pg_class c on c.oid = i.inhrelid"
    " left join lateral regexp_match(pg_get_expr(c.relpartbound, c.oid),"
    " $re$FROM \\('([^']+)'\\) TO \\('([^']+)'\\)$re$) as b on true"
    " where i.inhparent = %s::regclass order by 2 nulls first, 1"
)
# The view reports a chunk's range as timestamptz; for a timestamp-without-time-zone column it
# converts the bound through the session's TimeZone, so the query runs with TimeZone set to
# UTC (the legacy tables hold UTC), and the caller's setting is put back right after.
_CHUNKS = sql.SQL(
    "select chunk_schema || '.' || chunk_name, range_start, range_end"
    " from timescaledb_information.chunks"
    " where hypertable_schema = %s and hypertable_name = %s order by range_start"
)
_UTC = "select current_setting('timezone'), set_config('timezone', 'UTC', true)"
_ZONE_BACK = "select set_config('timezone', %s, true)"


def _recorded(raw: psycopg.Connection[Any]) -> EngineInfo:
    info = engine_info(raw)
    if info is None:
        raise RuntimeError("the time-series schema is not migrated (no ts.engine_info row)")
    return info


def list_partitions(conn: Any, table: str) -> list[Partition]:
    """The partitions (native) or chunks (TimescaleDB) of `table`, oldest first."""
    spec = layout(table)
    raw = driver_connection(conn)
    if _recorded(raw).is_native:
        bound = _BOUND[spec.naive]
        query = sql.SQL(_NATIVE_PARTITIONS.format(lower=bound.format("b[1]"),
                                                  upper=bound.format("b[2]")))
        rows = raw.execute(query, (spec.qualified,)).fetchall()
    else:
        with raw.transaction():
            zone = raw.execute(_UTC).fetchone()[0]  # type: ignore[index]
            rows = raw.execute(_CHUNKS, (spec.schema, spec.table)).fetchall()
            raw.execute(_ZONE_BACK, (zone,))
    return [Partition(name, lower, upper) for name, lower, upper in rows]


def drop_expired(conn: Any, table: str, older_than: datetime) -> list[str]:
    """Drop the partitions (chunks) of `table` holding only data older than `older_than`
    (upper bound <= older_than); returns their names."""
    spec = layout(table)
    cutoff = _utc(older_than)
    raw = driver_connection(conn)
    if not _recorded(raw).is_native:
        drop = sql.Identifier(extension_schema(raw), "drop_chunks")
        older = cutoff.replace(tzinfo=None) if spec.naive else cutoff
        rows = raw.execute(sql.SQL("select {}(%s::regclass, older_than => %s)::text")
                           .format(drop), (spec.qualified, older)).fetchall()
        return [r[0] for r in rows]
    with raw.transaction():
        # The creators' lock: a drop never interleaves with a create of the same partition.
        raw.execute(_LOCK, (_lock_key(spec),))
        victims = [p for p in list_partitions(raw, table)
                   if p.upper is not None and p.upper <= cutoff]
        for p in victims:
            raw.execute(sql.SQL("drop table {}").format(sql.Identifier(spec.schema, p.name)))
    return [p.name for p in victims]


# -- the maintenance job -------------------------------------------------------------------


def maintain(conn: Any, now: datetime | None = None) -> dict[str, list[str]]:
    """One run of the maintenance job: whatever the engine does not do by itself.

    Native: partitions ahead (readings: 7 days, the snapshot tables: a month; none where a table
    is not partitioned, as on an adopted plain database), raw readings past
    engine_info.raw_retention dropped; the snapshot tables are kept forever. TimescaleDB without
    policies (the Apache edition, or no background workers): drop_chunks past retention,
    compress_chunk past compress_after, and (in autocommit mode only, as TimescaleDB requires) a
    refresh of ts.readings_hourly. With policies, TimescaleDB's own jobs do all of that and this
    only records the run.
    """
    raw = driver_connection(conn)
    info = _recorded(raw)
    now = _utc(now or datetime.now(UTC))
    report: dict[str, list[str]] = {"created": [], "dropped": [], "compressed": [],
                                    "refreshed": []}
    if info.is_native:
        report["created"] += ensure_partitions(raw, "meter_readings", now - timedelta(days=1),
                                               now + READINGS_AHEAD)
        for table in SNAPSHOT_TABLES:
            report["created"] += ensure_partitions(raw, table, now, now + SNAPSHOTS_AHEAD)
        report["dropped"] += drop_expired(raw, "meter_readings", now - info.raw_retention)
    elif not info.has("policies"):
        report["dropped"] += drop_expired(raw, "meter_readings", now - info.raw_retention)
        if info.has("compression"):
            report["compressed"] += _compress(raw, now - info.compress_after)
        if info.has("continuous_aggregates") and raw.autocommit:
            report["refreshed"] += _refresh(raw, now)
    raw.execute(
        "insert into ts.job_watermarks (job, watermark, details, updated_at)"
        " values (%s, %s, %s, now()) on conflict (job) do update set"
        " watermark = excluded.watermark, details = excluded.details, updated_at = now()",
        (MAINTENANCE_JOB, now, Jsonb(report)))
    return report


def _compress(raw: psycopg.Connection[Any], older_than: datetime) -> list[str]:
    ext = extension_schema(raw)
    rows = raw.execute(sql.SQL(
        "select {}(c, if_not_compressed => true)::text from {}(%s::regclass, older_than => %s)"
        " as c").format(sql.Identifier(ext, "compress_chunk"), sql.Identifier(ext, "show_chunks")),
        ("ts.meter_readings", older_than)).fetchall()
    return [r[0] for r in rows if r[0]]


def _refresh(raw: psycopg.Connection[Any], now: datetime) -> list[str]:
    # The last three days up to the current hour: late readings beyond that need an explicit
    # refresh (see the README on backfills).
    end = now.replace(minute=0, second=0, microsecond=0)
    proc = sql.Identifier(extension_schema(raw), "refresh_continuous_aggregate")
    raw.execute(sql.SQL("call {}('ts.readings_hourly', %s::timestamptz, %s::timestamptz)")
                .format(proc), (end - timedelta(days=3), end))
    return ["ts.readings_hourly"]
