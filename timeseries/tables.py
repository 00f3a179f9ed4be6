"""SQLAlchemy Core definitions of the time-series schema `ts`: the single source of column names.

The tables are created by `timeseries/migrations/`, never by `metadata.create_all()`: how they
are stored (native range partitions or TimescaleDB hypertables) depends on the engine detected
at migration time, which these definitions deliberately leave out. A test compares them with a
migrated database, so the two cannot drift apart.

Energy and money are `Numeric`, never floats: sums of kWh and currency must be exact.
"""

from __future__ import annotations

from sqlalchemy import (
    BigInteger,
    Boolean,
    CheckConstraint,
    Column,
    Date,
    DateTime,
    Identity,
    Index,
    Integer,
    Interval,
    MetaData,
    Numeric,
    PrimaryKeyConstraint,
    Table,
    Text,
    func,
    text,
)
from sqlalchemy.dialects.postgresql import ARRAY, JSONB

from timeseries import SCHEMA

metadata = MetaData(schema=SCHEMA)


def _tz(name: str, **kwargs: object) -> Column[object]:
    return Column(name, DateTime(timezone=True), **kwargs)  # type: ignore[arg-type]


def _kwh(name: str, **kwargs: object) -> Column[object]:
    return Column(name, Numeric(14, 4), **kwargs)  # type: ignore[arg-type]


# One row: which engine this database runs and which TimescaleDB features exist, recorded at
# migration time so later revisions and the jobs take the same branch the schema was built on.
engine_info = Table(
    "engine_info", metadata,
    Column("engine", Text, nullable=False),
    Column("features", ARRAY(Text), nullable=False, server_default=text("'{}'")),
    Column("timescaledb_version", Text),
    Column("chunk_interval", Interval, nullable=False),
    Column("raw_retention", Interval, nullable=False, server_default=text("'400 days'")),
    Column("compress_after", Interval, nullable=False, server_default=text("'7 days'")),
    _tz("detected_at", nullable=False, server_default=func.now()),
    CheckConstraint("engine in ('native', 'timescaledb')", name="engine_info_engine_check"),
    Index("engine_info_singleton", text("(true)"), unique=True),
)

# Raw telemetry. Native: range partitions by day (ts.meter_readings_pYYYYMMDD), no default
# partition; TimescaleDB: hypertable, 1-day chunks, compressed past engine_info.compress_after.
meter_readings = Table(
    "meter_readings", metadata,
    Column("meter_id", BigInteger, nullable=False),
    _tz("ts", nullable=False),
    _kwh("counter_kwh", nullable=False),
    Column("power_w", Numeric(12, 3)),
    Column("voltage_v", Numeric(8, 3)),
    _kwh("credit_kwh"),
    _tz("received_at", nullable=False, server_default=func.now()),
    PrimaryKeyConstraint("meter_id", "ts", name="meter_readings_pkey"),
    CheckConstraint("counter_kwh >= 0 and counter_kwh <> 'NaN'",
                    name="meter_readings_counter_kwh_check"),
    Index("meter_readings_ts_idx", "ts"),
)

# The legacy hourly snapshot, one row per meter and hour, rebuilt by the snapshot job. Native:
# monthly partitions (ts.meter_hourly_pYYYYMM); TimescaleDB: hypertable, 7-day chunks.
meter_hourly = Table(
    "meter_hourly", metadata,
    _tz("created_at", nullable=False),
    Column("meter_id", BigInteger, nullable=False),
    _kwh("consumption_kwh"),  # null = unknown (a gap), never a guessed zero
    Column("is_estimated", Boolean, nullable=False, server_default=text("false")),
    Column("reading_count", Integer, nullable=False, server_default=text("0")),
    _kwh("counter_kwh"),
    _kwh("kwh_credit_available"),
    Column("meter_type", Text),
    Column("external_reference", Text),
    Column("external_system", Text),
    Column("meter_phase", Text),
    Column("customer_id", BigInteger),
    Column("customer_name", Text),
    Column("dcu_id", BigInteger),
    Column("dcu_external_reference", Text),
    Column("grid_id", BigInteger),
    Column("grid_name", Text),
    Column("organization_id", BigInteger),
    Column("organization_name", Text),
    Column("power_limit_watts", Integer),
    Column("is_on", Boolean),
    Column("should_be_on", Boolean),
    Column("is_fs_consumption", Boolean),
    Column("is_hps_consumption", Boolean),
    Column("is_hidden_from_reporting", Boolean, nullable=False, server_default=text("false")),
    Column("is_cabin_meter", Boolean),
    Column("connection_id", BigInteger),
    Column("customer_account_id", BigInteger),
    _tz("built_at", nullable=False, server_default=func.now()),
    PrimaryKeyConstraint("created_at", "meter_id", name="meter_hourly_pkey"),
    CheckConstraint("consumption_kwh <> 'NaN'", name="meter_hourly_consumption_known"),
    CheckConstraint("created_at = date_trunc('hour', created_at, 'UTC')",
                    name="meter_hourly_whole_hour"),
    # The meter-consumption query: a time range of visible, known consumption, keyset-paged.
    Index("meter_hourly_consumption_idx", "created_at", "meter_id",
          postgresql_where=text("not is_hidden_from_reporting and consumption_kwh is not null")),
    Index("meter_hourly_meter_idx", "meter_id", "created_at"),
)

