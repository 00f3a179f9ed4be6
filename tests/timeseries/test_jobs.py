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

from nxt_cli.harness import ROOT, ScratchDatabases

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
                            " from public.meter_snapshot_1_h")[0]
    assert hours[0] >= 47 and hours[1] > 900
    # Whole UTC hours, every row the build's own (a fresh database has no legacy writer).
    assert ts_rows(planes, "select count(*) filter (where created_at <> date_trunc('hour',"
                           " created_at) or not inserted_by_build) from public.meter_snapshot_1_h"
                   ) == [(0,)]


def test_snapshot_copies_the_dimension(planes: Planes, built: dict[str, Any]) -> None:
    """The legacy writer's mapping, from the legacy transactional columns; hiding is the
    customer's flag alone, so a visible customer on a hidden grid is written visible, as the
    legacy writer wrote it."""
    with psycopg.connect(planes.url) as conn:
        found = conn.execute("""
            select m.id, m.meter_type::text, m.external_reference, m.external_system::text,
                   m.meter_phase::text, a.full_name, c.id, d.id, d.external_reference, g.id,
                   g.organization_id, g.name, o.name, m.power_limit, m.power_limit_should_be,
                   m.is_on, m.should_be_on, n.id, m.is_cabin_meter
              from meters m join connections n on n.id = m.connection_id
              join customers c on c.id = n.customer_id join grids g on g.id = c.grid_id
              join organizations o on o.id = g.organization_id
              join accounts a on a.id = c.account_id left join dcus d on d.id = m.dcu_id
             where g.is_hidden_from_reporting and not c.is_hidden_from_reporting
               and m.deleted_at is null and g.deleted_at is null
             order by m.id limit 1""").fetchone()
        assert found is not None
        hidden = conn.execute("select m.id from meters m join connections n on"
                              " n.id = m.connection_id join customers c on c.id = n.customer_id"
                              " where c.is_hidden_from_reporting order by m.id limit 1"
                              ).fetchone()
        assert hidden is not None
    (meter, meter_type, ref, system, phase, name, customer, dcu, dcu_ref, grid, org, grid_name,
     org_name, limit, limit_should_be, is_on, should_be_on, connection, cabin) = found
    rows = ts_rows(planes, "select distinct meter_type, meter_external_reference,"
                           " meter_external_system, meter_phase, customer_full_name, customer_id,"
                           " dcu_id, dcu_external_reference, grid_id, organization_id, grid_name,"
                           " organization_name, power_limit_kw, power_limit_kw_should_be,"
                           " is_fs_consumption, is_hps_consumption, is_on, should_be_on,"
                           " connection_id, is_hidden_from_reporting, is_cabin_meter"
                           " from public.meter_snapshot_1_h where meter_id = %s", (meter,))
    kw = (lambda w: None if w is None else w / 1000)  # noqa: E731
    assert rows == [(meter_type, ref, system, phase, name, customer, dcu, dcu_ref, grid, org,
                     grid_name, org_name, kw(limit), kw(limit_should_be), meter_type == "FS",
                     meter_type == "HPS", is_on, should_be_on, connection, False, cabin)]
    assert ts_rows(planes, "select distinct is_hidden_from_reporting"
                           " from public.meter_snapshot_1_h where meter_id = %s",
                   hidden) == [(True,)]


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
               (select sum(consumption_kwh_exact) from public.meter_snapshot_1_h h
                 where h.meter_id = r.meter_id)
          from r where r.monotonic and r.n = (select count(*) from ts.meter_readings x
              where x.meter_id = r.meter_id) and r.last_ts - r.first_ts = (r.n - 1)
              * interval '15 minutes'
         order by r.meter_id limit 200""")
    assert len(rows) == 200
    for meter, increase, total in rows:
        assert abs(total - increase) <= Decimal("0.0002"), (meter, increase, total)


DIGEST = ("select md5(string_agg(row(created_at, meter_id, consumption_kwh, consumption_kwh_exact,"
          " is_estimated, reading_count, counter_kwh_exact, grid_name, built_at)::text, ','"
          " order by created_at, meter_id)) from public.meter_snapshot_1_h")


COUNTS_DIFFER = """
select coalesce(c.hour, l.hour), c.readings, l.readings
  from ts.meter_snapshot_counts c
  full join (select date_trunc('hour', created_at) as hour, count(*) as readings
               from public.meter_snapshot_1_h
              where not is_hidden_from_reporting and consumption_kwh <> 'NaN'
              group by 1) l on l.hour = c.hour
 where c.readings is distinct from l.readings
   and (c.readings <> 0 or l.readings is not null)
