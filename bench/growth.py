"""How cost grows with work (issue 6, "Growth"): each series measured at growing sizes, on the
native engine and on TimescaleDB side by side; prints the table and writes bench/growth.json.

    python -m bench.growth --size smoke|full --engine native|timescaledb|both
    (make bench-growth [SIZE=smoke])

- ingest: the meter-readings function over HTTP and its SQL floor while ts.meter_readings
  holds 1M, 10M and 50M readings (rows/s);
- consumption-first / consumption-deep: meter-consumption's first page (with its total) and a
  page by cursor half-way in, at 0.2M, 2M and 20M public.meter_snapshot_1_h rows (p50 ms);
- snapshot: the snapshot-meters job for one day of readings from 1k, 10k and 50k meters (s),
  against COPY of the same readings.

Native runs on the embedded PostgreSQL that bench/run.py uses; TimescaleDB on the PGlite test
server (tests/support/timescale_server.py), one server per series, with a size attempt cut off after
`--budget` seconds of filling (and the server stopped if the attempt runs on past twice that).
See bench/README.md, "Growth", for what the figures say.
"""

from __future__ import annotations

import argparse
import asyncio
import json
import logging
import math
import os
import random
import shutil
import sys
import threading
import time
import traceback
from collections.abc import Callable, Iterator
from contextlib import ExitStack, contextmanager
from dataclasses import dataclass, field, replace
from datetime import UTC, datetime, timedelta
from pathlib import Path
from tempfile import TemporaryDirectory
from typing import Any

import psycopg

from bench.load import encode_request, senders
from bench.run import (
    BATCH,
    FILL_HOURLY,
    HOURLY_START,
    POOL_SIZE,
    SENDERS,
    SIZES,
    STEP,
    Bench,
    as_copy,
    as_json,
    consumption,
    count_hours,
    floor_ingest,
    log_tail,
    median,
    prepare,
    ratio_of,
    readings,
    show,
    snapshot_build,
)
from bench.stack import JWT_SECRET, ROOT, Scratch, nxt_serve, postgres, stack_env

RESULTS = ROOT / "bench" / "growth.json"
ENGINES = ("native", "timescaledb")
SERIES = ("ingest", "consumption", "snapshot")
SLOTS_PER_DAY = int(timedelta(days=1) / STEP)
MAX_HOURS = 93 * 24  # meter-consumption's longest range per request (models.MAX_RANGE)


@dataclass(frozen=True)
class GrowthSize:
    readings: tuple[int, ...]  # ts.meter_readings sizes of the ingest series
    ingest_meters: int  # meters 1..N report every 15 minutes (also the seeded meters)
    ingest_batches: int  # timed batches per sender, side and repetition
    reps: int  # ingest repetitions per side, alternating which side goes first
    hourly: tuple[int, ...]  # meter_snapshot_1_h sizes of the consumption series
    hourly_hours: int  # the window, <= MAX_HOURS: a size is meters x hours
    page_samples: int
    snapshot: tuple[int, ...]  # meters of the snapshot series
    snapshot_reps: int
    budget: float  # TimescaleDB: seconds of filling a size attempt may take


GROWTH_SIZES = {
    "smoke": GrowthSize(readings=(60_000, 200_000), ingest_meters=1_000, ingest_batches=1,
                        reps=1, hourly=(5_000, 20_000), hourly_hours=100, page_samples=3,
                        snapshot=(100, 300), snapshot_reps=1, budget=60),
    "full": GrowthSize(readings=(1_000_000, 10_000_000, 50_000_000), ingest_meters=10_000,
                       ingest_batches=6, reps=2,
                       hourly=(200_000, 2_000_000, 20_000_000, 100_000_000),
                       hourly_hours=MAX_HOURS, page_samples=10,
                       snapshot=(1_000, 10_000, 50_000), snapshot_reps=2, budget=240),
}

