"""Checks revisions make before they change anything.

An adopted database (one `nxt db adopt` took over from the legacy system) is shared with the
legacy services: its baseline tables are theirs as much as ours, so no revision may go back
on it. Every downgrade calls `refuse_if_adopted` first; going forward is the only way.
"""

from __future__ import annotations

from alembic import op
from sqlalchemy import text


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
