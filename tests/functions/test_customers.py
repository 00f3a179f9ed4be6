"""customers over real HTTP (`nxt serve`), on the seeded database: legacy envelope, who sees
what, row-level security across organizations, and 400s that name the bad parameter."""

from __future__ import annotations

from typing import Any

import psycopg
import pytest

from nxt_cli.seed import AGGREGATOR_ID, DEV_A_ID, DEV_B_ID, LENDER_ID, OPERATOR_ID
from tests.conftest import Api, Seeded

pytestmark = pytest.mark.db

MASK = "*******"

VISIBLE = """
    select c.id from customers c join grids g on g.id = c.grid_id
    where not c.is_hidden_from_reporting and not g.is_hidden_from_reporting
      and g.deleted_at is null {extra} order by c.id"""


def ids(functions_db: Seeded, extra: str = "", params: tuple[Any, ...] = ()) -> list[int]:
    with psycopg.connect(functions_db.url) as conn:
        return [r[0] for r in conn.execute(VISIBLE.format(extra=extra), params)]  # type: ignore[arg-type]


def all_pages(api: Api, token: str, **params: Any) -> list[dict[str, Any]]:
    entries: list[dict[str, Any]] = []
    page = 1
    while True:
        body = api.get("/functions/v1/customers", token=token,
                       params={"page": page, "size": 1000, **params}).json()
        entries += body["entries"]
        if page >= body["total_pages"]:
            return entries
        page += 1