# Hours that ingest touched; the snapshot job (re)builds meter_hourly for them, then deletes.
pending_hours = Table(
    "pending_hours", metadata,
    Column("id", BigInteger, Identity(always=True), primary_key=True),
    _tz("hour", nullable=False),
    _tz("queued_at", nullable=False, server_default=func.now()),
    CheckConstraint("hour = date_trunc('hour', hour, 'UTC')", name="pending_hours_whole_hour"),
    Index("pending_hours_hour_idx", "hour"),
)

# Orders copied from the transactional plane, for reporting next to consumption.
order_snapshots = Table(
    "order_snapshots", metadata,
    Column("id", BigInteger, primary_key=True, autoincrement=False),  # the order's id
    _tz("created_at"),
    _tz("updated_at"),
    _tz("completed_at"),
    Column("amount", Numeric(14, 2)),
    Column("currency", Text),
    Column("order_status", Text),
    Column("order_type", Text),
    Column("tariff", Numeric(12, 4)),
    Column("payment_method", Text),
    Column("payment_channel", Text),
    Column("grid_id", BigInteger),
    Column("organization_id", BigInteger),
    Column("meter_id", BigInteger),
    Column("customer_id", BigInteger),
    Column("is_hidden_from_reporting", Boolean),
    _tz("synced_at", nullable=False, server_default=func.now()),
    Index("order_snapshots_updated_at_idx", "updated_at"),
)

# Daily figures per grid, in the grid's own time zone (`day` is a local date).
grid_daily = Table(
    "grid_daily", metadata,
    Column("grid_id", BigInteger, nullable=False),
    Column("day", Date, nullable=False),
    Column("timezone", Text),
    Column("grid_name", Text),
    Column("organization_id", BigInteger),
    Column("consumption_kwh", Numeric(16, 4)),
    Column("estimated_hours", Integer),
    Column("revenue", Numeric(16, 2)),
    Column("currency", Text),
    Column("active_meters", Integer),
    Column("completed_orders", Integer),
    _tz("built_at", nullable=False, server_default=func.now()),
    PrimaryKeyConstraint("grid_id", "day", name="grid_daily_pkey"),
)

# Each job's progress. `job_runs` is a view of the same rows (an updatable one), so code that
# names either reads and writes one set of rows.
job_watermarks = Table(
    "job_watermarks", metadata,
    Column("job", Text, primary_key=True),
    _tz("watermark"),
    Column("details", JSONB),
    _tz("updated_at", nullable=False, server_default=func.now()),
)

job_runs = Table(
    "job_runs", metadata,
    Column("job", Text, primary_key=True),
    _tz("watermark"),
    Column("details", JSONB),
    _tz("updated_at", nullable=False, server_default=func.now()),
    info={"is_view": True},
)

# Raw readings rolled up per meter and hour. A continuous aggregate (real-time) where
# TimescaleDB has them, else a plain view: same name, same columns on both engines. It covers
# only what raw retention keeps; ts.meter_hourly is the durable record.
readings_hourly = Table(
    "readings_hourly", metadata,
    _tz("hour"),
    Column("meter_id", BigInteger),
    Column("reading_count", BigInteger),
    _tz("first_ts"),
    _tz("last_ts"),
    Column("first_counter_kwh", Numeric),
    Column("last_counter_kwh", Numeric),
    Column("max_power_w", Numeric),
    Column("last_credit_kwh", Numeric),
    info={"is_view": True},
)

# Tables with time partitions (native) or chunks (TimescaleDB), with their time column.
TIME_COLUMNS = {"meter_readings": "ts", "meter_hourly": "created_at"}
