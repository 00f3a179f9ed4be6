"""orders over real HTTP (`nxt serve`): the legacy lender listing, filters, energy top-ups with
idempotency keys, and lifecycle transitions that move the money between wallets and credit a
meter exactly once, written as the legacy order processing writes them."""

from __future__ import annotations

import asyncio
import math
import uuid
from decimal import Decimal
from typing import Any

import httpx
import psycopg
import pytest

from nxt_cli.seed import AGGREGATOR_ID, DEV_A_ID, DEV_B_ID, LENDER_ID, OPERATOR_ID
from tests.conftest import Api, Seeded

pytestmark = pytest.mark.db

URL = "/functions/v1/orders"
LEGACY_FIELDS = {"id", "created_at", "amount", "order_status", "currency", "tariff", "grid",
                 "customer"}


def query(functions_db: Seeded, sql: str, params: tuple[Any, ...] = ()) -> list[tuple[Any, ...]]:
    with psycopg.connect(functions_db.url) as conn:
        return conn.execute(sql, params).fetchall()  # type: ignore[arg-type]


# The tariff a top-up of the meter completes at: the meter's own, else its grid's for its type.
TARIFF = """coalesce(app.exact(m.kwh_tariff), case m.meter_type when 'FS'
    then app.exact(g.kwh_tariff_full_service) else app.exact(g.kwh_tariff_essential_service) end)"""
METERS = """from meters m join connections n on n.id = m.connection_id
    join customers c on c.id = n.customer_id join grids g on g.id = c.grid_id"""
VISIBLE = "o.meta_is_hidden_from_reporting is false"
LISTED = ("from orders o join grids g on g.id = o.historical_grid_id where"
          " o.meta_order_type = 'ENERGY_TOPUP' and o.order_status = 'COMPLETED'")


def a_meter(functions_db: Seeded, org: int = DEV_A_ID, *,
            hidden: bool = False) -> tuple[int, Decimal]:
    """A live, visible (or hidden) meter of `org` with a tariff, and that tariff."""
    return query(functions_db, f"""
        select m.id, {TARIFF} {METERS}
         where m.rls_organization_id = %s and m.deleted_at is null and g.deleted_at is null
           and (c.is_hidden_from_reporting or g.is_hidden_from_reporting) = %s
           and {TARIFF} > 0 order by m.id limit 1""", (org, hidden))[0]  # type: ignore[return-value]


def kwh_for(amount: str, tariff: Decimal) -> Decimal:
    return Decimal(math.ceil(Decimal(amount) / tariff * 10)) / 10


def topup(meter_id: int, amount: str = "1000.00", **extra: Any) -> dict[str, Any]:
    return {"meter_id": meter_id, "amount": amount, "currency": "NGN",
            "payment_method": "USSD", "payment_channel": "USSD", **extra}


def create(api: Api, body: dict[str, Any], *, token: str | None = None,
           key: str | None = None) -> httpx.Response:
    return api.post(URL, token=token or api.token(role="service_role"), json=body,
                    headers={"Idempotency-Key": key or str(uuid.uuid4())})


# -- listing ------------------------------------------------------------------------------------

def test_lender_listing_is_the_legacy_one(api: Api, functions_db: Seeded) -> None:
    resp = api.get(URL, token=api.token(LENDER_ID), params={"size": 50})
    assert resp.status_code == 200, resp.text
    body = resp.json()
    assert set(body) == {"total", "page", "size", "total_pages", "entries"}
    expected = [r[0] for r in query(functions_db,
                                    f"select o.id {LISTED} and {VISIBLE} order by o.id")]
    assert body["total"] == len(expected)
    assert [e["id"] for e in body["entries"]] == expected[:50]
    for entry in body["entries"]:
        assert set(entry) == LEGACY_FIELDS
        assert entry["customer"] == "*******"
        assert entry["order_status"] == "COMPLETED"
        assert Decimal(str(entry["amount"])) > 0


