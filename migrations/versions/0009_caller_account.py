"""The account behind a JWT, as the database has it now: `app.caller_account(user_id)`.

A token's claims are what was true when it was issued (up to an hour before). The functions
decide access from the caller's live account instead: its organization and that
organization's current type, or nothing when the account or its organization has been deleted
since. Security definer, callable by a caller who has no rights yet (anon), like
`app.api_key_lookup`; one index probe on accounts.supabase_id.

Revision ID: 0009
Revises: 0008
Create Date: 2026-12-02
"""

from alembic import op

from migrations.guards import refuse_if_adopted

revision = "0009"
down_revision = "0008"
branch_labels = None
depends_on = None

UP_SQL = """
create function app.caller_account(p_user_id uuid)
returns table (account_id integer, organization_id integer, organization_type text)
language sql stable security definer
set search_path = ''
as $$
  select a.id, o.id, o.organization_type::text
    from public.accounts a
    left join public.organizations o on o.id = a.organization_id and o.deleted_at is null
   where a.supabase_id = p_user_id and a.deleted_at is null
$$;
revoke all on function app.caller_account(uuid) from public;
grant execute on function app.caller_account(uuid) to anon, authenticated, service_role;
"""


def upgrade() -> None:
    op.execute(UP_SQL)


def downgrade() -> None:
    refuse_if_adopted("drop app.caller_account")
    op.execute("drop function app.caller_account(uuid)")
