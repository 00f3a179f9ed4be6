"""The same data on both time-series engines gives the same answers.

One deterministic data set is loaded, through the functions' own code, into a native
(partitioned PostgreSQL) plane and into a TimescaleDB one (the PGlite test server, marked
`timescale`): ingest (`store`, resent batches, late readings and a backlog beyond the native
partitions), the snapshot job (`build`, with counter resets, gaps, long gaps, hour and day
boundaries across time zones) into the legacy hourly snapshot, sync-orders into the legacy
order snapshots, grid-daily into the legacy daily grid snapshot, meter-consumption pages,
freshness and maintenance. Each test checks the engine it runs on, and records what it saw:
the second engine's run asserts that it saw exactly what the first one did (`_agree`).

The TimescaleDB server serves one connection at a time: every step opens one connection, uses
it and closes it before the next one opens. The transactional plane (meters, grids, orders) is
one database on the embedded PostgreSQL, shared by both runs.
"""

from __future__ import annotations

import asyncio
import importlib
import json
from collections.abc import AsyncIterator, Callable, Iterator
from contextlib import asynccontextmanager
from dataclasses import dataclass
from datetime import UTC, date, datetime, timedelta
from decimal import Decimal
from types import ModuleType
from typing import Any
from zoneinfo import ZoneInfo

import psycopg
import pytest
from psycopg import AsyncConnection

from nxt_cli.functions import import_main, module_name
from nxt_cli.harness import ROOT, ScratchDatabases
from nxt_cli.migrate import migrate, migrate_timeseries
from timeseries import tables
from timeseries.engine import engine_info
from timeseries.hourly import HOURLY_COLUMNS, RebuildRange
from timeseries.partitions import list_partitions, planned

pytestmark = pytest.mark.db

# -- the data set ----------------------------------------------------------------------------

# Everything is relative to one UTC midnight four days back, fixed when the module loads: the
# grid-daily job builds the last days before now(), and native partitions exist around now.
NOW = datetime.now(UTC)
A = (NOW - timedelta(days=4)).replace(hour=0, minute=0, second=0, microsecond=0)
# The maintenance run, ten days on: native partitions to create ahead, old ones to drop.
MAINT_NOW = NOW + timedelta(days=10)
RETENTION = timedelta(days=30)
OLD = A - timedelta(days=40)  # a reading past RETENTION at MAINT_NOW
BACKLOG = -13 * 24  # hours from A: before the native partitions the migration creates
SPAN = (A + timedelta(hours=BACKLOG - 24), A + timedelta(days=4))  # every reading's hours


def h(hours: float) -> datetime:
    return A + timedelta(hours=hours)


@dataclass(frozen=True)
class Grid:
    id: int
    name: str
    tz: str
    org: int


GRIDS = (Grid(1, "Kisumu Hub", "Africa/Nairobi", 1), Grid(2, "Gbamu", "Africa/Lagos", 1),
         Grid(3, "Mojave Pilot", "America/Los_Angeles", 2))
# meter -> (external reference, grid, customer hidden from reporting)
METERS = {101: ("NRB-101", 1, False), 102: ("LOS-102", 2, False), 103: ("LAX-103", 3, False),
          104: ("LOS-104", 2, True), 105: ("NRB-105", 1, False)}
# (id, grid, meter, status, amount, currency, created at, hidden from reporting)
ORDERS = ((501, 1, 101, "COMPLETED", 500.0, "USD", h(22.5), False),  # Nairobi: day A + 1
          (502, 2, 102, "COMPLETED", 1000.0, "NGN", h(22.5), False),  # Lagos: day A
          (503, 2, 102, "COMPLETED", 250.5, "NGN", h(21), False),
          (504, 2, 104, "FAILED", 99.0, "NGN", h(21), False),
          (506, 2, 102, "COMPLETED", 70.1, "NGN", h(21.5), True),  # hidden: not revenue
          (505, 3, 103, "COMPLETED", 20.0, "USD", h(7.5), False))  # Los Angeles: day A - 1


def _series(meter: int, start: float, end: float, step_min: int, counter: str, per_hour: str,
            extra: Callable[[int, Decimal], dict[str, Any]] | None = None) -> list[Any]:
    """Readings every step_min minutes from h(start) to h(end), a few seconds (and
    microseconds) off the grid, the counter rising by about per_hour kWh an hour."""
    reading = _fn("meter-readings", "models").Reading
    out = []
    k, t = 0, h(start)
    while t <= h(end):
        c = (Decimal(counter) + Decimal(per_hour) * Decimal(k * step_min) / 60
             + Decimal(k % 3) * Decimal("0.0007")).quantize(Decimal("0.0001"))
        ts = t + timedelta(seconds=(k * 37) % 50, microseconds=(k * 7919) % 1_000_000)
        out.append(reading(meter_id=meter, ts=ts, counter_kwh=c, **(extra(k, c) if extra else {})))
        k, t = k + 1, t + timedelta(minutes=step_min)
    return out


def _with_credit(k: int, c: Decimal) -> dict[str, Any]:
    return {"credit_kwh": (Decimal(50) - (c - Decimal("88.8"))).quantize(Decimal("0.0001")),
            "power_w": Decimal(150 + 3 * k), "voltage_v": Decimal("229.5") + k % 4}


