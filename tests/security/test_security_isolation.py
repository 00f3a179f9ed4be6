"""Tenant isolation over real HTTP, for every HTTP function and every kind of caller: the
operator, a lender, two solar developers, a data aggregator, a user without an organization,
the anon and service-role keys, and API keys. Whatever parameters a caller sends, it never sees
another organization's rows; writes by anyone but the operator and the service role are refused
and change nothing. Then the database alone: row-level security bounds a query written with no
filter at all, run through shared.db as the functions run theirs.
"""

from __future__ import annotations

import asyncio
import uuid
from collections.abc import Iterator
from datetime import UTC, datetime, timedelta
from typing import Any

import psycopg
import pytest

from nxt_cli.seed import (
    AGGREGATOR_ID,
    DEV_A_ID,
    DEV_B_ID,
    LENDER_ID,
    OPERATOR_ID,
    STAFF,
    create_api_key,
)
from shared.auth.api_keys import hash_api_key
from shared.db import Database
from tests.conftest import Api, Seeded
from tests.support.security_support import HTTP_FUNCTIONS, call
from tests.support.snapshots import delete_meters, write_hourly

pytestmark = pytest.mark.db

MASK = "*******"
REFUSED = (401, 403)
PRIVILEGED = ("operator", "service role")
MEMBERS = {"developer A": DEV_A_ID, "developer B": DEV_B_ID}
ROLES = ("operator", "lender", "developer A", "developer B", "aggregator", "no organization",
         "anon", "service role", "aggregator API key", "developer API key",
         "developer A with forged metadata")
# Callers that may not write anything anywhere.
WRITERS_REFUSED = tuple(r for r in ROLES if r not in PRIVILEGED)


def rows(url: str, sql: str, params: tuple[Any, ...] = ()) -> list[tuple[Any, ...]]:
    with psycopg.connect(url) as conn:
        return conn.execute(sql, params).fetchall()  # type: ignore[arg-type]


def ids(url: str, sql: str, params: tuple[Any, ...] = ()) -> set[int]:
    return {r[0] for r in rows(url, sql, params)}


@pytest.fixture(scope="module")
def dev_key(functions_db: Seeded) -> Iterator[str]:
    with psycopg.connect(functions_db.url) as conn:
        key = create_api_key(conn, DEV_A_ID, "isolation tests")
    try:
        yield key
    finally:
        with psycopg.connect(functions_db.url) as conn:
            conn.execute("delete from api_keys where key_hash = %s", (hash_api_key(key),))


@pytest.fixture(scope="module")
def callers(api: Api, functions_db: Seeded, dev_key: str) -> dict[str, dict[str, str]]:
    def jwt(token: str) -> dict[str, str]:
        return {"Authorization": f"Bearer {token}"}

    # user_metadata is writable by the user; a top-level claim is not where organizations live.
    forged = api.token(DEV_A_ID, extra={
        "organization_id": DEV_B_ID, "rls_organization_id": DEV_B_ID,
        "user_metadata": {"organization_id": DEV_B_ID, "organization_type": "SOLAR_DEVELOPER",
                          "is_operator": True}})
    return {
        "operator": jwt(api.token(OPERATOR_ID)),
        "lender": jwt(api.token(LENDER_ID)),
        "developer A": jwt(api.token(DEV_A_ID)),
        "developer B": jwt(api.token(DEV_B_ID)),
        "aggregator": jwt(api.token(AGGREGATOR_ID)),
        "no organization": jwt(api.token(None)),
        "anon": jwt(api.token(role="anon")),
        "service role": jwt(api.token(role="service_role")),
        "aggregator API key": {"X-API-Key": functions_db.api_keys[0][1]},
        "developer API key": {"X-API-Key": dev_key},
        "developer A with forged metadata": jwt(forged),
    }


def member_org(role: str) -> int | None:
    return DEV_A_ID if role == "developer A with forged metadata" else MEMBERS.get(role)


# -- customers ------------------------------------------------------------------------------------

