"""The scheduled jobs, run as `nxt invoke <job>` runs them (their real targets), on a seeded
transactional database and a time-series database with two days of demo telemetry."""

from __future__ import annotations

import json
import os
import subprocess
import sys
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from decimal import Decimal
from pathlib import Path
from typing import Any

import psycopg
import pytest

from .conftest import ROOT, ScratchDatabases

pytestmark = pytest.mark.db


@dataclass(frozen=True)
class Planes:
    url: str
    ts_url: str


def invoke(planes: Planes, job: str) -> dict[str, Any]:
    env = {k: v for k, v in os.environ.items() if k != "K_SERVICE"}
    env.update(DATABASE_URL=planes.url, TIMESERIES_DATABASE_URL=planes.ts_url,
               PYTHONPATH=str(ROOT), NXT_SUPABASE_CONFIG=str(ROOT / "supabase" / "config.toml"))
    done = subprocess.run([sys.executable, "-m", "nxt_cli.main", "invoke", job], cwd=ROOT,
                          env=env, capture_output=True, text=True, timeout=300)
    assert done.returncode == 0, done.stderr + done.stdout
    return json.loads(done.stdout.strip().splitlines()[-1])


@pytest.fixture(scope="module")
def planes(scratch: ScratchDatabases) -> Planes:
    from nxt_cli.migrate import migrate, migrate_timeseries
    from nxt_cli.seed import seed
    from nxt_cli.telemetry import seed_telemetry

    url = scratch.create("nxt_jobs")
    ts_url = scratch.create("nxt_jobs_ts")
    migrate(url)
    seed(url)
    migrate_timeseries(ts_url, engine="native")
    result = seed_telemetry(url, ts_url, days=2)
    assert result.readings > 100_000 and result.meters > 900
    return Planes(url, ts_url)


def ts_rows(planes: Planes, sql: str, params: Any = ()) -> list[tuple[Any, ...]]:
    with psycopg.connect(planes.ts_url) as conn:
        return conn.execute(sql, params).fetchall()


@pytest.fixture(scope="module")
def built(planes: Planes) -> dict[str, Any]:
    return invoke(planes, "snapshot-meters")


def test_snapshot_builds_every_closed_hour(planes: Planes, built: dict[str, Any]) -> None:
    assert built["status"] == "done" and built["rows"] > 40_000
    closed = datetime.now(UTC).replace(minute=0, second=0, microsecond=0)
    left = ts_rows(planes, "select count(*) from ts.pending_hours where hour < %s", (closed,))
    assert left == [(0,)]
    hours = ts_rows(planes, "select count(distinct created_at), count(distinct meter_id)"
                            " from ts.meter_hourly")[0]
    assert hours[0] >= 47 and hours[1] > 900


def test_snapshot_copies_the_dimension(planes: Planes, built: dict[str, Any]) -> None:
    with psycopg.connect(planes.url) as conn:
        meter, ref, grid, customer, hidden = conn.execute("""
            select m.id, m.external_reference, g.name, a.full_name,
                   c.is_hidden_from_reporting or g.is_hidden_from_reporting
              from meters m join connections n on n.id = m.connection_id
              join customers c on c.id = n.customer_id join grids g on g.id = c.grid_id
              join accounts a on a.id = c.account_id
             where g.is_hidden_from_reporting and m.deleted_at is null and g.deleted_at is null
             order by m.id limit 1""").fetchone()  # type: ignore[misc]
    rows = ts_rows(planes, "select distinct external_reference, grid_name, customer_name,"
                           " is_hidden_from_reporting from ts.meter_hourly where meter_id = %s",
                   (meter,))
    assert rows == [(ref, grid, customer, hidden)]
    assert hidden is True


def test_hourly_consumption_matches_the_counter(planes: Planes, built: dict[str, Any]) -> None:
    """Conservation at job level: for meters without a reset or gap, the sum of the hours
    equals the counter's increase from the first reading to the last."""
    rows = ts_rows(planes, """
        with r as (
          select meter_id, min(ts) first_ts, max(ts) last_ts, count(*) n,
                 bool_and(counter_kwh >= prev) filter (where prev is not null) monotonic
            from (select meter_id, ts, counter_kwh,
                         lag(counter_kwh) over (partition by meter_id order by ts) prev
                    from ts.meter_readings) x
           group by meter_id)
        select r.meter_id,
               (select counter_kwh from ts.meter_readings where meter_id = r.meter_id
                   and ts = r.last_ts)
             - (select counter_kwh from ts.meter_readings where meter_id = r.meter_id
                   and ts = r.first_ts),
               (select sum(consumption_kwh) from ts.meter_hourly h where h.meter_id = r.meter_id)
          from r where r.monotonic and r.n = (select count(*) from ts.meter_readings x
              where x.meter_id = r.meter_id) and r.last_ts - r.first_ts = (r.n - 1)
              * interval '15 minutes'
         order by r.meter_id limit 200""")
    assert len(rows) == 200
    for meter, increase, total in rows:
        assert abs(total - increase) <= Decimal("0.0002"), (meter, increase, total)


