"""Exact amounts beside the legacy floating-point ones: `<column>_exact numeric`.

The legacy schema keeps money and energy in double precision (order amounts and tariffs,
transaction amounts and balances, wallet balances, a meter's kWh credit), where sums drift and
0.1 + 0.2 is not 0.3. This project computes with `numeric` and keeps the exact value in a column
of its own beside each legacy one; the legacy column stays, and stays right, for the legacy
readers and writers:

- a write of the exact column sets the legacy one to the nearest double (what the legacy code
  would have stored for that amount);
- a write of only the legacy column (a legacy writer) sets the exact one to the double's
  value as a decimal (`app.exact`: the shortest decimal that reads back as the same double, so
  1234.5600000000002 stays 1234.5600000000002), so the two never disagree: one truth, two
  spellings. (`double::numeric` would round to 15 digits and make 0.1 + 0.2 read back as a
  different double than the legacy stored.)

Existing rows are not rewritten (a live table is not touched row by row by a migration): their
exact column stays NULL until the row is next written, and readers use
`coalesce(x_exact, app.exact(x))`. How the legacy columns are retired: migrations/README.md.

Revision ID: 0005
Revises: 0004
Create Date: 2026-12-02
"""

from alembic import op

from migrations.guards import one_table_at_a_time, refuse_if_adopted

revision = "0005"
down_revision = "0004"
branch_labels = None
depends_on = None

# table -> the legacy double precision columns that get an exact twin.
EXACT = {
    "orders": ("amount", "tariff"),
    "transactions": ("amount", "balance_before", "balance_after"),
    "wallets": ("balance",),
    "meters": ("kwh_credit_available",),
}


# The decimal of a double: its shortest round-trip text (what PostgreSQL 12+ prints whenever
# extra_float_digits > 0, which the function pins), so that app.exact(x)::float8 = x.
EXACT_SQL = """
create or replace function app.exact(value double precision) returns numeric
language sql immutable strict parallel safe
set extra_float_digits = 1
as $$ select value::text::numeric $$;
grant execute on function app.exact(double precision) to anon, authenticated, service_role;
"""


def _sync_function(table: str, columns: tuple[str, ...]) -> str:
    steps = "\n".join(f"""
  if tg_op = 'INSERT' then
    if new.{c}_exact is not null then new.{c} := new.{c}_exact;
    else new.{c}_exact := app.exact(new.{c}); end if;
  elsif new.{c}_exact is distinct from old.{c}_exact then
    if new.{c}_exact is not null then new.{c} := new.{c}_exact; end if;
  elsif new.{c} is distinct from old.{c} then
    new.{c}_exact := app.exact(new.{c});
  end if;""" for c in columns)
    return f"""
create or replace function app.sync_{table}_exact() returns trigger
language plpgsql
set search_path = ''
as $$
begin{steps}
  return new;
end
$$"""


def _triggers(table: str, columns: tuple[str, ...]) -> list[str]:
    # The update trigger fires only when one of the pairs changes: a legacy writer updating
    # other columns of a busy table (meters) pays nothing.
    changed = " or ".join(
        f"new.{c} is distinct from old.{c} or new.{c}_exact is distinct from old.{c}_exact"
        for c in columns)
    return [
        f"create or replace trigger nxt_{table}_exact_insert before insert on public.{table}"
        f" for each row execute function app.sync_{table}_exact()",
        f"create or replace trigger nxt_{table}_exact_update before update on public.{table}"
        f" for each row when ({changed}) execute function app.sync_{table}_exact()",
    ]


def upgrade() -> None:
    op.execute(EXACT_SQL)
    # Nullable and without a default: a catalog change only, no table rewrite.
    one_table_at_a_time([
        [f"alter table public.{table} "
         + ", ".join(f"add column if not exists {c}_exact numeric" for c in columns),
         _sync_function(table, columns), *_triggers(table, columns)]
        for table, columns in EXACT.items()])


def downgrade() -> None:
    refuse_if_adopted("drop the exact amounts")
    for table, columns in EXACT.items():
        op.execute(f"drop trigger nxt_{table}_exact_insert on public.{table}")
        op.execute(f"drop trigger nxt_{table}_exact_update on public.{table}")
        op.execute(f"drop function app.sync_{table}_exact()")
        op.execute(f"alter table public.{table} "
                   + ", ".join(f"drop column {c}_exact" for c in columns))
    op.execute("drop function app.exact(double precision)")