def first_batch() -> list[Any]:
    return [
        # Nairobi (+3): 21:00 UTC is local midnight, so these hours are day A + 1 there.
        *_series(101, 21.5, 26, 20, "1000", "0.42"),
        *_series(105, 22, 24, 10, "88.8", "0.15", _with_credit),
        # Lagos (+1): the meter is replaced at 25:15; the new one starts at 17.5 kWh.
        *_series(102, 20, 25, 15, "2400", "0.8"),
        *_series(102, 25.25, 30, 15, "17.5", "0.6"),
        *_series(104, 21, 23.5, 30, "5", "0.2"),  # hidden from reporting
        # Los Angeles: a 3.5 h gap after 12:00, then a 50 h one after 20:00.
        *_series(103, 6, 12, 30, "300", "0.5"),
        *_series(103, 15.5, 20, 30, "304.75", "0.5"),
        *_series(103, 70, 72, 30, "332", "0.5"),
    ]


def late_batch(first: list[Any]) -> list[Any]:
    reading = _fn("meter-readings", "models").Reading
    return [
        first[3],  # resent: a duplicate
        # 13 days back, before any native partition: ingest must create them.
        *_series(102, BACKLOG + 6, BACKLOG + 9, 30, "2390", "0.3"),
        # Inside meter 103's 3.5 h gap.
        reading(meter_id=103, ts=h(13.75), counter_kwh=Decimal("303.8750")),
    ]


# -- the planes ------------------------------------------------------------------------------


def _fn(name: str, module: str) -> ModuleType:
    """A function's sibling module (functions live in hyphenated directories)."""
    import_main(ROOT / "functions" / name / "main.py", name)
    return importlib.import_module(f"{module_name(name)}.{module}")


class Transactional:
    """The transactional plane as the jobs use it: `.transaction(role)`, here on a real
    migrated database (no pool: one connection per transaction)."""

    def __init__(self, url: str) -> None:
        self.url = url

    @asynccontextmanager
    async def transaction(self, role: str) -> AsyncIterator[AsyncConnection[Any]]:
        async with await AsyncConnection.connect(self.url) as conn, conn.transaction():
            await conn.execute("select set_config('role', %s, true)", (role,))
            yield conn


@asynccontextmanager
async def work(url: str) -> AsyncIterator[AsyncConnection[Any]]:
    """One transaction in UTC, as shared.db's `timeseries().work()` gives the functions."""
    async with await AsyncConnection.connect(url, autocommit=True) as conn:
        async with conn.transaction():
            await conn.execute("select set_config('timezone', 'UTC', true)")
            yield conn


@pytest.fixture(scope="module")
def transactional(scratch: ScratchDatabases) -> Transactional:
    """The transactional plane in the legacy schema (migrations/baseline.py), described as the
    legacy writers leave it."""
    url = scratch.create("nxt_engines")
    migrate(url)
    with psycopg.connect(url) as conn, conn.cursor() as cur:
        cur.executemany("insert into public.organizations (id, name) values (%s, %s)",
                        [(1, "Rift Solar"), (2, "Pacific Microgrids")])
        # The legacy default hides a grid from reporting: these are visible.
        cur.executemany("insert into public.grids (id, name, organization_id, timezone,"
                        " is_hidden_from_reporting, kwh_tariff_essential_service,"
                        " kwh_tariff_full_service, monthly_rental)"
                        " values (%s, %s, %s, %s, false, %s, %s, 3100)",
                        [(g.id, g.name, g.org, g.tz, 120.5 + g.id, 250.0) for g in GRIDS])
        org = {g.id: g.org for g in GRIDS}
        cur.executemany("insert into public.dcus (id, external_reference, external_system,"
                        " grid_id, rls_organization_id) values (%s, %s, 'CALIN', %s, %s)",
                        [(20 + g.id, f"DCU-{g.id}", g.id, g.org) for g in GRIDS])
        for meter, (ref, grid, hidden) in METERS.items():
            n = meter - 100
            cur.execute("insert into public.accounts (id, full_name) values (%s, %s)",
                        (10 + n, f"Customer {n}"))
            cur.execute("insert into public.customers (id, account_id, grid_id,"
                        " is_hidden_from_reporting, rls_organization_id)"
                        " values (%s, %s, %s, %s, %s)", (30 + n, 10 + n, grid, hidden, org[grid]))
            cur.execute("insert into public.connections (id, customer_id, currency,"
                        " women_impacted, is_public, is_commercial, is_residential,"
                        " rls_organization_id) values (%s, %s, 'NGN', %s, false, %s, %s, %s)",
                        (40 + n, 30 + n, n, meter == 105, meter != 105, org[grid]))
            cur.execute("insert into public.meters (id, external_reference, external_system,"
                        " meter_type, meter_phase, connection_id, dcu_id, power_limit,"
                        " is_cabin_meter, rls_organization_id)"
                        " values (%s, %s, 'CALIN', %s, %s, %s, %s, %s, %s, %s)",
                        (meter, ref, "FS" if meter == 103 else "HPS",
                         "THREE_PHASE" if meter == 103 else "SINGLE_PHASE", 40 + n, 20 + grid,
                         1200 if meter == 105 else None, meter == 105, org[grid]))
        cur.executemany(
            "insert into public.orders (id, historical_grid_id, order_status, meta_order_type,"
            " amount, currency, created_at, meta_is_hidden_from_reporting, rls_organization_id,"
            " meta_receiver_type, meta_receiver_id)"
            " values (%s, %s, %s, 'ENERGY_TOPUP', %s, %s, %s, %s, %s, 'METER', %s)",
            [(i, g, s, a, c, t, hidden, org[g], m) for i, g, m, s, a, c, t, hidden in ORDERS])
    return Transactional(url)


