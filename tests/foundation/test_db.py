"""shared.db against a real PostgreSQL: request transactions, role and claims, pool lifetime."""

from __future__ import annotations

import asyncio
import json
import time
from itertools import pairwise

import psycopg
import pytest

from nxt_cli.localdb import free_port
from shared.db import Database

pytestmark = pytest.mark.db


def run(coro):  # type: ignore[no-untyped-def]
    return asyncio.run(coro)


def test_transaction_sets_role_and_claims_for_that_transaction_only(seeded_db: str) -> None:
    async def scenario() -> tuple[tuple, tuple]:
        db = Database(seeded_db, max_size=1)  # one connection: the second request reuses it
        try:
            claims = {"sub": "00000000-0000-4000-8000-000000000003",
                      "app_metadata": {"organization_id": 3}}
            async with db.transaction("authenticated", claims) as conn:
                cur = await conn.execute(
                    "select current_user, auth.uid()::text, auth.role(), auth.jwt()::text,"
                    " current_setting('statement_timeout'), current_setting('jit')")
                inside = await cur.fetchone()
            async with db.connection() as conn:
                cur = await conn.execute(
                    "select current_user, coalesce(current_setting('request.jwt.claims', true),"
                    " ''), current_setting('jit')")
                after = await cur.fetchone()
                await conn.rollback()
            return inside, after
        finally:
            await db.close()

    inside, after = run(scenario())
    assert inside[0] == "authenticated"
    assert inside[1] == "00000000-0000-4000-8000-000000000003"
    assert inside[2] == "authenticated"
    assert json.loads(inside[3])["app_metadata"] == {"organization_id": 3}
    assert inside[4] == "10s"
    assert inside[5] == "off"  # a request's statements never pay for JIT compilation
    # Nothing survives the transaction: safe behind a transaction-mode pooler.
    assert after[0] != "authenticated"
    assert after[1] == ""


def test_an_exception_rolls_back(empty_db: str) -> None:
    with psycopg.connect(empty_db, autocommit=True) as conn:
        conn.execute("create table t (x int)")
        conn.execute("grant all on t to service_role")

    async def scenario() -> None:
        db = Database(empty_db)
        try:
            with pytest.raises(RuntimeError):
                async with db.transaction("service_role") as conn:
                    await conn.execute("insert into t values (1)")
                    raise RuntimeError("boom")
            async with db.transaction("service_role") as conn:
                await conn.execute("insert into t values (2)")
        finally:
            await db.close()

    from nxt_cli.migrate import migrate

    migrate(empty_db)  # creates the request roles
    run(scenario())
    with psycopg.connect(empty_db) as conn:
        assert conn.execute("select array_agg(x) from t").fetchone() == ([2],)


def test_unknown_roles_are_refused(seeded_db: str) -> None:
    async def scenario() -> None:
        db = Database(seeded_db)
        try:
            async with db.transaction("postgres"):
                pass
        finally:
            await db.close()

    with pytest.raises(ValueError, match="unknown request role"):
        run(scenario())


def test_the_pool_opens_on_first_use_not_at_construction() -> None:
    # No server listens on this port: constructing must not fail, using must fail fast.
    db = Database(f"postgresql://postgres@127.0.0.1:{free_port()}/postgres", timeout=1.0)

    async def use() -> None:
        try:
            async with db.transaction("anon"):
                pass
        finally:
            await db.close()

    started = time.monotonic()
    with pytest.raises(Exception) as err:
        run(use())
    assert time.monotonic() - started < 15
    assert type(err.value).__module__.split(".")[0] in ("psycopg", "psycopg_pool")


def test_repr_never_shows_the_url() -> None:
    db = Database("postgresql://user:hunter2secret@127.0.0.1:1/x")
    assert "hunter2secret" not in repr(db)


# -- a request's round trips (shared/request_connection.py) ------------------------------------


class _Trace:
    """libpq's protocol trace of one connection: how many times it waited for the server."""

    def __init__(self, conn: psycopg.AsyncConnection) -> None:  # type: ignore[type-arg]
        import tempfile

        self.conn = conn
        self.file = tempfile.TemporaryFile(mode="w+")
        conn.pgconn.trace(self.file.fileno())
        conn.pgconn.set_trace_flags(psycopg.pq.Trace.SUPPRESS_TIMESTAMPS
                                    | psycopg.pq.Trace.REGRESS_MODE)

    def round_trips(self) -> int:
        self.conn.pgconn.untrace()
        self.file.seek(0)
        lines = self.file.read().splitlines()
        # A frontend message followed by a backend one: the client sent, then waited.
        return sum(1 for a, b in pairwise(lines)
                   if a.startswith("F") and b.startswith("B"))


def test_a_page_is_two_round_trips_prologue_with_its_statement_then_commit(
        seeded_db: str) -> None:
    # psycopg sends the BEGIN it issues itself on its own and waits for it, even in a pipeline:
    # BEGIN, prologue, page, COMMIT were four round trips, each a network hop when deployed.
    async def scenario() -> tuple[int, tuple, tuple]:
        db = Database(seeded_db, max_size=1)
        try:
            async with db.transaction("service_role") as conn:
                trace = _Trace(conn)
                cur = await conn.execute("select current_user, current_setting('jit'),"
                                         " pg_current_xact_id()::text")
                first = await cur.fetchone()
                cur = await conn.execute("select current_user, pg_current_xact_id()::text")
                second = await cur.fetchone()
            return trace.round_trips(), first, second
        finally:
            await db.close()

    trips, first, second = run(scenario())
    assert first[:2] == ("service_role", "off")
    assert second == ("service_role", first[2])  # the same transaction, the same role
    assert trips == 3  # the prologue with the first statement, the second, the commit


def test_an_error_of_the_first_statement_is_raised_by_it_and_the_connection_recovers(
        seeded_db: str) -> None:
    async def scenario() -> tuple[bool, tuple]:
        db = Database(seeded_db, max_size=1)
        try:
            with pytest.raises(psycopg.errors.DivisionByZero):
                async with db.transaction("service_role") as conn:
                    await conn.execute("select 1 / 0")
            async with db.connection() as conn:  # a job's connection: psycopg's own transactions
                autocommit = conn.autocommit
                cur = await conn.execute("select current_user")
                row = await cur.fetchone()
                await conn.rollback()
            return autocommit, row
        finally:
            await db.close()

    autocommit, row = run(scenario())
    assert autocommit is False and row is not None and row[0] != "service_role"


def test_nothing_runs_before_the_prologue_and_an_empty_request_sends_nothing(
        seeded_db: str) -> None:
    async def scenario() -> list[str]:
        db = Database(seeded_db, max_size=1)
        refused = []
        try:
            for opened in ("cursor", "transaction"):
                with pytest.raises(RuntimeError, match="before the request's first execute"):
                    async with db.transaction("service_role") as conn:
                        getattr(conn, opened)()
                refused.append(opened)
            async with db.transaction("service_role") as conn:
                trace = _Trace(conn)
            assert trace.round_trips() == 0
            async with db.transaction("service_role") as conn:
                await conn.execute("select 1")
                async with conn.transaction(), conn.cursor() as cur:  # a savepoint, after it
                    await cur.execute("select current_user")
                    assert await cur.fetchone() == ("service_role",)
        finally:
            await db.close()
        return refused

    assert run(scenario()) == ["cursor", "transaction"]
