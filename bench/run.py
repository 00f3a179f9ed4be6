"""Every hot path against its floor, measured in the same run; prints the table and writes
bench/results.json.

    python -m bench.run --size smoke|full      (make bench [SIZE=smoke])

Starts and stops everything itself: an embedded PostgreSQL on a free loopback port, scratch
databases (migrated, seeded), `nxt serve` and the floor server as subprocesses. See
bench/README.md for what each floor is and why the server runs the way it does.
"""

from __future__ import annotations

import argparse
import asyncio
import importlib
import json
import operator
import os
import random
import statistics
import subprocess
import sys
import time
import traceback
from collections.abc import Callable, Iterator
from contextlib import AbstractContextManager
from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta
from pathlib import Path
from tempfile import TemporaryDirectory
from types import ModuleType
from typing import Any
from urllib.parse import urlencode, urlsplit

import psycopg

from bench.load import Connection, closed_loop, encode_request, percentile, senders
from bench.stack import (
    JWT_SECRET,
    ROOT,
    Scratch,
    floor_serve,
    free_port,
    nxt_serve,
    postgres,
    server,
    stack_env,
)
from nxt_cli.harness import log_tail

RESULTS = ROOT / "bench" / "results.json"
BATCH = 10_000  # readings per ingest request (the function's maximum)
SENDERS = 2
CONCURRENCY = 16  # page rows
LOAD_CONCURRENCY = 64  # throughput row
POOL_SIZE = 4  # DB_POOL_MAX_SIZE of the functions and of the floor: the deployed default
STEP = timedelta(minutes=15)


@dataclass(frozen=True)
class Size:
    reps: int  # repetitions of each measurement; rows report medians
    customers: int  # seeded customers, one meter each
    ingest_batches: int  # per sender and repetition
    ingest_reps: int  # the ingest row's repetitions (issue 15: the median of 5 full runs)
    page_seconds: float  # per repetition and side, at CONCURRENCY
    hourly_meters: int  # meter_snapshot_1_h holds hourly_meters x hourly_hours rows
    hourly_hours: int
    deep: int  # rows before the deep page
    page_samples: int  # meter-consumption requests per side
    snapshot_meters: int
    cold_starts: int  # per side
    load_seconds: float  # throughput row, per side
    rls_customers: int  # the row-level security rows' own database (bench/rls.py)
    rls_orders: int
    memory_requests: int  # per function instance (bench/memory.py)


SIZES = {
    "smoke": Size(reps=2, customers=1_000, ingest_batches=2, ingest_reps=2, page_seconds=1.5,
                  hourly_meters=500, hourly_hours=100, deep=20_000, page_samples=10,
                  snapshot_meters=500, cold_starts=1, load_seconds=3, rls_customers=500,
                  rls_orders=3_000, memory_requests=300),
    "full": Size(reps=3, customers=10_000, ingest_batches=8, ingest_reps=5, page_seconds=8,
                 hourly_meters=1_000, hourly_hours=2_000, deep=500_000, page_samples=25,
                 snapshot_meters=10_000, cold_starts=5, load_seconds=60,
                 rls_customers=100_000, rls_orders=1_000_000, memory_requests=10_000),
}

OPS: dict[str, Callable[[float, float], bool]] = {">=": operator.ge, "<=": operator.le}
# The row groups, which `--only` picks from.
GROUPS = frozenset({"ingest", "pages", "consumption", "throughput", "snapshot", "shard",
                    "cold", "rls", "memory"})


def ratio_of(value: float | None, floor_value: float | None) -> float | None:
    """value / floor_value to three places; None when either is missing (a failed row)."""
    if not value or not floor_value:
        return None
    return round(value / floor_value, 3)


@dataclass
class Row:
    path: str
    floor: str
    value: float | None
    floor_value: float | None
    target: str  # "<op> <ratio>", e.g. ">= 0.5"
    note: str = ""
    ok: bool = True  # False: a condition besides the ratio failed (errors under load)

    @property
    def ratio(self) -> float | None:
        return ratio_of(self.value, self.floor_value)

    @property
    def met(self) -> bool:
        if self.ratio is None or not self.ok:
            return False
        op, limit = self.target.split()
        return OPS[op](self.ratio, float(limit))

    def as_json(self) -> dict[str, Any]:
        out = {"path": self.path, "floor": self.floor, "value": self.value,
               "floor_value": self.floor_value, "ratio": self.ratio, "target": self.target,
               "met": self.met}
        return {**out, "note": self.note} if self.note else out


@dataclass
class Bench:
    size: Size
    work: Path
    scratch: Scratch
    tx: str  # transactional plane, migrated and seeded
    ts: str  # time-series plane the functions serve
    snapshot_ts: str  # time-series plane of the snapshot row alone
    api: int = 0  # port of `nxt serve`
    floor: int = 0  # port of the floor server
    api_key: str = ""  # the demo aggregator's
    tokens: dict[str, str] = field(default_factory=dict)


def median(values: list[float]) -> float:
    return statistics.median(values)


def function_module(name: str, module: str) -> ModuleType:
    """A module of functions/<name>/, loaded the way `nxt serve` loads the function."""
    from nxt_cli.functions import import_main, module_name

    import_main(ROOT / "functions" / name / "main.py", name)
    return importlib.import_module(f"{module_name(name)}.{module}")


def fixed(units: int, scale: int) -> str:
    whole, frac = divmod(units, 10**scale)
    return f"{whole}.{frac:0{scale}d}"


# -- 1. meter-readings ingest -----------------------------------------------------------------

Reading = tuple[int, datetime, str, str, str, str]


