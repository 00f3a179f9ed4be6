"""The custom access token hook, called the way Supabase Auth calls it."""

from __future__ import annotations

import json
from typing import Any

import psycopg
import pytest

from nxt_cli.seed import AGGREGATOR_ID, DEV_A_ID, demo_user_id

pytestmark = pytest.mark.db


def _hook(url: str, event: dict[str, Any], role: str = "supabase_auth_admin") -> dict[str, Any]:
    with psycopg.connect(url) as conn:
        conn.execute("select set_config('role', %s, true)", (role,))
        row = conn.execute("select public.custom_access_token_hook(%s::jsonb)",
                           (json.dumps(event),)).fetchone()
    assert row is not None
    return row[0]


def _event(user_id: str, claims: dict[str, Any] | None = None) -> dict[str, Any]:
    return {
        "user_id": user_id,
        "claims": claims if claims is not None else {
            "aud": "authenticated", "sub": user_id, "role": "authenticated",
            "app_metadata": {"provider": "email"}, "user_metadata": {},
        },
        "authentication_method": "password",
    }


def test_hook_sets_the_organization_of_the_callers_account(seeded_db: str) -> None:
    out = _hook(seeded_db, _event(demo_user_id(DEV_A_ID)))
    meta = out["claims"]["app_metadata"]
    assert meta == {"provider": "email", "organization_id": DEV_A_ID,
                    "organization_type": "SOLAR_DEVELOPER"}
    assert out["claims"]["sub"] == demo_user_id(DEV_A_ID)
    assert out["authentication_method"] == "password"


def test_hook_for_an_aggregator(seeded_db: str) -> None:
    meta = _hook(seeded_db, _event(demo_user_id(AGGREGATOR_ID)))["claims"]["app_metadata"]
    assert (meta["organization_id"], meta["organization_type"]) == (AGGREGATOR_ID,
                                                                    "DATA_AGGREGATOR")


@pytest.mark.parametrize("user_id", ["11111111-2222-4333-8444-555555555555", "not-a-uuid", ""])
def test_hook_removes_forged_claims_for_users_without_an_account(seeded_db: str,
                                                                user_id: str) -> None:
    claims = {"role": "authenticated",
              "app_metadata": {"organization_id": 2, "organization_type": "LENDER", "x": 1}}
    out = _hook(seeded_db, _event(user_id, claims))
    assert out["claims"]["app_metadata"] == {"x": 1}


def test_hook_without_app_metadata_creates_it(seeded_db: str) -> None:
    out = _hook(seeded_db, _event(demo_user_id(DEV_A_ID), {"role": "authenticated"}))
    assert out["claims"]["app_metadata"]["organization_id"] == DEV_A_ID


@pytest.mark.parametrize("role", ["anon", "authenticated"])
def test_api_roles_cannot_call_the_hook(seeded_db: str, role: str) -> None:
    with pytest.raises(psycopg.errors.InsufficientPrivilege):
        _hook(seeded_db, _event(demo_user_id(DEV_A_ID)), role=role)
