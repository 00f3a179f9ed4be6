"""The pool's connection class: a request's BEGIN and prologue travel with its first statement.

A request transaction sets its role, claims and timeout (`shared.db.BEGIN_REQUEST_SQL`) before
its first statement. psycopg sends the BEGIN of a transaction it opens itself on its own and
waits for it, even in a pipeline, so a page took four round trips: BEGIN, prologue, page,
COMMIT (on a deployed function, each one a network round trip to the database). Here the
request runs with psycopg's autocommit on and its own explicit BEGIN: BEGIN, the prologue and
the first `execute()` go out in one pipeline with one sync, and the page takes two. An error of
any of them is raised by that `execute()`, as without the pipeline. Nothing may run before the
prologue: a cursor or a savepoint opened first would bypass it, so those refuse until it has
gone.

Imported with psycopg, when the first pool is made (not at cold start).
"""

from __future__ import annotations

from typing import Any

import psycopg
from psycopg import AsyncConnection, AsyncCursor
from psycopg.abc import Params, Query
from psycopg.pq import TransactionStatus

Prologue = tuple[str, tuple[Any, ...]]


class RequestConnection(AsyncConnection[Any]):
    _prologue: Prologue | None = None

    async def begin_request(self, sql: str, params: tuple[Any, ...]) -> None:
        """Open a request transaction whose first statement `sql` is sent with the next one."""
        await self.set_autocommit(True)  # a flag: no round trip on an idle connection
        self._prologue = (sql, params)

    async def end_request(self, commit: bool) -> None:
        """Commit (or roll back) what the request ran; nothing to do if it ran nothing."""
        try:
            if self._prologue is not None:
                self._prologue = None
            elif commit:
                await self.commit()
            else:
                try:
                    await self.rollback()
                except psycopg.Error:
                    pass  # a connection that broke is the pool's to drop
        finally:
            await restore_transactions(self)

    async def execute(self, query: Query, params: Params | None = None, *,
                      prepare: bool | None = None, binary: bool = False) -> AsyncCursor[Any]:
        if self._prologue is None:
            return await super().execute(query, params, prepare=prepare, binary=binary)
        prologue, self._prologue = self._prologue, None
        async with self.pipeline():
            await super().execute("begin")
            await super().execute(*prologue)
            cur = await super().execute(query, params, prepare=prepare, binary=binary)
        return cur

    def cursor(self, *args: Any, **kwargs: Any) -> Any:
        self._refuse_before_prologue("a cursor")
        return super().cursor(*args, **kwargs)

    def transaction(self, *args: Any, **kwargs: Any) -> Any:
        self._refuse_before_prologue("a savepoint")
        return super().transaction(*args, **kwargs)

    def _refuse_before_prologue(self, what: str) -> None:
        if self._prologue is not None:
            raise RuntimeError(f"{what} before the request's first execute() would run without"
                               " its role and claims: execute a statement first")


async def restore_transactions(conn: AsyncConnection[Any]) -> None:
    """Back to psycopg's own transactions (autocommit off), as every other user of the pool
    expects; only possible, and only needed, once the connection is idle."""
    if conn.autocommit and conn.pgconn.transaction_status == TransactionStatus.IDLE:
        await conn.set_autocommit(False)
