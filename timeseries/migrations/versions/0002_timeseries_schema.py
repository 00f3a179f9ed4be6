"""The time-series schema `ts`, on TimescaleDB where it exists and native partitions elsewhere.

Runs unchanged on a fresh database (after ts0001) and on one adopted from the legacy system
(stamped ts0001 by `nxt db adopt`), whose snapshot tables already hold data and have writers.
It touches none of them: everything it creates is in schema `ts`, plus, on a fresh native
database, the first partitions of the legacy tables (an adopted one keeps its plain tables or
hypertables as they are).

Detects the engine (TIMESERIES_ENGINE=auto|timescaledb|native, or the alembic attribute
"timeseries_engine"), installs the extension when it chooses TimescaleDB, and records the
engine and its features in ts.engine_info, which later revisions and the jobs read instead of
probing again. The legacy tables decide where they can: hypertables mean TimescaleDB,
partitioned tables (a fresh native ts0001) mean native, and a TIMESERIES_ENGINE that
contradicts them is an error rather than a database of two minds. TIMESERIES_DISABLE_FEATURES
switches optional TimescaleDB features off (for example to run as the Apache edition would);
TIMESERIES_RAW_RETENTION (default 400 days) and TIMESERIES_COMPRESS_AFTER (default 7 days) set
the recorded intervals.

Revision ID: ts0002
Revises: ts0001
Create Date: 2026-12-02
"""

from __future__ import annotations

import os
from datetime import UTC, datetime, timedelta
from typing import Any

from alembic import context, op
from psycopg import sql

from timeseries.engine import (
    HYPERTABLE,
    NATIVE,
    PARTITIONED,
    TIMESCALEDB,
    Detection,
    EngineUnavailable,
    detect,
    disabled_features,
    driver_connection,
    engine_override,
    extension_schema,
    table_storage,
)
from timeseries.migrations.baseline import TABLE_NAMES
from timeseries.migrations.guards import refuse_on_legacy
from timeseries.partitions import ensure_partitions

revision = "ts0002"
down_revision = "ts0001"
branch_labels = None
depends_on = None

RETENTION = ("raw readings (ts.meter_readings) are kept for TIMESERIES_RAW_RETENTION (400 days by"
             " default): a retention policy on TimescaleDB, timeseries.partitions.maintain on"
             " native partitions; the snapshot tables are not touched")
BACKFILL = ("none: it creates the ts schema empty; snapshots of history come from"
            " `nxt backfill snapshots` once readings are ingested")
NOT_PLANNABLE = ("detects the engine and its features on the live database, and creates the first"
                 " partitions around the time it runs")

# Filled in per engine: "partition by range (...)" on native, nothing on TimescaleDB (the
# table becomes a hypertable afterwards).
TABLES_SQL = """
create table ts.engine_info (
  engine text not null constraint engine_info_engine_check
    check (engine in ('native', 'timescaledb')),
  features text[] not null default '{{}}',
  timescaledb_version text,
  chunk_interval interval not null,
  raw_retention interval not null default '400 days'
    constraint engine_info_raw_retention_check check (raw_retention > interval '0'),
  compress_after interval not null default '7 days'
    constraint engine_info_compress_after_check check (compress_after > interval '0'),
  detected_at timestamptz not null default now()
);
-- One row, whatever writes it.
create unique index engine_info_singleton on ts.engine_info ((true));

create table ts.meter_readings (
  meter_id bigint not null,
  ts timestamptz not null,
  counter_kwh numeric(14, 4) not null
    -- NaN passes ">= 0" in PostgreSQL (it sorts above every number): refused explicitly.
    constraint meter_readings_counter_kwh_check check (counter_kwh >= 0 and counter_kwh <> 'NaN'),
  power_w numeric(12, 3),
  voltage_v numeric(8, 3),
  credit_kwh numeric(14, 4),
  received_at timestamptz not null default now(),
  constraint meter_readings_pkey primary key (meter_id, ts)
) {readings_partitioning};
-- The snapshot job reads every meter of an hour: a time range, which the key cannot serve.
create index meter_readings_ts_idx on ts.meter_readings (ts);

-- Append-only: concurrent ingests never wait on each other's queue entries, and the snapshot
-- job deletes exactly the entries it read (by id), never one queued after it looked.
create table ts.pending_hours (
  id bigint generated always as identity primary key,
  hour timestamptz not null
    constraint pending_hours_whole_hour check (hour = date_trunc('hour', hour, 'UTC')),
  queued_at timestamptz not null default now()
);
create index pending_hours_hour_idx on ts.pending_hours (hour);

-- One row on a database `nxt db adopt` took over from the legacy system (it writes the row),
-- none on a fresh one: downgrades refuse where it has one (timeseries/migrations/guards.py).
create table ts.adoption (
  singleton boolean primary key default true check (singleton),
  adopted_at timestamptz not null default now(),
  baseline text not null,
  legacy_migration text,  -- the newest legacy TypeORM migration the database had applied
  report jsonb not null
);

create table ts.job_watermarks (
  job text primary key,
  watermark timestamptz,
  details jsonb,
  updated_at timestamptz not null default now()
);
-- The same rows under the other name jobs use; a simple view, so it is updatable (also by
-- insert ... on conflict).
create view ts.job_runs as
  select job, watermark, details, updated_at from ts.job_watermarks;
"""