CUSTOMER_PARAMS: list[dict[str, Any]] = [
    {}, {"include_hidden": "true"},
    *({"grid": g} for g in range(1, 8)),
    *({"grid": g, "include_hidden": "true"} for g in range(1, 8)),
    {"organization_id": DEV_B_ID, "org": DEV_B_ID, "rls_organization_id": DEV_B_ID,
     "organization": DEV_B_ID, "tenant": DEV_B_ID, "include_hidden": "1"},
    {"created_from": "1970-01-01T00:00:00Z", "created_to": "2999-01-01T00:00:00Z"},
    {"order": "grid", "ascending": "false", "include_hidden": "true"},
    {"grid": "4 or 1=1"}, {"grid": ["1", "4"]}, {"include_hidden": "yes please"},
]


@pytest.fixture(scope="module")
def customer_truth(functions_db: Seeded) -> dict[str, set[int]]:
    url = functions_db.url
    visible = ids(url, "select c.id from customers c join grids g on g.id = c.grid_id"
                       " where not c.is_hidden_from_reporting and not g.is_hidden_from_reporting"
                       " and g.deleted_at is null")
    everything = ids(url, "select id from customers")
    truth = {"lender": visible, "operator": everything, "service role": everything}
    for role in (*MEMBERS, "developer A with forged metadata"):
        truth[role] = ids(url, "select id from customers where rls_organization_id = %s",
                          (member_org(role),))
    truth["visible"] = visible
    return truth


def fetch_all(api: Api, path: str, headers: dict[str, str], params: dict[str, Any]
              ) -> tuple[int, list[dict[str, Any]]]:
    entries: list[dict[str, Any]] = []
    page = 1
    while True:
        resp = api.http.get(path, headers=headers, params={**params, "page": page, "size": 1000})
        if resp.status_code != 200:
            return resp.status_code, entries
        body = resp.json()
        entries += body["entries"]
        if page >= body["total_pages"]:
            return 200, entries
        page += 1


@pytest.mark.parametrize("role", ROLES)
def test_customer_lists_stay_inside_the_callers_bounds(
        api: Api, callers: dict[str, dict[str, str]], customer_truth: dict[str, set[int]],
        role: str) -> None:
    problems = []
    for params in CUSTOMER_PARAMS:
        status, entries = fetch_all(api, "/functions/v1/customers", callers[role], params)
        if role not in customer_truth:
            # A bad parameter may be named (400) before the caller is refused: no rows either.
            if status not in REFUSED and not (status == 400 and params):
                problems.append(f"{params}: {status}, expected a refusal")
            continue
        if status in (400, 403) and params:
            continue  # a bad parameter, or include_hidden for a lender
        if status != 200:
            problems.append(f"{params}: {status}")
            continue
        got = {e["id"] for e in entries}
        if not got <= customer_truth[role]:
            problems.append(f"{params}: {len(got - customer_truth[role])} rows of others")
        if role == "lender" and any(e["full_name"] != MASK for e in entries):
            problems.append(f"{params}: a lender saw names")
        if role != "lender" and not got <= customer_truth["visible"] | customer_truth[role]:
            problems.append(f"{params}: rows outside the caller's view")
    assert problems == []
    if role in customer_truth and role not in PRIVILEGED:
        _, entries = fetch_all(api, "/functions/v1/customers", callers[role], {})
        expected = customer_truth[role] & customer_truth["visible"]
        assert {e["id"] for e in entries} == expected