@dataclass(frozen=True)
class Plane:
    engine: str
    url: str


@pytest.fixture(scope="module", params=[
    "native", pytest.param("timescaledb", marks=pytest.mark.timescale)])
def plane(request: pytest.FixtureRequest, scratch: ScratchDatabases,
          tmp_path_factory: pytest.TempPathFactory) -> Iterator[Plane]:
    if request.param == "native":
        url = scratch.create("nxt_engines_ts")
        migrate_timeseries(url, engine="native")
        yield Plane("native", url)
        return
    from tests.support.timescale_server import require_timescale, start_timescale

    require_timescale()
    with start_timescale(tmp_path_factory.mktemp("timescale")) as server:
        migrate_timeseries(server.url, engine="timescaledb")
        yield Plane("timescaledb", server.url)


# -- what a run saw ---------------------------------------------------------------------------

Row = dict[str, Any]
Key = tuple[int, datetime]

_SEEN: dict[str, dict[str, Any]] = {}


def _plain(value: Any) -> Any:
    """Decimals and datetimes as strings, as JSON would carry them (so a different scale or
    offset shows), containers recursively."""
    if isinstance(value, Decimal):
        return str(value)
    if isinstance(value, datetime | date):
        return value.isoformat()
    if isinstance(value, dict):
        return {k: _plain(v) for k, v in value.items()}
    if isinstance(value, list | tuple):
        return [_plain(v) for v in value]
    return value


def _agree(aspect: str, engine: str, value: Any) -> None:
    """Record what `engine` saw; once both engines have, they must have seen the same."""
    seen = _SEEN.setdefault(aspect, {})
    seen[engine] = _plain(value)
    if len(seen) == 2:
        assert seen["timescaledb"] == seen["native"], f"{aspect}: the engines differ"


_HOURLY = [c.name for c in tables.meter_snapshot_1_h.columns]
_READINGS = "select meter_id, ts, counter_kwh, power_w, voltage_v, credit_kwh, received_at" \
            " from ts.meter_readings order by meter_id, ts"


async def _rows(conn: AsyncConnection[Any], query: str, *params: Any) -> list[tuple[Any, ...]]:
    cur = await conn.execute(query, params or None)
    return await cur.fetchall()


async def _hourly(conn: AsyncConnection[Any]) -> list[Row]:
    """The snapshot's rows, created_at as an aware UTC time (the table holds it without a
    zone)."""
    cur = await conn.execute(f"select {', '.join(_HOURLY)} from public.meter_snapshot_1_h"
                             " order by meter_id, created_at")
    rows = [dict(zip(_HOURLY, r, strict=True)) for r in await cur.fetchall()]
    for row in rows:
        row["created_at"] = row["created_at"].replace(tzinfo=UTC)
    return rows


def _values(row: Row | None) -> Row | None:
    return None if row is None else {k: v for k, v in row.items() if k != "built_at"}


def _without_built_at(rows: list[Row]) -> list[Row]:
    return [{k: v for k, v in r.items() if k != "built_at"} for r in rows]


@dataclass
class Run:
    engine: str
    url: str
    first: list[Any]
    late: list[Any]
    created_first: list[str]
    duplicates_first: list[int]
    readings_first: list[tuple[Any, ...]]
    pending_first: list[tuple[Any, ...]]
    duplicates_resent: list[int]
    readings_resent: list[tuple[Any, ...]]
    pending_resent: list[tuple[Any, ...]]
    build_first: dict[str, Any]
    pending_built: int
    hourly_first: list[Row]
    created_late: list[str]
    duplicates_late: list[int]
    ranges: list[RebuildRange]
    build_late: dict[str, Any]
    hourly: list[Row]
    recomputed: list[tuple[Any, ...]]
    stored: list[tuple[Any, ...]]
    readings_hourly: list[tuple[Any, ...]]
    synced: dict[str, Any]
    daily: dict[str, Any]


async def _ingest(url: str, rows: list[Any]) -> tuple[list[str], list[int]]:
    """What meter-readings does after validating a batch: partitions, then store."""
    from timeseries.partitions import aensure_partitions

    store = _fn("meter-readings", "queries").store
    batch = json.dumps([r.model_dump(mode="json") for r in rows])
    async with work(url) as conn:
        created = await aensure_partitions(conn, "meter_readings", min(r.ts for r in rows),
                                           max(r.ts for r in rows))
        duplicates = await store(conn, batch, datetime.min.replace(tzinfo=UTC),
                                 datetime.max.replace(tzinfo=UTC))
    assert duplicates is not None, "the batch breaks a rule"
    return created, duplicates


async def _state(url: str) -> tuple[list[tuple[Any, ...]], list[tuple[Any, ...]]]:
    async with work(url) as conn:
        return (await _rows(conn, _READINGS),
                await _rows(conn, "select id, hour, queued_at from ts.pending_hours order by id"))