def test_amounts_are_exact(api: Api, functions_db: Seeded) -> None:
    entry = api.get(URL, token=api.token(LENDER_ID), params={"size": 1}).json()["entries"][0]
    amount, tariff = query(functions_db, "select amount_exact, tariff_exact from orders"
                           " where id = %s", (entry["id"],))[0]
    assert Decimal(str(entry["amount"])) == amount
    assert Decimal(str(entry["tariff"])) == tariff


@pytest.mark.parametrize("params", [{"status": "PENDING"}, {"type": "CONNECTION_PAYMENT"}])
def test_lenders_see_completed_topups_only(api: Api, params: dict[str, str]) -> None:
    resp = api.get(URL, token=api.token(LENDER_ID), params=params)
    assert resp.status_code == 403


def test_operator_filters_by_status_type_grid_and_time(api: Api, functions_db: Seeded) -> None:
    token = api.token(OPERATOR_ID)
    since = query(functions_db, "select created_at from orders order by created_at"
                                " offset 1000 limit 1")[0][0]
    params = {"status": "FAILED", "type": "ENERGY_TOPUP", "grid": 2,
              "created_from": since.isoformat(), "size": 1000}
    body = api.get(URL, token=token, params=params).json()
    expected = [r[0] for r in query(functions_db, f"""
        select o.id from orders o where order_status = 'FAILED'
           and meta_order_type = 'ENERGY_TOPUP' and historical_grid_id = 2
           and created_at >= %s and {VISIBLE} order by id""", (since,))]
    assert expected, "the seed should have failed top-ups on grid 2"
    assert [e["id"] for e in body["entries"]] == expected
    assert all(e["customer"] not in (None, "*******") for e in body["entries"])


@pytest.mark.parametrize("org", [DEV_A_ID, DEV_B_ID])
def test_developers_see_only_their_orders(api: Api, functions_db: Seeded, org: int) -> None:
    body = api.get(URL, token=api.token(org), params={"size": 1000}).json()
    mine = [r[0] for r in query(functions_db, f"""
        select o.id {LISTED} and {VISIBLE} and o.rls_organization_id = %s order by o.id""",
                                (org,))]
    assert body["total"] == len(mine)
    assert [e["id"] for e in body["entries"]] == mine[:1000]


def test_single_order_is_scoped_to_its_organization(api: Api, functions_db: Seeded) -> None:
    theirs = query(functions_db, "select min(id) from orders where rls_organization_id = %s",
                   (DEV_B_ID,))[0][0]
    assert api.get(f"{URL}/{theirs}", token=api.token(DEV_A_ID)).status_code == 404
    assert api.get(f"{URL}/{theirs}", token=api.token(DEV_B_ID)).json()["id"] == theirs
    assert api.get(f"{URL}/{theirs}", token=api.token(LENDER_ID)).status_code == 403


def test_aggregators_and_orgless_users_get_403(api: Api) -> None:
    assert api.get(URL, token=api.token(AGGREGATOR_ID)).status_code == 403
    assert api.get(URL, token=api.token(None)).status_code == 403


def test_no_credentials_is_401(api: Api) -> None:
    assert api.get(URL).status_code == 401
    assert api.post(URL, json=topup(1)).status_code == 401


@pytest.mark.parametrize(("param", "value"), [
    ("page", "0"), ("page", "x"), ("size", "5000"), ("size", "-1"), ("order", "customer"),
    ("order", "amount;--"), ("status", "DONE"), ("type", "TOPUP"), ("grid", "-2"),
    ("created_to", "2026-13-01T00:00:00Z"),
])
def test_bad_list_parameters_are_400(api: Api, param: str, value: str) -> None:
    resp = api.get(URL, token=api.token(OPERATOR_ID), params={param: value})
    assert resp.status_code == 400, resp.text
    assert param in resp.json()["error"]


# -- creating top-ups ---------------------------------------------------------------------------