# series -> (unit, what the size counts, what the value is, what the floor is)
SERIES_INFO = {
    "ingest": ("rows/s", "readings in ts.meter_readings",
               "meter-readings over HTTP, 10,000-reading JSON batches",
               "COPY to a temp staging table + INSERT ... ON CONFLICT, SQL only"),
    "consumption-first": ("ms", "rows in meter_snapshot_1_h",
                          "meter-consumption first page of 1000 with total, p50",
                          "the same page and count SQL through psycopg, p50"),
    "consumption-deep": ("ms", "rows in meter_snapshot_1_h",
                         "meter-consumption page by cursor half-way in, p50",
                         "its first page by cursor (1,000 rows in), p50"),
    "snapshot": ("s", "meters with a day of 15-minute readings",
                 "snapshot-meters build of the day", "COPY of the day's readings"),
}


@dataclass
class Point:
    series: str
    engine: str
    size: int
    value: float | None
    floor_value: float | None
    note: str = ""
    failed: bool = False  # an error, as opposed to a size the TimescaleDB server cannot hold
    growth: float | None = None  # value / the value at the series' smallest size

    @property
    def ratio(self) -> float | None:
        return ratio_of(self.value, self.floor_value)

    @property
    def unit(self) -> str:
        return SERIES_INFO[self.series][0]

    def as_json(self) -> dict[str, Any]:
        out = {"series": self.series, "engine": self.engine, "size": self.size,
               "size_of": SERIES_INFO[self.series][1], "value": self.value,
               "floor_value": self.floor_value, "ratio": self.ratio, "unit": self.unit,
               "growth": self.growth}
        return {**out, "note": self.note} if self.note else out


class OverBudget(Exception):
    """A TimescaleDB size attempt stopped filling at the budget: the server does not hold
    that size in acceptable time (not an error of the benchmark)."""


@dataclass
class Context:
    size: GrowthSize
    work: Path
    scratch: Scratch
    base: Bench  # the transactional plane (migrated, seeded), the tokens and the API key
    txs: dict[int, str] = field(default_factory=dict)  # meters -> a plane seeded with them

    def tx_with(self, meters: int) -> str:
        """A transactional plane with exactly `meters` meters (the snapshot job loads them
        all): the base one when it has that many, else one seeded for it (kept for the other
        engine)."""
        from nxt_cli.migrate import migrate
        from nxt_cli.seed import seed

        if meters == self.base.size.customers:
            return self.base.tx
        if meters not in self.txs:
            url = self.scratch.create("growth_tx")
            migrate(url)
            seed(url, customers=meters)
            self.txs[meters] = url
        return self.txs[meters]

    def bench(self, plane: Plane, tx: str | None = None, **size: Any) -> Bench:
        """bench/run.py's Bench on this plane, for its consumption() and snapshot_build()."""
        return replace(self.base, size=replace(self.base.size, **size), tx=tx or self.base.tx,
                       ts=plane.url, snapshot_ts=plane.url)


@dataclass
class Plane:
    """A time-series plane for one series, and `nxt serve` in front of it."""

    engine: str
    url: str
    env: dict[str, str]
    log: Path
    stack: ExitStack
    server: Any = None  # tests.support.timescale_server.TimescaleServer on TimescaleDB
    port: int | None = None
    expired: str = ""  # set when the watchdog stopped the server

    @property
    def single(self) -> bool:
        """The TimescaleDB test server serves one connection at a time (others queue until it
        closes), so `nxt serve`, whose pool keeps its connection, must not outlive a phase."""
        return self.server is not None

    @property
    def senders(self) -> int:
        return 1 if self.single else SENDERS

    @contextmanager
    def served(self) -> Iterator[int]:
        if self.single:
            with nxt_serve(self.env, self.log) as port:
                yield port
            return
        if self.port is None:
            self.port = self.stack.enter_context(nxt_serve(self.env, self.log))
        yield self.port

    @contextmanager
    def deadline(self, seconds: float) -> Iterator[None]:
        """The TimescaleDB test server ignores statement_timeout and cancel requests (and a
        running statement blocks it entirely): an attempt running past `seconds` is ended by
        stopping the server, which fails the attempt's connections."""
        if self.server is None:
            yield
            return
        server = self.server

        def expire() -> None:
            self.expired = f"the server was stopped after {seconds:.0f} s"
            server.proc.kill()

        timer = threading.Timer(seconds, expire)
        timer.daemon = True
        timer.start()
        try:
            yield
        finally:
            timer.cancel()

    def dead(self) -> str:
        """Why the server is gone, or "" while it runs."""
        if self.server is None or self.server.proc.poll() is None:
            return ""
        if self.expired:
            return self.expired
        lines = log_tail(self.server.log, 600).strip().splitlines()
        return f"the server crashed ({lines[-1] if lines else 'no log'})"


