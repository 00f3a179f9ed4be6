"""The `shard` row group: snapshot-meters as 2 and as 4 shards run in parallel against one
unsharded run, on the same day of readings (bench/run.py's snapshot row), each a ratio against
the single run, and the rows and kept counts of every run compared with the single run's.

Each run starts from the same state: the day's readings copied in again, its hours queued, the
readings analyzed (none of it timed). The modes alternate in order between repetitions, so drift
on the machine weighs on all three. The machine's load average is read before and after.
"""

from __future__ import annotations

import asyncio
import time
from datetime import timedelta
from pathlib import Path
from typing import Any

import psycopg

from bench.run import (
    COPY_READINGS,
    POOL_SIZE,
    SNAPSHOT_DAY,
    Bench,
    Row,
    day_of_readings,
    function_module,
    median,
    queue_day,
)

NAME = "snapshot-meters"
MODES = (1, 2, 4)  # 1: one unsharded run
# What a run leaves, built_at (when) aside: the rows, their counts for meter-consumption.
DIGEST = """
select (select md5(string_agg(row(created_at, meter_id, consumption_kwh_exact, is_estimated,
                                  reading_count, counter_kwh_exact, kwh_credit_available_exact,
                                  grid_name, customer_id, is_hidden_from_reporting,
                                  inserted_by_build)::text, ',' order by created_at, meter_id))
          from public.meter_snapshot_1_h),
       (select md5(string_agg(row(hour, readings, first_at, last_at)::text, ',' order by hour))
          from ts.meter_snapshot_counts),
       (select md5(string_agg(row(site, hour, readings)::text, ',' order by site, hour))
          from ts.meter_snapshot_site_counts),
       (select count(*) from ts.pending_hours) + (select count(*) from ts.pending_hours_built)
"""


def loadavg() -> str:
    return " ".join(Path("/proc/loadavg").read_text().split()[:3])


def reset_day(ts: str, chunks: list[bytes]) -> None:
    """The day's readings, queued and analyzed, on an empty snapshot (untimed)."""
    day_end = SNAPSHOT_DAY + timedelta(days=1)
    with psycopg.connect(ts) as conn:
        conn.execute("truncate ts.meter_readings, public.meter_snapshot_1_h, ts.pending_hours,"
                     " ts.pending_hours_built, ts.meter_snapshot_counts,"
                     " ts.meter_snapshot_site_counts")
        with conn.cursor() as cur, cur.copy(COPY_READINGS) as copy:
            for data in chunks:
                copy.write(data)
        queue_day(conn, day_end)


async def _one_run(ts_url: str, tx_url: str, shard: Any) -> dict[str, Any]:
    """A run as the job's target makes it: its locks on a direct connection, a pool on the
    transactional plane."""
    from shared.db import Database
    from shared.jobs import _job_connection

    snapshot = function_module(NAME, "snapshot")
    db = Database(tx_url, name="transactional", max_size=POOL_SIZE)
    try:
        async with _job_connection(ts_url, NAME, shard) as (ts, refused):
            if ts is None:
                raise RuntimeError(f"{NAME} {shard}: {refused}")
            result: dict[str, Any] = await snapshot.build(
                ts, db, now=SNAPSHOT_DAY + timedelta(days=2), shard=shard)
            return result
    finally:
        await db.close()


async def _run(ts_url: str, tx_url: str, n: int) -> list[dict[str, Any]]:
    from shared.shards import Shard

    if n == 1:
        return [await _one_run(ts_url, tx_url, None)]
    return list(await asyncio.gather(*(_one_run(ts_url, tx_url, Shard(k, n))
                                       for k in range(n))))


def shards(b: Bench) -> list[Row]:
    from timeseries.partitions import ensure_partitions

    meters = b.size.snapshot_meters
    ts = b.snapshot_ts
    chunks = day_of_readings(meters)
    day_end = SNAPSHOT_DAY + timedelta(days=1)
    with psycopg.connect(ts, autocommit=True) as conn:
        ensure_partitions(conn, "meter_readings", SNAPSHOT_DAY - timedelta(days=1), day_end)
        ensure_partitions(conn, "meter_snapshot_1_h", SNAPSHOT_DAY, day_end)
    load_before = loadavg()
    seconds: dict[int, list[float]] = {n: [] for n in MODES}
    digests: dict[int, set[tuple[Any, ...]]] = {n: set() for n in MODES}
    rows_written: dict[int, int] = {}
    for rep in range(b.size.reps):
        for n in MODES if rep % 2 == 0 else MODES[::-1]:
            reset_day(ts, chunks)
            started = time.perf_counter()
            results = asyncio.run(_run(ts, b.tx, n))
            seconds[n].append(time.perf_counter() - started)
            rows_written[n] = sum(r["rows"] for r in results)
            with psycopg.connect(ts) as conn:
                digests[n].add(tuple(conn.execute(DIGEST).fetchone() or ()))
    load_after = loadavg()
    single = median(seconds[1])
    [reference] = digests[1] if len(digests[1]) == 1 else [None]
    out = []
    for n in MODES[1:]:
        same = digests[n] == {reference} and reference is not None and reference[3] == 0
        note = (f"{b.size.reps} reps, modes alternating; {rows_written[n]:,} rows written,"
                f" {'the same rows, counts and an empty queue' if same else 'ROWS DIFFER'}"
                f" as the single run; s {[round(s, 2) for s in seconds[n]]} vs"
                f" {[round(s, 2) for s in seconds[1]]}; loadavg {load_before} before,"
                f" {load_after} after"
                + ("; 2 cores: 4 shards cannot beat 2" if n > 2 else ""))
        out.append(Row(f"snapshot-meters as {n} parallel shards: one day of 15-minute readings"
                       f" from {meters:,} meters (s)",
                       "one unsharded run of the same day (s)",
                       round(median(seconds[n]), 3), round(single, 3), "<= 0.75", note,
                       ok=same))
    return out