def test_create_topup_writes_the_legacy_order(api: Api, functions_db: Seeded) -> None:
    meter, _ = a_meter(functions_db)
    resp = create(api, topup(meter, "430.00", external_reference="psk-1"))
    assert resp.status_code == 201, resp.text
    order = resp.json()
    # Unpaid until completed; the tariff is fixed at completion (-1 until then, shown as null).
    assert order["order_status"] == "INITIALISED" and order["tariff"] is None
    assert order["meta_order_type"] == "ENERGY_TOPUP"
    assert order["meter_id"] == meter and order["external_reference"] == "psk-1"
    assert resp.headers.get("idempotent-replayed") is None
    row = query(functions_db, """
        select o.rls_organization_id, o.tariff, o.amount, sw.identifier, rw.meter_id,
               o.meta_sender_type::text, o.meta_sender_name, o.meta_receiver_type::text,
               o.meta_receiver_name = m.external_reference, o.meta_receiver_id,
               o.meta_receiver_id_part_2 = c.id, o.meta_receiver_name_part_2 = a.full_name,
               o.historical_grid_id = c.grid_id, o.meta_is_hidden_from_reporting
          from orders o join wallets sw on sw.id = o.sender_wallet_id
          join wallets rw on rw.id = o.receiver_wallet_id join meters m on m.id = rw.meter_id
          join connections n on n.id = m.connection_id join customers c on c.id = n.customer_id
          join accounts a on a.id = c.account_id where o.id = %s""", (order["id"],))[0]
    assert row == (DEV_A_ID, -1.0, 430.0, "BANKING_SYSTEM", meter, "BANKING_SYSTEM",
                   "Banking system", "METER", True, meter, True, True, True, False)


def test_topups_for_hidden_customers_or_grids_are_hidden(api: Api,
                                                         functions_db: Seeded) -> None:
    """Attack finding 1: the order is hidden from reporting exactly as the legacy hides it
    (customer or grid hidden), so lenders never list it, and row-level security agrees."""
    meter, _ = a_meter(functions_db, DEV_A_ID, hidden=True)
    order = create(api, topup(meter, "900.00")).json()
    assert api.post(f"{URL}/{order['id']}/complete",
                    token=api.token(role="service_role")).status_code == 200
    assert query(functions_db, "select meta_is_hidden_from_reporting from orders where id = %s",
                 (order["id"],))[0][0] is True
    grid = query(functions_db, "select historical_grid_id from orders where id = %s",
                 (order["id"],))[0][0]
    listed = api.get(URL, token=api.token(LENDER_ID), params={"grid": grid, "size": 1000})
    assert order["id"] not in {e["id"] for e in listed.json()["entries"]}
    with psycopg.connect(functions_db.url) as conn:
        conn.execute("select set_config('request.jwt.claims', %s, true),"
                     " set_config('role', 'authenticated', true)",
                     (f'{{"role": "authenticated", "app_metadata": {{"organization_id":'
                      f' {LENDER_ID}}}}}',))
        seen = conn.execute("select count(*) from orders where id = %s", (order["id"],))
        assert seen.fetchone() == (0,)


def test_a_topup_in_another_currency_is_422(api: Api, functions_db: Seeded) -> None:
    """Attack finding 2: a USD top-up on an NGN meter is refused, naming the field."""
    meter, _ = a_meter(functions_db)
    resp = create(api, topup(meter, currency="USD"))
    assert resp.status_code == 422, resp.text
    assert "currency" in resp.json()["error"] and "NGN" in resp.json()["error"]


def test_a_reused_external_reference_is_409(api: Api, functions_db: Seeded) -> None:
    meter, _ = a_meter(functions_db)
    ref = f"ref-{uuid.uuid4()}"
    assert create(api, topup(meter, external_reference=ref)).status_code == 201
    again = create(api, topup(meter, external_reference=ref))
    assert again.status_code == 409 and "external_reference" in again.json()["error"]


def test_operator_may_create_others_may_not(api: Api, functions_db: Seeded) -> None:
    meter, _ = a_meter(functions_db)
    assert create(api, topup(meter), token=api.token(OPERATOR_ID)).status_code == 201
    for org in (DEV_A_ID, LENDER_ID, AGGREGATOR_ID):
        assert create(api, topup(meter), token=api.token(org)).status_code == 403