async def _load(plane: Plane, tx: Transactional) -> Run:
    from shared.jobs import job_connection
    from timeseries.hourly import ahours_to_rebuild, apreview_hours

    snapshot = _fn("snapshot-meters", "snapshot")
    first = first_batch()
    late = late_batch(first)
    url = plane.url

    created_first, duplicates_first = await _ingest(url, first)
    readings_first, pending_first = await _state(url)
    _, duplicates_resent = await _ingest(url, first)
    readings_resent, pending_resent = await _state(url)

    async with job_connection(url, "snapshot-meters") as ts:
        assert ts is not None
        build_first = await snapshot.build(ts, tx, now=NOW)
        pending_built = (await _rows(ts, "select count(*) from ts.pending_hours"))[0][0]
        hourly_first = await _hourly(ts)

    created_late, duplicates_late = await _ingest(url, late)

    async with job_connection(url, "snapshot-meters") as ts:
        assert ts is not None
        ranges = await ahours_to_rebuild(ts)  # what the run below will rebuild
        build_late = await snapshot.build(ts, tx, now=NOW)
        hourly = await _hourly(ts)
        # The same hours recomputed from scratch, with the dimension the run loaded.
        recomputed = await apreview_hours(ts, *SPAN)
        stored = await _rows(ts, f"select {', '.join(HOURLY_COLUMNS)}"
                                 " from public.meter_snapshot_1_h order by meter_id, created_at")
        readings_hourly = await _rows(ts, "select * from ts.readings_hourly"
                                          " order by meter_id, hour")

    async with job_connection(url, "sync-orders") as ts:
        assert ts is not None
        synced = await _fn("sync-orders", "sync").sync(ts, tx)
    async with job_connection(url, "grid-daily") as ts:
        assert ts is not None
        daily = await _fn("grid-daily", "daily").build(ts, tx, days=21)

    return Run(plane.engine, url, first, late, created_first, duplicates_first, readings_first,
               pending_first, duplicates_resent, readings_resent, pending_resent, build_first,
               pending_built, hourly_first, created_late, duplicates_late, ranges, build_late,
               hourly, recomputed, stored, readings_hourly, synced, daily)


@pytest.fixture(scope="module")
def run(plane: Plane, transactional: Transactional) -> Run:
    return asyncio.run(_load(plane, transactional))


def _by_key(rows: list[Row]) -> dict[Key, Row]:
    return {(r["meter_id"], r["created_at"]): r for r in rows}


# -- one schema ------------------------------------------------------------------------------

# The relations of `ts` and the legacy tables of `public` (views and partitioned parents,
# never native partitions); NOT NULL is compared as is_nullable (PostgreSQL 18 also lists it in
# pg_constraint, 17 does not).
_PLANE = ("select oid from pg_class where not relispartition and (relnamespace ="
          " 'ts'::regnamespace or (relnamespace = 'public'::regnamespace and relname in"
          " ('meter_snapshot_1_h', 'order_snapshots', 'grid_business_snapshot_1_d')))")
_SCHEMA_QUERIES = {
    "columns": "select table_schema, table_name, column_name, data_type, numeric_precision,"
               " numeric_scale, is_nullable, column_default, is_identity"
               " from information_schema.columns"
               f" where format('%I.%I', table_schema, table_name)::regclass in ({_PLANE})"
               " order by table_schema, table_name, ordinal_position",
    "constraints": "select c.conrelid::regclass::text, c.conname, pg_get_constraintdef(c.oid)"
                   f" from pg_constraint c where c.contype <> 'n' and c.conrelid in ({_PLANE})"
                   " order by 1, 2",
    "indexes": "select schemaname, tablename, indexname, replace(indexdef, ' ON ONLY ', ' ON ')"
               " from pg_indexes where format('%I.%I', schemaname, tablename)::regclass"
               f" in ({_PLANE}) order by 1, 2, 3",
}


async def _schema(url: str) -> dict[str, Any]:
    async with work(url) as conn:
        return {name: await _rows(conn, query) for name, query in _SCHEMA_QUERIES.items()}


def test_one_schema_on_both_engines(plane: Plane) -> None:
    found = asyncio.run(_schema(plane.url))
    assert ("ts", "meter_readings", "counter_kwh", "numeric", 14, 4, "NO", None, "NO") in (
        found["columns"])
    assert ("public", "meter_snapshot_1_h", "consumption_kwh", "double precision", 53, None,
            "YES", None, "NO") in found["columns"]
    _agree("schema", plane.engine, found)


# -- ingest ----------------------------------------------------------------------------------


def test_ingest_stores_a_batch_once(run: Run) -> None:
    assert run.created_first == []  # the migration made the partitions around now
    assert run.duplicates_first == []
    assert len(run.readings_first) == len(run.first)
    assert {hour for _, hour, _ in run.pending_first} == {
        r.ts.replace(minute=0, second=0, microsecond=0) for r in run.first}
    # Resent: every row a duplicate, and nothing changed, not even received_at or the queue.
    assert run.duplicates_resent == list(range(len(run.first)))
    assert run.readings_resent == run.readings_first
    assert run.pending_resent == run.pending_first
    _agree("ingest", run.engine, (run.duplicates_first, run.duplicates_resent,
                                  [r[:-1] for r in run.readings_resent],
                                  [r[1] for r in run.pending_resent]))


