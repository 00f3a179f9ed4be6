"""Database access for the transactional plane: one lazy async pool per process, one transaction
per request, row-level security applied the way PostgREST applies it.

Safe behind a transaction-mode pooler (Supabase's pooler, PgBouncer): no server-side prepared
statements (`prepare_threshold=None`), and every setting a request needs is made with
`set_config(..., true)`, which lasts only until the end of its transaction.
"""

from __future__ import annotations

import asyncio
import json
import time
from collections.abc import AsyncIterator, Mapping
from contextlib import asynccontextmanager
from typing import TYPE_CHECKING, Any
from weakref import WeakKeyDictionary

from shared.auth.roles import REQUEST_ROLES
from shared.settings import Settings, get_settings

if TYPE_CHECKING:
    from contextlib import AbstractAsyncContextManager

    from psycopg import AsyncConnection
    from psycopg_pool import AsyncConnectionPool

    from shared.auth.caller import Caller

# One statement: role, claims and the statement timeout, all transaction-local. JIT off: the
# policies' subplans inflate a page's estimated cost past jit_above_cost, and compiling ~85
# expressions took ~100 ms of a 15 ms page (customers under row-level security, 100k rows,
# PostgreSQL 15); a request's statements are too short for JIT ever to pay.
BEGIN_REQUEST_SQL = (
    "select set_config('role', %s, true),"
    " set_config('request.jwt.claims', %s, true),"
    " set_config('request.jwt.claim.sub', %s, true),"
    " set_config('request.jwt.claim.role', %s, true),"
    " set_config('statement_timeout', %s, true),"
    " set_config('jit', 'off', true)"
)


class Database:
    """A lazily opened async connection pool for one database URL."""

    def __init__(self, url: str, *, min_size: int = 0, max_size: int = 4, timeout: float = 5.0,
                 statement_timeout_ms: int = 10_000, name: str = "transactional") -> None:
        self._url = url
        self._min_size = min_size
        self._max_size = max_size
        self._timeout = timeout
        self._statement_timeout = str(statement_timeout_ms)
        self._name = name
        self._pool: AsyncConnectionPool | None = None
        self._lock: asyncio.Lock | None = None

    def __repr__(self) -> str:  # the URL may carry a password
        return f"Database({self._name}, pool={self._min_size}..{self._max_size})"

    async def pool(self) -> AsyncConnectionPool:
        if self._pool is not None:
            return self._pool
        # Created on first use, inside the serving event loop: the server imports the module
        # before it forks its workers, and a pool opened then would be shared across forks.
        if self._lock is None:
            self._lock = asyncio.Lock()
        async with self._lock:
            if self._pool is None:
                from psycopg_pool import AsyncConnectionPool

                from shared.request_connection import RequestConnection

                pool = AsyncConnectionPool(
                    self._url,
                    connection_class=RequestConnection,
                    min_size=self._min_size,
                    max_size=self._max_size,
                    timeout=self._timeout,
                    # A lost connection is retried with backoff, no longer than a caller waits:
                    # a longer retry would keep waiting for its next, backed-off attempt after
                    # the server is back (a caller waits `timeout`, then gets a 503), while a
                    # given-up retry lets the next caller start a new attempt at once.
                    reconnect_timeout=self._timeout,
                    kwargs={
                        "prepare_threshold": None,
                        "autocommit": False,
                        "connect_timeout": max(1, int(self._timeout)),
                        "application_name": f"nxt-{self._name}",
                        # libpq TCP keepalives: the OS notices a peer that vanished (a
                        # partition, a frozen host) after ~25 s idle, not hours.
                        "keepalives": 1,
                        "keepalives_idle": 10,
                        "keepalives_interval": 5,
                        "keepalives_count": 3,
                    },
                    check=_check_if_idle,
                    reset=_note_return,
                    open=False,
                    name=self._name,
                )
                await pool.open(wait=False)
                self._pool = pool
        return self._pool

    async def close(self) -> None:
        if self._pool is not None:
            pool, self._pool = self._pool, None
            await pool.close()

    @asynccontextmanager
    async def connection(self) -> AsyncIterator[AsyncConnection[Any]]:
        """A pooled connection, outside any request role (jobs and tooling)."""
        pool = await self.pool()
        async with pool.connection() as conn:
            yield conn

    @asynccontextmanager
    async def transaction(
        self, role: str, claims: Mapping[str, Any] | None = None
    ) -> AsyncIterator[AsyncConnection[Any]]:
        """One transaction running as `role` with `claims`, so row-level security applies.

        Commits when the block ends normally, rolls back when it raises.
        """
        if role not in REQUEST_ROLES:
            raise ValueError(f"unknown request role {role!r}")
        claims = dict(claims or {})
        claims.setdefault("role", role)
        pool = await self.pool()
        async with pool.connection() as conn:
            # BEGIN and the prologue go out with the block's first statement, in one round
            # trip (shared/request_connection.py).
            await conn.begin_request(BEGIN_REQUEST_SQL, (
                role,
                json.dumps(claims, separators=(",", ":"), default=str),
                str(claims.get("sub") or ""),
                role,
                self._statement_timeout,
            ))
            try:
                yield conn
            except BaseException:
                await conn.end_request(commit=False)
                raise
            await conn.end_request(commit=True)

    @asynccontextmanager
    async def work(self, statement_timeout_ms: int | None = None
                   ) -> AsyncIterator[AsyncConnection[Any]]:
        """One transaction as the connecting user, in UTC (the time-series plane and jobs:
        no request role; hour and day boundaries must not follow a session time zone)."""
        timeout = str(statement_timeout_ms) if statement_timeout_ms else self._statement_timeout
        pool = await self.pool()
        async with pool.connection() as conn, conn.transaction():
            await conn.execute("select set_config('statement_timeout', %s, true),"
                               " set_config('timezone', 'UTC', true)", (timeout,))
            yield conn


