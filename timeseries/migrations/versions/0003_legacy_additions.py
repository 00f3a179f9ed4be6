"""What this project records beside the legacy columns of the three snapshot tables.

Additive only, and only what is cheap and safe on a big live hypertable with legacy writers:
nullable columns without a default, which PostgreSQL (and TimescaleDB, chunk by chunk) adds as
a catalog change: no row is rewritten, no index is built, no legacy column is dropped, renamed
or retyped, and rows written before stay exactly as they are (NULL in the new columns). The
legacy writers name their columns in every insert, so they never notice.

`meter_snapshot_1_h` (the hourly build, timeseries/hourly.py):
- consumption_kwh_exact, counter_kwh_exact, kwh_credit_available_exact numeric(14, 4): the
  exact values; the legacy columns (double precision, real: a counter of 12345.6789 kWh does
  not survive `real`) get the nearest float of them. They are what the row says once raw
  readings are past retention.
- is_estimated, reading_count: how the hour was measured.
- built_at: when the build last wrote the row's measures; NULL: never (a legacy row).
- inserted_by_build: true when the build inserted the row, so it may delete it again when the
  hour no longer has data; NULL on rows a legacy writer inserted, which it never deletes.

`order_snapshots` (sync-orders): order_type (the legacy table has none, and revenue is energy
top-ups only), updated_at (the order's, for newest-wins upserts), synced_at, amount_exact and
tariff_exact (the legacy columns are double precision).

`grid_business_snapshot_1_d` (grid-daily): timezone (the day is local to it), estimated_hours,
active_meter_count, completed_order_count, total_consumption_kwh_exact,
energy_topup_revenue_exact, energy_topup_currency (the currency when every top-up of the day
had the same one: the legacy sum does not say), built_at.

Each ALTER takes an ACCESS EXCLUSIVE lock on its table (and each chunk) for a moment. Waiting
for it behind a long legacy transaction would queue every legacy writer behind the ALTER, so
each table is altered in a transaction of its own, with a short lock_timeout, and retried until
it gets the lock: the revision never holds one table's lock while waiting for another's (so it
cannot close a lock cycle with a legacy writer), and a retry holds nothing. The steps are
idempotent (`add column if not exists`): a revision stopped half way runs again whole.

Revision ID: ts0003
Revises: ts0002
Create Date: 2026-12-02
"""

from __future__ import annotations

import os
import time

import psycopg
from alembic import op
from psycopg import errors, sql

from timeseries.engine import driver_connection
from timeseries.migrations.guards import refuse_on_legacy

revision = "ts0003"
down_revision = "ts0002"
branch_labels = None
depends_on = None

RETENTION = "none: it adds nullable columns; no row is dropped and no policy changes"
BACKFILL = ("none required: rows written before stay NULL in the new columns, which the readers"
            " treat as a legacy row; `nxt backfill snapshots --from ... --to ...` fills them for"
            " a range where raw readings are still kept")
NOT_PLANNABLE = ("alters each table in a transaction of its own with a short lock_timeout,"
                 " retried until it gets the lock: a loop on the live database, not a script")

ADDITIONS: dict[str, tuple[tuple[str, str], ...]] = {
    "meter_snapshot_1_h": (
        ("consumption_kwh_exact", "numeric(14, 4)"),
        ("counter_kwh_exact", "numeric(14, 4)"),
        ("kwh_credit_available_exact", "numeric(14, 4)"),
        ("is_estimated", "boolean"),
        ("reading_count", "integer"),
        ("built_at", "timestamp with time zone"),
        ("inserted_by_build", "boolean"),
    ),
    "order_snapshots": (
        ("order_type", "text"),
        ("updated_at", "timestamp with time zone"),
        ("synced_at", "timestamp with time zone"),
        ("amount_exact", "numeric"),
        ("tariff_exact", "numeric"),
    ),
    "grid_business_snapshot_1_d": (
        ("timezone", "text"),
        ("estimated_hours", "integer"),
        ("active_meter_count", "integer"),
        ("completed_order_count", "integer"),
        ("total_consumption_kwh_exact", "numeric"),
        ("energy_topup_revenue_exact", "numeric"),
        ("energy_topup_currency", "text"),
        ("built_at", "timestamp with time zone"),
    ),
}

LOCK_TIMEOUT = "2s"
ATTEMPTS = int(os.environ.get("TIMESERIES_ALTER_ATTEMPTS") or 30)


def _alter(conn: psycopg.Connection, statement: sql.Composable) -> None:
    """`statement` in a transaction of its own (the connection is in autocommit), retried
    while the table's lock cannot be had within LOCK_TIMEOUT."""
    for attempt in range(1, ATTEMPTS + 1):
        try:
            with conn.transaction():
                conn.execute("select set_config('lock_timeout', %s, true)", (LOCK_TIMEOUT,))
                conn.execute(statement)
            return
        except (errors.LockNotAvailable, errors.DeadlockDetected):
            if attempt == ATTEMPTS:
                raise
            time.sleep(min(attempt, 5))


def _each_table(step: str) -> None:
    """`step` (`add` or `drop`) on every table, one table a transaction."""
    with op.get_context().autocommit_block():
        conn = driver_connection(op.get_bind())
        for table, columns in ADDITIONS.items():
            changes = [sql.SQL("add column if not exists {} {}").format(
                           sql.Identifier(name), sql.SQL(typ)) if step == "add"
                       else sql.SQL("drop column if exists {}").format(sql.Identifier(name))
                       for name, typ in columns]
            _alter(conn, sql.SQL("alter table {} ").format(sql.Identifier("public", table))
                   + sql.SQL(", ").join(changes))


def upgrade() -> None:
    _each_table("add")


def downgrade() -> None:
    refuse_on_legacy("drop this project's columns of the legacy snapshot tables")
    _each_table("drop")