def test_late_readings_get_their_partitions(run: Run) -> None:
    backlog_day = f"meter_readings_p{h(BACKLOG):%Y%m%d}"
    if run.engine == "native":
        wanted = [p.name for p in planned("meter_readings", h(BACKLOG), h(30))]
        assert backlog_day in run.created_late
        assert run.created_late == [n for n in wanted if n in run.created_late]
    else:
        assert run.created_late == []  # chunks are TimescaleDB's business
    assert run.duplicates_late == [0]  # the resent reading only
    _agree("late", run.engine, run.duplicates_late)


# -- the hourly snapshot ---------------------------------------------------------------------


def test_the_first_build_covers_every_queued_hour(run: Run) -> None:
    assert run.build_first["queued"] == len(run.pending_first)
    assert run.pending_built == 0
    assert {m for m, _ in _by_key(run.hourly_first)} == set(METERS)
    _agree("build_first", run.engine, run.build_first)


def test_resets_gaps_and_hours(run: Run) -> None:
    rows = _by_key(run.hourly_first)
    # A pair across an hour boundary is split: meter 101's energy is all there, to 0.0001.
    m101 = [r for r in run.first if r.meter_id == 101]
    total = sum(r["consumption_kwh_exact"] for (m, _), r in rows.items() if m == 101)
    assert total == m101[-1].counter_kwh - m101[0].counter_kwh
    assert rows[(101, h(22))]["consumption_kwh_exact"] > 0
    # The replacement meter starting at 17.5 kWh adds nothing: the pair across it is unknown.
    m102 = [r for r in run.first if r.meter_id == 102]
    old = [r for r in m102 if r.ts < h(25.1)]
    new = [r for r in m102 if r.ts > h(25.1)]
    total = sum(r["consumption_kwh_exact"] for (m, _), r in rows.items() if m == 102)
    assert total == (old[-1].counter_kwh - old[0].counter_kwh
                     + new[-1].counter_kwh - new[0].counter_kwh)
    assert rows[(102, h(25))]["is_estimated"]
    in_hour = [r for r in m102 if h(25) <= r.ts < h(26)]
    assert rows[(102, h(25))]["counter_kwh_exact"] == in_hour[-1].counter_kwh  # its last reading
    assert rows[(102, h(25))]["reading_count"] == len(in_hour)
    # Meter 103: a 3.5 h gap is spread and estimated; a 50 h one is unknown (NULL, not 0).
    assert all(rows[(103, h(x))]["is_estimated"] for x in range(12, 16))
    assert rows[(103, h(14))]["reading_count"] == 0
    assert rows[(103, h(14))]["consumption_kwh_exact"] > 0
    inside = [rows[(103, h(x))] for x in range(21, 70)]
    assert all(r["consumption_kwh_exact"] is None and not r["is_estimated"] for r in inside)
    # The dimension as the transactional plane described it.
    assert rows[(105, h(23))]["grid_name"] == "Kisumu Hub"
    assert rows[(105, h(23))]["kwh_credit_available_exact"] is not None
    assert rows[(104, h(22))]["is_hidden_from_reporting"]
    assert rows[(103, h(8))]["meter_type"] == "FS"


def test_late_readings_rebuild_exactly_the_affected_hours(run: Run) -> None:
    assert run.ranges == [RebuildRange(h(BACKLOG + 6), h(21), (102,)),
                          RebuildRange(h(12), h(16), (103,))]
    before, after = _by_key(run.hourly_first), _by_key(run.hourly)
    changed = {k for k in before.keys() | after.keys()
               if _values(before.get(k)) != _values(after.get(k))}
    for meter, hour in changed:
        assert any(meter in r.meters and r.lo <= hour < r.hi for r in run.ranges), (meter, hour)
    # The late reading in the gap: those four hours are measured now, not estimated.
    assert {k for k in changed if k[0] == 103} == {(103, h(x)) for x in range(12, 16)}
    assert not any(after[(103, h(x))]["is_estimated"] for x in range(12, 16))
    # The backlog: its hours, then NULL hours up to the newer readings (a gap of 13 days).
    assert {k for k in changed if k[0] == 102} == {
        (102, h(x)) for x in range(BACKLOG + 6, 20)}
    assert after[(102, h(BACKLOG + 7))]["consumption_kwh_exact"] > 0
    assert after[(102, h(BACKLOG + 12))]["consumption_kwh_exact"] is None
    # Rows outside the changed hours were not rewritten.
    assert all(after[k]["built_at"] == row["built_at"] for k, row in before.items()
               if k not in changed)
    assert run.build_late["rows"] == len(changed)
    # Incremental equals recomputed from scratch.
    assert run.stored == run.recomputed


def test_the_snapshots_are_identical(run: Run) -> None:
    _agree("hourly_first", run.engine, [list(r.values()) for r in
                                        _without_built_at(run.hourly_first)])
    _agree("ranges", run.engine, run.ranges)
    _agree("build_late", run.engine, run.build_late)
    _agree("hourly", run.engine, [list(r.values()) for r in _without_built_at(run.hourly)])