def test_missing_idempotency_key_is_400(api: Api, functions_db: Seeded) -> None:
    meter, _ = a_meter(functions_db)
    resp = api.post(URL, token=api.token(role="service_role"), json=topup(meter))
    assert resp.status_code == 400
    assert "Idempotency-Key" in resp.json()["error"]


def test_replay_returns_the_original_response(api: Api, functions_db: Seeded) -> None:
    meter, _ = a_meter(functions_db)
    key = str(uuid.uuid4())
    first = create(api, topup(meter), key=key)
    again = create(api, topup(meter), key=key)
    assert first.status_code == again.status_code == 201
    assert again.content == first.content
    assert again.headers["idempotent-replayed"] == "true"
    count = query(functions_db, "select count(*) from orders where id = %s",
                  (first.json()["id"],))[0][0]
    assert count == 1


def test_same_key_other_body_is_422(api: Api, functions_db: Seeded) -> None:
    meter, _ = a_meter(functions_db)
    key = str(uuid.uuid4())
    assert create(api, topup(meter, "100.00"), key=key).status_code == 201
    resp = create(api, topup(meter, "200.00"), key=key)
    assert resp.status_code == 422
    assert "Idempotency-Key" in resp.json()["error"]


def test_keys_are_scoped_to_the_caller(api: Api, functions_db: Seeded) -> None:
    meter, _ = a_meter(functions_db)
    key = str(uuid.uuid4())
    by_service = create(api, topup(meter), key=key)
    by_operator = create(api, topup(meter), key=key, token=api.token(OPERATOR_ID))
    assert by_service.status_code == by_operator.status_code == 201
    assert by_service.json()["id"] != by_operator.json()["id"]
    assert by_operator.headers.get("idempotent-replayed") is None


def test_a_failed_request_gives_its_key_back(api: Api, functions_db: Seeded) -> None:
    meter, _ = a_meter(functions_db)
    key = str(uuid.uuid4())
    unknown = create(api, topup(99_999_999), key=key)
    assert unknown.status_code == 422
    assert "meter_id" in unknown.json()["error"]
    # Not a replay of the 422: the corrected request is a new attempt under the same key.
    assert create(api, topup(meter), key=key).status_code == 201


async def _burst(api: Api, method: str, path: str, n: int, **kwargs: Any) -> list[httpx.Response]:
    async with httpx.AsyncClient(base_url=api.base_url, timeout=60,
                                 limits=httpx.Limits(max_connections=n)) as client:
        return list(await asyncio.gather(*(client.request(method, path, **kwargs)
                                           for _ in range(n))))


def test_concurrent_requests_with_one_key_create_one_order(api: Api,
                                                           functions_db: Seeded) -> None:
    meter, _ = a_meter(functions_db, DEV_B_ID)
    ref = f"burst-{uuid.uuid4()}"
    headers = {"Authorization": f"Bearer {api.token(role='service_role')}",
               "Idempotency-Key": ref}
    responses = asyncio.run(_burst(api, "POST", URL, 20, headers=headers,
                                   json=topup(meter, external_reference=ref)))
    statuses = sorted(r.status_code for r in responses)
    assert set(statuses) <= {201, 409}, statuses
    created = {r.json()["id"] for r in responses if r.status_code == 201}
    assert len(created) == 1
    busy = [r for r in responses if r.status_code == 409]
    assert all(r.headers.get("retry-after") for r in busy)
    count = query(functions_db, "select count(*) from orders where external_reference = %s",
                  (ref,))[0][0]
    assert count == 1


@pytest.mark.parametrize(("field", "body_change"), [
    ("meter_id", {"meter_id": "seven"}),
    ("meter_id", {"meter_id": -1}),
    ("amount", {"amount": "0"}),
    ("amount", {"amount": "-10"}),
    ("amount", {"amount": "NaN"}),
    ("amount", {"amount": "12.345"}),
    ("currency", {"currency": "GBP"}),
    ("payment_method", {"payment_method": "CASH"}),
    ("payment_channel", {"payment_channel": "paystack"}),
    ("tariff", {"tariff": "1.00"}),
])
def test_bad_bodies_are_400_naming_the_field(api: Api, functions_db: Seeded, field: str,
                                             body_change: dict[str, Any]) -> None:
    meter, _ = a_meter(functions_db)
    resp = create(api, {**topup(meter), **body_change})
    assert resp.status_code == 400, resp.text
    assert field in resp.json()["error"]


