"""Test fixtures: the stack's (a real PostgreSQL, scratch databases) come from the plugin
tests/support/fix_stack.py over nxt_cli/harness.py; here are the seeded databases and the functions
served over real HTTP that the function tests share.
"""

from __future__ import annotations

import os
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path

import pytest

from nxt_cli.harness import ScratchDatabases, serve, stack_env

pytest_plugins = ["tests.support.fix_stack"]


@dataclass(frozen=True)
class Seeded:
    url: str
    api_keys: tuple[tuple[str, str], ...]  # (organization name, plaintext key)


@pytest.fixture(scope="session")
def seeded(scratch: ScratchDatabases) -> Seeded:
    """One migrated database with the demo data, shared by tests that only read it."""
    from nxt_cli.migrate import migrate
    from nxt_cli.seed import seed

    url = scratch.create("nxt_seeded")
    migrate(url)
    result = seed(url)
    assert result.api_keys, "the demo data must create API keys"
    return Seeded(url, tuple(result.api_keys))


@pytest.fixture(scope="session")
def seeded_db(seeded: Seeded) -> str:
    return seeded.url


# -- the functions, served over real HTTP -------------------------------------------------------

TEST_JWT_SECRET = "test-secret-for-the-function-tests-0123456789"


class Api:
    """Talks to the functions over HTTP, minting tokens the way Supabase Auth would."""

    def __init__(self, base_url: str, secret: str, log_path: Path) -> None:
        import httpx

        self.base_url = base_url
        self.secret = secret
        self.log_path = log_path
        self.http = httpx.Client(base_url=base_url, timeout=30)

    def token(self, org_id: int | None = None, *, role: str = "authenticated",
              org_type: str | None = None, **kwargs: object) -> str:
        from nxt_cli.seed import ORGANIZATIONS, STAFF
        from nxt_cli.tokens import mint_token

        if role != "authenticated":
            return mint_token(self.secret, role=role, audience=None, **kwargs)  # type: ignore[arg-type]
        if org_type is None and org_id is not None:
            org_type = next((t for i, _, t, _ in ORGANIZATIONS if i == org_id), None)
        sub = kwargs.pop("sub", None) or next(
            (uid for uid, _, _, org in STAFF if org == org_id),
            "00000000-0000-4000-8000-0000000000ff")
        return mint_token(self.secret, role="authenticated", sub=sub, organization_id=org_id,
                          organization_type=org_type, **kwargs)  # type: ignore[arg-type]

    def request(self, method: str, path: str, *, token: str | None = None,
                headers: dict[str, str] | None = None, **kwargs: object):  # type: ignore[no-untyped-def]
        all_headers = dict(headers or {})
        if token is not None:
            all_headers["Authorization"] = f"Bearer {token}"
        return self.http.request(method, path, headers=all_headers, **kwargs)  # type: ignore[arg-type]

    def get(self, path: str, **kwargs: object):  # type: ignore[no-untyped-def]
        return self.request("GET", path, **kwargs)

    def post(self, path: str, **kwargs: object):  # type: ignore[no-untyped-def]
        return self.request("POST", path, **kwargs)


def adopted_mode() -> bool:
    """NXT_TEST_ADOPTED=1: the function tests run on databases built by the legacy migrations
    and adopted (`nxt db adopt`), with the demo data loaded through the legacy triggers, instead
    of fresh ones (CI runs them both ways)."""
    return os.environ.get("NXT_TEST_ADOPTED") == "1"


@pytest.fixture(scope="session")
def functions_db(scratch: ScratchDatabases) -> Iterator[Seeded]:
    """A seeded database of its own for the function tests, which write orders."""
    from nxt_cli.migrate import migrate
    from nxt_cli.seed import seed

    if adopted_mode():
        from tests.support.legacy_support import (
            adopt_json,
            build_transactional,
            drop,
            require_legacy_server,
        )

        require_legacy_server()
        url = build_transactional("legacy_functions", data=False)
        try:
            adopt_json(url)
            result = seed(url)
            yield Seeded(url, tuple(result.api_keys))
        finally:
            drop(url)
        return
    url = scratch.create("nxt_functions")
    migrate(url)
    result = seed(url)
    yield Seeded(url, tuple(result.api_keys))


@pytest.fixture(scope="session")
def functions_ts(scratch: ScratchDatabases, request: pytest.FixtureRequest) -> Iterator[str]:
    """The time-series plane beside functions_db: migrated (native engine), no readings; in
    adopted mode a legacy time-series database (the legacy TypeORM schema) adopted with it."""
    from nxt_cli.migrate import migrate_timeseries

    if adopted_mode():
        from tests.support.legacy_support import adopt_json, build_timeseries, drop

        tx: Seeded = request.getfixturevalue("functions_db")
        url = build_timeseries("legacy_ts_functions", data=False)
        try:
            adopt_json(tx.url, url)
            yield url
        finally:
            drop(url)
        return
    url = scratch.create("nxt_functions_ts")
    migrate_timeseries(url, engine="native")
    yield url


@dataclass(frozen=True)
class Served:
    url: str
    ts_url: str
    pooler: object | None  # tests.support.pooler.PgBouncer under NXT_TEST_POOLER


@pytest.fixture(scope="session")
def served(functions_db: Seeded, functions_ts: str) -> Iterator[Served]:
    """What `api`'s server connects to: the databases, or PgBouncer in transaction mode in
    front of them when NXT_TEST_POOLER=pgbouncer (see tests/support/pooler.py)."""
    from tests.support.pooler import pgbouncer_for, wanted

    if wanted() is None:
        yield Served(functions_db.url, functions_ts, None)
        return
    with pgbouncer_for(functions_db.url, pool_size=3) as bouncer:
        yield Served(bouncer.url_for(functions_db.url), bouncer.url_for(functions_ts), bouncer)


@pytest.fixture(scope="session")
def api(served: Served, tmp_path_factory: pytest.TempPathFactory) -> Iterator[Api]:
    """`nxt serve` in a subprocess on a free port: every function behind the local gateway."""
    log_path = tmp_path_factory.mktemp("serve") / "functions.log"
    env = stack_env(served.url, served.ts_url, jwt_secret=TEST_JWT_SECRET, DB_POOL_MAX_SIZE="8")
    with serve(env, log_path) as url:
        client = Api(url, TEST_JWT_SECRET, log_path)
        yield client
        client.http.close()