def test_readings_hourly_is_identical(run: Run) -> None:
    assert len(run.readings_hourly) == len({(r.meter_id, r.ts.replace(
        minute=0, second=0, microsecond=0)) for r in run.first + run.late})
    _agree("readings_hourly", run.engine, run.readings_hourly)


# -- meter-consumption -----------------------------------------------------------------------


async def _pages(url: str) -> dict[str, Any]:
    queries = _fn("meter-consumption", "queries")
    query = _fn("meter-consumption", "models").ConsumptionQuery
    span = {"FROM": SPAN[0], "TO": SPAN[1]}
    out: dict[str, Any] = {}
    async with work(url) as conn:
        out["first"] = await queries.page(conn, query(**span, pageLimit=20))
        out["next"] = await queries.page(conn, query(**span, pageLimit=20,
                                                     cursor=out["first"]["next_cursor"]))
        out["offset"] = await queries.page(conn, query(**span, pageLimit=20, offset=20))
        out["site"] = await queries.page(conn, query(**span, site="GBAMU", pageLimit=1000))
        out["meter"] = await queries.page(conn, query(**span, meter="LAX-103", pageLimit=1000))
        out["all"] = await queries.page(conn, query(**span, pageLimit=1000))
    return out


def test_meter_consumption_pages(run: Run) -> None:
    pages = asyncio.run(_pages(run.url))
    visible = sorted((r["created_at"], r["meter_id"]) for r in run.hourly
                     if not r["is_hidden_from_reporting"]
                     and r["consumption_kwh_exact"] is not None)
    assert pages["first"]["total"] == pages["all"]["total"] == len(visible)
    assert [(x["timestamp"], x["meterId"]) for x in pages["all"]["readings"]] == [
        (t.strftime("%Y-%m-%dT%H:%M:%S.000Z"), METERS[m][0]) for t, m in visible]
    assert pages["next"]["total"] is None
    assert pages["next"]["readings"] == pages["offset"]["readings"]  # cursor = offset paging
    assert pages["first"]["readings"] + pages["next"]["readings"] == pages["all"]["readings"][:40]
    assert {x["meterId"] for x in pages["site"]["readings"]} == {"LOS-102"}  # 104 is hidden
    assert {x["meterId"] for x in pages["meter"]["readings"]} == {"LAX-103"}
    _agree("pages", run.engine, pages)


# -- grid-daily ------------------------------------------------------------------------------

# Days inside the job's window whichever side of a local midnight it ran.
DAYS = [(A + timedelta(days=d)).date() for d in range(-16, 3)]
_DAILY_COLUMNS = ("grid_id", "created_at", "timezone", "grid_name", "organization_id",
                  "organization_name", "hps_consumption_kwh", "fs_consumption_kwh",
                  "total_consumption_kwh", "total_consumption_kwh_exact", "estimated_hours",
                  "active_meter_count", "energy_topup_revenue", "energy_topup_revenue_exact",
                  "energy_topup_currency", "completed_order_count", "connection_fee_revenue",
                  "hps_tariff", "fs_tariff", "monthly_rental", "daily_rental", "customer_count",
                  "total_meter_count", "hps_meter_count", "fs_meter_count",
                  "residential_connection_count", "commercial_connection_count",
                  "women_impacted_count", "cuf", "total_issue_count")


async def _grid_daily(url: str) -> list[Row]:
    async with work(url) as conn:
        cur = await conn.execute(
            f"select {', '.join(_DAILY_COLUMNS)} from public.grid_business_snapshot_1_d"
            " where created_at = any(%s) order by grid_id, created_at",
            ([datetime.combine(d, datetime.min.time()) for d in DAYS],))
        return [dict(zip(_DAILY_COLUMNS, r, strict=True)) for r in await cur.fetchall()]


def _local_day(t: datetime, tz: str) -> date:
    return t.astimezone(ZoneInfo(tz)).date()


