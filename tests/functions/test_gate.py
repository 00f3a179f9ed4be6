"""The per-function JWT gate, over real HTTP: `verify_jwt = true` refuses anything that is not a
valid JWT before the handler runs, as the Supabase gateway does; preflight passes."""

from __future__ import annotations

import pytest

from nxt_cli.seed import OPERATOR_ID
from nxt_cli.tokens import mint_token
from shared.auth.declared import API_KEY, DECLARED, JWT, GateSpec, target_name
from shared.auth.gate import gated
from shared.supabase_config import function_settings
from tests.conftest import TEST_JWT_SECRET, Api, Seeded

FUNCTIONS = ("customers", "orders")
SB_KEY = "invalid JWT: Supabase API keys (sb_...) are not JWTs"


@pytest.mark.db
@pytest.mark.parametrize("name", FUNCTIONS)
@pytest.mark.parametrize(("header", "reason"), [
    (None, "missing authorization header"),
    ("Bearer", None),
    ("Bearer sb_publishable_abcdefghijklmnopqrstuv", SB_KEY),
    ("Bearer sb_secret_abcdefghijklmnopqrstuvwxyz012", SB_KEY),
    ("Bearer eyJhbGciOiJub25lIn0.eyJyb2xlIjoic2VydmljZV9yb2xlIn0.", None),
    ("Token abc", "missing authorization header"),
])
def test_gate_refuses_what_is_not_a_valid_jwt(api: Api, name: str, header: str | None,
                                             reason: str | None) -> None:
    headers = {} if header is None else {"Authorization": header}
    resp = api.get(f"/functions/v1/{name}", headers=headers)
    assert resp.status_code == 401, resp.text
    if reason:
        assert resp.json()["error"] == reason


@pytest.mark.db
@pytest.mark.parametrize("name", FUNCTIONS)
def test_our_api_keys_do_not_pass_a_jwt_gate(api: Api, functions_db: Seeded, name: str) -> None:
    _, key = functions_db.api_keys[0]
    for headers in ({"Authorization": f"Bearer {key}"}, {"X-API-Key": key}):
        assert api.get(f"/functions/v1/{name}", headers=headers).status_code == 401


@pytest.mark.db
@pytest.mark.parametrize("name", FUNCTIONS)
def test_apikey_header_alone_is_not_a_credential(api: Api, name: str) -> None:
    anon = api.token(role="anon")
    resp = api.get(f"/functions/v1/{name}", headers={"apikey": anon})
    assert resp.status_code == 401


@pytest.mark.db
@pytest.mark.parametrize("name", FUNCTIONS)
def test_expired_and_foreign_tokens_are_refused(api: Api, name: str) -> None:
    expired = mint_token(TEST_JWT_SECRET, role="authenticated", organization_id=OPERATOR_ID,
                         organization_type="SOLAR_DEVELOPER", expires_in=-120)
    assert api.get(f"/functions/v1/{name}", token=expired).status_code == 401
    wrong_audience = mint_token(TEST_JWT_SECRET, role="authenticated", audience="someone-else",
                                organization_id=OPERATOR_ID)
    assert api.get(f"/functions/v1/{name}", token=wrong_audience).status_code == 401


@pytest.mark.db
@pytest.mark.parametrize("name", FUNCTIONS)
def test_preflight_passes_the_gate(api: Api, name: str) -> None:
    resp = api.request("OPTIONS", f"/functions/v1/{name}",
                       headers={"Access-Control-Request-Method": "POST"})
    assert resp.status_code in (200, 204)
    assert resp.headers["access-control-allow-origin"] == "*"


@pytest.mark.db
def test_unknown_function_is_404(api: Api) -> None:
    resp = api.get("/functions/v1/nope", token=api.token(OPERATOR_ID))
    assert resp.status_code == 404


def test_functions_declare_what_they_accept() -> None:
    from nxt_cli.openapi import documents
    from nxt_cli.stack import project_root

    documents(project_root())  # imports every function module, filling DECLARED
    for name in FUNCTIONS:
        spec = DECLARED[name]
        assert spec == GateSpec(name=name, target=target_name(name), accepts=frozenset({JWT}))
        assert spec.requires_jwt and function_settings(name).verify_jwt


def test_api_key_functions_need_the_gate_off() -> None:
    spec = GateSpec(name="x", target="x", accepts=frozenset({API_KEY, JWT}))
    assert spec.needs_jwt_gate_off and not spec.requires_jwt


@pytest.mark.parametrize("accepts", [set(), {"password"}])
def test_declarations_are_validated(accepts: set[str]) -> None:
    with pytest.raises(ValueError, match="accepts"):
        gated("customers", accepts=accepts, methods=["GET"])


# -- access rests on the database's current state, not on the token's claims (finding 7) ---------

BOUND = 5.5  # CALLER_STATE_TTL_SECONDS (5) and a margin: how late a change may take effect