def test_single_customers_of_other_organizations_are_not_found(
        api: Api, functions_db: Seeded, callers: dict[str, dict[str, str]]) -> None:
    url = functions_db.url
    by_org = {org: sorted(ids(url, "select id from customers where rls_organization_id = %s",
                              (org,))) for org in (OPERATOR_ID, DEV_A_ID, DEV_B_ID)}
    hidden = ids(url, "select c.id from customers c join grids g on g.id = c.grid_id"
                      " where c.is_hidden_from_reporting or g.is_hidden_from_reporting"
                      " or g.deleted_at is not null")
    problems = []
    for role in ("developer A", "developer B", "developer A with forged metadata"):
        own = member_org(role)
        for org, members in by_org.items():
            if org == own:
                continue
            sample = members[:5] + members[-5:] + sorted(set(members) & hidden)[:5]
            for customer in sample:
                status = api.http.get(f"/functions/v1/customers/{customer}",
                                      headers=callers[role]).status_code
                if status != 404:
                    problems.append(f"{role} read customer {customer} of {org}: {status}")
    for customer in sorted(hidden)[:15]:
        status = api.http.get(f"/functions/v1/customers/{customer}",
                              headers=callers["lender"]).status_code
        if status != 404:
            problems.append(f"lender read hidden customer {customer}: {status}")
    for role in ("aggregator", "no organization", "anon", "aggregator API key"):
        status = api.http.get(f"/functions/v1/customers/{by_org[DEV_A_ID][0]}",
                              headers=callers[role]).status_code
        if status not in REFUSED:
            problems.append(f"{role}: {status}")
    assert problems == []


# -- orders ---------------------------------------------------------------------------------------

STATUSES = ("INITIALISED", "PENDING", "COMPLETED", "FAILED", "CANCELLED", "TIMED_OUT", "IGNORED")
TYPES = ("ENERGY_TOPUP", "CONNECTION_PAYMENT", "CONNECTION_REFUND", "AGENT_TOPUP",
         "AGENT_WITHDRAWAL", "ORGANIZATION_TOPUP", "ORGANIZATION_WITHDRAWAL")
ORDER_PARAMS: list[dict[str, Any]] = [
    {}, *({"status": s} for s in STATUSES), *({"type": t} for t in TYPES),
    *({"grid": g} for g in range(1, 8)),
    *({"grid": g, "status": "PENDING"} for g in (4, 5, 6)),
    {"organization_id": DEV_B_ID, "rls_organization_id": DEV_B_ID, "include_hidden": "true"},
    {"status": "COMPLETED", "type": "ENERGY_TOPUP", "order": "amount", "ascending": "false"},
]


@pytest.fixture(scope="module")
def order_truth(functions_db: Seeded) -> dict[str, set[int]]:
    url = functions_db.url
    everything = ids(url, "select id from orders")
    truth = {"operator": everything, "service role": everything,
             "lender": ids(url, "select id from orders where meta_order_type = 'ENERGY_TOPUP'"
                                " and order_status = 'COMPLETED'"
                                " and not meta_is_hidden_from_reporting")}
    for role in (*MEMBERS, "developer A with forged metadata"):
        truth[role] = ids(url, "select id from orders where rls_organization_id = %s",
                          (member_org(role),))
    return truth


@pytest.mark.parametrize("role", ROLES)
def test_order_lists_stay_inside_the_callers_bounds(
        api: Api, callers: dict[str, dict[str, str]], order_truth: dict[str, set[int]],
        role: str) -> None:
    problems = []
    for params in ORDER_PARAMS:
        resp = api.http.get("/functions/v1/orders", headers=callers[role],
                            params={**params, "size": 1000})
        if role not in order_truth:
            if resp.status_code not in REFUSED:
                problems.append(f"{params}: {resp.status_code}, expected a refusal")
            continue
        if role == "lender" and resp.status_code == 403 and params:
            continue  # lenders may ask for completed top-ups only
        if resp.status_code != 200:
            problems.append(f"{params}: {resp.status_code}")
            continue
        body = resp.json()
        got = {e["id"] for e in body["entries"]}
        if not got <= order_truth[role]:
            problems.append(f"{params}: {len(got - order_truth[role])} orders of others")
        if body["total"] > len(order_truth[role]):
            problems.append(f"{params}: total {body['total']} counts orders of others")
        if role == "lender" and any(e["customer"] != MASK for e in body["entries"]):
            problems.append(f"{params}: a lender saw names")
    assert problems == []