def test_grid_daily_days_follow_each_grids_zone(run: Run) -> None:
    assert run.daily["grids"] == len(GRIDS)
    found = {(r["grid_id"], r["created_at"].date()): r for r in asyncio.run(_grid_daily(run.url))}
    assert set(found) == {(g.id, d) for g in GRIDS for d in DAYS}
    yesterday = {g.id: (NOW.astimezone(ZoneInfo(g.tz)) - timedelta(days=1)).date()
                 for g in GRIDS}
    for g in GRIDS:
        for d in DAYS:
            hours = [r for r in run.hourly
                     if r["grid_id"] == g.id and _local_day(r["created_at"], g.tz) == d]
            orders = [o for o in ORDERS if o[1] == g.id and o[3] == "COMPLETED"
                      and not o[7] and _local_day(o[6], g.tz) == d]
            row = found[(g.id, d)]
            assert (row["timezone"], row["grid_name"], row["organization_name"]) == (
                g.tz, g.name, "Rift Solar" if g.org == 1 else "Pacific Microgrids")
            # hidden meters count (the legacy sums every meter of the grid)
            exact = sum((r["consumption_kwh_exact"] or 0 for r in hours), Decimal(0))
            assert row["total_consumption_kwh_exact"] == exact, (g.name, d)
            hps = sum((r["consumption_kwh_exact"] or 0 for r in hours
                       if r["meter_type"] == "HPS"), Decimal(0))
            fs = exact - hps
            assert (row["hps_consumption_kwh"], row["fs_consumption_kwh"]) == (
                float(round(hps, 2)), float(round(fs, 2)))
            assert row["total_consumption_kwh"] == float(round(hps, 2)) + float(round(fs, 2))
            assert row["estimated_hours"] == sum(
                1 for r in hours if r["is_estimated"] or r["consumption_kwh_exact"] is None)
            assert row["active_meter_count"] == len(
                {r["meter_id"] for r in hours if (r["consumption_kwh_exact"] or 0) > 0})
            assert row["completed_order_count"] == len(orders)
            revenue = sum((Decimal(repr(o[4])) for o in orders), Decimal(0))
            assert (row["energy_topup_revenue_exact"], row["energy_topup_revenue"]) == (
                revenue, float(revenue))
            assert row["energy_topup_currency"] == (orders[0][5] if orders else None)
            # The grid's state on its latest complete day only; nothing of the legacy's own
            # columns (cuf, issues) is written.
            if d == yesterday[g.id]:
                assert (row["hps_tariff"], row["fs_tariff"], row["monthly_rental"]) == (
                    pytest.approx(120.5 + g.id), 250.0, 3100.0)
                meters = [m for m, (_, grid, _) in METERS.items() if grid == g.id]
                assert row["total_meter_count"] == len(meters)
                assert row["customer_count"] == len(
                    [m for m in meters if not METERS[m][2]])  # hidden customers are not
            else:
                assert row["hps_tariff"] is None and row["customer_count"] is None
            assert row["cuf"] is None and row["total_issue_count"] is None
    # 22:00 UTC on day A: already day A + 1 in Nairobi (+3), still day A in Lagos (+1).
    day = A.date()
    assert found[(1, day)]["total_consumption_kwh_exact"] == 0
    assert found[(1, day + timedelta(days=1))]["total_consumption_kwh_exact"] >= (
        _by_key(run.hourly)[(101, h(22))]["consumption_kwh_exact"])
    assert found[(1, day + timedelta(days=1))]["energy_topup_revenue_exact"] == Decimal("500")
    assert found[(2, day)]["energy_topup_revenue_exact"] == Decimal("1250.5")  # 506 is hidden
    assert found[(2, day)]["total_consumption_kwh_exact"] >= _by_key(run.hourly)[(102, h(22))][
        "consumption_kwh_exact"] > 0
    assert found[(3, day - timedelta(days=1))]["energy_topup_revenue_exact"] == 20  # 23:30 LA
    _agree("grid_daily", run.engine, [list(r.values()) for r in found.values()])


# -- freshness -------------------------------------------------------------------------------


async def _freshness(url: str) -> list[Any]:
    from timeseries.freshness import report

    async with work(url) as conn:
        return await report(conn)


def test_freshness_is_the_same(run: Run) -> None:
    assert run.synced["orders"] == len(ORDERS)
    found = {f.table: f for f in asyncio.run(_freshness(run.url))}
    assert {t: f.status for t, f in found.items()} == {
        "meter_snapshot_1_h": "stale", "order_snapshots": "ok",
        "grid_business_snapshot_1_d": "ok"}
    # The newest hour with a consumption: 72 (its last reading, seconds past 72:00, closes a
    # pair that reaches into it).
    assert found["meter_snapshot_1_h"].newest_complete == h(73)
    _agree("freshness", run.engine, ({t: f.status for t, f in found.items()},
                                     found["meter_snapshot_1_h"].newest_complete))


# -- maintenance (near the end: it drops and compresses) ------------------------------------