def _served_again(api: Api, path: str, token: str, params: dict[str, str] | None = None) -> None:
    """Once a test puts an account or organization back, its access returns within BOUND; and
    the tests after it (same server) must not meet the refusal the server still remembers."""
    import time

    deadline = time.monotonic() + 2 * BOUND
    while (status := api.get(path, token=token, params=params).status_code) != 200:
        assert time.monotonic() < deadline, f"{path}: still {status} after the change was undone"
        time.sleep(0.25)


@pytest.mark.db
def test_a_retyped_organization_loses_what_its_old_type_gave(api: Api,
                                                             functions_db: Seeded) -> None:
    """An aggregator's token keeps saying DATA_AGGREGATOR after the organization is made a
    solar developer: meter consumption must follow the organizations table."""
    import time

    import psycopg

    from nxt_cli.seed import AGGREGATOR_ID

    token = api.token(AGGREGATOR_ID)
    params = {"FROM": "2026-10-01T00:00:00Z", "TO": "2026-10-01T01:00:00Z"}
    assert api.get("/functions/v1/meter-consumption", token=token,
                   params=params).status_code == 200
    with psycopg.connect(functions_db.url) as conn:
        conn.execute("update organizations set organization_type = 'SOLAR_DEVELOPER'"
                     " where id = %s", (AGGREGATOR_ID,))
    try:
        time.sleep(BOUND)
        resp = api.get("/functions/v1/meter-consumption", token=token, params=params)
        assert resp.status_code == 403, resp.text
    finally:
        with psycopg.connect(functions_db.url) as conn:
            conn.execute("update organizations set organization_type = 'DATA_AGGREGATOR'"
                         " where id = %s", (AGGREGATOR_ID,))
        _served_again(api, "/functions/v1/meter-consumption", token, params)


@pytest.mark.db
def test_a_deleted_account_keeps_nothing_of_its_token(api: Api, functions_db: Seeded) -> None:
    import time

    import psycopg

    from nxt_cli.seed import DEV_B_ID, demo_user_id

    token = api.token(DEV_B_ID)
    assert api.get("/functions/v1/customers", token=token).json()["total"] > 0
    with psycopg.connect(functions_db.url) as conn:
        conn.execute("update accounts set deleted_at = now() where supabase_id = %s",
                     (demo_user_id(DEV_B_ID),))
    try:
        time.sleep(BOUND)
        for name in ("customers", "orders"):
            resp = api.get(f"/functions/v1/{name}", token=token)
            assert resp.status_code == 403, (name, resp.text)
    finally:
        with psycopg.connect(functions_db.url) as conn:
            conn.execute("update accounts set deleted_at = null where supabase_id = %s",
                         (demo_user_id(DEV_B_ID),))
        _served_again(api, "/functions/v1/customers", token)


@pytest.mark.db
def test_claims_naming_another_organization_are_judged_by_the_account(
        api: Api, functions_db: Seeded) -> None:
    """A validly signed token whose app_metadata names developer B for developer A's user (a
    stale or hand-edited claim) reads developer A's customers, as the account says."""
    import psycopg

    from nxt_cli.seed import DEV_A_ID, DEV_B_ID, demo_user_id

    token = mint_token(TEST_JWT_SECRET, role="authenticated", sub=demo_user_id(DEV_A_ID),
                       organization_id=DEV_B_ID, organization_type="SOLAR_DEVELOPER")
    body = api.get("/functions/v1/customers", token=token, params={"size": 1000}).json()
    with psycopg.connect(functions_db.url) as conn:
        mine = {r[0] for r in conn.execute(
            "select id from customers where rls_organization_id = %s and account_id is not null"
            " and not is_hidden_from_reporting", (DEV_A_ID,))}
    assert {e["id"] for e in body["entries"]} <= mine and body["total"] > 0


@pytest.mark.db
def test_the_local_gateway_runs_a_job_for_the_service_role_only(api: Api) -> None:
    """Attack finding 8: a CloudEvent POST with ce-* headers to a job's route ran the job for
    anyone who could reach `nxt serve`'s port."""
    event = {"ce-specversion": "1.0", "ce-id": "1", "ce-source": "//attacker",
             "ce-type": "google.cloud.pubsub.topic.v1.messagePublished",
             "content-type": "application/json"}
    body = {"message": {"data": "e30="}}
    before = api.log_path.read_text().count("job freshness-check:")
    for headers in (event, {**event, "Authorization": f"Bearer {api.token(OPERATOR_ID)}"},
                    {**event, "Authorization": "Bearer not-a-token"}):
        resp = api.post("/functions/v1/freshness-check", headers=headers, json=body)
        assert resp.status_code == 401, resp.text
    assert api.log_path.read_text().count("job freshness-check:") == before
    ran = api.post("/functions/v1/freshness-check", json=body,
                   headers={**event, "Authorization": f"Bearer {api.token(role='service_role')}"})
    assert ran.status_code == 200, ran.text