def test_a_body_that_is_not_json_is_400(api: Api) -> None:
    resp = api.post(URL, token=api.token(role="service_role"), content=b"{not json",
                    headers={"Idempotency-Key": "x1", "Content-Type": "application/json"})
    assert resp.status_code == 400


# -- transitions --------------------------------------------------------------------------------

CREDIT = ("select coalesce(kwh_credit_available_exact, app.exact(kwh_credit_available), 0)"
          " from meters where id = %s")
BALANCES = ("select w.id, coalesce(w.balance_exact, app.exact(w.balance)) from wallets w"
            " join orders o on w.id in (o.sender_wallet_id, o.receiver_wallet_id)"
            " where o.id = %s order by w.id")


def test_fifty_concurrent_completions_credit_the_meter_once(api: Api,
                                                            functions_db: Seeded) -> None:
    meter, tariff = a_meter(functions_db, DEV_B_ID)
    order = create(api, topup(meter, "1234.56")).json()
    before = query(functions_db, CREDIT, (meter,))[0][0]
    balances = dict(query(functions_db, BALANCES, (order["id"],)))
    headers = {"Authorization": f"Bearer {api.token(role='service_role')}"}
    responses = asyncio.run(_burst(api, "POST", f"{URL}/{order['id']}/complete", 50,
                                   headers=headers))
    statuses = [r.status_code for r in responses]
    assert statuses.count(200) == 1 and statuses.count(409) == 49, statuses
    expected_kwh = kwh_for("1234.56", tariff)
    winner = next(r.json() for r in responses if r.status_code == 200)
    assert winner["order_status"] == "COMPLETED" and winner["completed_at"]
    assert Decimal(str(winner["kwh"])) == expected_kwh
    assert Decimal(str(winner["tariff"])) == tariff
    assert query(functions_db, CREDIT, (meter,))[0][0] - before == expected_kwh
    # The legacy record of the money: two transactions, balances before and after.
    sender, receiver = winner["sender_wallet_id"], winner["receiver_wallet_id"]
    rows = query(functions_db, """
        select wallet_id, amount, balance_before, balance_after, transaction_status::text
          from transactions where order_id = %s order by amount desc""", (order["id"],))
    amount = Decimal("1234.56")
    assert rows == [
        (receiver, 1234.56, float(balances[receiver]), float(balances[receiver] + amount),
         "SUCCESSFUL"),
        (sender, -1234.56, float(balances[sender]), float(balances[sender] - amount),
         "SUCCESSFUL"),
    ]
    after = dict(query(functions_db, BALANCES, (order["id"],)))
    assert after == {receiver: balances[receiver] + amount, sender: balances[sender] - amount}


@pytest.mark.parametrize(("first", "then"), [
    ("complete", "fail"), ("complete", "cancel"), ("complete", "complete"),
    ("fail", "complete"), ("cancel", "complete"), ("cancel", "fail"),
])
def test_illegal_transitions_are_409(api: Api, functions_db: Seeded, first: str,
                                     then: str) -> None:
    meter, _ = a_meter(functions_db)
    order = create(api, topup(meter, "50.00")).json()
    token = api.token(OPERATOR_ID)
    assert api.post(f"{URL}/{order['id']}/{first}", token=token).status_code == 200
    resp = api.post(f"{URL}/{order['id']}/{then}", token=token)
    assert resp.status_code == 409
    assert str(order["id"]) in resp.json()["error"]


