"""Reporting readers (lenders, aggregators) no longer see customers of hidden or deleted grids.

customers_read let them read any customer not itself hidden, even on a grid hidden from
reporting: the customers function filtered those out, a direct query (PostgREST) did not. The
reporting branch now also requires the customer's grid to be visible to the reader, which
grids_read already decides (not hidden, not deleted).

Revision ID: 0006
Revises: 0005
Create Date: 2026-11-28
"""

from alembic import op

revision = "0006"
down_revision = "0005"
branch_labels = None
depends_on = None

UP_SQL = """
drop policy customers_read on public.customers;
create policy customers_read on public.customers for select to authenticated
  using (rls_organization_id = (select app.jwt_organization_id())
         or (select app.is_operator())
         or ((select app.is_reporting_reader()) and not is_hidden_from_reporting
             and exists (select from public.grids g where g.id = grid_id)));
"""

DOWN_SQL = """
drop policy customers_read on public.customers;
create policy customers_read on public.customers for select to authenticated
  using (rls_organization_id = (select app.jwt_organization_id())
         or (select app.is_operator())
         or ((select app.is_reporting_reader()) and not is_hidden_from_reporting));
"""


def upgrade() -> None:
    op.execute(UP_SQL)


def downgrade() -> None:
    op.execute(DOWN_SQL)