# Hourly roll-up of raw readings. Plain-view form; a continuous aggregate where TimescaleDB has
# them (READINGS_HOURLY_CAGG). Same columns and types either way.
READINGS_HOURLY_VIEW = """
create view ts.readings_hourly as
select date_trunc('hour', ts, 'UTC') as hour, meter_id, count(*) as reading_count,
       min(ts) as first_ts, max(ts) as last_ts,
       (array_agg(counter_kwh order by ts))[1]::numeric as first_counter_kwh,
       (array_agg(counter_kwh order by ts desc))[1]::numeric as last_counter_kwh,
       max(power_w)::numeric as max_power_w,
       (array_agg(credit_kwh order by ts desc))[1]::numeric as last_credit_kwh
  from ts.meter_readings
 group by 1, 2
"""

# materialized_only = false: buckets not yet materialized are computed from the raw rows at
# query time. A bucket already materialized does NOT see a late reading until the next refresh
# (the refresh policy, or timeseries-maintenance where no policy runs): no function reads this
# view; hourly consumption comes from public.meter_snapshot_1_h, which late readings rebuild.
READINGS_HOURLY_CAGG = """
create materialized view ts.readings_hourly
with (timescaledb.continuous, timescaledb.materialized_only = false) as
select time_bucket(interval '1 hour', ts) as hour, meter_id, count(*) as reading_count,
       min(ts) as first_ts, max(ts) as last_ts,
       first(counter_kwh, ts)::numeric as first_counter_kwh,
       last(counter_kwh, ts)::numeric as last_counter_kwh,
       max(power_w)::numeric as max_power_w,
       last(credit_kwh, ts)::numeric as last_credit_kwh
  from ts.meter_readings
 group by 1, 2
 with no data
"""

DOWN_SQL = """
drop view if exists ts.job_runs;
drop table if exists ts.job_watermarks;
drop table if exists ts.adoption;
drop table if exists ts.pending_hours;
drop table if exists ts.meter_readings;
drop table if exists ts.engine_info;
"""


def _setting(name: str, default: str) -> str:
    return (context.config.attributes.get(name.lower()) or os.environ.get(name) or default
            ).strip()


def _engine(conn: Any) -> Detection:
    override = context.config.attributes.get("timeseries_engine") or engine_override()
    storage = set(table_storage(conn, "public", TABLE_NAMES).values())
    follows = TIMESCALEDB if HYPERTABLE in storage else NATIVE if PARTITIONED in storage else None
    if follows is not None:
        if override not in ("auto", follows):
            raise EngineUnavailable(
                f"TIMESERIES_ENGINE={override}, but the legacy snapshot tables here are"
                f" {'hypertables' if follows == TIMESCALEDB else 'range-partitioned'}: this"
                f" database runs {follows}; set TIMESERIES_ENGINE=auto or {follows}")
        override = follows
    return detect(conn, override, disabled=disabled_features())