def test_failing_or_cancelling_credits_nothing(api: Api, functions_db: Seeded) -> None:
    meter, _ = a_meter(functions_db)
    for action, status in (("fail", "FAILED"), ("cancel", "CANCELLED")):
        order = create(api, topup(meter, "75.00")).json()
        resp = api.post(f"{URL}/{order['id']}/{action}", token=api.token(role="service_role"))
        assert resp.json()["order_status"] == status and resp.json()["kwh"] is None
        assert query(functions_db, "select count(*) from transactions where order_id = %s",
                     (order["id"],))[0][0] == 0


def test_an_order_the_legacy_loop_holds_is_left_to_it(api: Api, functions_db: Seeded) -> None:
    """The legacy order loop claims an order and its wallets with `lock_session` while it
    processes them; completing it here meanwhile would move the money twice."""
    meter, _ = a_meter(functions_db)
    order = create(api, topup(meter, "60.00")).json()
    with psycopg.connect(functions_db.url) as conn:
        conn.execute("update orders set order_status = 'PENDING', lock_session = 'legacy-1'"
                     " where id = %s", (order["id"],))
    resp = api.post(f"{URL}/{order['id']}/complete", token=api.token(role="service_role"))
    assert resp.status_code == 409 and resp.headers.get("retry-after"), resp.text
    assert "legacy" in resp.json()["error"]
    assert query(functions_db, "select count(*) from transactions where order_id = %s",
                 (order["id"],))[0][0] == 0
    with psycopg.connect(functions_db.url) as conn:
        conn.execute("update orders set lock_session = null where id = %s", (order["id"],))
    done = api.post(f"{URL}/{order['id']}/complete", token=api.token(role="service_role"))
    assert done.status_code == 200 and done.json()["order_status"] == "COMPLETED"


def test_transitions_of_missing_orders_are_404(api: Api) -> None:
    resp = api.post(f"{URL}/99999999/complete", token=api.token(OPERATOR_ID))
    assert resp.status_code == 404


def test_developers_cannot_transition(api: Api, functions_db: Seeded) -> None:
    meter, _ = a_meter(functions_db)
    order = create(api, topup(meter)).json()
    resp = api.post(f"{URL}/{order['id']}/complete", token=api.token(DEV_A_ID))
    assert resp.status_code == 403
    status = query(functions_db, "select order_status::text from orders where id = %s",
                   (order["id"],))[0][0]
    assert status == "INITIALISED"


@pytest.mark.parametrize("raw", ["abc", "0", "-1", "9" * 25])
def test_bad_order_ids_are_400(api: Api, raw: str) -> None:
    resp = api.post(f"{URL}/{raw}/complete", token=api.token(OPERATOR_ID))
    assert resp.status_code == 400
    assert "id" in resp.json()["error"]


def test_unknown_action_is_404(api: Api) -> None:
    assert api.post(f"{URL}/1/refund", token=api.token(OPERATOR_ID)).status_code == 404


# -- the totals cache (shared.totals) ------------------------------------------------------------

def test_a_completed_topup_counts_in_the_next_listing_at_once(api: Api,
                                                              functions_db: Seeded) -> None:
    """Writes through this instance clear its cached totals: no stale total after a write."""
    operator = api.token(OPERATOR_ID)
    before = api.get(URL, token=operator, params={"size": 1}).json()["total"]
    assert api.get(URL, token=operator, params={"size": 1}).json()["total"] == before  # cached
    meter_id, _ = a_meter(functions_db)
    order = create(api, topup(meter_id)).json()
    done = api.post(f"{URL}/{order['id']}/complete", token=api.token(role="service_role"))
    assert done.status_code == 200, done.text
    after = api.get(URL, token=operator, params={"size": 1, "page": 2}).json()
    assert after["total"] == before + 1


def test_cached_totals_are_never_shared_between_callers(api: Api, functions_db: Seeded) -> None:
    """The operator's total, counted first, must not answer a developer's request."""
    operator = api.get(URL, token=api.token(OPERATOR_ID), params={"size": 1}).json()["total"]
    developer = api.get(URL, token=api.token(DEV_B_ID), params={"size": 1}).json()["total"]
    expected = query(functions_db, f"select count(*) {LISTED} and {VISIBLE}"
                     " and o.rls_organization_id = %s", (DEV_B_ID,))[0][0]
    assert developer == expected < operator


