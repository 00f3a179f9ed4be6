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
  union all select format('g%s/%s/%s/%s', id, name, kwh_tariff_essential_service, timezone)
    from public.grids
  union all select format('c%s/%s/%s/%s', id, grid_id, is_hidden_from_reporting, created_at)
    from public.customers
  union all select format('a%s/%s', id, full_name) from public.accounts
  union all select format('m%s/%s/%s', id, external_reference, kwh_credit_available)
    from public.meters
  union all select format('r%s/%s/%s/%s/%s', id, amount, order_status, meta_order_type,
    created_at) from public.orders
  union all select format('t%s/%s/%s/%s', id, wallet_id, amount, balance_after)
    from public.transactions
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
            "select enum_range(null::order_status_enum)::text[]").fetchone()[0])
    assert statuses == all_statuses
    assert len(types) >= 5


def test_wallets_transactions_and_credit_agree_with_the_completed_orders(seeded_db: str) -> None:
    """The legacy ledger: two transactions per completed order, each wallet's balance the last
    balance_after of its transactions, each meter credited ceil(amount / tariff, 0.1 kWh) per
    completed top-up of its wallet."""
    with psycopg.connect(seeded_db) as conn:
        unpaired = conn.execute("""
            select count(*) from public.orders o where o.order_status = 'COMPLETED'
               and (select count(*) from public.transactions t where t.order_id = o.id) <> 2
            """).fetchone()
        stray = conn.execute("""
            select count(*) from public.transactions t join public.orders o on o.id = t.order_id
             where o.order_status <> 'COMPLETED'""").fetchone()
        balances = conn.execute("""
            select count(*) from public.wallets w where w.balance_exact is distinct from (
              select t.balance_after_exact from public.transactions t where t.wallet_id = w.id
               order by t.id desc limit 1) and w.balance <> 0""").fetchone()
        credit = conn.execute("""
            select count(*) from public.meters m
              left join (select w.meter_id, sum(ceil(o.amount_exact / o.tariff_exact * 10) / 10) kwh
                           from public.orders o join public.wallets w on w.id = o.receiver_wallet_id
                          where o.order_status = 'COMPLETED' and o.meta_order_type = 'ENERGY_TOPUP'
                          group by 1) c on c.meter_id = m.id
             where coalesce(m.kwh_credit_available_exact, 0) <> coalesce(c.kwh, 0)""").fetchone()
        drift = conn.execute("""
            select count(*) from public.transactions
             where amount <> amount_exact::float8 or balance_after <> balance_after_exact::float8
            """).fetchone()
    assert (unpaired, stray, balances, credit, drift) == ((0,),) * 5


def test_seeding_twice_does_not_duplicate(seeded_db: str) -> None:
    result = seed(seeded_db)
    assert result.skipped
    with psycopg.connect(seeded_db) as conn:
        assert conn.execute("select count(*) from public.customers").fetchone() == (1000,)


def test_a_fleet_of_ten_thousand_meters_seeds(scratch) -> None:  # type: ignore[no-untyped-def]
    # The benchmarks seed 10k-100k customers: the organizations' wallets once took the ids
    # 10,001 onwards, which the 10,000th meter's wallet already held.
    url = scratch.create()
    migrate(url)
    result = seed(url, customers=10_050)
    with psycopg.connect(url) as conn:
        wallets = conn.execute("select count(*) filter (where meter_id is not null),"
                               " count(*) filter (where organization_id is not null)"
                               " from public.wallets").fetchone()
    assert result.orders > 10_050 and wallets is not None
    assert wallets[0] >= 10_050 and wallets[1] >= 3