def test_lender_gets_the_legacy_envelope_with_masked_names(api: Api, functions_db: Seeded) -> None:
    resp = api.get("/functions/v1/customers", token=api.token(LENDER_ID))
    assert resp.status_code == 200, resp.text
    assert resp.headers["content-type"].startswith("application/json")
    body = resp.json()
    assert set(body) == {"total", "page", "size", "total_pages", "entries"}
    expected = ids(functions_db)
    assert body["total"] == len(expected)
    assert (body["page"], body["size"]) == (1, 100)
    assert body["total_pages"] == -(-len(expected) // 100)
    assert len(body["entries"]) == 100
    for entry in body["entries"]:
        assert set(entry) == {"id", "full_name", "grid"}
        assert entry["full_name"] == MASK
        assert isinstance(entry["grid"], str) and entry["grid"]
    assert [e["id"] for e in body["entries"]] == expected[:100]


def test_lender_pages_cover_every_visible_customer_once(api: Api, functions_db: Seeded) -> None:
    entries = all_pages(api, api.token(LENDER_ID))
    assert [e["id"] for e in entries] == ids(functions_db)


def test_operator_sees_names_and_may_include_hidden(api: Api, functions_db: Seeded) -> None:
    token = api.token(OPERATOR_ID)
    body = api.get("/functions/v1/customers", token=token, params={"size": 5}).json()
    assert all(e["full_name"] not in (None, MASK) for e in body["entries"])
    assert body["total"] == len(ids(functions_db))
    everything = api.get("/functions/v1/customers", token=token,
                         params={"include_hidden": "true", "size": 1}).json()
    with psycopg.connect(functions_db.url) as conn:
        all_count = conn.execute("select count(*) from customers").fetchone()[0]  # type: ignore[index]
    assert everything["total"] == all_count > body["total"]


def test_service_role_sees_names(api: Api) -> None:
    body = api.get("/functions/v1/customers", token=api.token(role="service_role"),
                   params={"size": 3}).json()
    assert len(body["entries"]) == 3 and all(e["full_name"] != MASK for e in body["entries"])


@pytest.mark.parametrize("org", [DEV_A_ID, DEV_B_ID])
def test_developers_see_only_their_own_customers(api: Api, functions_db: Seeded,
                                                 org: int) -> None:
    mine = ids(functions_db, "and c.rls_organization_id = %s", (org,))
    entries = all_pages(api, api.token(org))
    assert [e["id"] for e in entries] == mine
    assert all(e["full_name"] != MASK for e in entries)


def test_one_developer_cannot_read_the_others_customer(api: Api, functions_db: Seeded) -> None:
    theirs = ids(functions_db, "and c.rls_organization_id = %s", (DEV_B_ID,))[0]
    assert api.get(f"/functions/v1/customers/{theirs}", token=api.token(DEV_A_ID)
                   ).status_code == 404
    resp = api.get(f"/functions/v1/customers/{theirs}", token=api.token(DEV_B_ID))
    assert resp.status_code == 200
    assert resp.json()["id"] == theirs
    # Asking for the other organization's grid gives an empty page, not its customers.
    with psycopg.connect(functions_db.url) as conn:
        grid = conn.execute("select grid_id from customers where id = %s", (theirs,)).fetchone()[0]  # type: ignore[index]
    body = api.get("/functions/v1/customers", token=api.token(DEV_A_ID),
                   params={"grid": grid}).json()
    assert body["total"] == 0 and body["entries"] == []


def test_single_customer_fields(api: Api, functions_db: Seeded) -> None:
    first = ids(functions_db)[0]
    named = api.get(f"/functions/v1/customers/{first}", token=api.token(OPERATOR_ID)).json()
    assert set(named) == {"id", "full_name", "grid", "grid_id", "created_at",
                          "is_hidden_from_reporting"}
    masked = api.get(f"/functions/v1/customers/{first}", token=api.token(LENDER_ID)).json()
    assert masked["full_name"] == MASK and masked["grid"] == named["grid"]


def test_hidden_customer_is_404_for_lenders(api: Api, functions_db: Seeded) -> None:
    with psycopg.connect(functions_db.url) as conn:
        hidden = conn.execute("select min(id) from customers where is_hidden_from_reporting"
                              ).fetchone()[0]  # type: ignore[index]
    assert hidden is not None
    assert api.get(f"/functions/v1/customers/{hidden}", token=api.token(LENDER_ID)
                   ).status_code == 404
    assert api.get(f"/functions/v1/customers/{hidden}", token=api.token(OPERATOR_ID)
                   ).status_code == 200


def test_missing_customer_is_404(api: Api) -> None:
    resp = api.get("/functions/v1/customers/99999999", token=api.token(OPERATOR_ID))
    assert resp.status_code == 404
    assert "99999999" in resp.json()["error"]


def test_filters_by_grid_and_creation_time(api: Api, functions_db: Seeded) -> None:
    token = api.token(OPERATOR_ID)
    on_grid = all_pages(api, token, grid=4)
    assert [e["id"] for e in on_grid] == ids(functions_db, "and c.grid_id = 4")
    with psycopg.connect(functions_db.url) as conn:
        middle = conn.execute("select created_at from customers order by created_at"
                              " offset 500 limit 1").fetchone()[0]  # type: ignore[index]
    later = all_pages(api, token, created_from=middle.isoformat())
    assert [e["id"] for e in later] == ids(functions_db, "and c.created_at >= %s", (middle,))
    earlier = all_pages(api, token, created_to=middle.isoformat())
    assert [e["id"] for e in earlier] == ids(functions_db, "and c.created_at < %s", (middle,))


def test_order_and_direction(api: Api, functions_db: Seeded) -> None:
    token = api.token(OPERATOR_ID)
    desc = api.get("/functions/v1/customers", token=token,
                   params={"order": "id", "ascending": "false", "size": 20}).json()
    assert [e["id"] for e in desc["entries"]] == ids(functions_db)[::-1][:20]
    by_grid = api.get("/functions/v1/customers", token=token,
                      params={"order": "grid", "size": 1000}).json()["entries"]
    names = [e["grid"] for e in by_grid]
    assert names == sorted(names)


@pytest.mark.parametrize("org", [AGGREGATOR_ID, None])
def test_callers_without_a_reporting_role_get_403(api: Api, org: int | None) -> None:
    resp = api.get("/functions/v1/customers", token=api.token(org))
    assert resp.status_code == 403
    assert "error" in resp.json()


def test_lenders_cannot_include_hidden(api: Api) -> None:
    resp = api.get("/functions/v1/customers", token=api.token(LENDER_ID),
                   params={"include_hidden": "true"})
    assert resp.status_code == 403
    assert "include_hidden" in resp.json()["error"]


@pytest.mark.parametrize("headers", [
    {},
    {"Authorization": "Bearer"},
    {"Authorization": "Bearer not.a.jwt"},
    {"Authorization": "Basic dXNlcjpwYXNz"},
])
def test_no_or_bad_credentials_get_401(api: Api, headers: dict[str, str]) -> None:
    resp = api.get("/functions/v1/customers", headers=headers)
    assert resp.status_code == 401
    assert resp.headers["www-authenticate"].startswith("Bearer")


def test_anon_jwt_passes_the_gate_but_gets_401(api: Api) -> None:
    resp = api.get("/functions/v1/customers", token=api.token(role="anon"))
    assert resp.status_code == 401


def test_wrong_secret_is_401(api: Api) -> None:
    from nxt_cli.tokens import mint_token

    forged = mint_token("another-secret-that-is-long-enough-0123456789", role="authenticated",
                        organization_id=OPERATOR_ID, organization_type="SOLAR_DEVELOPER")
    assert api.get("/functions/v1/customers", token=forged).status_code == 401


@pytest.mark.parametrize(("param", "value"), [
    ("page", "0"), ("page", "-1"), ("page", "abc"), ("page", "1.5"), ("page", "NaN"),
    ("page", "9" * 30), ("page", "1; drop table customers"),
    ("size", "0"), ("size", "1001"), ("size", "-5"), ("size", "ten"), ("size", "1e3"),
    ("order", "full_name"), ("order", "id; drop table customers"), ("order", "id desc"),
    ("order", "(select 1)"), ("ascending", "sideways"), ("grid", "0"), ("grid", "grid-1"),
    ("created_from", "2026-01-01T00:00:00"), ("created_to", "yesterday"),
])
def test_bad_parameters_are_400_naming_the_parameter(api: Api, param: str, value: str) -> None:
    resp = api.get("/functions/v1/customers", token=api.token(OPERATOR_ID),
                   params={param: value})
    assert resp.status_code == 400, resp.text
    assert param in resp.json()["error"]


@pytest.mark.parametrize("raw", ["abc", "0", "-3", "1.0", "9" * 30, "1%3B%20select%201"])
def test_bad_customer_ids_are_400(api: Api, raw: str) -> None:
    resp = api.get(f"/functions/v1/customers/{raw}", token=api.token(OPERATOR_ID))
    assert resp.status_code == 400, resp.text
    assert "id" in resp.json()["error"]


def test_cors_preflight_passes_the_gate(api: Api) -> None:
    resp = api.request("OPTIONS", "/functions/v1/customers", headers={
        "Origin": "https://app.example", "Access-Control-Request-Method": "GET"})
    assert resp.status_code in (200, 204)
    assert resp.headers["access-control-allow-origin"] == "*"
    allowed = resp.headers["access-control-allow-headers"].lower()
    for header in ("authorization", "x-client-info", "apikey", "content-type"):
        assert header in allowed


def test_other_methods_are_refused(api: Api) -> None:
    resp = api.request("DELETE", "/functions/v1/customers", token=api.token(OPERATOR_ID))
    assert resp.status_code in (400, 405)
    assert resp.json()["error"] == "Method not supported"


def test_unknown_route_is_404(api: Api) -> None:
    resp = api.get("/functions/v1/customers/1/orders", token=api.token(OPERATOR_ID))
    assert resp.status_code == 404


def test_cached_totals_are_never_shared_between_callers(api: Api, functions_db: Seeded) -> None:
    """The operator's total, counted first (shared.totals caches it), must not answer a
    developer's request for the same page."""
    url = "/functions/v1/customers"
    operator = api.get(url, token=api.token(OPERATOR_ID), params={"size": 1}).json()["total"]
    developer = api.get(url, token=api.token(DEV_B_ID), params={"size": 1}).json()["total"]
    assert developer == len(ids(functions_db, "and c.rls_organization_id = %s",
                                (DEV_B_ID,))) < operator
