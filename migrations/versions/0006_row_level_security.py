"""The functions' grants and row-level security policies on the baseline tables.

Additive only, so the same revision runs on a fresh database and on an adopted one: grants are
added, never revoked (an adopted database keeps the legacy grants, which are wider: Supabase's
defaults give anon and authenticated every table, the legacy policies bound them); policies
are new ones named `nxt_*`, beside the legacy ones. PostgreSQL ORs permissive policies, so on an
adopted database a caller sees what either set allows (the legacy set lets lenders read every
order and every grid, for example): the functions' own checks and filters decide what they
answer, and the policies are the backstop. The rules are written out in migrations/README.md.

On a fresh database `authenticated` may read only non-secret columns (no STS decoder keys, no
Telegram tokens, no integration secrets, no API keys or their hashes), and write only what the
orders function writes: orders, the two transactions of a top-up, wallet balances, a meter's
kWh credit, each for the operator only.

Revision ID: 0006
Revises: 0005
Create Date: 2026-12-02
"""

from alembic import op

from migrations.baseline import TABLES
from migrations.guards import one_table_at_a_time, refuse_if_adopted

revision = "0006"
down_revision = "0005"
branch_labels = None
depends_on = None

# Columns of the baseline tables nobody reads through the API: keys, tokens and secrets.
SECRET_COLUMNS = {
    "organizations": {"epicollect_contract_survey_secret", "epicollect_contract_survey_client_id"},
    "accounts": {"telegram_link_token"},
    "grids": {"telegram_response_path_token", "telegram_response_path_autopilot",
              "telegram_notification_channel_invite_link", "telegram_config"},
    "meters": {"decoder_key"},
    "api_keys": {"key"},
}
# Columns earlier revisions added that authenticated may read (api_keys.key_hash is not one).
ADDED_READABLE = {
    "orders": ("amount_exact", "tariff_exact"),
    "transactions": ("amount_exact", "balance_before_exact", "balance_after_exact"),
    "wallets": ("balance_exact",),
    "meters": ("kwh_credit_available_exact",),
    "api_keys": ("key_prefix", "name", "last_used_at"),
}

# What the orders function writes, per table; the sequences of the rows it inserts.
WRITE_GRANTS = {
    "orders": ["grant insert, update on public.orders to authenticated"],
    "transactions": ["grant insert on public.transactions to authenticated"],
    "wallets": ["grant insert (meter_id, balance, balance_exact, balance_updated_at,"
                " wallet_type, rls_organization_id), update (balance, balance_exact,"
                " balance_updated_at) on public.wallets to authenticated"],
    "meters": ["grant update (kwh_credit_available, kwh_credit_available_exact,"
               " kwh_credit_available_updated_at) on public.meters to authenticated"],
}
SEQUENCES_SQL = """
grant usage on sequence public.orders_id_seq, public.transactions_id_seq,
  public.wallets_id_seq to authenticated;
grant all on all sequences in schema public to service_role;
"""

# `(select app.f())` so PostgreSQL evaluates each helper once per query, not once per row.
ORG = "rls_organization_id = (select app.jwt_organization_id())"
OPERATOR = "(select app.is_operator())"
REPORTING = "(select app.is_reporting_reader())"

# table -> its policies (name, then the rest of `create policy <name> on <table> ...`).
POLICIES = {
    "organizations": [("nxt_organizations_read", "for select to authenticated using"
                       f" (id = (select app.jwt_organization_id()) or {OPERATOR})")],
    "accounts": [("nxt_accounts_read", "for select to authenticated using"
                  f" (organization_id = (select app.jwt_organization_id()) or {OPERATOR}"
                  " or supabase_id = (select auth.uid()))")],
    # Reporting readers see every grid, as the legacy lets lenders: the orders they may read
    # name their grid, hidden or deleted since (which grids' customers they see: below).
    "grids": [("nxt_grids_read", "for select to authenticated using"
               f" (organization_id = (select app.jwt_organization_id()) or {OPERATOR}"
               f" or {REPORTING})")],
    "dcus": [("nxt_dcus_read", f"for select to authenticated using ({ORG} or {OPERATOR})")],
    "customers": [("nxt_customers_read", "for select to authenticated using"
                   f" ({ORG} or {OPERATOR} or ({REPORTING} and not is_hidden_from_reporting"
                   " and exists (select from public.grids g where g.id = grid_id"
                   " and not g.is_hidden_from_reporting and g.deleted_at is null)))")],
    "connections": [("nxt_connections_read",
                     f"for select to authenticated using ({ORG} or {OPERATOR})")],
    "meters": [("nxt_meters_read", f"for select to authenticated using ({ORG} or {OPERATOR})"),
               ("nxt_meters_credit", f"for update to authenticated using ({OPERATOR})"
                f" with check ({OPERATOR})")],
    "wallets": [("nxt_wallets_read", f"for select to authenticated using ({ORG} or {OPERATOR})"),
                ("nxt_wallets_insert", f"for insert to authenticated with check ({OPERATOR})"),
                ("nxt_wallets_balance", f"for update to authenticated using ({OPERATOR})"
                 f" with check ({OPERATOR})")],
    "transactions": [("nxt_transactions_read",
                      f"for select to authenticated using ({ORG} or {OPERATOR})"),
                     ("nxt_transactions_insert",
                      f"for insert to authenticated with check ({OPERATOR})")],
    "orders": [("nxt_orders_read", f"for select to authenticated using ({ORG} or {OPERATOR}"
                f" or ({REPORTING} and meta_order_type = 'ENERGY_TOPUP'"
                " and order_status = 'COMPLETED' and meta_is_hidden_from_reporting is false))"),
               ("nxt_orders_insert", f"for insert to authenticated with check ({OPERATOR})"),
               ("nxt_orders_update", f"for update to authenticated using ({OPERATOR})"
                f" with check ({OPERATOR})")],
    "api_keys": [("nxt_api_keys_read", f"for select to authenticated using ({OPERATOR}"
                  " or exists (select from public.accounts a where a.id = account_id"
                  " and a.organization_id = (select app.jwt_organization_id())))")],
}


def _table_steps() -> list[list[str]]:
    """Per table: its read grant, its write grants, its policies (dropped first if there, so
    that a revision run again after stopping half way creates each exactly once)."""
    steps = []
    for table in TABLES:
        secret = SECRET_COLUMNS.get(table.name, set())
        columns = [c.name for c in table.columns if c.name not in secret]
        columns += ADDED_READABLE.get(table.name, ())
        statements = [f"grant select ({', '.join(columns)}) on public.{table.name}"
                      " to authenticated", f"grant all on public.{table.name} to service_role",
                      *WRITE_GRANTS.get(table.name, [])]
        for name, rest in POLICIES[table.name]:
            statements += [f"drop policy if exists {name} on public.{table.name}",
                           f"create policy {name} on public.{table.name} {rest}"]
        steps.append(statements)
    return steps


def upgrade() -> None:
    op.execute(SEQUENCES_SQL)
    one_table_at_a_time(_table_steps())


def downgrade() -> None:
    refuse_if_adopted("drop the functions' policies")
    op.execute(
        "do $$ declare p record; begin"
        " for p in select policyname, tablename from pg_policies"
        "  where schemaname = 'public' and policyname like 'nxt\\_%' loop"
        "  execute format('drop policy %I on public.%I', p.policyname, p.tablename);"
        " end loop; end $$"
    )
    names = ", ".join(f"public.{t.name}" for t in TABLES)
    op.execute(f"revoke all on {names} from authenticated, service_role")
    op.execute("revoke all on all sequences in schema public from authenticated, service_role")
