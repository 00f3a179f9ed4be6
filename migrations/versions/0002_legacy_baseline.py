"""The legacy baseline: the tables this data layer owns, exactly as the legacy schema has them.

Rendered from `migrations/baseline.py` (enumerations, tables, columns, keys, indexes,
row-level security on). A fresh database runs it; a legacy database is never migrated through
it: `nxt db adopt` checks that the database already holds all of it and stamps this revision.
So nothing but the baseline may live here: every addition of this project is a later revision,
which runs on fresh and adopted databases alike.

No grants: the tables belong to the migrating role until revision 0006 grants what the
functions need (an adopted database keeps the legacy grants, which are wider; see
migrations/README.md).

Revision ID: 0002
Revises: 0001
Create Date: 2026-12-02
"""

from alembic import op

from migrations.baseline import TABLES, create_sql, drop_sql
from migrations.guards import refuse_if_adopted

revision = "0002"
down_revision = "0001"
branch_labels = None
depends_on = None

SQUAWK_EXEMPT = {
    "prefer-bigint-over-int": "the legacy schema's integer keys, declared as they are: the"
                              " baseline matches the legacy tables, it does not choose them",
    "prefer-timestamp-tz": "the legacy schema's timestamp columns, declared as they are",
}


def upgrade() -> None:
    # Defaults and predicates name the enum types unqualified, as PostgreSQL prints them.
    op.execute("select set_config('search_path', 'public', true)")
    for statement in create_sql():
        op.execute(statement)
    # Supabase's default privileges grant every new table in public to anon and authenticated;
    # the baseline starts from none, and 0006 grants back only what the functions use.
    names = ", ".join(f"public.{t.name}" for t in TABLES)
    op.execute(f"revoke all on {names} from public, anon, authenticated")
    op.execute("revoke all on all sequences in schema public from public, anon, authenticated")


def downgrade() -> None:
    refuse_if_adopted("drop the legacy baseline")
    for statement in drop_sql():
        op.execute(statement)
