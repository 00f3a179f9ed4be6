"""Pytest plugin (registered in conftest.py's `pytest_plugins`): the stack harness of
nxt_cli/harness.py as session fixtures, a real PostgreSQL for every database test.

The server is DATABASE_URL when set (CI points it at the machine's PostgreSQL 15 for a second
run), else an embedded PostgreSQL started for this session in a temporary directory on a free
port, so tests never touch the developer's own `.nxt` database. Each test module that needs
data gets a database of its own on it, created from migrations and dropped afterwards.
"""

from __future__ import annotations

import os
from collections.abc import Iterator

import pytest

from nxt_cli.harness import ScratchDatabases, server_url


@pytest.fixture(scope="session")
def pg_server(tmp_path_factory: pytest.TempPathFactory) -> Iterator[str]:
    """Admin URL of the server the tests run against."""
    url = os.environ.get("DATABASE_URL")
    with server_url(tmp_path_factory.mktemp("pg") / "data", url) as admin:
        yield admin


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
