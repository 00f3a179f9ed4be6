"""Helpers of the fault and load tests: a PostgreSQL server of their own (which a test may stop
and start), migrated and seeded databases on it, and `nxt serve` in a subprocess against them.

The session's `pg_server` cannot be stopped under the other tests, and may be the machine's
PostgreSQL (DATABASE_URL); these tests need one they own.
"""

from __future__ import annotations

import os
import subprocess
import sys
from collections.abc import Iterator
from contextlib import AbstractContextManager, contextmanager
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import psycopg

from nxt_cli.harness import (
    ROOT,
    LocalDatabase,
    embedded_server,
    nxt_serve,
    stack_env,
    with_database,
)
from tests.conftest import TEST_JWT_SECRET, Api


@dataclass(frozen=True)
class Planes:
    """A seeded transactional database and a migrated time-series database beside it."""

    url: str
    ts_url: str
    api_keys: tuple[tuple[str, str], ...]


def create_planes(admin_url: str, prefix: str) -> Planes:
    """Two new databases on the server of `admin_url`: migrated, the demo data loaded."""
    names = (f"{prefix}_tx", f"{prefix}_ts")
    with psycopg.connect(admin_url, autocommit=True) as conn:
        for name in names:
            conn.execute(f'drop database if exists "{name}" with (force)')
            conn.execute(f'create database "{name}"')
    return prepare_planes(*(with_database(admin_url, name) for name in names))


def prepare_planes(url: str, ts_url: str) -> Planes:
    """Migrate two empty databases and load the demo data into the transactional one."""
    from nxt_cli.migrate import migrate, migrate_timeseries
    from nxt_cli.seed import seed

    migrate(url)
    result = seed(url)
    migrate_timeseries(ts_url, engine="native")
    return Planes(url, ts_url, tuple(result.api_keys))


def clone_database(admin_url: str, source_url: str, name: str) -> str:
    """A copy of the database of `source_url` (nobody may be connected to it), as `name`."""
    source = source_url.rsplit("/", 1)[1]
    with psycopg.connect(admin_url, autocommit=True) as conn:
        conn.execute(f'drop database if exists "{name}" with (force)')
        conn.execute(f'create database "{name}" template "{source}"')
    return with_database(admin_url, name)


def own_server(tmp: Path) -> AbstractContextManager[LocalDatabase]:
    """An embedded PostgreSQL of this test's own, on a free port; destroyed afterwards."""
    return embedded_server(tmp / "pgdata")


def serve_env(url: str, ts_url: str, **extra: str) -> dict[str, str]:
    """What these tests' `nxt serve` and `nxt` commands run with: the two planes, the test
    secret, and warnings only in the logs (unless `extra` says otherwise)."""
    return stack_env(url, ts_url, jwt_secret=TEST_JWT_SECRET, **{"LOG_LEVEL": "WARNING", **extra})


@dataclass
class ServeProcess:
    api: Api
    proc: subprocess.Popen[bytes]


@contextmanager
def serve(url: str, ts_url: str, log_path: Path, **extra_env: str) -> Iterator[ServeProcess]:
    """`nxt serve` on a free port against `url` and `ts_url`, stopped afterwards."""
    with nxt_serve(serve_env(url, ts_url, **extra_env), log=log_path) as server:
        assert server.proc is not None
        api = Api(server.url, TEST_JWT_SECRET, log_path)
        try:
            yield ServeProcess(api, server.proc)
        finally:
            api.http.close()


def nxt(args: list[str], url: str, ts_url: str, timeout: float = 300,
        **extra_env: str) -> subprocess.CompletedProcess[str]:
    """An `nxt` command run as a developer runs it, against the two planes."""
    return subprocess.run([sys.executable, "-m", "nxt_cli.main", *args], cwd=ROOT,
                          env=serve_env(url, ts_url, **extra_env), capture_output=True,
                          text=True, timeout=timeout, check=False)


def last_json(output: str) -> Any:
    import json

    return json.loads(output.strip().splitlines()[-1])


def rows(url: str, sql: str, params: Any = ()) -> list[tuple[Any, ...]]:
    with psycopg.connect(url) as conn:
        return conn.execute(sql, params).fetchall()


def demo_planes(scratch: Any, prefix: str, *, customers: int = 40, days: int = 2
                ) -> tuple[str, str]:
    """Both planes as `nxt dev` builds them (migrations, demo data, demo telemetry and the
    snapshot jobs run on it), smaller: `customers` meters over `days` days."""
    from nxt_cli import migrate
    from nxt_cli.main import _seed_telemetry
    from nxt_cli.seed import seed

    url, ts_url = scratch.create(prefix), scratch.create(f"{prefix}_ts")
    migrate.migrate(url)
    migrate.migrate_timeseries(ts_url)
    seed(url, customers=customers)
    previous = os.environ.get("NXT_DEMO_TELEMETRY_DAYS")
    os.environ["NXT_DEMO_TELEMETRY_DAYS"] = str(days)
    try:
        _seed_telemetry(url, ts_url)
    finally:
        if previous is None:
            os.environ.pop("NXT_DEMO_TELEMETRY_DAYS", None)
        else:
            os.environ["NXT_DEMO_TELEMETRY_DAYS"] = previous
    return url, ts_url
