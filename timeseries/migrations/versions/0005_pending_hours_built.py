"""The shards' ledger of pending hours, so a sharded snapshot-meters drains the queue only when
every shard has built an entry.

snapshot-meters can run as N parallel invocations, shard k of n building the meters with
`meter_id % n = k` (functions/snapshot-meters/snapshot.py). `ts.pending_hours` says which hours
to build, but not for which shard: deleting an entry when one shard has built its meters would
leave the other shards' meters of that hour unbuilt. Each shard records here, per queue entry,
that it built it (in the transaction that built it), and the shard that completes the set of n
deletes the entry, which deletes its ledger rows with it (on delete cascade).

The ledger is keyed by the queue entry, not by the hour: an entry queued for an hour after one
shard built that hour carries readings that shard has not seen, so it must build the hour again.

A new, empty table in schema `ts`: no legacy table is touched. The foreign key locks nothing of
`ts.pending_hours` beyond the rows a ledger row names (FOR KEY SHARE, which ingest's inserts
never wait for).

Revision ID: ts0005
Revises: ts0004
Create Date: 2026-12-04
"""

from alembic import op

from timeseries.migrations.guards import refuse_on_legacy

revision = "ts0005"
down_revision = "ts0004"
branch_labels = None
depends_on = None

RETENTION = ("none on readings or snapshots; a ledger row lives as long as its ts.pending_hours"
             " entry (deleted with it, on delete cascade): the table is empty whenever no"
             " sharded run is part way through an hour")
BACKFILL = ("none required: a new, empty table; entries queued before it are built by the next"
            " run, sharded (each shard records them from then on) or not")
SQUAWK_EXEMPT = {
    "prefer-bigint-over-int": "shards and shard are shard numbers (a handful of parallel"
                              " invocations), checked to be below 1,000",
}


def upgrade() -> None:
    op.execute("""
create table if not exists ts.pending_hours_built (
    pending_id bigint not null references ts.pending_hours (id) on delete cascade,
    hour timestamptz not null,
    shards integer not null,
    shard integer not null,
    built_at timestamptz not null default now(),
    primary key (pending_id, shards, shard),
    constraint pending_hours_built_shard check (shards between 1 and 999 and shard >= 0
        and shard < shards)
)""")


def downgrade() -> None:
    refuse_on_legacy("undo revision ts0005")
    op.execute("drop table if exists ts.pending_hours_built")
