"""Schema `app`: this project's own state and the helpers its row-level security calls.

Nothing of the project lives in the legacy tables' schema unless it must be there (a column
beside a legacy one): the legacy services and their generated types see `public` unchanged.

- `app.settings`: one row. `operator_organization_id` is the organization that sees
  everything (the legacy code hard-codes 2; the functions read OPERATOR_ORGANIZATION_ID, whose
  default is the same 2, and `nxt db adopt` writes the setting's value here);
  `plaintext_api_keys_retired_at` is set by `nxt db adopt --finish-keys`.
- `app.adoption`: one row on a database `nxt db adopt` took over from the legacy system, none on
  a fresh one. Downgrades and `nxt db reset` refuse when it has a row.
- helpers for the policies: the caller's organization from the verified JWT, whether it is the
  operator, whether it only reads reporting data (lenders, data aggregators). The type is read
  from `organizations`, never trusted from the token.

Revision ID: 0003
Revises: 0002
Create Date: 2026-12-02
"""

from alembic import op

from migrations.guards import refuse_if_adopted

revision = "0003"
down_revision = "0002"
branch_labels = None
depends_on = None

SQUAWK_EXEMPT = {
    "prefer-bigint-over-int": "operator_organization_id refers to organizations.id, an integer"
                              " in the legacy schema",
}

UP_SQL = """
create schema app;
comment on schema app is 'nxt: the data layer''s own state and row-level security helpers';
grant usage on schema app to anon, authenticated, service_role;

create table app.settings (
  singleton boolean primary key default true check (singleton),
  operator_organization_id integer not null default 2,
  plaintext_api_keys_retired_at timestamptz
);
insert into app.settings default values;

create table app.adoption (
  singleton boolean primary key default true check (singleton),
  adopted_at timestamptz not null default now(),
  baseline text not null,
  legacy_migration text,  -- the newest legacy Supabase migration the database had applied
  report jsonb not null
);

-- The caller's organization from the verified JWT; anything but a plain integer is none.
create function app.jwt_organization_id() returns bigint
language sql stable
set search_path = ''
as $$
  select case when v ~ '^[0-9]{1,18}$' then v::bigint end
  from (select auth.jwt() -> 'app_metadata' ->> 'organization_id' as v) s
$$;

create function app.jwt_organization_type() returns text
language sql stable
set search_path = ''
as $$ select auth.jwt() -> 'app_metadata' ->> 'organization_type' $$;

-- Security definer: reads app.settings and organizations, which the caller may not read.
create function app.is_operator() returns boolean
language sql stable security definer
set search_path = ''
as $$
  select coalesce((
    select true from app.settings s
      join public.organizations o on o.id = s.operator_organization_id
     where o.id = app.jwt_organization_id() and o.deleted_at is null
  ), false)
$$;

create function app.is_reporting_reader() returns boolean
language sql stable security definer
set search_path = ''
as $$
  select coalesce((
    select o.organization_type in ('LENDER', 'DATA_AGGREGATOR')
      from public.organizations o
     where o.id = app.jwt_organization_id() and o.deleted_at is null
  ), false)
$$;

revoke all on function app.jwt_organization_id(), app.jwt_organization_type(),
  app.is_operator(), app.is_reporting_reader() from public;
grant execute on function app.jwt_organization_id(), app.jwt_organization_type(),
  app.is_operator(), app.is_reporting_reader() to authenticated, service_role;
"""


def upgrade() -> None:
    op.execute(UP_SQL)


def downgrade() -> None:
    refuse_if_adopted("drop schema app")
    op.execute("drop schema app cascade")
