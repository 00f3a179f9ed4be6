"""The functions on an adopted legacy database: they answer legacy clients as the legacy
functions do on the same rows, the legacy plain-text API keys work at once, a top-up made here
looks to a legacy reader like one the legacy system made, and the legacy readers and writers
keep working beside them (coexistence).

The legacy functions' queries are written out here as SQL: what their PostgREST selects
(`customers` with `accounts!inner` and `grids!inner`, `orders` with `grids!inner`) ask for.
"""

from __future__ import annotations

import math
import uuid
from collections.abc import Iterator
from dataclasses import dataclass
from datetime import datetime
from decimal import Decimal
from pathlib import Path
from typing import Any

import httpx
import psycopg
import pytest

from tests.conftest import Api
from tests.legacy import dataset
from tests.support.legacy_reference import legacy_answer, readings_text
from tests.support.legacy_support import (
    adopt_json,
    as_role,
    build_timeseries,
    build_transactional,
    drop,
    legacy_token,
    require_legacy_server,
    rows,
)
from tests.support.serving import serve

pytestmark = [pytest.mark.db, pytest.mark.legacy]

LEGACY_CUSTOMERS = """
select c.id, g.name from customers c join accounts a on a.id = c.account_id
  join grids g on g.id = c.grid_id
 where c.is_hidden_from_reporting = false and g.deleted_at is null
   and g.is_hidden_from_reporting = false
"""
LEGACY_ORDERS = """
select o.id, o.created_at, o.amount, o.order_status::text, o.currency::text, o.tariff, g.name
  from orders o join grids g on g.id = o.historical_grid_id
 where o.meta_is_hidden_from_reporting = false and o.meta_order_type = 'ENERGY_TOPUP'
   and o.order_status = 'COMPLETED'
"""
SERVICE = {"role": "service_role"}


@dataclass
class Stack:
    url: str
    ts_url: str
    api: Api
    reports: list[dict[str, Any]]

    def service(self) -> dict[str, str]:
        return {"Authorization": f"Bearer {self.api.token(role='service_role')}"}


@pytest.fixture(scope="module")
def stack(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Stack]:
    """Both legacy databases, with the data set, adopted by one `nxt db adopt --yes` and
    served."""
    require_legacy_server()
    url = build_transactional("legacy_served")
    ts_url = build_timeseries("legacy_ts_served")
    try:
        reports = adopt_json(url, ts_url)
        log: Path = tmp_path_factory.mktemp("adopted") / "serve.log"
        with serve(url, ts_url, log) as served:
            yield Stack(url, ts_url, served.api, reports)
    finally:
        drop(url, ts_url)


def test_one_adopt_takes_both_planes(stack: Stack) -> None:
    planes = {r["plane"]: r for r in stack.reports}
    assert set(planes) == {"transactional", "time-series"}
    for report in planes.values():
        assert report["status"] == "adopted" and report["changes"] == []
        assert report["removed"] == [] and report["rows_before"] == report["rows_after"]
    assert planes["time-series"]["stamped"] == "ts0001"
    for table, count in dataset.TS_ROW_COUNTS.items():
        assert planes["time-series"]["rows_after"][f"public.{table}"] == count, table


def lender() -> dict[str, str]:
    token = legacy_token(dataset.LENDER_USER_ID, dataset.LENDER_ORG_ID, "LENDER", "MEMBER")
    return {"Authorization": f"Bearer {token}"}


def operator() -> dict[str, str]:
    token = legacy_token(dataset.OPERATOR_ADMIN_USER_ID, dataset.OPERATOR_ORG_ID,
                         "SOLAR_DEVELOPER", "MEMBER")
    return {"Authorization": f"Bearer {token}"}


def pages(api: Api, path: str, headers: dict[str, str], size: int) -> tuple[int, list[Any]]:
    total, entries, page = None, [], 1
    while True:
        body = api.http.get(path, headers=headers, params={"page": page, "size": size}).json()
        assert body["size"] == size and body["page"] == page, body
        total = body["total"]
        assert body["total_pages"] == math.ceil(total / size)
        entries += body["entries"]
        if page >= body["total_pages"]:
            return total, entries
        page += 1