# When a connection last went back to the pool (monotonic seconds).
_returned: WeakKeyDictionary[Any, float] = WeakKeyDictionary()
# A connection back for less than this is not pinged again when it is taken: under load that
# ping was one round trip in five of every request. One that broke since fails its request
# with a 503, as a connection breaking mid-request does, and the pool then drops it.
RECENTLY_USED_SECONDS = 2.0


async def _note_return(conn: AsyncConnection[Any]) -> None:
    from shared.request_connection import restore_transactions

    # A request that ended without end_request (its task cancelled mid-way) leaves autocommit on.
    await restore_transactions(conn)
    _returned[conn] = time.monotonic()


async def _check_if_idle(conn: AsyncConnection[Any]) -> None:
    returned = _returned.get(conn)
    if returned is None or time.monotonic() - returned > RECENTLY_USED_SECONDS:
        from psycopg_pool import AsyncConnectionPool

        await AsyncConnectionPool.check_connection(conn)


_databases: dict[str, Database] = {}


def _get(name: str, url: str | None, settings: Settings) -> Database:
    db = _databases.get(name)
    if db is None:
        if not url:
            raise RuntimeError(f"no URL configured for the {name} database")
        db = Database(
            url,
            min_size=settings.pool_min_size,
            max_size=settings.pool_max_size,
            timeout=settings.pool_timeout,
            statement_timeout_ms=settings.statement_timeout_ms,
            name=name,
        )
        _databases[name] = db
    return db


def transactional() -> Database:
    """The process-wide pool of the transactional plane (DATABASE_URL)."""
    settings = get_settings()
    return _get("transactional", settings.require_database_url(), settings)


def timeseries() -> Database:
    """The process-wide pool of the time-series plane (TIMESERIES_DATABASE_URL)."""
    settings = get_settings()
    return _get("timeseries", settings.require_timeseries_url(), settings)


def as_caller(caller: Caller) -> AbstractAsyncContextManager[AsyncConnection[Any]]:
    """A request transaction on the transactional plane, as the verified caller."""
    return transactional().transaction(caller.role, dict(caller.claims))


async def close_all() -> None:
    for db in list(_databases.values()):
        await db.close()
    _databases.clear()
