"""Test fixtures: a real PostgreSQL for every database test.

The server is DATABASE_URL when set (CI points it at the machine's PostgreSQL 15 for a second
run), else an embedded PostgreSQL started for this session in a temporary directory on a free
port, so tests never touch the developer's own `.nxt` database. Each test module that needs
data gets a database of its own, created from migrations and dropped afterwards.
"""

from __future__ import annotations

import os
import uuid
import warnings
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path
from urllib.parse import urlsplit, urlunsplit

import psycopg
import pytest

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

    def drop_all(self) -> None:
        with psycopg.connect(self.admin_url, autocommit=True) as conn:
            for name in self.names:
                conn.execute(f'drop database if exists "{name}" with (force)')
        self.names.clear()


@pytest.fixture(scope="session")
def scratch(pg_server: str) -> Iterator[ScratchDatabases]:
    dbs = ScratchDatabases(pg_server)
    try:
        yield dbs
    finally:
        dbs.drop_all()


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
