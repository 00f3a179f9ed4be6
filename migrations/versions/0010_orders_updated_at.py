"""`orders.updated_at` follows every change of an order, whoever makes it.

sync-orders copies orders into the time-series plane by their `updated_at`. The legacy order
processing sets it when it writes through Supabase, but its TypeORM entity declares it a
creation date, so an order changed that way (or by hand) keeps its old `updated_at` and the
change would never be synced. An update that changes an order but not its `updated_at` now
sets it; one that sets it explicitly (the legacy services, this project's functions) keeps
the value it set, and an update that changes nothing changes nothing.

Revision ID: 0010
Revises: 0009
Create Date: 2026-12-02
"""

from alembic import op

from migrations.guards import one_table_at_a_time, refuse_if_adopted

revision = "0010"
down_revision = "0009"
branch_labels = None
depends_on = None

FUNCTION_SQL = """
create or replace function app.touch_order_updated_at() returns trigger
language plpgsql
set search_path = ''
as $$
begin
  new.updated_at := now();
  return new;
end
$$
"""
TRIGGER_SQL = """
create or replace trigger nxt_orders_updated_at before update on public.orders
  for each row
  when (new.updated_at is not distinct from old.updated_at and new is distinct from old)
  execute function app.touch_order_updated_at()
"""


def upgrade() -> None:
    op.execute(FUNCTION_SQL)
    one_table_at_a_time([[TRIGGER_SQL]])


def downgrade() -> None:
    refuse_if_adopted("drop the orders' updated_at trigger")
    op.execute("drop trigger nxt_orders_updated_at on public.orders")
    op.execute("drop function app.touch_order_updated_at()")
