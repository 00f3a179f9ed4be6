"""API keys looked up by hash: `api_keys.key_hash` beside the legacy plain-text `key`.

The legacy system stores keys in plain text (`api_keys.key`) and its readers compare them as
such. Here every key is kept as `sha256(key)` and found by that hash (`app.api_key_lookup`), so
nothing that answers requests ever reads a plaintext key. During the cutover both must work:

- existing keys are hashed in place (`key_hash` filled from `key`), so every legacy key
  works at once with the functions;
- a trigger hashes every key a legacy writer inserts or changes, so a key issued by the
  legacy services while they still run works too;
- keys issued by this project store only the hash (`key` NULL) and a display prefix.

The plaintext is retired by `nxt db adopt --finish-keys` once no legacy reader needs it: it
sets `app.settings.plaintext_api_keys_retired_at` and clears `key`; from then on the trigger
clears the plaintext of any key still written by a legacy writer, after hashing it.

Revision ID: 0004
Revises: 0003
Create Date: 2026-12-02
"""

from alembic import op

from migrations.guards import refuse_if_adopted

revision = "0004"
down_revision = "0003"
branch_labels = None
depends_on = None

SQUAWK_EXEMPT = {
    "constraint-missing-not-valid": "api_keys holds one row per issued key (hundreds): the"
                                    " check scans them in milliseconds under the brief lock",
    "require-concurrent-index-creation": "the same few hundred rows: the build takes"
                                         " milliseconds, and CONCURRENTLY cannot run inside the"
                                         " revision's transaction, which also backfills the hashes",
}

UP_SQL = """
alter table public.api_keys
  add column key_hash bytea,
  add column key_prefix text,
  add column name text,
  add column last_used_at timestamptz;
alter table public.api_keys add constraint api_keys_key_hash_sha256
  check (key_hash is null or length(key_hash) = 32);
-- The table is small (one row per issued key): a plain build takes no noticeable lock.
create unique index api_keys_key_hash on public.api_keys (key_hash);

create function app.hash_api_key() returns trigger
language plpgsql security definer
set search_path = ''
as $$
begin
  if new.key is not null then
    new.key_hash := sha256(convert_to(new.key, 'UTF8'));
    if (select s.plaintext_api_keys_retired_at is not null from app.settings s) then
      new.key := null;
    end if;
  end if;
  return new;
end
$$;
revoke all on function app.hash_api_key() from public;

create trigger nxt_api_keys_hash_key before insert or update of key on public.api_keys
  for each row execute function app.hash_api_key();

update public.api_keys set key_hash = sha256(convert_to(key, 'UTF8'))
 where key is not null and key_hash is null;

-- Keys are looked up by hash only, by a caller that has no JWT yet (anon). A key of a deleted
-- account or organization is not found (the legacy lookup did not check; see the README).
create function app.api_key_lookup(p_key_hash bytea)
returns table (
  api_key_id integer, account_id integer, supabase_id uuid, organization_id integer,
  organization_type text, is_locked boolean
)
language plpgsql volatile security definer
set search_path = ''
as $$
begin
  return query
    select k.id, k.account_id, a.supabase_id, a.organization_id, o.organization_type::text,
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

DOWN_SQL = """
drop function app.api_key_lookup(bytea);
drop trigger nxt_api_keys_hash_key on public.api_keys;
drop function app.hash_api_key();
alter table public.api_keys drop column key_hash, drop column key_prefix, drop column name,
  drop column last_used_at;
"""


def upgrade() -> None:
    op.execute(UP_SQL)


def downgrade() -> None:
    refuse_if_adopted("drop the API key hashes")
    op.execute(DOWN_SQL)