def test_a_token_whose_subject_is_not_a_uuid_is_401_at_the_gate(api: Api,
                                                                functions_db: Seeded) -> None:
    """Attack finding 6: a signed operator token with `sub: "not-a-uuid"` reached auth.uid(),
    whose cast to uuid failed with a 500."""
    meter, _ = a_meter(functions_db)
    token = api.token(OPERATOR_ID, sub="not-a-uuid")
    for resp in (create(api, topup(meter), token=token), api.get(URL, token=token)):
        assert resp.status_code == 401, resp.text
        assert "sub" in resp.json()["error"]


def test_completing_a_topup_of_a_meter_deleted_since_is_refused(api: Api,
                                                                functions_db: Seeded) -> None:
    """Attack finding 9: creating refuses deleted meters; completing must too, after the meter
    was deleted (replaced) while its order waited for payment."""
    meter, _ = a_meter(functions_db, DEV_B_ID)
    order = create(api, topup(meter, "80.00")).json()
    with psycopg.connect(functions_db.url) as conn:
        conn.execute("update meters set deleted_at = now() where id = %s", (meter,))
    try:
        resp = api.post(f"{URL}/{order['id']}/complete", token=api.token(role="service_role"))
        assert resp.status_code == 409 and "deleted" in resp.json()["error"], resp.text
        assert query(functions_db, "select count(*) from transactions where order_id = %s",
                     (order["id"],))[0][0] == 0
    finally:
        with psycopg.connect(functions_db.url) as conn:
            conn.execute("update meters set deleted_at = null where id = %s", (meter,))


@pytest.mark.parametrize(("field", "value"), [
    ("meter_id", "5"), ("meter_id", 5.0), ("meter_id", True),
    ("amount", " 100"), ("amount", "١٠٠"), ("amount", "1e3"), ("amount", "+100"),
    ("amount", True), ("payment_channel", "USSD\x1b[31m"), ("payment_channel", "USSD\u202e"),
])
def test_one_canonical_form_per_field(api: Api, functions_db: Seeded, field: str,
                                      value: Any) -> None:
    """Attack finding 9: lax parsing took `"5"` and `5.0` as meter 5, `" 100"` and Arabic-Indic
    digits as 100, and stored ANSI escapes and bidi controls in payment_channel."""
    meter, _ = a_meter(functions_db)
    resp = create(api, {**topup(meter), field: value})
    assert resp.status_code == 400, resp.text
    assert field in resp.json()["error"]


def test_the_guard_gives_back_a_key_whose_block_recorded_no_answer(functions_db: Seeded) -> None:
    # A handler that leaves the guarded block without Claim.finish (an early return, a raise)
    # must not hold the key: the retry would be refused 409 until the claim went stale.
    from shared.auth.caller import Caller
    from shared.db import Database
    from shared.web import idempotency

    service = Caller(role="service_role", user_id=None, organization_id=None,
                     organization_type=None, claims={"role": "service_role"})
    key = str(uuid.uuid4())

    async def scenario() -> list[Any]:
        db = Database(functions_db.url)
        seen = []
        try:
            async with idempotency.guard(db, service, key, {"n": 1}) as claim:
                seen.append(claim.replay)
            with pytest.raises(RuntimeError):
                async with idempotency.guard(db, service, key, {"n": 1}) as claim:
                    seen.append(claim.replay)
                    raise RuntimeError("the work failed")
            async with idempotency.guard(db, service, key, {"n": 1}) as claim:
                async with db.transaction("service_role", dict(service.claims)) as conn:
                    await claim.finish(conn, 201, {"done": True})
            async with idempotency.guard(db, service, key, {"n": 1}) as claim:
                seen.append(claim.replay)
        finally:
            await db.close()
        return seen

    first, second, replay = asyncio.run(scenario())
    assert first is None and second is None  # each attempt found the key free again
    assert replay is not None and replay.status_code == 201
    assert bytes(replay.body) == b'{"done":true}'
    assert replay.headers["Idempotent-Replayed"] == "true"