def test_a_rerun_changes_nothing(planes: Planes, built: dict[str, Any]) -> None:
    before = ts_rows(planes, "select md5(string_agg(row(created_at, meter_id, consumption_kwh,"
                             " is_estimated, reading_count, counter_kwh, grid_name)::text, ','"
                             " order by created_at, meter_id)) from ts.meter_hourly")
    again = invoke(planes, "snapshot-meters")
    assert again["queued"] == 0 or again["rows"] == 0
    after = ts_rows(planes, "select md5(string_agg(row(created_at, meter_id, consumption_kwh,"
                            " is_estimated, reading_count, counter_kwh, grid_name)::text, ','"
                            " order by created_at, meter_id)) from ts.meter_hourly")
    assert before == after


def test_late_readings_rebuild_the_hours_they_touch(planes: Planes,
                                                    built: dict[str, Any]) -> None:
    from timeseries.partitions import ensure_partitions

    meter, first_ts = ts_rows(planes, "select meter_id, min(ts) from ts.meter_readings"
                                      " group by meter_id order by meter_id limit 1")[0]
    # A reading 45 minutes before the first one arrives late: the hour before the first
    # reading gets a row, and so does the first hour (its energy changes).
    early = first_ts - timedelta(minutes=45)
    counter = ts_rows(planes, "select counter_kwh from ts.meter_readings where meter_id = %s"
                              " and ts = %s", (meter, first_ts))[0][0]
    with psycopg.connect(planes.ts_url) as conn:
        ensure_partitions(conn, "meter_readings", early, early)
        conn.execute("insert into ts.meter_readings (meter_id, ts, counter_kwh) values"
                     " (%s, %s, %s)", (meter, early, counter - Decimal("0.3000")))
        conn.execute("insert into ts.pending_hours (hour)"
                     " values (date_trunc('hour', %s::timestamptz, 'UTC'))", (early,))
    result = invoke(planes, "snapshot-meters")
    assert result["rows"] > 0
    total = ts_rows(planes, "select sum(consumption_kwh) from ts.meter_hourly"
                            " where meter_id = %s and created_at < %s",
                    (meter, first_ts + timedelta(hours=1)))[0][0]
    # The 0.3 kWh between the late reading and the first one are now counted.
    assert total >= Decimal("0.3000")


def test_a_second_run_waits_for_nobody(planes: Planes) -> None:
    from shared.jobs import lock_key

    with psycopg.connect(planes.ts_url, autocommit=True) as holder:
        holder.execute("select pg_advisory_lock(hashtext(%s))", (lock_key("snapshot-meters"),))
        result = invoke(planes, "snapshot-meters")
    assert result["status"] == "skipped"
    assert "holds its lock" in result["reason"]


def test_sync_orders_copies_and_follows_changes(planes: Planes) -> None:
    first = invoke(planes, "sync-orders")
    with psycopg.connect(planes.url) as conn:
        count = conn.execute("select count(*) from orders").fetchone()[0]  # type: ignore[index]
        order = conn.execute("select min(id) from orders where order_status = 'PENDING'"
                             ).fetchone()[0]  # type: ignore[index]
    assert first["orders"] == count
    assert ts_rows(planes, "select count(*) from ts.order_snapshots") == [(count,)]
    # A second run re-reads the overlap before its watermark: harmless, nothing is doubled.
    invoke(planes, "sync-orders")
    assert ts_rows(planes, "select count(*) from ts.order_snapshots") == [(count,)]
    with psycopg.connect(planes.url) as conn:
        conn.execute("update orders set order_status = 'FAILED' where id = %s", (order,))
    invoke(planes, "sync-orders")
    assert ts_rows(planes, "select order_status from ts.order_snapshots where id = %s",
                   (order,)) == [("FAILED",)]
    watermark = ts_rows(planes, "select watermark from ts.job_watermarks"
                                " where job = 'sync-orders'")[0][0]
    assert watermark is not None


def test_grid_daily_uses_each_grids_time_zone(planes: Planes, built: dict[str, Any]) -> None:
    invoke(planes, "sync-orders")
    result = invoke(planes, "grid-daily")
    assert result["status"] == "done" and result["rows"] > 0
    grid, day, kwh = ts_rows(planes, """
        select grid_id, day, consumption_kwh from ts.grid_daily
         where timezone = 'Africa/Nairobi' and consumption_kwh > 0
         order by day desc limit 1""")[0]
    start = datetime.combine(day, datetime.min.time()).replace(tzinfo=UTC) - timedelta(hours=3)
    expected = ts_rows(planes, "select coalesce(sum(consumption_kwh), 0) from ts.meter_hourly"
                               " where grid_id = %s and created_at >= %s and created_at < %s",
                       (grid, start, start + timedelta(days=1)))[0][0]
    assert kwh == expected
    again = invoke(planes, "grid-daily")
    assert again["rows"] == result["rows"]