@contextmanager
def open_plane(ctx: Context, engine: str, series: str) -> Iterator[Plane]:
    """A fresh, migrated time-series plane; removed afterwards (its data can be GBs)."""
    from nxt_cli.migrate import migrate_timeseries

    with ExitStack() as stack:
        server = None
        if engine == "native":
            url = ctx.scratch.create(f"growth_{series}")
            stack.callback(ctx.scratch.drop, url)
        else:
            from tests.support.timescale_server import start_timescale

            home = ctx.work / f"timescaledb-{series}"
            home.mkdir()
            stack.callback(shutil.rmtree, home, ignore_errors=True)
            # In a directory, not in memory: in memory the Node process holds the whole
            # database (~0.4 GB per million readings); on disk it stays at ~0.5 GB.
            server = start_timescale(home, datadir=home / "pgdata")
            stack.callback(server.stop)
            url = server.url
        migrate_timeseries(url, engine=engine)
        env = stack_env(ctx.base.tx, url, jwt_secret=JWT_SECRET,
                        DB_POOL_MAX_SIZE=str(1 if server else POOL_SIZE))
        yield Plane(engine, url, env, ctx.work / f"nxt-serve-{engine}-{series}.log", stack,
                    server)


def relation_stats(url: str, table: str) -> tuple[int, float]:
    """Partitions (native) or chunks (TimescaleDB: they inherit the hypertable) of `table`
    (schema ts unless named), and their total size in GB."""
    qualified = table if "." in table else f"ts.{table}"
    with psycopg.connect(url) as conn:
        row = conn.execute("select count(*), coalesce(sum(pg_total_relation_size(inhrelid)), 0)"
                           " from pg_inherits where inhparent = %s::regclass",
                           (qualified,)).fetchone()
    assert row is not None
    return int(row[0]), float(row[1]) / 1e9


def fill(plane: Plane, budget: float | None, total: int,
         chunks: Iterator[tuple[str, dict[str, Any]]]) -> tuple[int, float]:
    """Runs the fill statements one by one (one chunk each, committed) to write `total` rows;
    returns the rows written and the seconds taken. With a budget, raises OverBudget once it
    is spent."""
    rows, started = 0, time.perf_counter()
    with psycopg.connect(plane.url, autocommit=True) as conn:
        for sql, params in chunks:
            rows += conn.execute(sql, params).rowcount
            elapsed = time.perf_counter() - started
            if budget is not None and elapsed > budget and rows < total:
                rate = rows / elapsed
                raise OverBudget(f"the fill reached {rows:,} of {total:,} rows in"
                                 f" {elapsed:.0f} s ({rate:,.0f} rows/s: all of them would"
                                 f" take ~{total / rate:,.0f} s)")
        conn.execute("vacuum analyze")  # as autovacuum would have; PGlite runs none
    return rows, time.perf_counter() - started


# -- ingest -----------------------------------------------------------------------------------

