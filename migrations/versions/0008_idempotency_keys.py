"""Idempotency keys for POST requests (IETF idempotency-key draft, Stripe's practice).

A key is scoped to the caller (`app.request_scope()`, derived from the verified claims in the
database, never sent by the client), so two callers cannot collide. Rows are kept for at least
24 hours (`expires_at`); an expired key may be used again.

Revision ID: 0008
Revises: 0007
Create Date: 2026-11-27
"""

from alembic import op

from migrations.guards import refuse_if_adopted

revision = "0008"
down_revision = "0007"
branch_labels = None
depends_on = None

SQUAWK_EXEMPT = {
    "prefer-bigint-over-int": "status_code holds an HTTP status (100-599)",
}

UP_SQL = """
create function app.request_scope() returns text
language sql stable
set search_path = ''
as $$
  select case
    when auth.role() = 'service_role' then 'role:service_role'
    when (auth.jwt() -> 'app_metadata' ->> 'api_key_id') is not null
      then 'api_key:' || (auth.jwt() -> 'app_metadata' ->> 'api_key_id')
    when auth.uid() is not null then 'user:' || auth.uid()::text
    else 'role:' || coalesce(auth.role(), 'anon')
  end
$$;
revoke all on function app.request_scope() from public;
grant execute on function app.request_scope() to authenticated, service_role;

create table app.idempotency_keys (
  scope text not null default app.request_scope(),
  key text not null check (length(key) between 1 and 255),
  request_hash bytea not null,
  state text not null default 'running' check (state in ('running', 'done')),
  status_code integer,
  response text,  -- the exact bytes answered, so a replay is identical
  created_at timestamptz not null default now(),
  locked_at timestamptz not null default now(),
  expires_at timestamptz not null default now() + interval '24 hours',
  primary key (scope, key)
);
create index idempotency_keys_expires_at on app.idempotency_keys (expires_at);

alter table app.idempotency_keys enable row level security;
create policy idempotency_keys_own on app.idempotency_keys for all to authenticated
  using (scope = (select app.request_scope()))
  with check (scope = (select app.request_scope()));
grant select, insert, update, delete on app.idempotency_keys to authenticated;
grant all on app.idempotency_keys to service_role;
"""

DOWN_SQL = """
drop table if exists app.idempotency_keys;
drop function if exists app.request_scope();
"""


def upgrade() -> None:
    op.execute(UP_SQL)


def downgrade() -> None:
    refuse_if_adopted("drop the idempotency records")
    op.execute(DOWN_SQL)
