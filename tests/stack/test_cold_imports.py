"""What a function's cold start imports: each bundle's main.py loaded from inside the bundle, as
functions-framework loads it, in a fresh interpreter. The cold-start rows of bench/run.py time
it; these tests keep the heavy modules off the path for good. Which modules, never how long.

The request path is covered elsewhere: the bundles serve real requests (tests/stack/test_bundle.py).
"""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path

import pytest

from nxt_cli.functions import function_sources
from nxt_cli.harness import ROOT
from tests.conftest import TEST_JWT_SECRET

FUNCTIONS = list(function_sources(ROOT))  # meter-consumption-2 too
JOBS = {"snapshot-meters", "sync-orders", "grid-daily", "timeseries-maintenance",
        "freshness-check", "reconcile-check"}

# What `functions-framework --source main.py --target <target>` builds before it serves, then
# the modules the process holds.
LOAD = """
import json, os, sys
from functions_framework.aio import create_asgi_app
create_asgi_app(target=os.environ["K_SERVICE"].replace("-", "_"), source="main.py")
print(json.dumps(sorted(sys.modules)))
"""

# Never at a cold start: migrations tooling; PyJWT and its crypto backends (imported by the
# first token verification, not by loading the function); the OpenAPI document's models and
# schema generation (built on request of /openapi.json); the connection pool (opened by the
# first query); the first request's token verification and credential lookups.
NEVER = ("sqlalchemy", "alembic", "jwt", "cryptography", "shared.openapi", "psycopg_pool",
         "shared.auth.verifier", "shared.auth.configured", "shared.auth.key_lookup",
         "shared.auth.accounts", "shared.auth.api_keys", "timeseries.tables", "timeseries.engine")
# meter-readings still declares its OpenAPI operations next to its request models (models.py),
# so importing those builds them; the other HTTP functions keep them in docs.py.
ALLOWED = {"meter-readings": ("shared.openapi",)}
# A job answers no HTTP caller and validates no request: none of the HTTP machinery, and of
# shared.auth only the declarations, which jobs make too, and the roles the data layer checks.
NEVER_IN_JOBS = ("shared.web", "shared.auth", "pydantic")
JOBS_MAY_LOAD = {"shared.auth", "shared.auth.declared", "shared.auth.roles"}


@pytest.fixture(scope="module")
def dist(tmp_path_factory: pytest.TempPathFactory) -> Path:
    out = tmp_path_factory.mktemp("dist")
    done = subprocess.run([sys.executable, "-m", "nxt_cli.main", "bundle", "--all", "--out",
                           str(out)], cwd=ROOT, capture_output=True, text=True, timeout=300)
    assert done.returncode == 0, done.stderr
    return out


def cold_modules(directory: Path, name: str) -> set[str]:
    drop = {"PYTHONPATH", "NXT_SUPABASE_CONFIG", "K_SERVICE", "DATABASE_URL",
            "TIMESERIES_DATABASE_URL"}
    env = {**{k: v for k, v in os.environ.items() if k not in drop}, "K_SERVICE": name,
           "SUPABASE_JWT_SECRET": TEST_JWT_SECRET,
           # Never reached at import: a cold start opens no connection before a request.
           "DATABASE_URL": "postgresql://nobody@127.0.0.1:9/none",
           "TIMESERIES_DATABASE_URL": "postgresql://nobody@127.0.0.1:9/none"}
    done = subprocess.run([sys.executable, "-c", LOAD], cwd=directory, env=env,
                          capture_output=True, text=True, timeout=120)
    assert done.returncode == 0, done.stderr[-3000:]
    return set(json.loads(done.stdout.splitlines()[-1]))


def loaded(modules: set[str], names: tuple[str, ...]) -> list[str]:
    return sorted(m for m in modules if any(m == n or m.startswith(n + ".") for n in names))


@pytest.mark.parametrize("name", FUNCTIONS)
def test_a_cold_start_imports_only_what_serving_needs(dist: Path, name: str) -> None:
    modules = cold_modules(dist / name, name)
    # it did load the function
    assert ("shared.jobs" if name in JOBS else "shared.auth.gate") in modules
    assert loaded(modules, NEVER) == loaded(modules, ALLOWED.get(name, ()))
    if name in JOBS:
        assert set(loaded(modules, NEVER_IN_JOBS)) <= JOBS_MAY_LOAD


def test_functions_without_request_models_never_import_pydantic(dist: Path) -> None:
    # freshness validates no input: pydantic is only for its OpenAPI document.
    assert loaded(cold_modules(dist / "freshness", "freshness"), ("pydantic",)) == []


def test_orders_imports_idempotency_only_to_create_an_order(dist: Path) -> None:
    assert loaded(cold_modules(dist / "orders", "orders"), ("shared.web.idempotency",)) == []
