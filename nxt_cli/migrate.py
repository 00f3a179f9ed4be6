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


def migrate(url: str) -> tuple[str | None, str | None]:
    """Apply pending revisions; returns (before, after). A no-op when up to date."""
    before = current_revision(url)
    if before != head_revision():
        command.upgrade(alembic_config(url), "head")
    return before, current_revision(url)


def downgrade(url: str, target: str = "base") -> None:
    command.downgrade(alembic_config(url), target)


def is_local(url: str) -> bool:
    parts = urlsplit(url)
    return (parts.hostname or "") in LOCAL_HOSTS


def reset(url: str, *, force: bool = False) -> None:
    """Drop every revision and apply them again. Refuses a non-local database unless forced."""
    if not force and not is_local(url):
        host = urlsplit(url).hostname
        raise PermissionError(
            f"refusing to reset a database on {host!r}, which is not local; pass --force if you"
            " really mean to destroy its data"
        )
    downgrade(url, "base")
    command.upgrade(alembic_config(url), "head")
