"""Row-level security on every tenant table, least-privilege grants, API-key lookup.

The rules are written out in migrations/README.md. In short: the operator organization sees
everything; members of an organization see their organization's rows; lenders and data
aggregators see only rows that are not hidden from reporting, and never accounts (names), so
what they get is the functions' masked output. anon sees nothing. service_role bypasses RLS.

Revision ID: 0003
Revises: 0002
Create Date: 2026-11-27
"""

from alembic import op

revision = "0003"
down_revision = "0002"
branch_labels = None
depends_on = None

TENANT_TABLES = (
    "organizations", "accounts", "grids", "dcus", "customers", "connections", "meters",
    "orders", "credit_ledger", "api_keys",
)

HELPERS_SQL = """
create schema app;
comment on schema app is 'nxt: helpers for row-level security and trusted lookups';
grant usage on schema app to anon, authenticated, service_role;

-- The caller's organization from the verified JWT; anything but a plain integer is no org.
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

-- Security definer: decides from organizations itself, which the caller may not read whole.
create function app.is_operator() returns boolean
language sql stable security definer
set search_path = ''
as $$
  select coalesce((
    select o.is_operator from public.organizations o
    where o.id = app.jwt_organization_id() and o.deleted_at is null
  ), false)
$$;

-- Lenders and data aggregators read reporting data only. The organization type is read from
-- the table, not trusted from the token alone, so a changed type takes effect at once.
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

-- API keys are looked up by hash only (never by prefix), by a caller that has no JWT yet.
create function app.api_key_lookup(p_key_hash bytea)
returns table (
  api_key_id bigint, account_id bigint, supabase_id uuid, organization_id bigint,
  organization_type public.organization_type, is_locked boolean
)
language plpgsql volatile security definer
set search_path = ''
as $$
begin
  return query
    select k.id, k.account_id, a.supabase_id, a.organization_id, o.organization_type,
           k.is_locked
    from public.api_keys k
    join public.accounts a on a.id = k.account_id and a.deleted_at is null
    join public.organizations o on o.id = a.organization_id and o.deleted_at is null
    where k.key_hash = p_key_hash;
  -- At most one write a minute per key, so a busy key does not turn reads into writes.
  update public.api_keys k set last_used_at = now()
   where k.key_hash = p_key_hash and not k.is_locked
     and (k.last_used_at is null or k.last_used_at < now() - interval '1 minute');
end
$$;
revoke all on function app.api_key_lookup(bytea) from public;
grant execute on function app.api_key_lookup(bytea) to anon, authenticated, service_role;
"""

GRANTS_SQL = """
revoke all on all tables in schema public from anon, authenticated;
revoke all on all sequences in schema public from anon, authenticated;
grant usage on schema public to anon, authenticated, service_role;

grant select on public.organizations, public.accounts, public.grids, public.dcus,
  public.customers, public.connections, public.meters, public.orders, public.credit_ledger
  to authenticated;
-- The key hash is not readable by anyone but service_role.
grant select (id, key_prefix, name, is_locked, account_id, rls_organization_id, created_at,
  last_used_at) on public.api_keys to authenticated;
grant insert, update on public.orders to authenticated;
grant insert on public.credit_ledger to authenticated;
grant update (kwh_credit_available) on public.meters to authenticated;
grant usage on all sequences in schema public to authenticated;

grant all on all tables in schema public to service_role;
grant all on all sequences in schema public to service_role;
"""

POLICIES_SQL = """
create policy organizations_read on public.organizations for select to authenticated
  using (id = (select app.jwt_organization_id()) or (select app.is_operator()));

create policy accounts_read on public.accounts for select to authenticated
  using (organization_id = (select app.jwt_organization_id())
         or (select app.is_operator())
         or supabase_id = (select auth.uid()));

create policy grids_read on public.grids for select to authenticated
  using (organization_id = (select app.jwt_organization_id())
         or (select app.is_operator())
         or ((select app.is_reporting_reader())
             and not is_hidden_from_reporting and deleted_at is null));

create policy dcus_read on public.dcus for select to authenticated
  using (rls_organization_id = (select app.jwt_organization_id())
         or (select app.is_operator()));

create policy customers_read on public.customers for select to authenticated
  using (rls_organization_id = (select app.jwt_organization_id())
         or (select app.is_operator())
         or ((select app.is_reporting_reader()) and not is_hidden_from_reporting));

create policy connections_read on public.connections for select to authenticated
  using (rls_organization_id = (select app.jwt_organization_id())
         or (select app.is_operator()));

create policy meters_read on public.meters for select to authenticated
  using (rls_organization_id = (select app.jwt_organization_id())
         or (select app.is_operator()));
create policy meters_credit on public.meters for update to authenticated
  using ((select app.is_operator())) with check ((select app.is_operator()));

create policy orders_read on public.orders for select to authenticated
  using (rls_organization_id = (select app.jwt_organization_id())
         or (select app.is_operator())
         or ((select app.is_reporting_reader())
             and meta_order_type = 'ENERGY_TOPUP' and order_status = 'COMPLETED'
             and not meta_is_hidden_from_reporting));
create policy orders_write on public.orders for insert to authenticated
  with check ((select app.is_operator()));
create policy orders_update on public.orders for update to authenticated
  using ((select app.is_operator())) with check ((select app.is_operator()));

create policy credit_ledger_read on public.credit_ledger for select to authenticated
  using (rls_organization_id = (select app.jwt_organization_id())
         or (select app.is_operator()));
create policy credit_ledger_write on public.credit_ledger for insert to authenticated
  with check ((select app.is_operator()));

create policy api_keys_read on public.api_keys for select to authenticated
  using (rls_organization_id = (select app.jwt_organization_id())
         or (select app.is_operator()));
"""


def upgrade() -> None:
    op.execute(HELPERS_SQL)
    op.execute(GRANTS_SQL)
    for table in TENANT_TABLES:
        # Not FORCEd: the owner runs migrations and the security-definer helpers, which read
        # organizations under its rights; forcing would make those helpers recurse into the
        # policies that call them.
        op.execute(f"alter table public.{table} enable row level security")
    op.execute(POLICIES_SQL)


def downgrade() -> None:
    for table in TENANT_TABLES:
        op.execute(f"alter table public.{table} disable row level security")
        op.execute(
            "do $$ declare p record; begin"
            f" for p in select policyname from pg_policies where schemaname = 'public'"
            f" and tablename = '{table}' loop"
            f" execute format('drop policy %I on public.{table}', p.policyname);"
            " end loop; end $$"
        )
    op.execute("drop schema app cascade")
