"""The time-series schema `ts`, on TimescaleDB where it exists and native partitions elsewhere.

Detects the engine (TIMESERIES_ENGINE=auto|timescaledb|native, or the alembic attribute
"timeseries_engine"), installs the extension when it chooses TimescaleDB, and records the
engine and its features in ts.engine_info, which later revisions and the jobs read instead of
probing again. TIMESERIES_DISABLE_FEATURES switches optional TimescaleDB features off (for
example to run as the Apache edition would); TIMESERIES_RAW_RETENTION (default 400 days) and
TIMESERIES_COMPRESS_AFTER (default 7 days) set the recorded intervals.

Revision ID: ts0001
Revises:
Create Date: 2026-11-28
"""

from __future__ import annotations

import os
from datetime import UTC, datetime, timedelta
from typing import Any

from alembic import context, op
from psycopg import sql

from timeseries.engine import (
    NATIVE,
    Detection,
    detect,
    disabled_features,
    driver_connection,
    engine_override,
    extension_schema,
)
from timeseries.partitions import ensure_partitions

revision = "ts0001"
down_revision = None
branch_labels = None
depends_on = None

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

create table ts.meter_hourly (
  created_at timestamptz not null
    constraint meter_hourly_whole_hour check (created_at = date_trunc('hour', created_at, 'UTC')),
  meter_id bigint not null,
  consumption_kwh numeric(14, 4)
    constraint meter_hourly_consumption_known check (consumption_kwh <> 'NaN'),
  is_estimated boolean not null default false,
  reading_count integer not null default 0,
  counter_kwh numeric(14, 4),
  kwh_credit_available numeric(14, 4),
  meter_type text,
  external_reference text,
  external_system text,
  meter_phase text,
  customer_id bigint,
  customer_name text,
  dcu_id bigint,
  dcu_external_reference text,
  grid_id bigint,
  grid_name text,
  organization_id bigint,
  organization_name text,
  power_limit_watts integer,
  is_on boolean,
  should_be_on boolean,
  is_fs_consumption boolean,
  is_hps_consumption boolean,
  is_hidden_from_reporting boolean not null default false,
  is_cabin_meter boolean,
  connection_id bigint,
  customer_account_id bigint,
  built_at timestamptz not null default now(),
  constraint meter_hourly_pkey primary key (created_at, meter_id)
) {hourly_partitioning};
create index meter_hourly_consumption_idx on ts.meter_hourly (created_at, meter_id)
  where not is_hidden_from_reporting and consumption_kwh is not null;
create index meter_hourly_meter_idx on ts.meter_hourly (meter_id, created_at);

-- Append-only: concurrent ingests never wait on each other's queue entries, and the snapshot
-- job deletes exactly the entries it read (by id), never one queued after it looked.
create table ts.pending_hours (
  id bigint generated always as identity primary key,
  hour timestamptz not null
    constraint pending_hours_whole_hour check (hour = date_trunc('hour', hour, 'UTC')),
  queued_at timestamptz not null default now()
);
create index pending_hours_hour_idx on ts.pending_hours (hour);

create table ts.order_snapshots (
  id bigint primary key,
  created_at timestamptz,
  updated_at timestamptz,
  completed_at timestamptz,
  amount numeric(14, 2),
  currency text,
  order_status text,
  order_type text,
  tariff numeric(12, 4),
  payment_method text,
  payment_channel text,
  grid_id bigint,
  organization_id bigint,
  meter_id bigint,
  customer_id bigint,
  is_hidden_from_reporting boolean,
  synced_at timestamptz not null default now()
);
create index order_snapshots_updated_at_idx on ts.order_snapshots (updated_at);

create table ts.grid_daily (
  grid_id bigint not null,
  day date not null,
  timezone text,
  grid_name text,
  organization_id bigint,
  consumption_kwh numeric(16, 4),
  estimated_hours integer,
  revenue numeric(16, 2),
  currency text,
  active_meters integer,
  completed_orders integer,
  built_at timestamptz not null default now(),
  constraint grid_daily_pkey primary key (grid_id, day)
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
# view; hourly consumption comes from ts.meter_hourly, which late readings do rebuild.
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
drop table if exists ts.grid_daily;
drop table if exists ts.order_snapshots;
drop table if exists ts.pending_hours;
drop table if exists ts.meter_hourly;
drop table if exists ts.meter_readings;
drop table if exists ts.engine_info;
"""


def _setting(name: str, default: str) -> str:
    return (context.config.attributes.get(name.lower()) or os.environ.get(name) or default
            ).strip()


def upgrade() -> None:
    op.execute("create schema if not exists ts")
    conn = driver_connection(op.get_bind())
    override = context.config.attributes.get("timeseries_engine") or engine_override()
    found = detect(conn, override, disabled=disabled_features())
    native = found.engine == NATIVE
    op.execute(TABLES_SQL.format(
        readings_partitioning="partition by range (ts)" if native else "",
        hourly_partitioning="partition by range (created_at)" if native else ""))
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
    # Ahead of the data so the first ingest needs no DDL, and back far enough for a recent
    # backfill; the maintenance job keeps extending the window.
    now = datetime.now(UTC)
    ensure_partitions(conn, "meter_readings", now - timedelta(days=14), now + timedelta(days=7))
    month = now.replace(day=1)
    two_back = (month - timedelta(days=1)).replace(day=1) - timedelta(days=1)
    ensure_partitions(conn, "meter_hourly", two_back.replace(day=1), now + timedelta(days=31))


def _hypertables(conn: Any, found: Detection, retention: str, compress_after: str) -> None:
    # Calls are unqualified: the extension's schema goes on the search path of this
    # transaction only (public usually, `extensions` on some platforms).
    schema = sql.Identifier(extension_schema(conn)).as_string(conn)
    conn.execute("select set_config('search_path', %s, true)", (f"{schema}, public",))
    conn.execute("select create_hypertable('ts.meter_readings', 'ts',"
                 " chunk_time_interval => interval '1 day', create_default_indexes => false)")
    conn.execute("select create_hypertable('ts.meter_hourly', 'created_at',"
                 " chunk_time_interval => interval '7 days', create_default_indexes => false)")
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
    conn = driver_connection(op.get_bind())
    row = conn.execute("select engine, features from ts.engine_info").fetchone()
    if row and row[0] != NATIVE and "continuous_aggregates" in row[1]:
        op.execute("drop materialized view if exists ts.readings_hourly")
    else:
        op.execute("drop view if exists ts.readings_hourly")
    # Dropping a hypertable drops its chunks and policies; a partitioned table its partitions.
    # The timescaledb extension stays: it may predate us (hosted TimescaleDB installs it), and
    # the schema `ts` stays because it holds alembic's version table.
    op.execute(DOWN_SQL)