def test_single_orders_of_other_organizations_are_not_found(
        api: Api, functions_db: Seeded, callers: dict[str, dict[str, str]]) -> None:
    url = functions_db.url
    problems = []
    for role in ("developer A", "developer B", "developer A with forged metadata"):
        own = member_org(role)
        theirs = rows(url, "select distinct on (rls_organization_id, order_status) id"
                           " from orders where rls_organization_id <> %s"
                           " order by rls_organization_id, order_status, id", (own,))
        for (order,) in theirs:
            status = api.http.get(f"/functions/v1/orders/{order}",
                                  headers=callers[role]).status_code
            if status != 404:
                problems.append(f"{role} read order {order}: {status}")
    some = rows(url, "select min(id) from orders")[0][0]
    for role in ("lender", "aggregator", "no organization", "anon", "aggregator API key",
                 "developer API key"):
        status = api.http.get(f"/functions/v1/orders/{some}", headers=callers[role]).status_code
        if status not in REFUSED:
            problems.append(f"{role}: {status}")
    assert problems == []


# -- writes ---------------------------------------------------------------------------------------

def snapshot(url: str, ts_url: str) -> dict[str, Any]:
    """Everything a refused write could have changed."""
    with psycopg.connect(url) as conn:
        state = {
            "orders": conn.execute(
                "select count(*), max(id), sum(amount),"
                " md5(string_agg(id || ':' || order_status || ':' || updated_at, ','"
                " order by id)) from orders").fetchone(),
            "ledger": conn.execute("select count(*), sum(amount) from transactions").fetchone(),
            "wallets": conn.execute("select count(*), sum(balance) from wallets").fetchone(),
            "credit": conn.execute("select sum(kwh_credit_available) from meters").fetchone(),
            "idempotency": conn.execute("select count(*) from app.idempotency_keys").fetchone(),
        }
    with psycopg.connect(ts_url) as conn:
        state["readings"] = conn.execute("select count(*) from ts.meter_readings").fetchone()
    return state


@pytest.fixture(scope="module")
def pending(api: Api, functions_db: Seeded) -> dict[int, tuple[int, int]]:
    """org -> (a live meter, a PENDING top-up on it) for developers A and B and the operator."""
    found = {}
    for org in (DEV_A_ID, DEV_B_ID, OPERATOR_ID):
        meter = rows(functions_db.url, """
            select m.id from meters m join connections n on n.id = m.connection_id
              join customers c on c.id = n.customer_id join grids g on g.id = c.grid_id
             where m.rls_organization_id = %s and m.deleted_at is null and g.deleted_at is null
               and g.kwh_tariff > 0 order by m.id limit 1""", (org,))[0][0]
        resp = api.post("/functions/v1/orders", token=api.token(role="service_role"),
                        headers={"Idempotency-Key": str(uuid.uuid4())},
                        json={"meter_id": meter, "amount": "321.00", "currency": "NGN",
                              "payment_method": "USSD", "payment_channel": "USSD"})
        assert resp.status_code == 201, resp.text
        found[org] = (meter, resp.json()["id"])
    return found


@pytest.mark.parametrize("role", WRITERS_REFUSED)
def test_writes_by_anyone_but_the_operator_are_refused_and_change_nothing(
        api: Api, functions_db: Seeded, functions_ts: str, callers: dict[str, dict[str, str]],
        pending: dict[int, tuple[int, int]], role: str) -> None:
    before = snapshot(functions_db.url, functions_ts)
    headers = callers[role]
    attempts = []
    now = datetime.now(UTC).replace(microsecond=0)
    for meter, order in pending.values():
        body = {"meter_id": meter, "amount": "999.00", "currency": "NGN",
                "payment_method": "USSD", "payment_channel": "USSD"}
        for extra in ({}, {"rls_organization_id": DEV_A_ID}):
            attempts.append(("create", api.http.post(
                "/functions/v1/orders", json={**body, **extra},
                headers={**headers, "Idempotency-Key": str(uuid.uuid4())})))
        for action in ("complete", "fail", "cancel"):
            attempts.append((action, api.http.post(f"/functions/v1/orders/{order}/{action}",
                                                   headers=headers)))
        attempts.append(("readings", api.http.post(
            "/functions/v1/meter-readings", headers=headers,
            json={"readings": [{"meter_id": meter, "ts": now.isoformat(),
                                "counter_kwh": "1.5"}]})))
    wrong = [(what, r.status_code) for what, r in attempts if r.status_code not in REFUSED]
    assert wrong == []
    assert snapshot(functions_db.url, functions_ts) == before


