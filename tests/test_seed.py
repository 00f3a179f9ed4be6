"""The demo data: deterministic, realistic, internally consistent."""

from __future__ import annotations

import psycopg
import pytest

from nxt_cli.migrate import migrate
from nxt_cli.seed import seed

pytestmark = pytest.mark.db

FINGERPRINT_SQL = """
select md5(string_agg(t, '|' order by t)) from (
  select format('o%s/%s/%s', id, name, organization_type) t from public.organizations
  union all select format('g%s/%s/%s/%s', id, name, kwh_tariff, timezone) from public.grids
  union all select format('c%s/%s/%s/%s', id, grid_id, is_hidden_from_reporting, created_at)
    from public.customers
  union all select format('a%s/%s', id, full_name) from public.accounts
  union all select format('m%s/%s/%s', id, external_reference, kwh_credit_available)
    from public.meters
  union all select format('r%s/%s/%s/%s/%s', id, amount, order_status, meta_order_type,
    created_at) from public.orders
) s
"""


def test_the_demo_data_is_deterministic(scratch) -> None:  # type: ignore[no-untyped-def]
    prints = []
    for _ in range(2):
        url = scratch.create()
        migrate(url)
        seed(url)
        with psycopg.connect(url) as conn:
            prints.append(conn.execute(FINGERPRINT_SQL).fetchone())
    assert prints[0] == prints[1]


def test_orders_cover_every_status_and_type(seeded_db: str) -> None:
    with psycopg.connect(seeded_db) as conn:
        statuses = {r[0] for r in conn.execute("select distinct order_status::text from orders")}
        types = {r[0] for r in conn.execute("select distinct meta_order_type::text from orders")}
        all_statuses = set(conn.execute(
            "select enum_range(null::order_status)::text[]").fetchone()[0])
    assert statuses == all_statuses
    assert len(types) >= 5


def test_credit_equals_the_ledger_equals_completed_topups(seeded_db: str) -> None:
    with psycopg.connect(seeded_db) as conn:
        mismatches = conn.execute("""
            select count(*) from public.meters m
            left join (select meter_id, sum(kwh) kwh from public.credit_ledger group by 1) l
              on l.meter_id = m.id
            where m.kwh_credit_available <> coalesce(l.kwh, 0)""").fetchone()
        unledgered = conn.execute("""
            select count(*) from public.orders o
            where o.order_status = 'COMPLETED' and o.meta_order_type = 'ENERGY_TOPUP'
              and not exists (select from public.credit_ledger l where l.order_id = o.id)
            """).fetchone()
    assert mismatches == (0,)
    assert unledgered == (0,)


def test_seeding_twice_does_not_duplicate(seeded_db: str) -> None:
    result = seed(seeded_db)
    assert result.skipped
    with psycopg.connect(seeded_db) as conn:
        assert conn.execute("select count(*) from public.customers").fetchone() == (1000,)