def test_maintenance(run: Run) -> None:
    from timeseries.hourly import create_meter_dim, preview_hours
    from timeseries.partitions import ensure_partitions, maintain

    with psycopg.connect(run.url, autocommit=True) as conn:
        conn.execute("set timezone = 'UTC'")
        conn.execute("update ts.engine_info set raw_retention = %s", (RETENTION,))
        ensure_partitions(conn, "meter_readings", OLD, OLD)
        conn.execute("insert into ts.meter_readings (meter_id, ts, counter_kwh)"
                     " values (101, %s, 1)", (OLD,))
        before = list_partitions(conn, "meter_readings")
        hourly_before = {p.name for p in list_partitions(conn, "meter_snapshot_1_h")}
        readings_before = conn.execute(_READINGS).fetchall()
        info = engine_info(conn)
        assert info is not None
        report = maintain(conn, now=MAINT_NOW)
        after = list_partitions(conn, "meter_readings")
        readings = conn.execute(_READINGS).fetchall()
        create_meter_dim(conn)  # empty: compare the measures only
        recomputed = [r[:7] for r in preview_hours(conn, *SPAN)]
        stored = conn.execute(f"select {', '.join(HOURLY_COLUMNS[:7])}"
                              " from public.meter_snapshot_1_h order by meter_id, created_at"
                              ).fetchall()
        readings_hourly = conn.execute("select * from ts.readings_hourly"
                                       " order by meter_id, hour").fetchall()
        compressed = (conn.execute("select count(*) filter (where is_compressed), count(*)"
                                   " from timescaledb_information.chunks"
                                   " where hypertable_name = 'meter_readings'").fetchone()
                      if not info.is_native else None)

    old_day = f"meter_readings_p{OLD:%Y%m%d}"
    if info.is_native:
        # Partitions ahead of MAINT_NOW: readings a week, hourly a month.
        ahead = [p.name for p in planned("meter_readings", MAINT_NOW - timedelta(days=1),
                                         MAINT_NOW + timedelta(days=7))]
        assert [n for n in report["created"] if n.startswith("meter_readings")] == [
            n for n in ahead if n not in {p.name for p in before}]
        months = [p.name for p in planned("meter_snapshot_1_h", MAINT_NOW,
                                          MAINT_NOW + timedelta(days=31))]
        assert [n for n in report["created"] if n.startswith("meter_snapshot_1_h")] == [
            n for n in months if n not in hourly_before]
        assert any(n.startswith("meter_readings") for n in report["created"])
        assert {p.name for p in after} >= set(ahead)
        assert old_day in report["dropped"]
        assert report["dropped"] == [p.name for p in before
                                     if p.upper is not None and p.upper <= MAINT_NOW - RETENTION]
        assert report["compressed"] == report["refreshed"] == []
    else:
        assert report["created"] == []
        assert len(report["dropped"]) == 1  # the old reading's chunk
        if info.has("compression"):
            assert report["compressed"], "every chunk is older than compress_after"
            assert compressed is not None and compressed[0] == compressed[1] > 0
        # autocommit: the maintenance job refreshes the continuous aggregate itself
        assert report["refreshed"] == (
            ["ts.readings_hourly"] if info.has("continuous_aggregates") else [])
    # Whatever the engine: the old reading is gone, the rest is untouched and reads the same.
    assert OLD in {r[1] for r in readings_before}
    assert readings == [r for r in readings_before if r[1] != OLD]
    assert stored == recomputed
    _agree("maintained", run.engine, ([r[:-1] for r in readings], stored, readings_hourly))


async def _after_maintenance(plane: Plane, tx: Transactional) -> dict[str, Any]:
    from shared.jobs import job_connection
    from timeseries.hourly import ahours_to_rebuild, apreview_hours

    reading = _fn("meter-readings", "models").Reading
    out: dict[str, Any] = {}
    # Resent into chunks TimescaleDB has compressed by now: still all duplicates.
    out["resent"] = (await _ingest(plane.url, late_batch(first_batch())))[1]
    out["late"] = (await _ingest(plane.url, [reading(
        meter_id=103, ts=h(14.5), counter_kwh=Decimal("304.2500"))]))[1]
    async with job_connection(plane.url, "snapshot-meters") as ts:
        assert ts is not None
        out["ranges"] = await ahours_to_rebuild(ts)
        out["build"] = await _fn("snapshot-meters", "snapshot").build(ts, tx, now=NOW)
        out["hourly"] = _without_built_at(await _hourly(ts))
        out["recomputed"] = await apreview_hours(ts, *SPAN)
        out["stored"] = await _rows(ts, f"select {', '.join(HOURLY_COLUMNS)}"
                                        " from public.meter_snapshot_1_h"
                                        " order by meter_id, created_at")
    return out


def test_ingest_and_rebuild_after_maintenance(plane: Plane, run: Run,
                                              transactional: Transactional) -> None:
    found = asyncio.run(_after_maintenance(plane, transactional))
    assert found["resent"] == list(range(len(run.late)))
    assert found["late"] == []
    assert found["ranges"] == [RebuildRange(h(13), h(16), (103,))]
    assert found["build"]["hours"] == 3
    assert found["stored"] == found["recomputed"]
    _agree("after_maintenance", plane.engine,
           {k: found[k] for k in ("resent", "ranges", "build", "hourly")})


def test_readings_hourly_sees_a_late_reading_in_a_refreshed_hour(
        plane: Plane, run: Run, request: pytest.FixtureRequest) -> None:
    """Not a function's query (none reads ts.readings_hourly), but the view promises the same
    columns on both engines. On TimescaleDB it is a real-time continuous aggregate: buckets
    below its watermark come from the materialization, so a late reading in an hour that a
    refresh already materialized is not seen until the next refresh (maintain() refreshes the
    last 3 days once a run; a policy every 30 minutes). The native view is always current."""
    from timeseries.partitions import maintain

    if plane.engine == "timescaledb":
        request.applymarker(pytest.mark.xfail(strict=True, reason=(
            "continuous aggregate: a late reading below the watermark waits for a refresh")))
    hour = h(71)  # within the 3 days before now that maintain() refreshes
    query = ("select count(*), max(ts), (array_agg(counter_kwh order by ts desc))[1]"
             " from ts.meter_readings where meter_id = 103 and ts >= %s and ts < %s")
    with psycopg.connect(plane.url, autocommit=True) as conn:
        maintain(conn)
        conn.execute("insert into ts.meter_readings (meter_id, ts, counter_kwh)"
                     " values (103, %s, %s)", (hour + timedelta(minutes=55), Decimal("332.95")))
        raw = conn.execute(query, (hour, hour + timedelta(hours=1))).fetchone()
        view = conn.execute("select reading_count, last_ts, last_counter_kwh"
                            " from ts.readings_hourly where meter_id = 103 and hour = %s",
                            (hour,)).fetchone()
    assert raw is not None and raw[0] == 3
    assert view == raw
