"""Schema migrations of both planes, through alembic's API (no alembic.ini lookup by cwd)."""

from __future__ import annotations

from pathlib import Path
from urllib.parse import urlsplit

from alembic import command
from alembic.config import Config
from alembic.runtime.migration import MigrationContext
from alembic.script import ScriptDirectory
from sqlalchemy import create_engine, pool

MIGRATIONS_DIR = Path(__file__).resolve().parent.parent / "migrations"
TIMESERIES_MIGRATIONS_DIR = Path(__file__).resolve().parent.parent / "timeseries" / "migrations"
# The time-series plane keeps its version table in its own schema (ts.alembic_version).
TIMESERIES_VERSION_SCHEMA = "ts"

LOCAL_HOSTS = frozenset({"127.0.0.1", "localhost", "::1", ""})


def _sqlalchemy_url(url: str) -> str:
    for prefix in ("postgresql://", "postgres://"):
        if url.startswith(prefix):
            return "postgresql+psycopg://" + url[len(prefix):]
    return url


def alembic_config(url: str) -> Config:
    cfg = Config(str(MIGRATIONS_DIR / "alembic.ini"))
    cfg.set_main_option("script_location", str(MIGRATIONS_DIR))
    cfg.attributes["database_url"] = url
    return cfg


def current_revision(url: str) -> str | None:
    engine = create_engine(_sqlalchemy_url(url), poolclass=pool.NullPool)
    try:
        with engine.connect() as conn:
            return MigrationContext.configure(conn).get_current_revision()
    finally:
        engine.dispose()


def head_revision() -> str | None:
    return ScriptDirectory.from_config(alembic_config("postgresql://unused")).get_current_head()


class LegacyDatabase(RuntimeError):
    """A legacy database that `nxt db adopt` has not taken over: migrating it would fail or,
    worse, appear to succeed."""


def refuse_unadopted(url: str, plane: str = "transactional") -> None:
    """LegacyDatabase when `url` holds the legacy schema of `plane` and was not adopted;
    checked before anything is written."""
    from nxt_cli.adopt import is_unadopted_legacy, timeseries_plane, transactional_plane

    spec = transactional_plane() if plane == "transactional" else timeseries_plane()
    if is_unadopted_legacy(url, spec):
        raise LegacyDatabase(
            f"the {plane} database holds the legacy schema and was not adopted: run"
            " `nxt db adopt` (it checks the schema, stamps the baseline and applies the"
            " later revisions); nothing was changed")


def refuse_adopted(url: str, plane: str, what: str) -> None:
    """PermissionError when `url` was adopted from the legacy system (or is being)."""

    from nxt_cli.adopt import ADOPTED, IN_PROGRESS, connect, recognise, timeseries_plane
    from nxt_cli.adopt import transactional_plane as tx

    spec = tx() if plane == "transactional" else timeseries_plane()
    with connect(url) as conn:
        if recognise(conn, spec)[0] in (ADOPTED, IN_PROGRESS):
            raise PermissionError(
                f"refusing to {what}: the {plane} database was adopted from the legacy system,"
                " whose services use what this would drop; migrations go forward only there")


def migrate(url: str) -> tuple[str | None, str | None]:
    """Apply pending revisions; returns (before, after). A no-op when up to date."""
    refuse_unadopted(url)
    before = current_revision(url)
    if before != head_revision():
        command.upgrade(alembic_config(url), "head")
    return before, current_revision(url)


def downgrade(url: str, target: str = "base") -> None:
    command.downgrade(alembic_config(url), target)


def is_local(url: str) -> bool:
    parts = urlsplit(url)
    return (parts.hostname or "") in LOCAL_HOSTS


def refuse_remote(url: str) -> None:
    """PermissionError when `url` is not local: a reset goes back through every revision, and
    a database elsewhere only ever goes forward (nxt db migrate --yes)."""
    if not is_local(url):
        host = urlsplit(url).hostname
        raise PermissionError(
            f"refusing to reset a database on {host!r}, which is not local: migrations go"
            " forward only there (`nxt db plan`, then `nxt db migrate --yes`)"
        )


def reset(url: str) -> None:
    """Drop every revision and apply them again. Refuses a non-local database and an adopted
    one."""
    refuse_remote(url)
    refuse_adopted(url, "transactional", "reset the database")
    downgrade(url, "base")
    command.upgrade(alembic_config(url), "head")


# -- the time-series plane ------------------------------------------------------------------


def timeseries_alembic_config(url: str, *, engine: str | None = None) -> Config:
    """`engine` overrides TIMESERIES_ENGINE (auto | timescaledb | native) for this run."""
    cfg = Config(str(TIMESERIES_MIGRATIONS_DIR / "alembic.ini"))
    cfg.set_main_option("script_location", str(TIMESERIES_MIGRATIONS_DIR))
    cfg.attributes["database_url"] = url
    if engine is not None:
        cfg.attributes["timeseries_engine"] = engine
    return cfg


def timeseries_current_revision(url: str) -> str | None:
    engine = create_engine(_sqlalchemy_url(url), poolclass=pool.NullPool)
    try:
        with engine.connect() as conn:
            context = MigrationContext.configure(
                conn, opts={"version_table_schema": TIMESERIES_VERSION_SCHEMA})
            return context.get_current_revision()
    finally:
        engine.dispose()


def timeseries_head_revision() -> str | None:
    cfg = timeseries_alembic_config("postgresql://unused")
    return ScriptDirectory.from_config(cfg).get_current_head()


def migrate_timeseries(url: str, *, engine: str | None = None) -> tuple[str | None, str | None]:
    """Apply the time-series plane's pending revisions; returns (before, after)."""
    refuse_unadopted(url, "time-series")
    before = timeseries_current_revision(url)
    if before != timeseries_head_revision():
        command.upgrade(timeseries_alembic_config(url, engine=engine), "head")
    return before, timeseries_current_revision(url)


def downgrade_timeseries(url: str, target: str = "base") -> None:
    command.downgrade(timeseries_alembic_config(url), target)


def reset_timeseries(url: str, *, engine: str | None = None) -> None:
    """Drop every time-series revision (and its data) and apply them again; local only, never
    an adopted database. The engine is detected afresh."""
    refuse_remote(url)
    refuse_adopted(url, "time-series", "reset the time-series database")
    downgrade_timeseries(url, "base")
    command.upgrade(timeseries_alembic_config(url, engine=engine), "head")