# -- the legacy listings -------------------------------------------------------------------------

def test_customers_answer_lenders_as_the_legacy_function(stack: Stack) -> None:
    legacy = rows(stack.url, LEGACY_CUSTOMERS + " order by c.id")
    assert legacy and dataset.CUSTOMERS_WITHOUT_ACCOUNT[0] not in {i for i, _ in legacy}
    total, entries = pages(stack.api, "/functions/v1/customers", lender(), 7)
    assert total == len(legacy)
    assert [(e["id"], e["grid"]) for e in entries] == legacy
    assert {e["full_name"] for e in entries} == {"*******"}


def test_customers_answer_the_operator_with_the_same_rows_and_names(stack: Stack) -> None:
    legacy = rows(stack.url, "select c.id, a.full_name from (" + LEGACY_CUSTOMERS
                  + ") l join customers c on c.id = l.id join accounts a on a.id = c.account_id"
                    " order by c.id")
    total, entries = pages(stack.api, "/functions/v1/customers", operator(), 50)
    assert total == len(legacy)
    assert [(e["id"], e["full_name"]) for e in entries] == legacy


def test_orders_answer_lenders_as_the_legacy_function(stack: Stack) -> None:
    legacy = rows(stack.url, LEGACY_ORDERS + " order by o.id")
    assert len(legacy) > 100
    total, entries = pages(stack.api, "/functions/v1/orders", lender(), 40)
    assert total == len(legacy)
    got = [(e["id"], datetime.fromisoformat(e["created_at"]), float(e["amount"]),
            e["order_status"], e["currency"], float(e["tariff"]), e["grid"]) for e in entries]
    assert got == legacy
    assert {e["customer"] for e in entries} == {"*******"}


def test_orders_answer_the_operator_with_the_same_rows_and_names(stack: Stack) -> None:
    legacy = rows(stack.url, "select l.id, o.meta_receiver_name_part_2 from (" + LEGACY_ORDERS
                  + ") l join orders o on o.id = l.id order by l.id")
    total, entries = pages(stack.api, "/functions/v1/orders", operator(), 100)
    assert total == len(legacy)
    assert [(e["id"], e["customer"]) for e in entries] == legacy


# -- the legacy API keys --------------------------------------------------------------------------

CONSUMPTION = "/functions/v1/meter-consumption"
WINDOW = {"FROM": "2026-10-01T00:00:00.000Z", "TO": "2026-10-01T23:59:59.999Z"}


@pytest.mark.parametrize(("key", "header", "status"), [
    (dataset.API_KEY_AGGREGATOR, "bearer", 200),
    (dataset.API_KEY_AGGREGATOR, "x-api-key", 200),
    (dataset.API_KEY_JWT_SHAPED, "bearer", 200),
    (dataset.API_KEY_OPERATOR, "bearer", 200),
    (dataset.API_KEY_LOCKED, "bearer", 401),
    (dataset.API_KEY_DELETED_ACCOUNT, "bearer", 401),
    (dataset.API_KEY_DELETED_ORGANIZATION, "bearer", 401),
    (dataset.API_KEY_ORPHAN, "bearer", 401),
    (dataset.API_KEY_RANDOM_STRING, "bearer", 403),  # a solar developer's: not an aggregator
    (dataset.API_KEY_AGGREGATOR + "x", "bearer", 401),
])
def test_the_legacy_plain_text_keys_work_at_once(stack: Stack, key: str, header: str,
                                                  status: int) -> None:
    headers = {"Authorization": f"Bearer {key}"} if header == "bearer" else {"X-API-Key": key}
    resp = stack.api.http.get(CONSUMPTION, headers=headers, params=WINDOW)
    assert resp.status_code == status, resp.text
    if status == 200:
        assert set(resp.json()) >= {"total", "offset", "pageLimit", "readings"}


HISTORY = ("2026-09-30T00:00:00.000Z", "2026-10-11T00:00:00.000Z")


