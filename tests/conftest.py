"""Test fixtures: a real PostgreSQL for every database test.

The server is DATABASE_URL when set (CI points it at the machine's PostgreSQL 15 for a second
run), else an embedded PostgreSQL started for this session in a temporary directory on a free
port, so tests never touch the developer's own `.nxt` database. Each test module that needs
data gets a database of its own, created from migrations and dropped afterwards.
"""

from __future__ import annotations

import os
import time
import uuid
import warnings
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path
from urllib.parse import urlsplit, urlunsplit

import psycopg
import pytest

from nxt_cli.localdb import stop_process

ROOT = Path(__file__).resolve().parent.parent


def _with_database(url: str, name: str) -> str:
    parts = urlsplit(url)
    return urlunsplit(parts._replace(path=f"/{name}"))


@pytest.fixture(scope="session")
def pg_server(tmp_path_factory: pytest.TempPathFactory) -> Iterator[str]:
    """Admin URL of the server the tests run against."""
    url = os.environ.get("DATABASE_URL")
    if url:
        yield url
        return
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        from nxt_cli.localdb import LocalDatabase, free_port

        db = LocalDatabase(tmp_path_factory.mktemp("pg") / "data", free_port()).start()
    try:
        yield db.url
    finally:
        db.destroy()


class ScratchDatabases:
    """Creates uniquely named databases on the server and drops them at the end."""

    def __init__(self, admin_url: str) -> None:
        self.admin_url = admin_url
        self.names: list[str] = []

    def create(self, prefix: str = "nxt_test") -> str:
        name = f"{prefix}_{uuid.uuid4().hex[:10]}"
        with psycopg.connect(self.admin_url, autocommit=True) as conn:
            conn.execute(f'create database "{name}"')
        self.names.append(name)
        return _with_database(self.admin_url, name)

    def drop_all(self, server_log: Path | None = None) -> None:
        # A connection per database, and one retry: twice in CI (never locally) the server
        # dropped the connection during a forced drop at the very end of the session; it
        # restarts after a crash, so the retry succeeds, and the log's tail says what happened.
        for name in self.names:
            for attempt in range(2):
                try:
                    with psycopg.connect(self.admin_url, autocommit=True) as conn:
                        conn.execute(f'drop database if exists "{name}" with (force)')
                    break
                except psycopg.OperationalError:
                    if attempt or server_log is None:
                        raise
                    tail = server_log.read_text(errors="replace")[-3000:]
                    warnings.warn(f"dropping {name} lost the connection; the server log"
                                  f" ends:\n{tail}", stacklevel=1)
                    time.sleep(3)
        self.names.clear()


@pytest.fixture(scope="session")
def scratch(pg_server: str, tmp_path_factory: pytest.TempPathFactory
            ) -> Iterator[ScratchDatabases]:
    dbs = ScratchDatabases(pg_server)
    log = tmp_path_factory.getbasetemp() / "pg0" / "data" / "server.log"
    try:
        yield dbs
    finally:
        dbs.drop_all(log if log.exists() else None)


@pytest.fixture
def empty_db(scratch: ScratchDatabases) -> str:
    """A new, empty database for one test."""
    return scratch.create()


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


def wait_for_port(port: int, proc: object, timeout: float = 60.0) -> None:
    import socket
    import time

    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if getattr(proc, "poll")() is not None:  # noqa: B009
            raise RuntimeError("the server exited before it answered")
        with socket.socket() as sock:
            if sock.connect_ex(("127.0.0.1", port)) == 0:
                return
        time.sleep(0.1)
    raise TimeoutError(f"nothing answered on port {port}")


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
        from .legacy_support import adopt_json, build_transactional, drop, require_legacy_server

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
        from .legacy_support import adopt_json, build_timeseries, drop

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
    pooler: object | None  # tests.pooler.PgBouncer under NXT_TEST_POOLER


@pytest.fixture(scope="session")
def served(functions_db: Seeded, functions_ts: str) -> Iterator[Served]:
    """What `api`'s server connects to: the databases, or PgBouncer in transaction mode in
    front of them when NXT_TEST_POOLER=pgbouncer (see tests/pooler.py)."""
    from .pooler import pgbouncer_for, wanted

    if wanted() is None:
        yield Served(functions_db.url, functions_ts, None)
        return
    with pgbouncer_for(functions_db.url, pool_size=3) as bouncer:
        yield Served(bouncer.url_for(functions_db.url), bouncer.url_for(functions_ts), bouncer)


@pytest.fixture(scope="session")
def api(served: Served, tmp_path_factory: pytest.TempPathFactory) -> Iterator[Api]:
    """`nxt serve` in a subprocess on a free port: every function behind the local gateway."""
    import subprocess
    import sys

    from nxt_cli.localdb import free_port

    port = free_port()
    log_path = tmp_path_factory.mktemp("serve") / "functions.log"
    env = {k: v for k, v in os.environ.items() if k not in ("K_SERVICE", "JWT_SECRET")}
    env.update(DATABASE_URL=served.url, TIMESERIES_DATABASE_URL=served.ts_url,
               SUPABASE_JWT_SECRET=TEST_JWT_SECRET,
               PYTHONPATH=str(ROOT), NXT_SUPABASE_CONFIG=str(ROOT / "supabase" / "config.toml"),
               DB_POOL_MAX_SIZE="8")
    with log_path.open("w") as log:
        proc = subprocess.Popen(
            [sys.executable, "-m", "nxt_cli.main", "serve", "--port", str(port)],
            cwd=ROOT, env=env, stdout=log, stderr=subprocess.STDOUT)
    try:
        wait_for_port(port, proc)
        client = Api(f"http://127.0.0.1:{port}", TEST_JWT_SECRET, log_path)
        yield client
        client.http.close()
    finally:
        stop_process(proc)
