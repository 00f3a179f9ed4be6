"""Kept counts of the hourly snapshot's visible rows, so meter-consumption's `total` never counts
its window.

meter-consumption answers its first page with the number of rows in the window (the legacy
envelope's `total`). Counting them costs ~0.1 s per million rows, so a wide window on a big
operator's history passes the statement timeout (bench/README.md, "Growth"). These two tables
hold, per whole UTC hour of `public.meter_snapshot_1_h`, how many rows meter-consumption would
list there (visible, with a real consumption: timeseries/counts.py says which), in all and per
site (the lower-cased grid name, as the function's `site` filter compares it). A row in
`meter_snapshot_counts` means the hour was counted, zero included; an hour without one is
counted live by the reader, so the total is right from the first minute, only slower.

Both are new, empty tables in schema `ts`: no legacy table is touched, no lock is taken on one.
The snapshot job fills them (timeseries/counts.py): each build window recounts its hours in the
build's transaction, and each run counts hours not counted yet, a month of history at a time.

Revision ID: ts0004
Revises: ts0003
Create Date: 2026-12-02
"""

from alembic import op

from timeseries.migrations.guards import refuse_on_legacy

revision = "ts0004"
down_revision = "ts0003"
branch_labels = None
depends_on = None

RETENTION = ("none on the snapshots; the counts are kept as long as the hourly snapshot (forever),"
             " one row per hour and one per hour and site")
BACKFILL = ("none required: an hour without a count is counted live by meter-consumption; the"
            " snapshot-meters job counts the uncounted history a month of hours per run"
            " (timeseries/counts.py, acatch_up), newest first")
SQUAWK_EXEMPT = {
    "prefer-timestamptz": "hour is compared with the legacy created_at, a timestamp without time"
                          " zone holding UTC: the same type, so no comparison goes through the"
                          " session's TimeZone",
}


def upgrade() -> None:
    op.execute("""
create table if not exists ts.meter_snapshot_counts (
    hour timestamp without time zone primary key,
    readings bigint not null,
    first_at timestamp without time zone,
    last_at timestamp without time zone,
    counted_at timestamp with time zone not null default now(),
    constraint meter_snapshot_counts_whole_hour check (hour = date_trunc('hour', hour)),
    constraint meter_snapshot_counts_span check (first_at >= hour and last_at >= first_at
        and last_at < hour + interval '1 hour'),
    constraint meter_snapshot_counts_readings check (readings >= 0)
)""")
    op.execute("""
create table if not exists ts.meter_snapshot_site_counts (
    site text not null,
    hour timestamp without time zone not null,
    readings bigint not null,
    primary key (site, hour),
    constraint meter_snapshot_site_counts_readings check (readings > 0)
)""")


def downgrade() -> None:
    refuse_on_legacy("undo revision ts0004")
    op.execute("drop table if exists ts.meter_snapshot_site_counts")
    op.execute("drop table if exists ts.meter_snapshot_counts")