def test_only_the_service_role_ingests_readings(api: Api, functions_db: Seeded,
                                                functions_ts: str,
                                                callers: dict[str, dict[str, str]],
                                                pending: dict[int, tuple[int, int]]) -> None:
    before = snapshot(functions_db.url, functions_ts)
    meter = pending[DEV_A_ID][0]
    resp = api.http.post("/functions/v1/meter-readings", headers=callers["operator"],
                         json={"readings": [{"meter_id": meter, "ts": datetime.now(UTC)
                                             .replace(microsecond=0).isoformat(),
                                             "counter_kwh": "2.5"}]})
    assert resp.status_code == 403
    assert snapshot(functions_db.url, functions_ts) == before


# -- meter-consumption and freshness ------------------------------------------------------------

T0 = datetime(2026, 2, 10, tzinfo=UTC)
# meter id -> (external reference, grid name, hidden): ids apart from test_meter_consumption's.
TS_METERS = {9101: ("MTR-9101", "Gbamu", False), 9102: ("MTR-9102", "Tunga Test Site", True),
             9103: ("MTR-9103", "Okpokunou", False), 9104: ("MTR-9104", "Okpokunou", True)}


@pytest.fixture(scope="module")
def hourly(functions_ts: str) -> Iterator[None]:
    data = [(T0 + timedelta(hours=h), m, 1.25, ref, grid, hidden, m * 10)
            for m, (ref, grid, hidden) in TS_METERS.items() for h in range(6)]
    with psycopg.connect(functions_ts) as conn:
        delete_meters(conn, TS_METERS)
        write_hourly(conn, data)
    yield
    with psycopg.connect(functions_ts) as conn:
        delete_meters(conn, TS_METERS)


CONSUMPTION_READERS = ("operator", "service role", "aggregator", "aggregator API key")


@pytest.mark.parametrize("role", ROLES)
def test_meter_consumption_readers_and_hidden_rows(
        api: Api, callers: dict[str, dict[str, str]], hourly: None, role: str) -> None:
    window = {"FROM": T0.isoformat(), "TO": (T0 + timedelta(hours=6)).isoformat(),
              "pageLimit": 1000}
    hidden = {ref for ref, _, h in TS_METERS.values() if h}
    problems = []
    for params in ({}, {"meter": "MTR-9102"}, {"meter": "MTR-9104"},
                   {"site": "Tunga Test Site"}, {"site": "okpokunou"},
                   {"include_hidden": "true", "hidden": "true", "is_hidden_from_reporting": "1"},
                   {"organization_id": DEV_B_ID}):
        resp = api.http.get("/functions/v1/meter-consumption", headers=callers[role],
                            params={**window, **params})
        if role not in CONSUMPTION_READERS:
            if resp.status_code not in REFUSED:
                problems.append(f"{params}: {resp.status_code}, expected a refusal")
            continue
        if resp.status_code != 200:
            problems.append(f"{params}: {resp.status_code}")
            continue
        refs = {r["meterId"] for r in resp.json()["readings"]}
        if refs & hidden:
            problems.append(f"{params}: hidden meters {refs & hidden}")
        if not params and refs != {"MTR-9101", "MTR-9103"}:
            problems.append(f"the visible meters are missing: {refs}")
    assert problems == []


@pytest.mark.parametrize("role", ROLES)
def test_freshness_is_for_the_operator_and_the_service_role(
        api: Api, callers: dict[str, dict[str, str]], role: str) -> None:
    status = call(api, "freshness", callers[role]).status_code
    if role in PRIVILEGED:
        assert status == 200
    else:
        assert status in REFUSED