@pytest.mark.parametrize("url", [CONSUMPTION, "/functions/v1/meter-consumption-2"])
@pytest.mark.parametrize("site", [None, *dataset.SITE_SPELLINGS])
def test_the_legacy_history_is_served_to_the_legacy_client(stack: Stack, url: str,
                                                           site: str | None) -> None:
    """The data aggregator's client, as it calls the legacy function: its plain-text key in
    `Authorization: Bearer`, FROM/TO in JavaScript's format, paging by offset. Every page is
    the legacy function's answer on the adopted history, byte for byte."""
    params: dict[str, Any] = {"FROM": HISTORY[0], "TO": HISTORY[1], "pageLimit": 1000}
    if site:
        params["site"] = site
    headers = {"Authorization": f"Bearer {dataset.API_KEY_AGGREGATOR}"}
    offset, seen = 0, 0
    while True:
        resp = stack.api.http.get(url, headers=headers, params={**params, "offset": offset})
        assert resp.status_code == 200, resp.text
        total, expected = legacy_answer(stack.ts_url, HISTORY[0], HISTORY[1], site, 1000, offset)
        assert resp.json()["total"] == total
        assert readings_text(resp.text) == expected, (url, site, offset)
        seen += len(resp.json()["readings"])
        offset += 1000
        if offset >= total:
            break
    if site is None:
        assert seen == dataset.REPORTABLE_SNAPSHOT_ROWS
    else:
        assert seen == dataset.REPORTABLE_SNAPSHOT_ROWS_BY_SITE[dataset.SITE_SPELLINGS[site]]


def test_a_key_issued_by_a_legacy_writer_after_adoption_works(stack: Stack) -> None:
    key = f"kdx_live_{uuid.uuid4().hex}"
    with psycopg.connect(stack.url) as conn:
        conn.execute("insert into public.api_keys (key, account_id) values (%s, 307)", (key,))
    resp = stack.api.http.get(CONSUMPTION, headers={"Authorization": f"Bearer {key}"},
                              params=WINDOW)
    assert resp.status_code == 200, resp.text


# -- a top-up made here, as a legacy reader sees it -----------------------------------------

def _topup(stack: Stack, meter: int, amount: str = "1500.00") -> dict[str, Any]:
    currency = rows(stack.url, "select n.currency::text from meters m join connections n"
                               " on n.id = m.connection_id where m.id = %s", (meter,))[0][0]
    resp = stack.api.http.post(
        "/functions/v1/orders", headers={**stack.service(), "Idempotency-Key": str(uuid.uuid4())},
        json={"meter_id": meter, "amount": amount, "currency": currency,
              "payment_method": "BANK_TRANSFER", "payment_channel": "USSD"})
    assert resp.status_code == 201, resp.text
    return resp.json()


def _complete(stack: Stack, order_id: int) -> httpx.Response:
    return stack.api.http.post(f"/functions/v1/orders/{order_id}/complete",
                               headers=stack.service())


LEGACY_MADE = """
select o.id from orders o join wallets s on s.id = o.sender_wallet_id
 where o.meta_order_type = 'ENERGY_TOPUP' and o.order_status = 'COMPLETED'
   and s.identifier = 'BANKING_SYSTEM' and o.meta_receiver_type = 'METER'
 order by o.id desc limit 1
"""
NOT_NULL = """
select array(select key from jsonb_each(to_jsonb(o)) where value <> 'null' and key = any(%s)
             order by key)
  from orders o where o.id = %s
"""