# Readings of meters 1..N at 15-minute slots, a few seconds late, counters rising: the same
# shape as bench/run.py's readings(), in SQL. Slot-major (every meter of a slot, then the next
# slot), the order live ingest writes them in, so the indexes are built as ingest builds them.
FILL_READINGS = """
insert into ts.meter_readings (meter_id, ts, counter_kwh, power_w, voltage_v, credit_kwh)
select m, %(start)s::timestamptz + s * interval '15 minutes' + random() * interval '20 seconds',
       round(((m %% 1000) * 10 + s * 0.3 + random() * 0.1)::numeric, 4),
       round((random() * 3000)::numeric, 3), 230.000, round((random() * 1000)::numeric, 4)
  from generate_series(%(s0)s::int, %(s1)s::int - 1) s
  cross join lateral generate_series(1 + 0 * s, %(meters)s) m
"""


def ingest_series(ctx: Context, plane: Plane) -> list[Point]:
    from timeseries.partitions import ensure_partitions

    g = ctx.size
    meters = g.ingest_meters
    if BATCH % meters:
        raise ValueError("ingest_meters must divide the batch size (whole slots per batch)")
    per_phase = plane.senders * (g.ingest_batches + 1)  # the first batch of each warms up
    measured = g.reps * 2 * per_phase * BATCH
    slots = (max(g.readings) + measured * len(g.readings)) // meters + 1
    # Everything in the recent past, ending an hour ago: the function refuses the future.
    now = datetime.now(UTC)
    start = (now - slots * STEP - timedelta(hours=1)).replace(minute=0, second=0,
                                                              microsecond=0)
    with psycopg.connect(plane.url, autocommit=True) as conn:
        ensure_partitions(conn, "meter_readings", start, now)
    chunk = max(1, (960_000 if not plane.single else 200_000) // meters)  # slots a statement
    state = {"slot": 0, "rows": 0}

    def at(size: int) -> Point:
        target = max(state["rows"], size - measured // 2)  # `size` half-way through
        s0, s1 = state["slot"], state["slot"] + math.ceil((target - state["rows"]) / meters)
        budget = g.budget if plane.single else None
        filled, fill_s = fill(plane, budget, (s1 - s0) * meters, (
            (FILL_READINGS, {"start": start, "s0": a, "s1": min(a + chunk, s1),
                             "meters": meters}) for a in range(s0, s1, chunk)))
        state["slot"], state["rows"] = s1, state["rows"] + filled
        before = state["rows"]
        rates, note = ingest_at(ctx, plane, start + s1 * STEP, seed=size)
        state["slot"] += measured // meters
        state["rows"] += measured
        parts, gb = relation_stats(plane.url, "meter_readings")
        kind = "chunks" if plane.single else "partitions"
        return Point("ingest", plane.engine, size, round(median(rates["http"])),
                     round(median(rates["sql"])),
                     f"{before:,} rows before, {state['rows']:,} after; {parts} {kind},"
                     f" {gb:.2f} GB; filled {filled:,} rows in {fill_s:.0f} s; {note}")

    return attempt_sizes(plane, "ingest", g.readings, g.budget, 2 * g.budget + 120, at)


def ingest_at(ctx: Context, plane: Plane, first_slot: datetime, seed: int
              ) -> tuple[dict[str, list[float]], str]:
    """Alternating HTTP and SQL phases (a warm-up batch per sender, then the timed ones), with
    readings from `first_slot` on, in the order they are sent: each phase's are newer than
    everything stored before it. Returns each side's rows/s per repetition, and a note."""
    g_reps, batches, n = ctx.size.reps, ctx.size.ingest_batches, plane.senders
    order = [side for rep in range(g_reps)
             for side in (("http", "sql") if rep % 2 == 0 else ("sql", "http"))]
    source = readings(ctx.size.ingest_meters, first_slot, random.Random(seed))
    headers = {"Authorization": f"Bearer {ctx.base.tokens['service']}",
               "Content-Type": "application/json"}
    phases: list[tuple[str, list[list[bytes]]]] = []
    for side in order:
        data = []
        for _ in range(n * (batches + 1)):
            batch = [next(source) for _ in range(BATCH)]
            data.append(encode_request("POST", "/functions/v1/meter-readings", headers,
                                       as_json(batch)) if side == "http" else as_copy(batch))
        phases.append((side, [data[i::n] for i in range(n)]))  # one list per sender
    rates: dict[str, list[float]] = {"http": [], "sql": []}
    errors, first_error = 0, ""
    timed_rows = n * batches * BATCH
    for side, shares in phases:
        warm, timed = [s[:1] for s in shares], [s[1:] for s in shares]
        if side == "http":
            with plane.served() as port:
                for part in (warm, timed):
                    run = asyncio.run(senders(port, part))
                    errors += run.errors
                    first_error = first_error or run.first_error
                rates["http"].append(timed_rows / run.seconds)
        else:
            asyncio.run(floor_ingest(plane.url, warm))
            rates["sql"].append(timed_rows / asyncio.run(floor_ingest(plane.url, timed)))
    with psycopg.connect(plane.url) as conn:
        stored = conn.execute("select count(*) from ts.meter_readings where ts >= %s",
                              (first_slot,)).fetchone()[0]  # type: ignore[index]
    sent = len(phases) * n * (batches + 1) * BATCH
    note = (f"{g_reps} rep{'s' * (g_reps > 1)} of {n} sender{'s' * (n > 1)} x {batches}"
            f" batch{'es' * (batches > 1)} per side")
    if errors or stored != sent:
        note += f"; {errors} failed requests ({first_error[:120]}); {stored:,} of {sent:,} stored"
    return rates, note


# -- meter-consumption ------------------------------------------------------------------------


def consumption_series(ctx: Context, plane: Plane) -> list[Point]:
    from timeseries.partitions import ensure_partitions

    g = ctx.size
    hours = min(g.hourly_hours, MAX_HOURS)
    end = HOURLY_START + timedelta(hours=hours)
    with psycopg.connect(plane.url, autocommit=True) as conn:
        ensure_partitions(conn, "meter_snapshot_1_h", HOURLY_START, end)
    deep: dict[int, Point] = {}

    def at(size: int) -> Point:
        # More meters in the same 93-day window: the window a request may ask for is fixed,
        # so what grows is the work inside it.
        meters = max(1, round(size / hours))
        with psycopg.connect(plane.url, autocommit=True) as conn:
            conn.execute("truncate public.meter_snapshot_1_h, ts.meter_snapshot_counts,"
                         " ts.meter_snapshot_site_counts")
        step = max(1, (500_000 if not plane.single else 100_000) // meters)  # hours a statement
        budget = g.budget if plane.single else None
        filled, fill_s = fill(plane, budget, meters * hours, (
            (FILL_HOURLY, {"start": HOURLY_START + timedelta(hours=h0),
                           "hours": min(step, hours - h0), "meters": meters})
            for h0 in range(0, hours, step)))
        # As the job's catch-up counts an adopted history (its first runs), timed here.
        counted, count_s = count_hours(plane.url, end)
        b = ctx.bench(plane, hourly_meters=meters, hourly_hours=hours, deep=filled // 2,
                      page_samples=g.page_samples)
        if plane.single:
            first, by_cursor = consumption(b, filled=(HOURLY_START, end, filled),
                                           served=plane.served)
        else:
            with plane.served() as b.api:
                first, by_cursor = consumption(b, filled=(HOURLY_START, end, filled))
        parts, gb = relation_stats(plane.url, "public.meter_snapshot_1_h")
        kind = "chunks" if plane.single else "partitions"
        shape = (f"{meters:,} meters x {hours:,} h, {parts} {kind}, {gb:.2f} GB;"
                 f" {g.page_samples} samples")
        deep[size] = Point("consumption-deep", plane.engine, size, by_cursor.value,
                           by_cursor.floor_value, f"{filled // 2:,} rows in; {shape}")
        return Point("consumption-first", plane.engine, size, first.value, first.floor_value,
                     f"total {filled:,} from kept counts; {shape}; filled in {fill_s:.0f} s,"
                     f" {counted:,} hours counted in {count_s:.1f} s")

    points = attempt_sizes(plane, "consumption-first", g.hourly, g.budget,
                           2 * g.budget + 120, at)
    return points + [deep.get(p.size) or replace(p, series="consumption-deep") for p in points]


# -- snapshot-meters --------------------------------------------------------------------------


def snapshot_series(ctx: Context, plane: Plane) -> list[Point]:
    g = ctx.size

    def at(meters: int) -> Point:
        tx = ctx.tx_with(meters)
        b = ctx.bench(plane, tx=tx, snapshot_meters=meters, customers=meters,
                      reps=g.snapshot_reps)
        [row] = snapshot_build(b)
        per_k = f"{row.value / meters * 1000:.3f} s per 1k meters" if row.value else ""
        return Point("snapshot", plane.engine, meters, row.value, row.floor_value,
                     f"{per_k}; {g.snapshot_reps} rep{'s' * (g.snapshot_reps > 1)}; {row.note}")

    # No fill to cut short here: the budget is the attempt's (every repetition's COPY and job).
    return attempt_sizes(plane, "snapshot", g.snapshot, g.budget, g.budget * g.snapshot_reps,
                         at)


# -- sizes, attempts, output ------------------------------------------------------------------


def attempt_sizes(plane: Plane, series: str, sizes: tuple[int, ...], budget: float,
                  limit: float, measure: Callable[[int], Point]) -> list[Point]:
    """Each size in turn. On TimescaleDB a size whose fill does not fit the budget, or whose
    attempt runs past `limit` seconds (the server is stopped then) or crashes the server, is a
    row with a note, and the larger ones are not attempted; an error at the smallest size, or
    any on native, is a failure."""
    points: list[Point] = []
    stop = ""
    for i, size in enumerate(sizes):
        label = f"{series} {plane.engine} {size:,}"
        if stop:
            points.append(Point(series, plane.engine, size, None, None, f"not attempted: {stop}"))
            print(f"... {label}: not attempted", flush=True)
            continue
        started = time.perf_counter()
        print(f"... {label}", end="", flush=True)
        try:
            with plane.deadline(limit):
                point = measure(size)
        except OverBudget as exc:
            note = f"over budget ({budget:.0f} s): {exc}"
            points.append(Point(series, plane.engine, size, None, None, note))
            stop = (f"{sizes[i - 1]:,} was the largest held within the budget" if i
                    else f"{size:,} already did not fit the budget")
            print(f" {note}", flush=True)
            continue
        except Exception as exc:  # report it as a row and go on
            gone = plane.dead()
            if not gone:
                traceback.print_exc()
                if plane.port or plane.single:
                    print(log_tail(plane.log), file=sys.stderr)
            note = f"{gone}: {type(exc).__name__}" if gone else f"failed: {exc}"
            failed = not gone or i == 0
            points.append(Point(series, plane.engine, size, None, None, note[:300], failed))
            print(f" {note[:200]}", flush=True)
            if gone:
                stop = f"at {size:,}, {gone}"
            continue
        print(f" {time.perf_counter() - started:.1f} s", flush=True)
        points.append(point)
    return points


def with_growth(points: list[Point]) -> list[Point]:
    """Each value against its series' (and engine's) smallest size; sorted side by side."""
    order = {s: i for i, s in enumerate(SERIES_INFO)}
    points.sort(key=lambda p: (order[p.series], p.size, ENGINES.index(p.engine)))
    smallest: dict[tuple[str, str], Point] = {}
    for p in points:
        base = smallest.setdefault((p.series, p.engine), p)
        if p.value and base.value:
            p.growth = round(p.value / base.value, 2)
    return points


def human(n: int) -> str:
    """1M, 0.2M (as the issue names sizes), 50k, 300."""
    for unit, scale, above in (("M", 1_000_000, 100_000), ("k", 1_000, 1_000)):
        if n >= above:
            return f"{n / scale:g}{unit}"
    return str(n)


def print_table(points: list[Point]) -> None:
    header = ("series", "engine", "size", "value", "floor_value", "ratio", "unit", "growth",
              "note")
    cells = [header] + [(p.series, p.engine, human(p.size), show(p.value), show(p.floor_value),
                         show(p.ratio), p.unit, show(p.growth), p.note) for p in points]
    widths = [max(len(c[i]) for c in cells) for i in range(len(header))]
    for i, line in enumerate(cells):
        print(" | ".join(c.ljust(w) for c, w in zip(line, widths, strict=True)).rstrip())
        if i == 0:
            print("-|-".join("-" * w for w in widths))


RUNNERS: dict[str, Callable[[Context, Plane], list[Point]]] = {
    "ingest": ingest_series, "consumption": consumption_series, "snapshot": snapshot_series}


def run(ctx: Context, engines: list[str], series: list[str]) -> list[Point]:
    points: list[Point] = []
    for name in series:
        for engine in engines:
            print(f"{name} on {engine}", flush=True)
            try:
                with open_plane(ctx, engine, name) as plane:
                    points += RUNNERS[name](ctx, plane)
            except Exception as exc:  # the plane itself: the server, the migration
                traceback.print_exc()
                names = [f"{name}-first", f"{name}-deep"] if name == "consumption" else [name]
                points += [Point(n, engine, 0, None, None, f"failed: {exc}"[:300], True)
                           for n in names]
    return with_growth(points)


def timescale_missing(engines: list[str]) -> str | None:
    if "timescaledb" not in engines:
        return None
    from tests.support.timescale_server import timescale_available

    return timescale_available()


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--size", choices=sorted(GROWTH_SIZES), default="full")
    parser.add_argument("--engine", choices=(*ENGINES, "both"), default="both")
    parser.add_argument("--series", default=",".join(SERIES),
                        help=f"comma-separated, of {', '.join(SERIES)}")
    parser.add_argument("--budget", type=float, help="seconds of filling a TimescaleDB size"
                        " attempt may take (default: smoke 60, full 240)")
    parser.add_argument("--out", type=Path, default=RESULTS, help="the JSON results")
    args = parser.parse_args(argv)
    series = [s.strip() for s in args.series.split(",") if s.strip()]
    if unknown := set(series) - set(SERIES):
        parser.error(f"unknown series: {', '.join(sorted(unknown))}")
    engines = list(ENGINES) if args.engine == "both" else [args.engine]
    size = GROWTH_SIZES[args.size]
    if args.budget:
        size = replace(size, budget=args.budget)
    points: list[Point] = []
    if missing := timescale_missing(engines):
        if args.engine == "timescaledb":
            parser.error(missing)
        engines.remove("timescaledb")
        # Under CI, where `make install` runs npm, that is a broken install (as for the tests).
        points.append(Point("ingest", "timescaledb", 0, None, None, f"not run: {missing}",
                            bool(os.environ.get("CI"))))
    os.environ.setdefault("NXT_SUPABASE_CONFIG", str(ROOT / "supabase" / "config.toml"))
    # Each series migrates planes of its own: alembic's INFO lines would bury the progress.
    logging.getLogger("alembic").setLevel(logging.WARNING)
    started = time.perf_counter()
    with TemporaryDirectory(prefix="nxt-growth-") as tmp:
        work = Path(tmp)
        with postgres(work) as admin:
            scratch = Scratch(admin)
            try:
                base = prepare(replace(SIZES[args.size], customers=size.ingest_meters),
                               scratch, work)
                for url in (base.ts, base.snapshot_ts):  # bench/run.py's; each series has its own
                    scratch.drop(url)
                print(f"prepared in {time.perf_counter() - started:.1f} s", flush=True)
                points += run(Context(size, work, scratch, base), engines, series)
            finally:
                scratch.drop_all()
    print()
    print_table(points)
    args.out.write_text(json.dumps([p.as_json() for p in points], indent=2) + "\n")
    print(f"\n{args.size}: {time.perf_counter() - started:.0f} s; wrote {args.out}")
    return 1 if any(p.failed for p in points) else 0


if __name__ == "__main__":
    sys.exit(main())