def test_maintenance_creates_partitions_ahead(planes: Planes) -> None:
    result = invoke(planes, "timeseries-maintenance")
    assert result["status"] == "done"
    ahead = (datetime.now(UTC) + timedelta(days=6)).strftime("%Y%m%d")
    names = ts_rows(planes, "select relname::text from pg_class where relname = %s",
                    (f"meter_readings_p{ahead}",))
    assert names == [(f"meter_readings_p{ahead}",)]


def test_freshness_check_reports_each_table(planes: Planes, built: dict[str, Any]) -> None:
    invoke(planes, "sync-orders")
    invoke(planes, "grid-daily")
    result = invoke(planes, "freshness-check")
    assert result["status"] in ("ok", "stale")
    assert "meter_hourly" not in result["stale"]
    assert "order_snapshots" not in result["stale"]


def test_http_functions_are_not_jobs() -> None:
    env = dict(os.environ, PYTHONPATH=str(ROOT), DATABASE_URL="postgresql://x@127.0.0.1:1/x",
               TIMESERIES_DATABASE_URL="postgresql://x@127.0.0.1:1/x")
    done = subprocess.run([sys.executable, "-m", "nxt_cli.main", "invoke", "customers"],
                          cwd=ROOT, env=env, capture_output=True, text=True)
    assert done.returncode == 2
    assert "not a scheduled job" in done.stderr


def test_every_job_declares_a_schedule() -> None:
    from nxt_cli.invoke import jobs
    from shared.jobs import SCHEDULES

    found = jobs(Path(ROOT))
    assert set(found) == {"snapshot-meters", "sync-orders", "grid-daily",
                          "timeseries-maintenance", "freshness-check"}
    for name in found:
        assert len(SCHEDULES[name].cron.split()) == 5


def _backfill(planes: Planes, lo: datetime, hi: datetime) -> subprocess.CompletedProcess[str]:
    env = {k: v for k, v in os.environ.items() if k != "K_SERVICE"}
    env.update(DATABASE_URL=planes.url, TIMESERIES_DATABASE_URL=planes.ts_url,
               PYTHONPATH=str(ROOT))
    return subprocess.run([sys.executable, "-m", "nxt_cli.main", "backfill", "snapshots",
                           "--from", lo.isoformat(), "--to", hi.isoformat()], cwd=ROOT,
                          env=env, capture_output=True, text=True, timeout=300)


SNAPSHOT_DIGEST = ("select md5(string_agg(row(created_at, meter_id, consumption_kwh,"
                   " is_estimated, reading_count, counter_kwh)::text, ','"
                   " order by created_at, meter_id)) from ts.meter_hourly where created_at < %s")


def test_backfill_rebuilds_identically_and_resumes(planes: Planes,
                                                   built: dict[str, Any]) -> None:
    from psycopg.types.json import Jsonb

    hi = datetime.now(UTC).replace(minute=0, second=0, microsecond=0) - timedelta(hours=1)
    lo = hi - timedelta(days=2)
    before = ts_rows(planes, SNAPSHOT_DIGEST, (hi,))
    done = _backfill(planes, lo, hi)
    assert done.returncode == 0, done.stderr
    assert "2/2 days" in done.stderr
    assert json.loads(done.stdout.strip().splitlines()[-1])["days"] == 2
    assert ts_rows(planes, SNAPSHOT_DIGEST, (hi,)) == before
    # As if interrupted after the first day: the same command resumes after it.
    with psycopg.connect(planes.ts_url) as conn:
        conn.execute("update ts.job_watermarks set details = %s"
                     " where job = 'backfill-snapshots'",
                     (Jsonb({"from": lo.isoformat(), "to": hi.isoformat(),
                             "done_until": (lo + timedelta(days=1)).isoformat()}),))
    resumed = _backfill(planes, lo, hi)
    assert resumed.returncode == 0, resumed.stderr
    assert "resuming after" in resumed.stderr
    assert json.loads(resumed.stdout.strip().splitlines()[-1])["days"] == 1
    assert ts_rows(planes, SNAPSHOT_DIGEST, (hi,)) == before


def test_backfill_waits_for_nobody(planes: Planes) -> None:
    from shared.jobs import lock_key

    hi = datetime.now(UTC).replace(minute=0, second=0, microsecond=0)
    with psycopg.connect(planes.ts_url, autocommit=True) as holder:
        holder.execute("select pg_advisory_lock(hashtext(%s))", (lock_key("snapshot-meters"),))
        done = _backfill(planes, hi - timedelta(days=1), hi)
    assert done.returncode == 1
    assert "snapshot-meters is running" in done.stderr
