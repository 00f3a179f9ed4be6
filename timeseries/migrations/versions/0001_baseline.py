"""The baseline: the legacy snapshot tables, exactly as the legacy time-series schema has them.

`public.meter_snapshot_1_h`, `public.order_snapshots` and `public.grid_business_snapshot_1_d`,
rendered from `timeseries/migrations/baseline.py` (columns, types, defaults, primary keys and
the `created_at desc` index). How they are stored follows the engine:

- TimescaleDB: hypertables on `created_at` with 7-day chunks and TimescaleDB's default index,
  as the legacy migrations create them (`create_hypertable(table, 'created_at')`);
- native PostgreSQL: range partitions on `created_at` (no default partition): the snapshot
  table by month, the other two by year (see timeseries/partitions.py for why); the first
  partitions come with revision ts0002, which runs on every database.

A legacy database is never migrated through this revision: `nxt db adopt` checks that its
tables match the declaration (`nxt_cli.catalog.compare_baseline`) and stamps ts0001. So
nothing but the baseline lives here; every addition of this project is a later revision,
which runs unchanged on fresh and adopted databases.

Revision ID: ts0001
Revises:
Create Date: 2026-12-02
"""

from __future__ import annotations

from dataclasses import replace

from alembic import context, op
from psycopg import sql

from migrations.baseline import create_sql, drop_sql
from timeseries.engine import (
    NATIVE,
    detect,
    disabled_features,
    driver_connection,
    engine_override,
    extension_schema,
)
from timeseries.migrations.baseline import TABLES
from timeseries.migrations.guards import refuse_on_legacy

revision = "ts0001"
down_revision = None
branch_labels = None
depends_on = None

RETENTION = ("none: the legacy snapshot tables keep every row; nothing drops their chunks or"
             " partitions")
BACKFILL = ("none on a fresh database (the tables start empty); an adopted one is stamped, not"
            " run, so its history stays as the legacy writers wrote it")
NOT_PLANNABLE = ("detects the engine (and installs TimescaleDB where it chooses it) on the live"
                 " database before it knows which tables to create")


def upgrade() -> None:
    conn = driver_connection(op.get_bind())
    override = context.config.attributes.get("timeseries_engine") or engine_override()
    found = detect(conn, override, disabled=disabled_features())
    if found.engine == NATIVE:
        partitioned = create_sql(TABLES, {}, storage=lambda t: " partition by range (created_at)")
        for statement in partitioned:
            op.execute(statement)
        return
    # TimescaleDB makes the created_at index itself, as it did for the legacy tables.
    for statement in create_sql(tuple(replace(t, indexes=()) for t in TABLES), {}):
        op.execute(statement)
    create = sql.Identifier(extension_schema(conn), "create_hypertable")
    for table in TABLES:
        conn.execute(sql.SQL("select {}(%s::regclass, 'created_at',"
                             " chunk_time_interval => interval '7 days')").format(create),
                     (f"public.{table.name}",))


def downgrade() -> None:
    refuse_on_legacy("drop the legacy snapshot tables")
    # One table a statement: TimescaleDB drops a hypertable only on its own. Its chunks, and a
    # partitioned table's partitions, go with it.
    for table in reversed(TABLES):
        for statement in drop_sql((table,), {}):
            op.execute(statement)