def test_a_topup_made_here_looks_like_one_the_legacy_made(stack: Stack) -> None:
    meter = dataset.METER_WITH_WALLET_ID
    balance = rows(stack.url, "select w.id, w.balance from wallets w where w.meter_id = %s",
                   (meter,))[0]
    bank = rows(stack.url, "select balance from wallets where id = %s",
                (dataset.BANKING_SYSTEM_WALLET_ID,))[0][0]
    order = _topup(stack, meter)
    assert order["order_status"] == "INITIALISED"
    done = _complete(stack, order["id"])
    assert done.status_code == 200, done.text
    # The same columns filled as on the newest completed public top-up the legacy made (the
    # legacy columns only: the *_exact ones are this project's).
    legacy_columns = [c for c, in rows(stack.url, "select column_name::text from"
                                       " information_schema.columns where table_name = 'orders'"
                                       " and column_name not like '%%\\_exact'")]
    [(legacy_id,)] = rows(stack.url, LEGACY_MADE.replace("desc limit 1", "asc limit 1"))
    ours = rows(stack.url, NOT_NULL, (legacy_columns, order["id"]))[0][0]
    theirs = rows(stack.url, NOT_NULL, (legacy_columns, legacy_id))[0][0]
    assert set(ours) - set(theirs) <= {"author_id"}, (ours, theirs)
    assert set(theirs) - set(ours) <= {"ussd_session_id", "author_id", "meta_author_id",
                                       "meta_author_name", "meta_author_type", "external_system",
                                       "lock_session", "external_reference"}, (ours, theirs)
    [row] = rows(stack.url, """
        select o.sender_wallet_id, o.receiver_wallet_id, o.tariff, o.tariff_type::text,
               o.meta_sender_type::text, o.meta_receiver_type::text, o.meta_receiver_id,
               o.meta_is_hidden_from_reporting, o.rls_organization_id, o.historical_grid_id,
               o.amount, o.updated_at > o.created_at
          from orders o where o.id = %s""", (order["id"],))
    tariff = dataset.GRID_TARIFFS[3][0]  # HPS meter on Oke-Odo, no tariff of its own
    assert row == (dataset.BANKING_SYSTEM_WALLET_ID, balance[0], tariff, "HPS", "BANKING_SYSTEM",
                   "METER", meter, False, dataset.GRID_ORGANIZATION[3], 3, 1500.0, True)
    # The two transactions, balances chained to each wallet's previous transaction, the
    # organization filled by the legacy trigger.
    txs = rows(stack.url, """
        select t.wallet_id, t.amount, t.balance_before, t.balance_after,
               t.transaction_status::text, t.rls_organization_id
          from transactions t where t.order_id = %s order by t.amount desc""", (order["id"],))
    assert txs == [(balance[0], 1500.0, balance[1], balance[1] + 1500.0, "SUCCESSFUL",
                    dataset.GRID_ORGANIZATION[3]),
                   (dataset.BANKING_SYSTEM_WALLET_ID, -1500.0, bank, bank - 1500.0, "SUCCESSFUL",
                    dataset.GRID_ORGANIZATION[3])]
    assert dict(rows(stack.url, "select id, balance from wallets where id in (%s, %s)",
                     (balance[0], dataset.BANKING_SYSTEM_WALLET_ID))) == {
        balance[0]: balance[1] + 1500.0, dataset.BANKING_SYSTEM_WALLET_ID: bank - 1500.0}
    kwh = Decimal(math.ceil(Decimal(1500) / Decimal(str(tariff)) * 10)) / 10
    assert Decimal(str(done.json()["kwh"])) == kwh


def test_legacy_readers_see_a_topup_made_here(stack: Stack) -> None:
    order = _topup(stack, dataset.METER_WITH_WALLET_AND_TARIFF_ID, "200.00")
    assert _complete(stack, order["id"]).status_code == 200
    # The legacy lender listing (its SQL), NXT staff through the legacy policies, Grafana.
    assert order["id"] in {r[0] for r in rows(stack.url, LEGACY_ORDERS)}
    member = {"role": "authenticated", "app_metadata": {
        "organization_id": dataset.OPERATOR_ORG_ID, "account_type": "MEMBER"}}
    assert as_role(stack.url, "authenticated", member,
                   "select count(*) from orders where id = %s", (order["id"],)) == [(1,)]
    assert as_role(stack.url, "grafana_readonly", {},
                   "select order_status::text from orders where id = %s",
                   (order["id"],)) == [("COMPLETED",)]


