"""Checks the time-series revisions make before they change anything.

A time-series database adopted from the legacy system (built by the legacy TypeORM migrations,
which record themselves in `public.migrations`; `nxt db adopt` records the adoption in
`ts.adoption`) is shared with the legacy services: its
snapshot tables hold their history and their writers keep writing them. No revision may go
back on it: dropping the baseline would drop that history, dropping this project's columns
would drop what the jobs recorded beside it. Every downgrade calls `refuse_on_legacy` first.
"""

from __future__ import annotations

from alembic import op
from sqlalchemy import text

# TypeORM's own table, with its (id, timestamp, name) columns: what every legacy build has.
_LEGACY_SQL = """
select count(*) = 3 from information_schema.columns
 where table_schema = 'public' and table_name = 'migrations'
   and column_name in ('id', 'timestamp', 'name')
"""


class LegacyDatabase(RuntimeError):
    pass


_ADOPTED_SQL = "select to_regclass('ts.adoption') is not null"


def is_legacy_database() -> bool:
    bind = op.get_bind()
    if bind.execute(text(_LEGACY_SQL)).scalar():
        return True
    if not bind.execute(text(_ADOPTED_SQL)).scalar():
        return False
    return bool(bind.execute(text("select exists (select from ts.adoption)")).scalar())


def refuse_on_legacy(what: str) -> None:
    if is_legacy_database():
        raise LegacyDatabase(
            f"refusing to {what}: this time-series database was built by the legacy system"
            " (public.migrations, or adopted: ts.adoption) and its services still use it; its"
            " revisions go forward only"
        )


class EngineUnknown(RuntimeError):
    pass


def target_engine() -> str:
    """The engine the revision is for: "timescaledb" or "native".

    Online, the one ts0002 recorded in ts.engine_info; offline (`nxt db plan`), the planned
    target's, which the plan takes from that same record or from `--engine`.
    """
    from alembic import context

    planned = context.config.attributes.get("timeseries_engine")
    if context.is_offline_mode():
        if planned not in ("timescaledb", "native"):
            raise EngineUnknown("planning offline needs the target's engine: pass --engine")
        return str(planned)
    from timeseries.engine import engine_info

    info = engine_info(op.get_bind())
    if info is None:
        raise EngineUnknown("ts.engine_info is missing: revision ts0002 records the engine")
    return info.engine
