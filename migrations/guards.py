"""What revisions after the baseline use to change a database the legacy services share.

An adopted database (one `nxt db adopt` took over from the legacy system) is shared with the
legacy services: its baseline tables are theirs as much as ours, so no revision may go back
on it (every downgrade calls `refuse_if_adopted` first), and none may take locks in a way that
can deadlock a legacy writer (`one_table_at_a_time`).
"""

from __future__ import annotations

from alembic import op
from sqlalchemy import text

# Every migration session runs with these (both planes' env.py; `nxt db plan` prints them). A
# revision waiting longer than LOCK_TIMEOUT for a lock behind a long legacy transaction fails,
# and is run again, rather than queueing every legacy writer behind its own lock request: long
# enough for a busy table's brief ACCESS EXCLUSIVE. STATEMENT_TIMEOUT bounds a runaway
# statement; no revision rewrites a big table, so none comes near it.
LOCK_TIMEOUT = "5s"
STATEMENT_TIMEOUT = "15min"
SESSION_SETTINGS = (f"set lock_timeout = '{LOCK_TIMEOUT}'",
                    f"set statement_timeout = '{STATEMENT_TIMEOUT}'")


class AdoptedDatabase(RuntimeError):
    pass


def is_adopted() -> bool:
    bind = op.get_bind()
    if bind.execute(text("select to_regclass('app.adoption') is null")).scalar():
        return False
    return bool(bind.execute(text("select exists (select from app.adoption)")).scalar())


def refuse_if_adopted(what: str) -> None:
    if is_adopted():
        raise AdoptedDatabase(
            f"refusing to {what}: this database was adopted from the legacy system and the"
            " legacy services use what this would drop; migrations go forward only here"
        )


def one_table_at_a_time(steps: list[list[str]]) -> None:
    """Run each step (the statements of one legacy table) in a transaction of its own.

    A legacy writer's statement may lock several tables (a trigger joining customers and
    grids, say) in its own order. A revision that held the lock of one table while waiting for
    another's could close a cycle with it, and PostgreSQL would abort one of the two: perhaps
    the legacy writer. Holding one table's locks at a time, this revision never waits while
    holding another, so it is never part of a cycle. The steps must be idempotent (add column
    if not exists, create or replace): a revision that stops half way is run again whole.
    """
    with op.get_context().autocommit_block():
        for statements in steps:
            op.execute("begin")
            try:
                for statement in statements:
                    op.execute(statement)
            except BaseException:
                op.execute("rollback")
                raise
            op.execute("commit")
