"""SQLAlchemy Core definitions of the time-series plane: the single source of column names.

Two schemas: `ts`, this project's own tables (raw readings, the queue, job state, engine
info), and `public`, the three legacy snapshot tables this project writes and reads:
`meter_snapshot_1_h`, `order_snapshots`, `grid_business_snapshot_1_d`. Their legacy columns
come from the baseline declaration (timeseries/migrations/baseline.py, what ts0001 creates and
adoption checks), followed by the columns revision ts0003 adds beside them.

The tables are created by `timeseries/migrations/`, never by `metadata.create_all()`: how they
are stored (native range partitions, TimescaleDB hypertables, or on an adopted legacy database
whatever the legacy built) depends on the database, which these definitions deliberately leave
out. A test compares them with a migrated database, so the two cannot drift apart.

Energy and money are `Numeric` in this project's columns. The legacy columns keep their
floating-point types (double precision, real); each float measure the jobs write has an exact
`*_exact` numeric column beside it, which is what sums are computed from.
"""

from __future__ import annotations

from sqlalchemy import (
    REAL,
    BigInteger,
    Boolean,
    CheckConstraint,
    Column,
    DateTime,
    ForeignKey,
    Identity,
    Index,
    Integer,
    Interval,
    MetaData,
    Numeric,
    PrimaryKeyConstraint,
    String,
    Table,
    Text,
    func,
    text,
)
from sqlalchemy.dialects.postgresql import ARRAY, DOUBLE_PRECISION, JSONB
from sqlalchemy.types import TypeEngine

from migrations.baseline import Table as Declared
from timeseries import SCHEMA
from timeseries.migrations.baseline import (
    GRID_BUSINESS_SNAPSHOT_1_D,
    METER_SNAPSHOT_1_H,
    ORDER_SNAPSHOTS,
)

metadata = MetaData(schema=SCHEMA)
LEGACY_SCHEMA = "public"


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

# Hours that ingest touched; the snapshot job (re)builds meter_snapshot_1_h for them, then
# deletes.
pending_hours = Table(
    "pending_hours", metadata,
    Column("id", BigInteger, Identity(always=True), primary_key=True),
    _tz("hour", nullable=False),
    _tz("queued_at", nullable=False, server_default=func.now()),
    CheckConstraint("hour = date_trunc('hour', hour, 'UTC')", name="pending_hours_whole_hour"),
    Index("pending_hours_hour_idx", "hour"),
)

# The shards' ledger (revision ts0005): shard `shard` of `shards` built queue entry
# `pending_id`; the shard that completes the set deletes the entry, and its rows with it.
pending_hours_built = Table(
    "pending_hours_built", metadata,
    Column("pending_id", BigInteger, ForeignKey("ts.pending_hours.id", ondelete="CASCADE"),
           primary_key=True),
    _tz("hour", nullable=False),
    Column("shards", Integer, primary_key=True),
    Column("shard", Integer, primary_key=True),
    _tz("built_at", nullable=False, server_default=func.now()),
    CheckConstraint("shards between 1 and 999 and shard >= 0 and shard < shards",
                    name="pending_hours_built_shard"),
)