def upgrade() -> None:
    op.execute("create schema if not exists ts")
    conn = driver_connection(op.get_bind())
    found = _engine(conn)
    native = found.engine == NATIVE
    op.execute(TABLES_SQL.format(
        readings_partitioning="partition by range (ts)" if native else ""))
    retention = _setting("TIMESERIES_RAW_RETENTION", "400 days")
    compress_after = _setting("TIMESERIES_COMPRESS_AFTER", "7 days")
    conn.execute(
        "insert into ts.engine_info (engine, features, timescaledb_version, chunk_interval,"
        " raw_retention, compress_after) values (%s, %s, %s, interval '1 day', %s::interval,"
        " %s::interval)",
        (found.engine, list(found.features), found.timescaledb_version, retention,
         compress_after))
    if native:
        _native_partitions(conn)
        op.execute(READINGS_HOURLY_VIEW)
    else:
        _hypertables(conn, found, retention, compress_after)


def _native_partitions(conn: Any) -> None:
    # Ahead of the data so the first writes need no DDL, and back far enough for a recent
    # backfill; the maintenance job keeps extending the window, writers fill in older ones.
    # The legacy tables get theirs only where they are partitioned (a fresh database):
    # ensure_partitions leaves a plain adopted table alone.
    now = datetime.now(UTC)
    ensure_partitions(conn, "meter_readings", now - timedelta(days=14), now + timedelta(days=7))
    month = now.replace(day=1)
    two_back = ((month - timedelta(days=1)).replace(day=1) - timedelta(days=1)).replace(day=1)
    ensure_partitions(conn, "meter_snapshot_1_h", two_back, now + timedelta(days=31))
    for table in ("order_snapshots", "grid_business_snapshot_1_d"):
        ensure_partitions(conn, table, now - timedelta(days=31), now + timedelta(days=31))


def _hypertables(conn: Any, found: Detection, retention: str, compress_after: str) -> None:
    # Calls are unqualified: the extension's schema goes on the search path of this
    # transaction only (public usually, `extensions` on some platforms).
    schema = sql.Identifier(extension_schema(conn)).as_string(conn)
    conn.execute("select set_config('search_path', %s, true)", (f"{schema}, public",))
    conn.execute("select create_hypertable('ts.meter_readings', 'ts',"
                 " chunk_time_interval => interval '1 day', create_default_indexes => false)")
    if "compression" in found.features:
        # One compressed segment per meter, newest first: how readings are read back.
        conn.execute("alter table ts.meter_readings set (timescaledb.compress,"
                     " timescaledb.compress_segmentby = 'meter_id',"
                     " timescaledb.compress_orderby = 'ts desc')")
    # Without policies (Apache edition, no background workers) timeseries.partitions.maintain
    # does the same work on its schedule.
    if "policies" in found.features:
        conn.execute("select add_retention_policy('ts.meter_readings',"
                     " drop_after => %s::interval)", (retention,))
        if "compression" in found.features:
            conn.execute("select add_compression_policy('ts.meter_readings',"
                         " compress_after => %s::interval)", (compress_after,))
    if "continuous_aggregates" in found.features:
        conn.execute(READINGS_HOURLY_CAGG)
        if "policies" in found.features:
            conn.execute("select add_continuous_aggregate_policy('ts.readings_hourly',"
                         " start_offset => interval '3 days', end_offset => interval '1 hour',"
                         " schedule_interval => interval '30 minutes')")
    else:
        conn.execute(READINGS_HOURLY_VIEW)


def downgrade() -> None:
    refuse_on_legacy("drop the ts schema")
    conn = driver_connection(op.get_bind())
    row = conn.execute("select engine, features from ts.engine_info").fetchone()
    if row and row[0] != NATIVE and "continuous_aggregates" in row[1]:
        op.execute("drop materialized view if exists ts.readings_hourly")
    else:
        op.execute("drop view if exists ts.readings_hourly")
    # Dropping a hypertable drops its chunks and policies; a partitioned table its partitions.
    # The timescaledb extension stays: it may predate us (hosted TimescaleDB installs it), and
    # the schema `ts` stays because it holds alembic's version table. The legacy tables'
    # partitions go with ts0001.
    op.execute(DOWN_SQL)