"""


def test_snapshot_keeps_the_counts_of_what_it_writes(planes: Planes,
                                                     built: dict[str, Any]) -> None:
    # meter-consumption's totals (timeseries/counts.py): every hour the build wrote is counted,
    # as a count of its rows says, in all and per site.
    assert built["counts"]["recounted"] == 3
    assert ts_rows(planes, COUNTS_DIFFER) == []
    sites = ts_rows(planes, "select count(*), sum(readings) from ts.meter_snapshot_site_counts")
    assert sites[0][0] > 40 and sites[0][1] == ts_rows(
        planes, "select count(*) from public.meter_snapshot_1_h where grid_name is not null"
                " and not is_hidden_from_reporting and consumption_kwh <> 'NaN'")[0][0]


def test_a_rerun_changes_nothing(planes: Planes, built: dict[str, Any]) -> None:
    before = ts_rows(planes, DIGEST)
    again = invoke(planes, "snapshot-meters")
    assert again["queued"] == 0 or again["rows"] == 0
    after = ts_rows(planes, DIGEST)
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
    end = (first_ts + timedelta(hours=1)).astimezone(UTC).replace(tzinfo=None)
    total = ts_rows(planes, "select sum(consumption_kwh_exact) from public.meter_snapshot_1_h"
                            " where meter_id = %s and created_at < %s", (meter, end))[0][0]
    # The 0.3 kWh between the late reading and the first one are now counted.
    assert total >= Decimal("0.3000")
    assert ts_rows(planes, COUNTS_DIFFER) == []  # the new hour's row is counted too


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
        legacy = conn.execute("""
            select o.id, o.created_at at time zone 'UTC', o.amount, o.currency::text,
                   o.sender_wallet_id, o.receiver_wallet_id, o.meta_sender_type::text,
                   o.meta_receiver_type::text, o.meta_sender_name, o.meta_receiver_name,
                   o.order_status::text, o.external_reference, o.payment_method::text,
                   o.payment_channel::text, o.tariff_type::text, o.tariff,
                   o.historical_grid_id, g.name, o.rls_organization_id, r.name,
                   o.meta_is_hidden_from_reporting, o.meta_order_type::text, o.updated_at,
                   o.amount_exact, o.tariff_exact
              from orders o join grids g on g.id = o.historical_grid_id
              join organizations r on r.id = o.rls_organization_id
             where o.order_status = 'COMPLETED' order by o.id limit 1""").fetchone()
    assert (first["orders"], first["inserted"], first["kept"]) == (count, count, 0)
    assert ts_rows(planes, "select count(*) from public.order_snapshots") == [(count,)]
    # The legacy columns as the legacy orders give them, this project's beside them.
    assert legacy is not None
    copied = ts_rows(planes, """
        select order_id, created_at, amount, currency, sender_wallet_id, receiver_wallet_id,
               sender_type, receiver_type, sender_name, receiver_name, status,
               external_reference, payment_method, payment_channel, tariff_type, tariff,
               grid_id, grid_name, organization_id, organization_name, is_hidden_from_reporting,
               order_type, updated_at, amount_exact, tariff_exact
          from public.order_snapshots where order_id = %s""", (legacy[0],))
    assert copied == [legacy]
    # A second run re-reads the overlap before its watermark: harmless, nothing is doubled.
    invoke(planes, "sync-orders")
    assert ts_rows(planes, "select count(*) from public.order_snapshots") == [(count,)]
    with psycopg.connect(planes.url) as conn:  # as the legacy order loop updates an order
        conn.execute("update orders set order_status = 'FAILED', updated_at = now()"
                     " where id = %s", (order,))
    again = invoke(planes, "sync-orders")
    assert again["updated"] >= 1
    assert ts_rows(planes, "select status from public.order_snapshots where order_id = %s",
                   (order,)) == [("FAILED",)]
    watermark = ts_rows(planes, "select watermark from ts.job_watermarks"
                                " where job = 'sync-orders'")[0][0]
    assert watermark is not None


def test_sync_orders_never_rewrites_a_row_the_legacy_wrote(planes: Planes) -> None:
    with psycopg.connect(planes.url) as conn:
        order, created = conn.execute("select id, created_at at time zone 'UTC' from orders"
                                      " order by id desc limit 1").fetchone()  # type: ignore[misc]
        conn.execute("update orders set order_status = 'CANCELLED', updated_at = now()"
                     " where id = %s", (order,))
    with psycopg.connect(planes.ts_url) as conn:  # as the legacy copied it, long ago
        conn.execute("update public.order_snapshots set status = 'PENDING', synced_at = null,"
                     " updated_at = null where order_id = %s", (order,))
        legacy = conn.execute("select * from public.order_snapshots where order_id = %s",
                              (order,)).fetchall()
    result = invoke(planes, "sync-orders")
    assert result["kept"] >= 1
    assert ts_rows(planes, "select * from public.order_snapshots where order_id = %s",
                   (order,)) == legacy
    assert ts_rows(planes, "select count(*) from public.order_snapshots where order_id = %s"
                           " and created_at = %s", (order, created)) == [(1,)]


def test_grid_daily_uses_each_grids_time_zone(planes: Planes, built: dict[str, Any]) -> None:
    invoke(planes, "sync-orders")
    result = invoke(planes, "grid-daily")
    assert result["status"] == "done" and result["rows"] > 0
    assert result["state_rows"] == result["grids"]
    grid, day, kwh = ts_rows(planes, """
        select grid_id, created_at, total_consumption_kwh_exact
          from public.grid_business_snapshot_1_d
         where timezone = 'Africa/Nairobi' and total_consumption_kwh_exact > 0
         order by created_at desc limit 1""")[0]
    start = day - timedelta(hours=3)  # local midnight in Nairobi, as UTC
    expected = ts_rows(planes, "select coalesce(sum(consumption_kwh_exact), 0)"
                               " from public.meter_snapshot_1_h where grid_id = %s"
                               " and meter_type in ('HPS', 'FS')"
                               " and created_at >= %s and created_at < %s",
                       (grid, start, start + timedelta(days=1)))[0][0]
    assert kwh == expected
    # Only grids reported on: not the hidden one, not the deleted one.
    with psycopg.connect(planes.url) as conn:
        visible = {g for (g,) in conn.execute("select id from grids where deleted_at is null"
                                              " and not is_hidden_from_reporting")}
    assert {g for (g,) in ts_rows(planes, "select distinct grid_id"
                                          " from public.grid_business_snapshot_1_d")} == visible
    # The legacy columns it does not compute are left to the legacy writers.
    with psycopg.connect(planes.ts_url) as conn:
        conn.execute("update public.grid_business_snapshot_1_d set total_issue_count = 4,"
                     " cuf = 0.5 where grid_id = %s and created_at = %s", (grid, day))
    again = invoke(planes, "grid-daily")
    assert again["rows"] == result["rows"]
    assert ts_rows(planes, "select total_issue_count, cuf, total_consumption_kwh_exact"
                           " from public.grid_business_snapshot_1_d where grid_id = %s"
                           " and created_at = %s", (grid, day)) == [(4, 0.5, kwh)]


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
    assert "meter_snapshot_1_h" not in result["stale"]
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
                          "timeseries-maintenance", "freshness-check", "reconcile-check"}
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
                   " consumption_kwh_exact, is_estimated, reading_count, counter_kwh_exact)::text,"
                   " ',' order by created_at, meter_id)) from public.meter_snapshot_1_h"
                   " where created_at < %s")


def test_backfill_rebuilds_identically_and_resumes(planes: Planes,
                                                   built: dict[str, Any]) -> None:
    from psycopg.types.json import Jsonb

    hi = datetime.now(UTC).replace(minute=0, second=0, microsecond=0) - timedelta(hours=1)
    lo = hi - timedelta(days=2)
    before = ts_rows(planes, SNAPSHOT_DIGEST, (hi.replace(tzinfo=None),))
    done = _backfill(planes, lo, hi)
    assert done.returncode == 0, done.stderr
    assert "2/2 days" in done.stderr
    assert json.loads(done.stdout.strip().splitlines()[-1])["days"] == 2
    assert ts_rows(planes, SNAPSHOT_DIGEST, (hi.replace(tzinfo=None),)) == before
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
    assert ts_rows(planes, SNAPSHOT_DIGEST, (hi.replace(tzinfo=None),)) == before


def test_backfill_waits_for_nobody(planes: Planes) -> None:
    from shared.jobs import lock_key

    hi = datetime.now(UTC).replace(minute=0, second=0, microsecond=0)
    with psycopg.connect(planes.ts_url, autocommit=True) as holder:
        holder.execute("select pg_advisory_lock(hashtext(%s))", (lock_key("snapshot-meters"),))
        done = _backfill(planes, hi - timedelta(days=1), hi)
    assert done.returncode == 1
    assert "snapshot-meters is running" in done.stderr
