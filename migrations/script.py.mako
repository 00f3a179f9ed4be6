"""${message}

Revision ID: ${up_revision}
Revises: ${down_revision | comma,n}
Create Date: ${create_date}
"""
<% paired = context.get("paired_with") %>
from alembic import op  # noqa: F401 (the statements go through op.execute)

revision = ${repr(up_revision)}
down_revision = ${repr(down_revision)}
branch_labels = ${repr(branch_labels)}
depends_on = ${repr(depends_on)}
% if paired:
# The other half of this change (nxt db new --plane both); each half names the other.
PAIRED_WITH = ${repr(paired)}
% endif


def upgrade() -> None:
    # Forward-only and additive where the legacy services share the database (see
    # migrations/README.md): run unchanged on a fresh database and on an adopted one.
    ${upgrades if upgrades else "pass"}


def downgrade() -> None:
    from migrations.guards import refuse_if_adopted

    refuse_if_adopted("undo revision ${up_revision}")
    ${downgrades if downgrades else "pass"}
