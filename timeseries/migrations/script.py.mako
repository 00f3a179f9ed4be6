"""${message}

Revision ID: ${up_revision}
Revises: ${down_revision | comma,n}
Create Date: ${create_date}
"""
<% paired = context.get("paired_with") %>
from alembic import op  # noqa: F401 (the statements go through op.execute)

from timeseries.migrations.guards import refuse_on_legacy

revision = ${repr(up_revision)}
down_revision = ${repr(down_revision)}
branch_labels = ${repr(branch_labels)}
depends_on = ${repr(depends_on)}
% if paired:
# The other half of this change (nxt db new --plane both); each half names the other.
PAIRED_WITH = ${repr(paired)}
% endif

# Said before rollout (nxt check refuses a time-series revision without them): what this
# change means for how long data is kept, and for the rows already stored (is anything
# rebuilt, by what, over which range: `nxt backfill snapshots --from ... --to ...`?).
RETENTION = ""
BACKFILL = ""


def upgrade() -> None:
    # Branch on timeseries.migrations.guards.target_engine() ("timescaledb" or "native": the
    # recorded engine, or in `nxt db plan` the planned target's) rather than asking the
    # database, so that the plan is exactly what runs. Statements go through op.execute.
    ${upgrades if upgrades else "pass"}


def downgrade() -> None:
    refuse_on_legacy("undo revision ${up_revision}")
    ${downgrades if downgrades else "pass"}