@pytest.mark.parametrize("name", HTTP_FUNCTIONS)
def test_other_headers_do_not_change_who_the_caller_is(
        api: Api, functions_db: Seeded, callers: dict[str, dict[str, str]], name: str) -> None:
    """A developer's token beside another organization's token in `apikey`, forged tenant
    headers, or the service role's token in headers nobody reads, stays that developer."""
    tricks = {**callers["developer A"], "apikey": api.token(role="service_role"),
              "X-Organization-Id": str(DEV_B_ID), "X-Client-Info": "service_role",
              "X-Forwarded-Authorization": f"Bearer {api.token(role='service_role')}",
              "X-Supabase-Role": "service_role"}
    plain = call(api, name, callers["developer A"])
    tricked = call(api, name, tricks)
    assert tricked.status_code == plain.status_code
    if plain.status_code == 200 and name in ("customers", "orders"):
        assert tricked.json() == plain.json()


# -- row-level security without a filter --------------------------------------------------------

class _Rollback(Exception):
    pass


async def _run_each(url: str, role: str, claims: dict[str, Any], statements: list[str]
                    ) -> list[tuple[list[str], list[tuple[Any, ...]], int] | Exception]:
    """Each statement in its own request transaction (as the functions open them), rolled back
    afterwards whatever it did."""
    db = Database(url, max_size=1)
    results: list[tuple[list[str], list[tuple[Any, ...]], int] | Exception] = []
    try:
        for sql in statements:
            try:
                async with db.transaction(role, claims) as conn:
                    cur = await conn.execute(sql)
                    names = [d.name for d in cur.description or ()]
                    found = await cur.fetchall() if cur.description else []
                    results.append((names, found, cur.rowcount))
                    raise _Rollback
            except _Rollback:
                pass
            except psycopg.Error as exc:
                results.append(exc)
    finally:
        await db.close()
    return results


def run_each(url: str, role: str, claims: dict[str, Any], statements: list[str]
             ) -> list[tuple[list[str], list[tuple[Any, ...]], int] | Exception]:
    return asyncio.run(_run_each(url, role, claims, statements))


def claims(org: int | None, org_type: str | None, **extra: Any) -> dict[str, Any]:
    app_metadata: dict[str, Any] = {}
    if org is not None:
        app_metadata = {"organization_id": org, "organization_type": org_type}
    sub = next((uid for uid, _, _, o in STAFF if o == org), None)
    result: dict[str, Any] = {"role": "authenticated", "aud": "authenticated",
                              "app_metadata": app_metadata, **extra}
    if sub:
        result["sub"] = sub
    return result


# table -> the column naming its organization
OWNER_COLUMN = {"customers": "rls_organization_id", "orders": "rls_organization_id",
                "meters": "rls_organization_id", "wallets": "rls_organization_id",
                "transactions": "rls_organization_id",
                "connections": "rls_organization_id", "dcus": "rls_organization_id",
                "grids": "organization_id", "accounts": "organization_id",
                "organizations": "id"}
# An API key's organization is its account's.
KEYS_SQL = ("select k.id, k.key_prefix, a.organization_id as rls_organization_id"
            " from api_keys k join accounts a on a.id = k.account_id")
# Columns nobody reads through the API (revision 0006): `select *` on their tables is refused.
SECRET = {"meters": "decoder_key", "grids": "telegram_response_path_token",
          "organizations": "epicollect_contract_survey_secret",
          "accounts": "telegram_link_token", "api_keys": "key_hash"}


def readable(table: str) -> str:
    """`select` of every column the caller may read, in the table's order."""
    return ("select " + ", ".join(c for c, _ in COLUMNS[table]) + f" from {table}"
            if table in COLUMNS else f"select * from {table}")


COLUMNS: dict[str, list[tuple[str, str]]] = {}