# One row once `nxt db adopt` took the database over from the legacy system (it writes it).
adoption = Table(
    "adoption", metadata,
    Column("singleton", Boolean, primary_key=True, server_default=text("true")),
    _tz("adopted_at", nullable=False, server_default=func.now()),
    Column("baseline", Text, nullable=False),
    Column("legacy_migration", Text),
    Column("report", JSONB, nullable=False),
    CheckConstraint("singleton", name="adoption_singleton_check"),
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

# Kept counts of meter_snapshot_1_h's listed rows per whole UTC hour, in all and per site
# (revision ts0004, timeseries/counts.py): meter-consumption's totals. `hour` is timestamp
# without time zone holding UTC, as the created_at it is compared with.
meter_snapshot_counts = Table(
    "meter_snapshot_counts", metadata,
    Column("hour", DateTime(timezone=False), primary_key=True),
    Column("readings", BigInteger, nullable=False),
    # The first and last created_at of the hour's listed rows (null without rows): a window
    # that cuts the hour but holds all of them may still use its count.
    Column("first_at", DateTime(timezone=False)),
    Column("last_at", DateTime(timezone=False)),
    _tz("counted_at", nullable=False, server_default=func.now()),
    CheckConstraint("hour = date_trunc('hour', hour)", name="meter_snapshot_counts_whole_hour"),
    CheckConstraint("first_at >= hour and last_at >= first_at"
                    " and last_at < hour + interval '1 hour'", name="meter_snapshot_counts_span"),
    CheckConstraint("readings >= 0", name="meter_snapshot_counts_readings"),
)

meter_snapshot_site_counts = Table(
    "meter_snapshot_site_counts", metadata,
    Column("site", Text, primary_key=True),  # lower(grid_name)
    Column("hour", DateTime(timezone=False), primary_key=True),
    Column("readings", BigInteger, nullable=False),
    CheckConstraint("readings > 0", name="meter_snapshot_site_counts_readings"),
)

# Raw readings rolled up per meter and hour. A continuous aggregate (real-time) where
# TimescaleDB has them, else a plain view: same name, same columns on both engines. It covers
# only what raw retention keeps; public.meter_snapshot_1_h is the durable record.
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


# -- the legacy snapshot tables, in public --------------------------------------------------

_LEGACY_TYPES: dict[str, TypeEngine[object]] = {
    "timestamp without time zone": DateTime(timezone=False),
    "integer": Integer(),
    "character varying": String(),
    "double precision": DOUBLE_PRECISION(),
    "real": REAL(),
    "boolean": Boolean(),
}


def _legacy(declared: Declared, *additions: Column[object]) -> Table:
    """The declared legacy columns, as ts0001 creates them, then this project's additions."""
    columns = [Column(c.name, _LEGACY_TYPES[c.type], nullable=c.null,
                      server_default=None if c.default is None else text(c.default))
               for c in declared.columns]
    return Table(declared.name, metadata, *columns, *additions,
                 PrimaryKeyConstraint(*declared.primary_key), schema=LEGACY_SCHEMA)


# One row per meter and hour (created_at: the whole UTC hour, as timestamp). The snapshot job
# (timeseries/hourly.py) builds it from ts.meter_readings; on an adopted database the legacy
# writers keep writing it too, and the build never changes what they wrote.
meter_snapshot_1_h = _legacy(
    METER_SNAPSHOT_1_H,
    _kwh("consumption_kwh_exact"),  # null = unknown (a gap), never a guessed zero
    _kwh("counter_kwh_exact"),
    _kwh("kwh_credit_available_exact"),
    Column("is_estimated", Boolean),
    Column("reading_count", Integer),
    _tz("built_at"),  # when the build last wrote the measures; null: never (a legacy row)
    Column("inserted_by_build", Boolean),  # null: a legacy writer inserted the row
)

# Orders copied from the transactional plane (sync-orders), keyed (order_id, created_at).
order_snapshots = _legacy(
    ORDER_SNAPSHOTS,
    Column("order_type", Text),
    _tz("updated_at"),
    _tz("synced_at"),
    Column("amount_exact", Numeric),
    Column("tariff_exact", Numeric),
)

# Daily figures per grid (grid-daily); created_at is the grid's local date at 00:00.
grid_business_snapshot_1_d = _legacy(
    GRID_BUSINESS_SNAPSHOT_1_D,
    Column("timezone", Text),
    Column("estimated_hours", Integer),
    Column("active_meter_count", Integer),
    Column("completed_order_count", Integer),
    Column("total_consumption_kwh_exact", Numeric),
    Column("energy_topup_revenue_exact", Numeric),
    Column("energy_topup_currency", Text),
    _tz("built_at"),
)

# Tables with time partitions (native) or chunks (TimescaleDB), with their time column.
TIME_COLUMNS = {"meter_readings": "ts", "meter_snapshot_1_h": "created_at",
                "order_snapshots": "created_at", "grid_business_snapshot_1_d": "created_at"}
