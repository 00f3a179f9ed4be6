"""Create what a Supabase database already has, only where it is absent.

Roles anon, authenticated, service_role (and authenticator, supabase_auth_admin), schema auth
with auth.users, auth.uid(), auth.role(), auth.jwt(). On a real Supabase database every
statement here finds its object and does nothing, so the same revisions apply to both.

Revision ID: 0001
Revises:
Create Date: 2026-11-27
"""

from alembic import op

revision = "0001"
down_revision = None
branch_labels = None
depends_on = None

SQUAWK_EXEMPT = {
    "prefer-text-field": "auth.users as Supabase defines it (varchar columns are its shape, not"
                         " ours); created only where the platform has not already",
}

# Marks an auth schema this revision created, so the downgrade drops only its own.
AUTH_MARKER = "nxt bootstrap: stand-in for Supabase Auth"

ROLES_SQL = """
do $$
declare
  spec record;
begin
  for spec in
    select * from (values
      ('anon', 'nologin noinherit'),
      ('authenticated', 'nologin noinherit'),
      ('service_role', 'nologin noinherit bypassrls'),
      ('authenticator', 'login noinherit'),
      ('supabase_auth_admin', 'nologin noinherit')
    ) as r(name, options)
  loop
    if not exists (select from pg_roles where rolname = spec.name) then
      begin
        execute format('create role %I %s', spec.name, spec.options);
      exception when duplicate_object or unique_violation then
        null;  -- created meanwhile by a migration of another database in the same cluster
      end;
    end if;
  end loop;
end
$$;
"""

# authenticator is PostgREST's login role; it may switch to the three request roles only.
GRANTS_SQL = """
do $$
begin
  grant anon, authenticated, service_role to authenticator;
  if not (select rolsuper from pg_roles where rolname = current_user) then
    execute format('grant anon, authenticated, service_role to %I', current_user);
  end if;
exception when others then
  raise notice 'role grants skipped: %', sqlerrm;
end
$$;
"""

AUTH_SQL = f"""
do $$
begin
  if not exists (select from pg_namespace where nspname = 'auth') then
    create schema auth;
    comment on schema auth is '{AUTH_MARKER}';
  end if;
end
$$;

create table if not exists auth.users (
  id uuid primary key,
  aud varchar(255),
  role varchar(255),
  email varchar(255),
  raw_app_meta_data jsonb not null default '{{}}'::jsonb,
  raw_user_meta_data jsonb not null default '{{}}'::jsonb,
  created_at timestamptz not null default now(),
  updated_at timestamptz not null default now()
);

do $$
begin
  if to_regprocedure('auth.uid()') is null then
    create function auth.uid() returns uuid
    language sql stable
    as $f$
      select nullif(
        coalesce(
          nullif(current_setting('request.jwt.claim.sub', true), ''),
          nullif(current_setting('request.jwt.claims', true), '')::jsonb ->> 'sub'
        ), ''
      )::uuid
    $f$;
  end if;
  if to_regprocedure('auth.role()') is null then
    create function auth.role() returns text
    language sql stable
    as $f$
      select coalesce(
        nullif(current_setting('request.jwt.claim.role', true), ''),
        nullif(current_setting('request.jwt.claims', true), '')::jsonb ->> 'role'
      )::text
    $f$;
  end if;
  if to_regprocedure('auth.jwt()') is null then
    create function auth.jwt() returns jsonb
    language sql stable
    as $f$
      select coalesce(
        nullif(current_setting('request.jwt.claim', true), ''),
        nullif(current_setting('request.jwt.claims', true), '')
      )::jsonb
    $f$;
  end if;
end
$$;

grant usage on schema auth to anon, authenticated, service_role;
grant execute on function auth.uid(), auth.role(), auth.jwt()
  to anon, authenticated, service_role;
"""

DOWNGRADE_SQL = f"""
do $$
begin
  if obj_description('auth'::regnamespace, 'pg_namespace') = '{AUTH_MARKER}' then
    drop schema auth cascade;
  end if;
end
$$;
"""


def upgrade() -> None:
    op.execute(ROLES_SQL)
    op.execute(GRANTS_SQL)
    op.execute(AUTH_SQL)


def downgrade() -> None:
    # Roles are shared by every database of the cluster (and are Supabase's own on the
    # platform), so they stay; only an auth schema this revision created is dropped.
    op.execute(DOWNGRADE_SQL)