def _load_columns(url: str) -> None:
    """What authenticated may read of each table, from the grants."""
    if COLUMNS:
        return
    for table, column, typ in rows(url, """
            select c.table_name, c.column_name, c.data_type from information_schema.columns c
             where c.table_schema = 'public'
               and has_column_privilege('authenticated', format('public.%%I', c.table_name),
                                        c.column_name, 'select')
             order by c.table_name, c.ordinal_position"""):
        COLUMNS.setdefault(table, []).append((column, typ))


@pytest.fixture(scope="module")
def keys_of_both(functions_db: Seeded) -> Iterator[None]:
    """An API key for each developer, so api_keys has rows of both to keep apart."""
    with psycopg.connect(functions_db.url) as conn:
        made = [create_api_key(conn, org, "rls test") for org in (DEV_A_ID, DEV_B_ID)]
    yield
    with psycopg.connect(functions_db.url) as conn:
        for key in made:
            conn.execute("delete from api_keys where key_hash = %s", (hash_api_key(key),))


@pytest.mark.parametrize(("org", "forged"), [
    (DEV_A_ID, {}), (DEV_B_ID, {}),
    (DEV_A_ID, {"organization_id": DEV_B_ID,
                "user_metadata": {"organization_id": DEV_B_ID, "is_operator": True}}),
])
def test_selects_without_a_filter_return_only_the_callers_rows(
        functions_db: Seeded, keys_of_both: None, org: int, forged: dict[str, Any]) -> None:
    url = functions_db.url
    _load_columns(url)
    tables = list(OWNER_COLUMN)
    results = run_each(url, "authenticated", claims(org, "SOLAR_DEVELOPER", **forged),
                       [readable(t) for t in tables] + ["select * from api_keys", KEYS_SQL])
    problems = []
    for table, result in zip(tables, results, strict=False):
        assert not isinstance(result, Exception), (table, result)
        names, found, _ = result
        owners = [r[names.index(OWNER_COLUMN[table])] for r in found]
        truth = rows(url, f"select count(*) from {table} where {OWNER_COLUMN[table]} = %s",
                     (org,))[0][0]
        if set(owners) != {org} or len(owners) != truth:
            problems.append(f"{table}: owners {sorted(set(owners))}, {len(owners)} of {truth}")
    star, narrow = results[-2], results[-1]
    # The key hash is not granted to authenticated at all; the other columns are row-bounded.
    assert isinstance(star, psycopg.errors.InsufficientPrivilege), star
    for table in SECRET:
        [refused] = run_each(url, "authenticated", claims(org, "SOLAR_DEVELOPER"),
                             [f"select * from {table}"])
        assert isinstance(refused, psycopg.errors.InsufficientPrivilege), (table, refused)
    assert not isinstance(narrow, Exception)
    owners = {r[2] for r in narrow[1]}
    assert owners == {org}, owners
    assert problems == []


