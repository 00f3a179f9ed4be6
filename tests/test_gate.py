"""The per-function JWT gate, over real HTTP: `verify_jwt = true` refuses anything that is not a
valid JWT before the handler runs, as the Supabase gateway does; preflight passes."""

from __future__ import annotations

import pytest

from nxt_cli.seed import OPERATOR_ID
from shared.auth import mint_token
from shared.gate import API_KEY, DECLARED, JWT, GateSpec, gated, target_name
from shared.supabase_config import function_settings

from .conftest import TEST_JWT_SECRET, Api, Seeded

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
