"""Custom access token hook: puts the caller's organization into app_metadata.

Supabase Auth calls it (`[auth.hook.custom_access_token]` in supabase/config.toml) with the
event `{"user_id", "claims", "authentication_method"}` and issues the claims it returns. The
organization comes from the account linked to the user; a user without one gets no
organization claims at all (stale ones are removed, never trusted). Other app_metadata keys
(the legacy `account_type`, which the legacy policies read) are kept as they are.

Revision ID: 0007
Revises: 0006
Create Date: 2026-11-27
"""

from alembic import op

from migrations.guards import refuse_if_adopted

revision = "0007"
down_revision = "0006"
branch_labels = None
depends_on = None

HOOK_SQL = """
create function public.custom_access_token_hook(event jsonb) returns jsonb
language plpgsql stable security definer
set search_path = ''
as $$
declare
  claims jsonb := coalesce(event -> 'claims', '{}'::jsonb);
  user_id text := event ->> 'user_id';
  org_id bigint;
  org_type text;
begin
  if jsonb_typeof(claims -> 'app_metadata') is distinct from 'object' then
    claims := jsonb_set(claims, '{app_metadata}', '{}'::jsonb);
  end if;
  claims := claims #- '{app_metadata,organization_id}' #- '{app_metadata,organization_type}';

  if user_id ~* '^[0-9a-f]{8}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{12}$' then
    select a.organization_id, o.organization_type::text
      into org_id, org_type
      from public.accounts a
      join public.organizations o on o.id = a.organization_id and o.deleted_at is null
     where a.supabase_id = user_id::uuid and a.deleted_at is null;
  end if;

  if org_id is not null then
    claims := jsonb_set(claims, '{app_metadata,organization_id}', to_jsonb(org_id));
    claims := jsonb_set(claims, '{app_metadata,organization_type}', to_jsonb(org_type));
  end if;
  return jsonb_set(event, '{claims}', claims);
end
$$;

-- Only Supabase Auth may call it; nobody reaches it through the API.
revoke all on function public.custom_access_token_hook(jsonb) from public, anon, authenticated;
grant execute on function public.custom_access_token_hook(jsonb) to supabase_auth_admin;
grant usage on schema public to supabase_auth_admin;
"""


def upgrade() -> None:
    op.execute(HOOK_SQL)


def downgrade() -> None:
    refuse_if_adopted("drop the access token hook")
    op.execute("drop function if exists public.custom_access_token_hook(jsonb)")