@pytest.mark.parametrize(("who", "role", "claim"), [
    ("lender", "authenticated", claims(LENDER_ID, "LENDER")),
    ("aggregator", "authenticated", claims(AGGREGATOR_ID, "DATA_AGGREGATOR")),
    ("no organization", "authenticated", claims(None, None)),
    ("unknown organization", "authenticated", claims(999, "SOLAR_DEVELOPER")),
    ("organization id as text", "authenticated",
     {"role": "authenticated", "app_metadata": {"organization_id": "3 or true"}}),
    ("anon with a developer's claims", "anon", claims(DEV_A_ID, "SOLAR_DEVELOPER")),
])
def test_others_get_no_member_rows_without_a_filter(functions_db: Seeded, keys_of_both: None,
                                                    who: str, role: str,
                                                    claim: dict[str, Any]) -> None:
    url = functions_db.url
    own = claim.get("app_metadata", {}).get("organization_id")
    _load_columns(url)
    private = ("meters", "wallets", "transactions", "connections", "dcus", "accounts",
               "organizations", "api_keys")
    statements = [readable(t) if t != "api_keys" else KEYS_SQL for t in private]
    statements += [readable("customers"), readable("orders"), readable("grids")]
    results = run_each(url, role, claim, statements)
    problems = []
    for table, result in zip(private, results, strict=False):
        if isinstance(result, Exception):
            if not isinstance(result, psycopg.errors.InsufficientPrivilege):
                problems.append(f"{table}: {result!r}")
            continue
        names, found, _ = result
        column = OWNER_COLUMN.get(table, "rls_organization_id")
        others = {r[names.index(column)] for r in found} - {own}
        if others:
            problems.append(f"{table}: rows of organizations {sorted(others)}")
    reporting = who in ("lender", "aggregator")
    for table, result in zip(("customers", "orders", "grids"), results[len(private):],
                             strict=True):
        if isinstance(result, Exception):
            if reporting or not isinstance(result, psycopg.errors.InsufficientPrivilege):
                problems.append(f"{table}: {result!r}")
            continue
        names, found, _ = result
        if not reporting and found:
            problems.append(f"{table}: {len(found)} rows")
        # Reporting readers read every grid (as the legacy lets lenders), never a hidden
        # customer or order.
        if reporting and table != "grids":
            hidden = ("meta_is_hidden_from_reporting" if table == "orders"
                      else "is_hidden_from_reporting")
            if any(r[names.index(hidden)] is not False for r in found):
                problems.append(f"{table}: hidden rows")
            if table == "orders" and any(
                    (r[names.index("order_status")], r[names.index("meta_order_type")])
                    != ("COMPLETED", "ENERGY_TOPUP") for r in found):
                problems.append("orders: not only completed top-ups")
    assert problems == []


@pytest.mark.parametrize(("org", "org_type"), [(LENDER_ID, "LENDER"),
                                               (AGGREGATOR_ID, "DATA_AGGREGATOR")])
def test_reporting_readers_see_no_customers_of_hidden_grids_without_a_filter(
        functions_db: Seeded, org: int, org_type: str) -> None:
    url = functions_db.url
    hidden_grids = ids(url, "select id from grids where is_hidden_from_reporting"
                            " or deleted_at is not null")
    assert ids(url, "select id from customers where grid_id = any(%s)", (list(hidden_grids),))
    [result] = run_each(url, "authenticated", claims(org, org_type),
                        ["select * from customers"])
    assert not isinstance(result, Exception)
    names, found, _ = result
    assert {r[names.index("grid_id")] for r in found} & hidden_grids == set()


@pytest.mark.parametrize("org", [DEV_A_ID, LENDER_ID, AGGREGATOR_ID])
def test_writes_without_a_filter_touch_nothing(functions_db: Seeded, org: int) -> None:
    url = functions_db.url
    org_type = {DEV_A_ID: "SOLAR_DEVELOPER", LENDER_ID: "LENDER",
                AGGREGATOR_ID: "DATA_AGGREGATOR"}[org]
    statements = [
        "update orders set amount = amount + 1",
        "update orders set order_status = 'COMPLETED'",
        "update meters set kwh_credit_available = kwh_credit_available + 1000",
        "insert into transactions (amount, transaction_status, wallet_id, rls_organization_id)"
        f" select 1, 'SUCCESSFUL', id, {org} from wallets limit 1",
        "update wallets set balance = balance + 1000",
        "insert into orders (amount, currency, order_status, meta_order_type, tariff,"
        f" rls_organization_id) values (1, 'NGN', 'PENDING', 'ENERGY_TOPUP', 1, {org})",
        "delete from customers",
        "delete from orders",
        "update api_keys set is_locked = false",
        f"update app.settings set operator_organization_id = {org}",
        "update accounts set organization_id = 2",
    ]
    results = run_each(url, "authenticated", claims(org, org_type), statements)
    wrote = [(sql[:40], r) for sql, r in zip(statements, results, strict=True)
             if not isinstance(r, Exception) and r[2] != 0]
    errors = [(sql[:40], r) for sql, r in zip(statements, results, strict=True)
              if isinstance(r, Exception)
              and not isinstance(r, psycopg.errors.InsufficientPrivilege)]
    assert wrote == [] and errors == []