def test_an_order_the_legacy_loop_is_processing_is_left_to_it(stack: Stack) -> None:
    order = _topup(stack, dataset.METER_WITH_WALLET_ID, "90.00")
    with psycopg.connect(stack.url) as conn:
        # Ours the only PENDING order, as if the loop had done the others.
        conn.execute("update orders set order_status = 'IGNORED' where order_status = 'PENDING'")
        conn.execute("update orders set order_status = 'PENDING' where id = %s", (order["id"],))
        # The legacy order loop claims the next PENDING order and its two wallets.
        claimed = conn.execute("select id from lock_next_order_and_wallets(gen_random_uuid())"
                               ).fetchall()
        assert conn.execute("select lock_session is not null from orders where id = %s",
                            (order["id"],)).fetchone() == (True,)
    assert sorted(claimed) == sorted([(order["sender_wallet_id"],),
                                      (order["receiver_wallet_id"],)]), claimed
    resp = _complete(stack, order["id"])
    assert resp.status_code == 409 and resp.headers.get("retry-after"), resp.text
    assert rows(stack.url, "select count(*) from transactions where order_id = %s",
                (order["id"],)) == [(0,)]
    with psycopg.connect(stack.url) as conn:  # the loop gives up its claim
        conn.execute("update orders set lock_session = null where id = %s", (order["id"],))
        conn.execute("update wallets set lock_session = null where lock_session is not null")
    assert _complete(stack, order["id"]).status_code == 200
    with psycopg.connect(stack.url) as conn:  # and finds nothing left for it
        assert conn.execute("select count(*) from lock_next_order_and_wallets("
                            "gen_random_uuid())").fetchone() == (0,)


# -- the legacy readers and writers, beside the functions -----------------------------------

def test_legacy_writers_keep_their_triggers_and_defaults(stack: Stack) -> None:
    with psycopg.connect(stack.url) as conn:
        customer = conn.execute(
            "insert into customers (grid_id) values (5) returning id, rls_organization_id"
        ).fetchone()
        assert customer[1] == dataset.GRID_ORGANIZATION[5]  # the legacy trigger filled it
        order = conn.execute(
            "insert into orders (amount, currency) values (0.1::float8 + 0.2::float8, 'NGN')"
            " returning tariff, order_status::text, amount_exact, tariff_exact").fetchone()
        assert order[:2] == (-1.0, "PENDING")  # the legacy defaults
        # The exact twins say what the doubles hold: 0.1 + 0.2 is not 0.3 in double precision.
        assert order[2:] == (Decimal("0.30000000000000004"), Decimal(-1))
        # An order a legacy writer changes without setting updated_at (its TypeORM entity
        # declares it a creation date) still moves in the sync's watermark.
        before = conn.execute("select updated_at from orders where id = %s",
                              (dataset.FIRST_ORDER_ID,)).fetchone()
        conn.execute("update orders set external_reference = 'changed by a legacy writer'"
                     " where id = %s", (dataset.FIRST_ORDER_ID,))
        after = conn.execute("select updated_at from orders where id = %s",
                             (dataset.FIRST_ORDER_ID,)).fetchone()
        assert after > before
        conn.execute("update wallets set balance = 1234.5600000000002 where id = %s",
                     (dataset.OPERATOR_WALLET_ID,))
        assert conn.execute("select balance_exact, balance_exact::float8 = balance from wallets"
                            " where id = %s", (dataset.OPERATOR_WALLET_ID,)).fetchone() == (
            Decimal("1234.5600000000002"), True)
        conn.rollback()


def test_the_legacy_grants_and_policies_are_kept(stack: Stack) -> None:
    with psycopg.connect(stack.url) as conn:
        grants = conn.execute("""
            select has_table_privilege('anon', 'public.orders', 'insert'),
                   has_table_privilege('authenticated', 'public.meters', 'update'),
                   has_table_privilege('grafana_readonly', 'public.orders', 'select'),
                   has_table_privilege('make_readonly', 'public.accounts', 'select'),
                   has_table_privilege('snaplet_readonly_2', 'public.wallets', 'select')
        """).fetchone()
    assert grants == (True, True, True, True, True)
    lender_claims = {"role": "authenticated", "app_metadata": {
        "organization_id": dataset.LENDER_ORG_ID, "organization_type": "LENDER"}}
    # The legacy "Allow lenders to select" policies still let them read every order.
    total = rows(stack.url, "select count(*) from orders")[0]
    assert as_role(stack.url, "authenticated", lender_claims,
                   "select count(*) from orders") == [total]