def readings(meters: int, start: datetime, rng: random.Random) -> Iterator[Reading]:
    """Every meter every 15 minutes from `start`, a few seconds late, counters rising."""
    counters = [rng.randrange(50_000_000) for _ in range(meters)]
    slot = 0
    while True:
        at = start + slot * STEP
        for m in range(meters):
            counters[m] += rng.randrange(5_000)
            ts = at + timedelta(microseconds=rng.randrange(20_000_000))
            yield (m + 1, ts, fixed(counters[m], 4), fixed(rng.randrange(3_000_000), 3),
                   "230.000", fixed(rng.randrange(10_000_000), 4))
        slot += 1


def as_json(batch: list[Reading]) -> bytes:
    keys = ("meter_id", "ts", "counter_kwh", "power_w", "voltage_v", "credit_kwh")
    return json.dumps({"readings": [
        dict(zip(keys, (m, ts.isoformat(), *rest), strict=True)) for m, ts, *rest in batch
    ]}).encode()


def as_copy(batch: list[Reading]) -> bytes:
    return "".join(f"{m}\t{ts.isoformat()}\t" + "\t".join(rest) + "\n"
                   for m, ts, *rest in batch).encode()


FLOOR_STAGING = """create temp table _staging (meter_id bigint, ts timestamptz,
  counter_kwh numeric(14, 4), power_w numeric(12, 3), voltage_v numeric(8, 3),
  credit_kwh numeric(14, 4)) on commit drop"""
FLOOR_COPY = "copy _staging from stdin"
FLOOR_INSERT = """insert into ts.meter_readings (meter_id, ts, counter_kwh, power_w, voltage_v,
  credit_kwh) select * from _staging on conflict (meter_id, ts) do nothing"""


async def floor_ingest(url: str, shares: list[list[bytes]]) -> float:
    """The same rows, SQL only: per batch a temp staging table, COPY, one idempotent INSERT;
    one connection per sender. Returns the wall time."""
    conns = [await psycopg.AsyncConnection.connect(url) for _ in shares]

    async def send(conn: psycopg.AsyncConnection[Any], batches: list[bytes]) -> None:
        for data in batches:
            async with conn.transaction():
                await conn.execute(FLOOR_STAGING)
                async with conn.cursor().copy(FLOOR_COPY) as copy:
                    await copy.write(data)
                await conn.execute(FLOOR_INSERT)

    try:
        started = time.perf_counter()
        await asyncio.gather(*(send(c, s) for c, s in zip(conns, shares, strict=True)))
        return time.perf_counter() - started
    finally:
        for conn in conns:
            await conn.close()


