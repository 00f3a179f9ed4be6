"""Pages under row-level security get the plans the same SQL gets without it.

Two things kept the planner from the bypassing role's plan (bench/README.md, "Row-level
security"). The policies' helpers were parallel unsafe (PostgreSQL's default), and one unsafe
function anywhere in a statement keeps all of it in one process: they only read the JWT
claims and two tables, so they are marked parallel safe. And PostgreSQL consults a column's
statistics under row-level security only through leakproof operators; enum equality
(`enum_eq`) is not marked leakproof, so every `order_status = ...` or `meta_order_type = ...`
of a page was estimated at 0.5 % of the rows (13k of 620k orders, against 311k) and counted
with a one-process bitmap scan. It compares two enum OIDs and cannot fail on any input, so it
is marked leakproof, which only a superuser may do: on a database where the migrating role is
not one (Supabase's `postgres`), that step is skipped and says so. The mark lives in this
database's catalog, which pg_dump does not carry: after a restore, a superuser runs the two
`alter function ... leakproof` statements below again.

And the customers and API keys policies tested their grid or account with a correlated
`exists`. PostgreSQL runs it hashed, but while choosing the plan (PostgreSQL 14 on) it costs it
as the first of its alternatives, the subquery run again for every row: ~1.9 per customer, 750
times a plain comparison, so the operator's count took a bitmap scan per grid instead of one
sequential scan (103 ms against 38 ms at 100k customers). The same test as an uncorrelated
`grid_id in (select ...)` (Supabase's guidance: no join to the row in a policy) reads the same
rows under the same row-level security of grids and accounts, and is costed once per query.

Revision ID: 0011
Revises: 0010
Create Date: 2026-12-03
"""

from alembic import op

from migrations.guards import one_table_at_a_time, refuse_if_adopted

revision = "0011"
down_revision = "0010"
branch_labels = None
depends_on = None

HELPERS = ("app.jwt_organization_id()", "app.jwt_organization_type()", "app.is_operator()",
           "app.is_reporting_reader()")
# policy -> (table, the USING expression 0006 made, the one this revision makes). Each keeps its
# meaning: the subquery runs as the caller, under the grids' or the accounts' own policies.
POLICIES = {
    "nxt_customers_read": (
        "customers",
        "rls_organization_id = (select app.jwt_organization_id()) or (select app.is_operator())"
        " or ((select app.is_reporting_reader()) and not is_hidden_from_reporting"
        " and exists (select from public.grids g where g.id = grid_id"
        " and not g.is_hidden_from_reporting and g.deleted_at is null))",
        "rls_organization_id = (select app.jwt_organization_id()) or (select app.is_operator())"
        " or ((select app.is_reporting_reader()) and not is_hidden_from_reporting"
        " and grid_id in (select g.id from public.grids g"
        " where not g.is_hidden_from_reporting and g.deleted_at is null))"),
    "nxt_api_keys_read": (
        "api_keys",
        "(select app.is_operator()) or exists (select from public.accounts a"
        " where a.id = account_id and a.organization_id = (select app.jwt_organization_id()))",
        "(select app.is_operator()) or account_id in (select a.id from public.accounts a"
        " where a.organization_id = (select app.jwt_organization_id()))"),
}
ENUM_EQUALITY = ("pg_catalog.enum_eq(anyenum, anyenum)", "pg_catalog.enum_ne(anyenum, anyenum)")

# A DO block: alembic's offline SQL and every engine run the same statement, and the check of
# the migrating role happens where the statement runs.
LEAKPROOF_SQL = """
do $$
begin
  if (select rolsuper from pg_roles where rolname = current_user) then
    {statements}
  else
    raise notice 'not a superuser: enum equality stays non-leakproof, so pages under'
      ' row-level security are planned without column statistics (bench/README.md)';
  end if;
end
$$
"""


def _leakproof(mark: str) -> str:
    return LEAKPROOF_SQL.format(statements="\n    ".join(
        f"alter function {f} {mark};" for f in ENUM_EQUALITY))


def _policies(which: int) -> None:
    one_table_at_a_time([[f"alter policy {name} on public.{spec[0]} using ({spec[which]})"]
                         for name, spec in POLICIES.items()])


def upgrade() -> None:
    for helper in HELPERS:
        op.execute(f"alter function {helper} parallel safe")
    op.execute(_leakproof("leakproof"))
    _policies(2)


def downgrade() -> None:
    refuse_if_adopted("mark the policies' helpers parallel unsafe again")
    _policies(1)
    op.execute(_leakproof("not leakproof"))
    for helper in HELPERS:
        op.execute(f"alter function {helper} parallel unsafe")
