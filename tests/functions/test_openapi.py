"""Each HTTP function's OpenAPI document: valid 3.1, checked in up to date, and served by the
function itself behind its gate."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import pytest
from openapi_spec_validator import validate

from nxt_cli.openapi import DOCS_DIR, documents, render, sync
from nxt_cli.seed import LENDER_ID
from tests.conftest import Api

ROOT = Path(__file__).resolve().parents[2]


@pytest.fixture(scope="module")
def docs() -> dict[str, dict[str, Any]]:
    return documents(ROOT)


def test_every_http_function_has_a_document(docs: dict[str, dict[str, Any]]) -> None:
    assert {"customers", "orders"} <= set(docs)


@pytest.mark.parametrize("name", ["customers", "orders"])
def test_documents_are_valid_openapi_31(docs: dict[str, dict[str, Any]], name: str) -> None:
    doc = docs[name]
    validate(doc)
    assert doc["openapi"].startswith("3.1")
    assert doc["servers"][0]["url"].endswith(f"/functions/v1/{name}")
    assert "bearerAuth" in doc["components"]["securitySchemes"]


def test_error_shape_and_parameters_are_documented(docs: dict[str, dict[str, Any]]) -> None:
    listing = docs["customers"]["paths"]["/"]["get"]
    names = {p["name"] for p in listing["parameters"]}
    assert {"page", "size", "order", "ascending", "grid"} <= names
    size = next(p for p in listing["parameters"] if p["name"] == "size")
    assert size["schema"]["maximum"] == 1000
    assert "400" in listing["responses"] and "401" in listing["responses"]
    create = docs["orders"]["paths"]["/"]["post"]
    assert any(p["name"] == "Idempotency-Key" and p["required"] for p in create["parameters"])
    assert "requestBody" in create


def test_checked_in_documents_are_current() -> None:
    stale = sync(ROOT, check=True)
    assert stale == [], f"run `nxt openapi`: {stale}"


def test_check_reports_a_stale_document(tmp_path: Path) -> None:
    root = tmp_path / "project"
    root.mkdir()
    (root / "functions").symlink_to(ROOT / "functions")
    out = root / DOCS_DIR
    out.mkdir(parents=True)
    (out / "customers.json").write_text("{}\n")
    (out / "gone.json").write_text("{}\n")
    stale = sync(root, check=True)
    assert str(DOCS_DIR / "customers.json") in stale
    assert str(DOCS_DIR / "orders.json") in stale
    assert str(DOCS_DIR / "gone.json") in stale
    sync(root, check=False)
    assert sync(root, check=True) == []
    assert not (out / "gone.json").exists()


@pytest.mark.db
@pytest.mark.parametrize("name", ["customers", "orders"])
def test_functions_serve_their_document_behind_the_gate(api: Api, name: str) -> None:
    url = f"/functions/v1/{name}/openapi.json"
    assert api.get(url).status_code == 401
    resp = api.get(url, token=api.token(LENDER_ID))
    assert resp.status_code == 200
    served = resp.json()
    assert render(served) == (ROOT / DOCS_DIR / f"{name}.json").read_text()
    assert json.loads((ROOT / DOCS_DIR / f"{name}.json").read_text()) == served