def ingest(b: Bench) -> list[Row]:
    from timeseries.partitions import ensure_partitions

    per_phase = SENDERS * b.size.ingest_batches
    batches_needed = 2 * (per_phase * b.size.ingest_reps + SENDERS)  # both sides, a warm-up each
    start = (datetime.now(UTC) - timedelta(days=20)).replace(hour=0, minute=0, second=0,
                                                              microsecond=0)
    source = readings(b.size.customers, start, random.Random(11))
    batches = [[next(source) for _ in range(BATCH)] for _ in range(batches_needed)]
    with psycopg.connect(b.ts, autocommit=True) as conn:
        ensure_partitions(conn, "meter_readings", start, batches[-1][-1][1] + timedelta(days=1))
    headers = {"Authorization": f"Bearer {b.tokens['service']}",
               "Content-Type": "application/json"}
    http = [encode_request("POST", "/functions/v1/meter-readings", headers, as_json(x))
            for x in batches[:batches_needed // 2]]
    sql = [as_copy(x) for x in batches[batches_needed // 2:]]
    del batches

    def split(items: list[bytes]) -> list[list[bytes]]:
        return [items[i::SENDERS] for i in range(SENDERS)]

    def take(items: list[bytes], n: int) -> list[bytes]:
        taken = items[:n]
        del items[:n]
        return taken

    warm = asyncio.run(senders(b.api, split(take(http, SENDERS))))
    asyncio.run(floor_ingest(b.ts, split(take(sql, SENDERS))))
    errors = warm.errors
    first_error = warm.first_error
    fn_rates, floor_rates = [], []
    rows = per_phase * BATCH
    for rep in range(b.size.ingest_reps):
        for side in ((0, 1) if rep % 2 == 0 else (1, 0)):
            if side == 0:
                run = asyncio.run(senders(b.api, split(take(http, per_phase))))
                errors += run.errors
                first_error = first_error or run.first_error
                fn_rates.append(rows / run.seconds)
            else:
                seconds = asyncio.run(floor_ingest(b.ts, split(take(sql, per_phase))))
                floor_rates.append(rows / seconds)
    with psycopg.connect(b.ts) as conn:
        stored = conn.execute("select count(*) from ts.meter_readings").fetchone()[0]  # type: ignore[index]
    note = f"{b.size.ingest_reps} reps of {SENDERS} x {b.size.ingest_batches} batches per side"
    if errors or stored != batches_needed * BATCH:
        note += f"; {errors} failed requests ({first_error}); {stored} rows stored"
    return [Row("meter-readings ingest: 10,000-reading JSON batches over HTTP, 2 senders"
                " (rows/s)",
                "COPY into a temp staging table + INSERT ... ON CONFLICT DO NOTHING, SQL"
                " only, 2 connections (rows/s)",
                round(median(fn_rates)), round(median(floor_rates)), ">= 0.6", note)]


# -- 2. customers and orders pages ------------------------------------------------------------


def pages(b: Bench) -> list[Row]:
    rows = []
    auth = {"Authorization": f"Bearer {b.tokens['operator']}"}
    for name in ("customers", "orders"):
        query = "?page=1&size=100"
        fn_req = encode_request("GET", f"/functions/v1/{name}{query}", auth)
        floor_req = encode_request("GET", f"/functions/v1/floor/{name}{query}")
        same_rows(b, fn_req, floor_req, name)
        for port, raw in ((b.api, fn_req), (b.floor, floor_req)):  # warm-up: pools fill
            asyncio.run(closed_loop(port, raw, concurrency=CONCURRENCY, seconds=1))
        fn_runs, floor_runs = [], []
        for _ in range(b.size.reps):
            for runs, port, raw in ((fn_runs, b.api, fn_req), (floor_runs, b.floor, floor_req)):
                runs.append(asyncio.run(closed_loop(port, raw, concurrency=CONCURRENCY,
                                                    seconds=b.size.page_seconds)))
        errors = sum(r.errors for r in fn_runs + floor_runs)
        rates = [round(len(r.latencies) / r.seconds) for r in fn_runs + floor_runs]
        reps = len(fn_runs)
        note = f"req/s {rates[:reps]} vs {rates[reps:]}"
        if errors:
            note += f"; {errors} failed ({next(r.first_error for r in fn_runs + floor_runs)})"
        for q, target in ((50, "<= 1.3"), (99, "<= 1.5")):
            rows.append(Row(
                f"{name} page (100 rows), p{q} at {CONCURRENCY} concurrent (ms)",
                f"same SQL, bare pool, rows as JSON, same server mode (p{q} ms)",
                round(median([percentile(r.latencies, q) * 1000 for r in fn_runs]), 2),
                round(median([percentile(r.latencies, q) * 1000 for r in floor_runs]), 2),
                target, note))
    return rows


def same_rows(b: Bench, fn_req: bytes, floor_req: bytes, name: str) -> None:
    """The floor must answer the same rows as the function, or it is not its floor."""
    async def both() -> tuple[Any, Any]:
        answers = []
        for port, raw in ((b.api, fn_req), (b.floor, floor_req)):
            conn = Connection(port)
            resp = await conn.send(raw)
            await conn.close()
            if resp.status != 200:
                raise RuntimeError(f"{name}: {resp.status} {resp.body[:300]!r}")
            answers.append(json.loads(resp.body))
        return tuple(answers)

    fn, floor = asyncio.run(both())
    ids = [e["id"] for e in fn["entries"]]
    if (fn["total"], ids) != (floor["total"], [e["id"] for e in floor["entries"]]):
        raise RuntimeError(f"the {name} floor does not return the function's rows")
    if len(ids) != 100:
        raise RuntimeError(f"{name}: page 1 holds {len(ids)} rows, not 100")


def rls_pages(b: Bench) -> list[Row]:
    from bench.rls import rls  # it builds on this module's pieces

    return rls(b)


def shard_rows(b: Bench) -> list[Row]:
    from bench.shards import shards  # it builds on this module's pieces

    return shards(b)


def instance_memory(b: Bench) -> list[Row]:
    from bench.memory import memory  # it builds on this module's pieces

    return memory(b)


def throughput(b: Bench) -> list[Row]:
    """Sustained load on customers against one `select 1` per request through the same pool
    (the least any handler that touches the database does); the framework's constant handler,
    the ceiling of the server itself, stays in the note."""
    fn_req = encode_request("GET", "/functions/v1/customers?page=1&size=100",
                            {"Authorization": f"Bearer {b.tokens['operator']}"})
    bare_req = encode_request("GET", "/functions/v1/bare")
    select1_req = encode_request("GET", "/functions/v1/floor/select1")
    runs = [asyncio.run(closed_loop(port, raw, concurrency=LOAD_CONCURRENCY,
                                    seconds=b.size.load_seconds))
            for port, raw in ((b.api, fn_req), (b.floor, select1_req), (b.floor, bare_req))]
    fn, select1, bare = (len(r.latencies) / r.seconds for r in runs)
    errors = sum(r.errors for r in runs)
    note = (f"{b.size.load_seconds:g} s each; {errors} errors"
            + (f" ({next(r.first_error for r in runs if r.errors)})" if errors else "")
            + f"; customers p99 {percentile(runs[0].latencies, 99) * 1000:.0f} ms"
            + f"; the constant functions-framework handler: {bare:,.0f} req/s (customers"
            f" {fn / bare:.2f} of it, select 1 {select1 / bare:.2f})")
    return [Row(f"customers throughput, {LOAD_CONCURRENCY} concurrent, zero errors (req/s)",
                "one select 1 per request through the same pool, same server mode (req/s)",
                round(fn), round(select1), ">= 0.5", note, ok=errors == 0)]


# -- 3. meter-consumption pages ---------------------------------------------------------------

HOURLY_START = datetime(2026, 3, 1, tzinfo=UTC)

# Rows as the hourly build writes them into the legacy table (start: an aware UTC time).
FILL_HOURLY = """
insert into public.meter_snapshot_1_h (created_at, meter_id, consumption_kwh_exact,
  consumption_kwh, reading_count, counter_kwh_exact, counter_kwh, meter_type,
  meter_external_reference, grid_name, customer_id, is_hidden_from_reporting, is_estimated,
  built_at, inserted_by_build)
select t, m, kwh, kwh::double precision, 4, 1000 + h, (1000 + h)::real, 'HPS',
       'SM' || lpad(m::text, 8, '0'), 'Gbamu', 100 + m, false, false, now(), true
  from generate_series(0, %(hours)s - 1) h, generate_series(1, %(meters)s) m,
       lateral (select (%(start)s::timestamptz at time zone 'UTC') + h * interval '1 hour' as t,
                       round((random() * 2)::numeric, 4) as kwh) v
"""


def fill_hourly(b: Bench) -> tuple[datetime, datetime, int]:
    from timeseries.partitions import ensure_partitions

    end = HOURLY_START + timedelta(hours=b.size.hourly_hours)
    with psycopg.connect(b.ts, autocommit=True) as conn:
        ensure_partitions(conn, "meter_snapshot_1_h", HOURLY_START, end)
        conn.execute(FILL_HOURLY, {"start": HOURLY_START, "hours": b.size.hourly_hours,
                                   "meters": b.size.hourly_meters})
        conn.execute("vacuum analyze public.meter_snapshot_1_h")
        total = conn.execute("select count(*) from public.meter_snapshot_1_h"
                             ).fetchone()[0]  # type: ignore[index]
    return HOURLY_START, end, total


def count_hours(url: str, end: datetime) -> tuple[int, float]:
    """Counts the filled table's hours for meter-consumption's totals (timeseries/counts.py)
    as the snapshot job's catch-up counts an adopted history, all at once here: (hours, s)."""
    from timeseries.counts import acatch_up

    async def catch_up() -> dict[str, int]:
        async with await psycopg.AsyncConnection.connect(url, autocommit=True) as conn:
            return await acatch_up(conn, end.astimezone(UTC).replace(tzinfo=None),
                                   history=10**7)

    started = time.perf_counter()
    done = asyncio.run(catch_up())
    return done["recounted"] + done["counted"], time.perf_counter() - started


def consumption(b: Bench, *, filled: tuple[datetime, datetime, int] | None = None,
                served: Callable[[], AbstractContextManager[int]] | None = None) -> list[Row]:
    """`filled`: the window and row count of a meter_snapshot_1_h filled beforehand (default:
    fill_hourly). `served`: for a plane that serves one connection at a time (the TimescaleDB
    test server), where `nxt serve`'s pool would hold the only session: the HTTP samples then
    run with a server from `served()` and the SQL ones after it stopped, not alternating."""
    queries = function_module("meter-consumption", "queries")
    lo, hi, total = filled or fill_hourly(b)
    counted, count_s = count_hours(b.ts, hi)
    limit = 1000
    window = {"FROM": lo.isoformat(), "TO": hi.isoformat(), "pageLimit": limit}
    params = queries.window_params(lo, hi, limit=limit + 1)

    def cursor_at(skip: int) -> str:
        sql = ("select h.created_at, h.meter_id from public.meter_snapshot_1_h h"
               + queries.WINDOW_WHERE
               + " order by h.created_at, h.meter_id offset %(skip)s limit 1")
        with psycopg.connect(b.ts) as conn:
            row = conn.execute(sql, {**params, "skip": skip}).fetchone()
        assert row is not None, f"the snapshot table has fewer than {skip + 1} rows"
        return str(queries.encode_cursor(*row))

    def request(**extra: Any) -> bytes:
        target = "/functions/v1/meter-consumption?" + urlencode({**window, **extra})
        return encode_request("GET", target, {"X-API-Key": b.api_key})

    near, deep = request(cursor=cursor_at(limit - 1)), request(cursor=cursor_at(b.size.deep - 1))

    def to_of(sample: int) -> datetime:
        # Each sample's window ends a second earlier (the same rows: they are on whole hours):
        # a new window, so its total is counted, not served from shared.totals.
        return hi - timedelta(seconds=sample)

    def first(sample: int) -> bytes:
        return request(TO=to_of(sample).isoformat())

    async def http(conn: Connection, raw: bytes) -> float:
        started = time.perf_counter()
        resp = await conn.send(raw)
        elapsed = time.perf_counter() - started
        body = json.loads(resp.body) if resp.status == 200 else {}
        if len(body.get("readings", ())) != limit:
            raise RuntimeError(f"meter-consumption: {resp.status} {resp.body[:300]!r}")
        return elapsed

    async def direct(conn: psycopg.AsyncConnection[Any], sample: int) -> float:
        started = time.perf_counter()
        async with conn.transaction():
            to = queries.naive_utc(to_of(sample))
            cur = await conn.execute(queries.PAGE_SQL, {**params, "to": to})
            page = await cur.fetchall()
            cur = await conn.execute(queries.COUNT_SQL, {**params, "to": to})
            await cur.fetchone()
        elapsed = time.perf_counter() - started
        assert len(page) == limit + 1
        return elapsed

    async def measure(with_http: bool = True, with_sql: bool = True) -> dict[str, list[float]]:
        times: dict[str, list[float]] = {"first": [], "floor": [], "near": [], "deep": []}
        conn = Connection(b.api)
        # As psql runs them: no prepared statements (nor does the function use any).
        db = (await psycopg.AsyncConnection.connect(b.ts, prepare_threshold=None)
              if with_sql else None)
        try:
            for i in range(b.size.page_samples + 2):  # the first two warm up
                sample = {}
                if with_http:
                    sample["first"] = await http(conn, first(i))
                if db is not None:
                    sample["floor"] = await direct(db, i)
                if with_http:
                    sample |= {"near": await http(conn, near), "deep": await http(conn, deep)}
                if i >= 2:
                    for key, seconds in sample.items():
                        times[key].append(seconds * 1000)
        finally:
            await conn.close()
            if db is not None:
                await db.close()
        return times

    if served is None:
        t = asyncio.run(measure())
    else:
        with served() as b.api:
            t = asyncio.run(measure(with_sql=False))
        t["floor"] = asyncio.run(measure(with_http=False))["floor"]
    return [
        Row(f"meter-consumption first page, 1000 rows with total, {total:,} snapshot rows"
            " (p50 ms)",
            "the same page and count queries through psycopg directly (p50 ms)",
            round(median(t["first"]), 2), round(median(t["floor"]), 2), "<= 1.5",
            f"{b.size.page_samples} sequential samples, API key; total from kept counts"
            f" ({counted:,} hours counted in {count_s:.1f} s beforehand)"),
        Row(f"meter-consumption page by cursor, {b.size.deep:,} rows in (p50 ms)",
            "its own first page by cursor, 1,000 rows in (p50 ms)",
            round(median(t["deep"]), 2), round(median(t["near"]), 2), "<= 1.2",
            f"{b.size.page_samples} sequential samples, 1000 rows per page"),
    ]


# -- 4. snapshot-meters -----------------------------------------------------------------------

SNAPSHOT_DAY = datetime(2026, 6, 1, tzinfo=UTC)
COPY_READINGS = ("copy ts.meter_readings (meter_id, ts, counter_kwh, power_w, voltage_v,"
                 " credit_kwh) from stdin")


def day_of_readings(meters: int) -> list[bytes]:
    """The day's readings as COPY text, in arrival order, in chunks of ~1 MB."""
    source = readings(meters, SNAPSHOT_DAY, random.Random(7))
    total = meters * int(timedelta(days=1) / STEP)
    chunk = max(1, (1 << 20) // 80)
    return [as_copy([next(source) for _ in range(min(chunk, total - i))])
            for i in range(0, total, chunk)]


def queue_day(conn: psycopg.Connection[Any], day_end: datetime) -> None:
    """What ingest queues for the day, and the statistics autovacuum would have gathered by
    the time the hourly job runs (neither is timed); commits."""
    conn.execute("insert into ts.pending_hours (hour) select generate_series("
                 "%s::timestamptz, %s::timestamptz - interval '1 hour', '1 hour')",
                 (SNAPSHOT_DAY, day_end))
    conn.commit()
    conn.autocommit = True
    conn.execute("analyze ts.meter_readings")


async def run_snapshot_job(ts_url: str, tx_url: str) -> dict[str, Any]:
    """The job's body with its own connections: its lock holder on the time-series plane, a
    pool on the transactional one."""
    from shared.db import Database
    from shared.jobs import job_connection

    snapshot = function_module("snapshot-meters", "snapshot")
    db = Database(tx_url, name="transactional", max_size=POOL_SIZE)
    try:
        async with job_connection(ts_url, "snapshot-meters") as ts:
            assert ts is not None
            result: dict[str, Any] = await snapshot.build(ts, db,
                                                          now=SNAPSHOT_DAY + timedelta(days=2))
            return result
    finally:
        await db.close()


def snapshot_build(b: Bench) -> list[Row]:
    from timeseries.partitions import ensure_partitions

    meters = b.size.snapshot_meters
    if meters > b.size.customers:
        raise ValueError("snapshot_meters must not exceed the seeded meters")
    ts = b.snapshot_ts
    chunks = day_of_readings(meters)
    day_end = SNAPSHOT_DAY + timedelta(days=1)
    copy_s, build_s, results = [], [], []
    with psycopg.connect(ts, autocommit=True) as conn:
        ensure_partitions(conn, "meter_readings", SNAPSHOT_DAY - timedelta(days=1), day_end)
        ensure_partitions(conn, "meter_snapshot_1_h", SNAPSHOT_DAY, day_end)
    for _ in range(b.size.reps):
        with psycopg.connect(ts) as conn:
            conn.execute("truncate ts.meter_readings, public.meter_snapshot_1_h,"
                         " ts.pending_hours, ts.pending_hours_built")
            conn.commit()
            started = time.perf_counter()
            with conn.cursor() as cur, cur.copy(COPY_READINGS) as copy:
                for data in chunks:
                    copy.write(data)
            conn.commit()
            copy_s.append(time.perf_counter() - started)
            queue_day(conn, day_end)
        started = time.perf_counter()
        results.append(asyncio.run(run_snapshot_job(ts, b.tx)))
        build_s.append(time.perf_counter() - started)
    last = results[-1]
    return [Row(f"snapshot-meters: one day of 15-minute readings from {meters:,} meters (s)",
                f"COPY of that day's {meters * 96:,} readings into ts.meter_readings (s)",
                round(median(build_s), 3), round(median(copy_s), 3), "<= 0.9",
                f"{last['hours']} hours, {last['rows']:,} rows written; readings analyzed"
                " before the job (untimed)")]


# -- 5. cold start ----------------------------------------------------------------------------

COLD_JOBS = ("snapshot-meters", "sync-orders", "grid-daily", "timeseries-maintenance",
             "freshness-check", "reconcile-check")
# The floors, each served by the same command from its own directory: `bare` for the HTTP
# functions, `bare_event` (a CloudEvent function that does nothing) for the jobs.
BARE = {False: (ROOT / "bench" / "bare", "bare"),
        True: (ROOT / "bench" / "bare_event", "bare_event")}
# What Pub/Sub delivers when Cloud Scheduler publishes `{}` (a binary-mode CloudEvent), as
# tests/stack/test_bundle.py sends it.
PUBSUB_HEADERS = {"ce-specversion": "1.0", "ce-id": "1",
                  "ce-type": "google.cloud.pubsub.topic.v1.messagePublished",
                  "ce-source": "//pubsub.googleapis.com/projects/p/topics/nxt-bench",
                  "Content-Type": "application/json"}
PUBSUB_BODY = b'{"message": {"data": "e30="}}'
# The jobs once each, untimed, through the target their scheduler triggers (`nxt invoke`).
SETTLE_JOBS = ("import sys\nfrom pathlib import Path\nfrom nxt_cli.invoke import invoke\n"
               "for name in sys.argv[1:]:\n    invoke(Path.cwd(), name)\n")


@dataclass(frozen=True)
class ColdCase:
    name: str  # the function, as bundled
    job: bool  # a CloudEvent target (floor: bare_event), else an HTTP one (floor: bare)
    request: bytes  # the request whose first 200 ends the measurement
    what: str  # the request, for the row's path


def cold_cases(b: Bench, reading_at: datetime) -> list[ColdCase]:
    """Per function a real request that runs its queries, with a credential it accepts."""
    operator = {"Authorization": f"Bearer {b.tokens['operator']}"}
    service = {"Authorization": f"Bearer {b.tokens['service']}",
               "Content-Type": "application/json"}
    window = urlencode({"FROM": HOURLY_START.isoformat(),
                        "TO": (HOURLY_START + timedelta(hours=1)).isoformat()})
    reading = json.dumps({"readings": [{"meter_id": 1, "ts": reading_at.isoformat(),
                                        "counter_kwh": "1000.0000"}]}).encode()
    event = encode_request("POST", "/", PUBSUB_HEADERS, PUBSUB_BODY)
    return [
        ColdCase("customers", False, encode_request("GET", "/?page=1&size=100", operator),
                 "an operator page of 100"),
        ColdCase("orders", False, encode_request("GET", "/?page=1&size=100", operator),
                 "an operator page of 100"),
        ColdCase("meter-consumption", False,
                 encode_request("GET", f"/?{window}", {"X-API-Key": b.api_key}),
                 "an API-key page (one hour)"),
        ColdCase("meter-consumption-2", False,
                 encode_request("GET", f"/?{window}", {"X-API-Key": b.api_key}),
                 "an API-key page (one hour), the legacy URL"),
        ColdCase("meter-readings", False, encode_request("POST", "/", service, reading),
                 "a one-reading service-role batch"),
        ColdCase("freshness", False, encode_request("GET", "/", operator),
                 "the operator's report"),
        *(ColdCase(name, True, event, "a Pub/Sub event, the job run") for name in COLD_JOBS),
    ]


async def first_200(port: int, raw: bytes, proc: subprocess.Popen[bytes],
                    started: float) -> float:
    """Seconds from `started` (just before the process was started) to its first 200."""
    while time.perf_counter() - started < 60:
        if proc.poll() is not None:
            raise RuntimeError(f"the server exited with {proc.returncode}")
        conn = Connection(port)
        try:
            resp = await conn.send(raw)
        except OSError:
            await asyncio.sleep(0.005)
            continue
        finally:
            await conn.close()
        if resp.status == 200:
            return time.perf_counter() - started
        raise RuntimeError(f"first answer {resp.status}: {resp.body[:300]!r}")
    raise TimeoutError("no 200 within the timeout")


def start_once(directory: Path, target: str, raw: bytes, env: dict[str, str],
               log: Path) -> float:
    """Milliseconds from starting `functions-framework` in `directory` to its first 200."""
    framework = str(Path(sys.executable).parent / "functions-framework")
    port = free_port()
    cmd = [framework, "--target", target, "--source", "main.py", "--host", "127.0.0.1",
           "--port", str(port)]
    started = time.perf_counter()
    # Spawned, not started: what is timed is the wait for the first 200, not for the port.
    instance = server(cmd, port, env=env, log=log, cwd=directory)
    proc = instance.spawn()
    try:
        return asyncio.run(first_200(port, raw, proc, started)) * 1000
    except (RuntimeError, TimeoutError) as exc:
        instance.stop()  # first, so that its log is complete
        raise RuntimeError(f"{target}: {exc}\n{log_tail(log)}") from None
    finally:
        instance.stop()


def settle_jobs(env: dict[str, str]) -> None:
    """Run each job once before timing any, so that every timed start does a steady scheduled
    run (the first sync-orders copies every order, the first snapshot-meters drains the hours
    ingest queued, the first maintenance creates partitions ahead), not a catch-up."""
    done = subprocess.run([sys.executable, "-c", SETTLE_JOBS, *COLD_JOBS], cwd=ROOT,  # noqa: S603
                          env={**env, "PYTHONPATH": str(ROOT)}, capture_output=True,
                          text=True)
    if done.returncode != 0:
        raise RuntimeError(f"settling the jobs failed: {done.stderr[-3000:]}")


@dataclass(frozen=True)
class Bundled:
    dist: Path  # `nxt bundle --all` output
    ts: str  # a time-series plane of its own, migrated, nearly empty
    reading_at: datetime  # the hour of meter-readings' request; its partition exists


def bundle_all(b: Bench, name: str) -> Bundled:
    """Every function bundled into b.work/<name>, with a time-series plane of its own: a job's
    first 200 comes after its run, and on the served plane (2M hourly rows from the consumption
    row) grid-daily's run alone took ~0.5 s, which measured the job's work, not a start."""
    from nxt_cli.migrate import migrate_timeseries
    from timeseries.partitions import ensure_partitions

    dist = b.work / name
    done = subprocess.run([sys.executable, "-m", "nxt_cli.main", "bundle", "--all",  # noqa: S603
                           "--out", str(dist)], cwd=ROOT, capture_output=True, text=True)
    if done.returncode != 0:
        raise RuntimeError(f"nxt bundle --all failed: {done.stderr}")
    reading_at = (datetime.now(UTC) - timedelta(days=1)).replace(minute=0, second=0,
                                                                 microsecond=0)
    ts = b.scratch.create(f"bench_{name.replace('-', '_')}")
    migrate_timeseries(ts, engine="native")
    with psycopg.connect(ts, autocommit=True) as conn:  # the reading's partition, untimed
        ensure_partitions(conn, "meter_readings", reading_at, reading_at)
    return Bundled(dist, ts, reading_at)


def cold_start(b: Bench) -> list[Row]:
    """Every function from its bundle against the bare function of its kind, starts
    alternating (function, floor; then floor, function), medians per function."""
    bundled_stack = bundle_all(b, "dist")
    dist, cold_ts = bundled_stack.dist, bundled_stack.ts
    cases = cold_cases(b, bundled_stack.reading_at)
    bundled = sorted(p.name for p in dist.iterdir() if p.is_dir())
    if bundled != sorted(c.name for c in cases):
        raise RuntimeError(f"bundled {bundled}: give each function a cold-start request")
    # Nothing compiled by one start may speed up the next: a deployed cold start has the
    # bytecode the bundle ships (nxt_cli.bundle.compile_modules) and the platform's build of
    # the requirements, nothing more, so neither side may write __pycache__ between starts.
    env = stack_env(b.tx, cold_ts, jwt_secret=JWT_SECRET, checkout=False, config=False,
                    PYTHONDONTWRITEBYTECODE="1")
    settle_jobs(env)
    times: dict[tuple[str, bool], list[float]] = {}
    for rep in range(b.size.cold_starts):
        for case in cases:
            sides = [(dist / case.name, case.name.replace("-", "_"), False),
                     (*BARE[case.job], True)]
            for directory, target, floor in sides if rep % 2 == 0 else sides[::-1]:
                log = b.work / f"cold-{case.name}{'-floor' if floor else ''}-{rep}.log"
                ms = start_once(directory, target, case.request,
                                {**env, "K_SERVICE": case.name}, log)
                if case.job and not floor and f"job {case.name}: skipped" in log_tail(log):
                    raise RuntimeError(f"{case.name}: the job skipped its run (lock held)")
                times.setdefault((case.name, floor), []).append(ms)
    note = (f"{b.size.cold_starts} start(s) per side, alternating; gunicorn + one uvicorn"
            " worker (functions-framework's choice for async functions)")
    return [Row(f"{c.name} cold start from its bundle: process start to the first 200 of"
                f" {c.what} (ms)",
                "a bare functions-framework async " + ("CloudEvent function" if c.job
                                                       else "function") + ", same command (ms)",
                round(median(times[c.name, False]), 1), round(median(times[c.name, True]), 1),
                "<= 2.0" if c.job else "<= 1.5", note)
            for c in cases]


# -- the run ----------------------------------------------------------------------------------


def prepare(size: Size, scratch: Scratch, work: Path) -> Bench:
    from nxt_cli.migrate import migrate, migrate_timeseries
    from nxt_cli.seed import STAFF, seed
    from nxt_cli.tokens import mint_token

    tx = scratch.create("bench_tx")
    migrate(tx)
    seeded = seed(tx, customers=size.customers)
    ts, snapshot_ts = scratch.create("bench_ts"), scratch.create("bench_snapshot")
    for url in (ts, snapshot_ts):
        migrate_timeseries(url, engine="native")
    operator_sub = next(uid for uid, _, _, org in STAFF if org == 2)
    tokens = {
        "operator": mint_token(JWT_SECRET, role="authenticated", sub=operator_sub,
                               organization_id=2, organization_type="SOLAR_DEVELOPER",
                               expires_in=6 * 3600),
        "service": mint_token(JWT_SECRET, role="service_role", audience=None,
                              expires_in=6 * 3600),
    }
    return Bench(size, work, scratch, tx, ts, snapshot_ts, api_key=seeded.api_keys[0][1],
                 tokens=tokens)


def run_all(b: Bench, only: frozenset[str] = GROUPS) -> list[Row]:
    """The row groups named in `only` (all by default)."""
    import jwt

    claims = jwt.decode(b.tokens["operator"], options={"verify_signature": False})
    env = stack_env(b.tx, b.ts, jwt_secret=JWT_SECRET, DB_POOL_MAX_SIZE=str(POOL_SIZE),
                    FLOOR_CLAIMS=json.dumps(claims))
    rows: list[Row] = []
    served = [(g, name, measure) for g, name, measure in (
        ("ingest", "meter-readings ingest", ingest),
        ("pages", "customers and orders pages", pages),
        ("consumption", "meter-consumption pages", consumption),
        ("throughput", "customers throughput", throughput)) if g in only]
    alone = [(g, name, measure) for g, name, measure in (
        ("snapshot", "snapshot-meters", snapshot_build),
        ("shard", "snapshot-meters in shards", shard_rows),
        ("rls", "row-level security", rls_pages),
        ("memory", "instance memory", instance_memory),
        ("cold", "cold starts", cold_start)) if g in only]
    api_log, floor_log = b.work / "nxt-serve.log", b.work / "floor.log"
    if served:
        with nxt_serve(env, api_log) as b.api, floor_serve(env, floor_log) as b.floor:
            for _, name, measure in served:
                rows += attempt(name, measure, b, api_log)
    for _, name, measure in alone:
        rows += attempt(name, measure, b, None)
    return rows


def attempt(name: str, measure: Callable[[Bench], list[Row]], b: Bench,
            log: Path | None) -> list[Row]:
    started = time.perf_counter()
    print(f"... {name}", end="", flush=True)
    try:
        rows = measure(b)
    except Exception as exc:  # report it as a row and go on with the others
        traceback.print_exc()
        if log is not None:
            print(log_tail(log), file=sys.stderr)
        return [Row(name, "-", None, None, "-", f"failed: {exc}"[:300])]
    print(f" {time.perf_counter() - started:.1f} s", flush=True)
    return rows


def show(value: Any) -> str:
    if isinstance(value, bool):
        return "yes" if value else "NO"
    if isinstance(value, float):
        return f"{value:,.3f}".rstrip("0").rstrip(".") if value < 100 else f"{value:,.0f}"
    if isinstance(value, int):
        return f"{value:,}"
    return "-" if value is None else str(value)


def print_table(rows: list[Row]) -> None:
    header = ("path", "floor", "value", "floor_value", "ratio", "target", "met", "note")
    cells = [header] + [tuple(show(v) for v in (r.path, r.floor, r.value, r.floor_value,
                                                 r.ratio, r.target, r.met, r.note))
                        for r in rows]
    widths = [max(len(c[i]) for c in cells) for i in range(len(header))]
    for i, line in enumerate(cells):
        print(" | ".join(c.ljust(w) for c, w in zip(line, widths, strict=True)).rstrip())
        if i == 0:
            print("-|-".join("-" * w for w in widths))


# Why a target is missed, where the reason is known and measured (bench/README.md, "Results").
WHY = {
    # First: its rows' paths name snapshot-meters too, and the first key found wins.
    "parallel shards": "two cores run every shard and the database; each shard also recounts"
    " its hours' rows of every meter for meter-consumption's totals, and the recounts take"
    " turns (n recounts of the day where one run makes one: bench/README.md, Sharding)",
    "meter-consumption first page": "the total comes from kept counts, so the page's SQL is"
    " 5-8 ms at any window size; the rest is encoding 1,000 readings as the legacy JSON. Issue"
    " 15's target for this page is growth, met: flat from 0.2M to 100M rows (make bench-growth,"
    " bench/README.md)",
    "meter-readings ingest": "the batch is JSON: validated in Python (~7 ms per 10,000) and"
    " parsed again by PostgreSQL (~12 ms more than COPY text), where the floor's COPY text is"
    " made before its clock starts (0.45-0.60 over nine full runs; the floor itself varies"
    " by a third)",
    "customers throughput": "the page (two round trips since 2026-12-04, the floor's three)"
    " is ~1 ms of PostgreSQL under row-level security and the handler's Python (the gate,"
    " the query model, 100 rows to JSON) against one select 1, on the same two cores as the"
    " load client: the server's one process is CPU-bound at 64 clients",
    "cold start": "psycopg (~40 ms), pydantic with the query model (~35 ms) and PyJWT with"
    " cryptography at the first token (~40 ms) against a ~170 ms floor",
    "row-level security": "what is left after revision 0011 is the policy's own test of"
    " every counted row (its three-way OR against the operator's claims); where the migrating"
    " role is not a superuser (Supabase), enum equality stays non-leakproof and the orders page"
    " is planned without its statistics (bench/README.md, Results)",
    "snapshot-meters": "the build reads, windows and writes every reading once more than COPY"
    " does; within a few per cent, varying by run",
}


def print_misses(rows: list[Row]) -> None:
    for r in rows:
        if r.met or r.ratio is None:
            continue
        op, limit = r.target.split()
        by = abs(r.ratio / float(limit) - 1) * 100
        why = next((text for key, text in WHY.items() if key in r.path), "")
        print(f"MISSED {r.path.split(':')[0]}: {r.ratio} vs {op} {limit} (by {by:.0f} %)"
              + (f": {why}" if why else ""))


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--size", choices=sorted(SIZES), default="full")
    parser.add_argument("--out", type=Path, default=RESULTS, help="the JSON results")
    parser.add_argument("--url", help="admin URL of a PostgreSQL on this machine to use instead"
                        " of starting the embedded one (scratch databases are dropped after)")
    parser.add_argument("--only", action="extend", type=lambda v: v.split(","), default=[],
                        metavar="GROUP[,GROUP]", help="run only these row groups: "
                        + ", ".join(sorted(GROUPS)))
    args = parser.parse_args(argv)
    if set(args.only) - GROUPS:
        parser.error(f"--only: unknown group(s) {sorted(set(args.only) - GROUPS)}")
    os.environ.setdefault("NXT_SUPABASE_CONFIG", str(ROOT / "supabase" / "config.toml"))
    size = SIZES[args.size]
    started = time.perf_counter()
    if args.url and urlsplit(args.url).hostname not in ("127.0.0.1", "localhost", "::1"):
        parser.error("--url must point at a loopback address")
    with TemporaryDirectory(prefix="nxt-bench-") as tmp:
        work = Path(tmp)
        with postgres(work, args.url) as admin:
            scratch = Scratch(admin)
            try:
                bench = prepare(size, scratch, work)
                print(f"prepared in {time.perf_counter() - started:.1f} s", flush=True)
                rows = run_all(bench, frozenset(args.only) or GROUPS)
            finally:
                scratch.drop_all()
    print()
    print_table(rows)
    print()
    print_misses(rows)
    args.out.write_text(json.dumps([r.as_json() for r in rows], indent=2) + "\n")
    print(f"\n{args.size}: {time.perf_counter() - started:.0f} s; wrote {args.out}")
    return 1 if any(r.note.startswith("failed:") for r in rows) else 0


if __name__ == "__main__":
    sys.exit(main())
