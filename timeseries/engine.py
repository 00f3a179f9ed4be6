"""Which engine the time-series database runs, and how to connect to it.

Two engines, one schema: TimescaleDB where the extension exists, plain PostgreSQL (>= 15)
with declarative range partitions otherwise. The engine is chosen once, at migration time
(`detect`), and recorded in ts.engine_info; everything later reads that row (`engine_info`)
instead of probing again, so the schema, later revisions and the jobs always agree.

TimescaleDB ships in two editions. The Apache-2 one has hypertables, time_bucket and
drop_chunks but no compression, continuous aggregates or policies; their SQL functions exist
in both editions and fail only when called, so `detect` tries each feature on a throw-away
hypertable inside a savepoint instead of trusting function names.

Functions take a psycopg connection, or a SQLAlchemy Connection inside a transaction (its
driver connection is used), so the migration and the jobs share one implementation.
"""

from __future__ import annotations

import logging
import os
from collections.abc import Iterable, Mapping
from dataclasses import dataclass
from datetime import datetime, timedelta
from typing import TYPE_CHECKING, Any

import psycopg
from psycopg import sql

if TYPE_CHECKING:
    from sqlalchemy import Engine

log = logging.getLogger(__name__)

NATIVE = "native"
TIMESCALEDB = "timescaledb"
ENGINES = (NATIVE, TIMESCALEDB)
OVERRIDES = ("auto", *ENGINES)

# What `features` may hold. Only the last three differ between the TimescaleDB editions, so
# only they may be switched off (TIMESERIES_DISABLE_FEATURES), e.g. to run as the Apache
# edition would.
FEATURES = ("hypertable", "time_bucket", "compression", "continuous_aggregates", "policies")
OPTIONAL_FEATURES = ("compression", "continuous_aggregates", "policies")

# Where detection tries features on a throw-away hypertable (always rolled back).
_PROBE_SCHEMA = "ts"
_PROBE_TABLE = "_engine_probe"


class EngineUnavailable(RuntimeError):
    """TIMESERIES_ENGINE asks for an engine this server cannot provide."""


@dataclass(frozen=True)
class Detection:
    engine: str
    features: tuple[str, ...]
    timescaledb_version: str | None


@dataclass(frozen=True)
class EngineInfo:
    """The ts.engine_info row: what the schema was built on."""

    engine: str
    features: tuple[str, ...]
    timescaledb_version: str | None
    chunk_interval: timedelta
    raw_retention: timedelta
    compress_after: timedelta
    detected_at: datetime

    @property
    def is_native(self) -> bool:
        return self.engine == NATIVE

    def has(self, feature: str) -> bool:
        return feature in self.features


# -- URLs and the SQLAlchemy engine --------------------------------------------------------


def sqlalchemy_url(url: str) -> str:
    """postgresql:// (or postgres://) -> postgresql+psycopg://, SQLAlchemy's psycopg 3 driver."""
    for prefix in ("postgresql://", "postgres://"):
        if url.startswith(prefix):
            return "postgresql+psycopg://" + url[len(prefix):]
    return url


def make_engine(url: str, **kwargs: Any) -> Engine:
    """A SQLAlchemy engine (psycopg 3) for the time-series database.

    No startup `options` (such as a time zone): poolers like PgBouncer and Supavisor refuse
    them. Nothing here depends on the session time zone; every hour and day boundary in this
    package is computed in explicit UTC.
    """
    from sqlalchemy import create_engine

    return create_engine(sqlalchemy_url(url), **kwargs)


def driver_connection(conn: Any) -> psycopg.Connection[Any]:
    """The psycopg connection behind `conn` (itself, or a SQLAlchemy Connection's)."""
    if isinstance(conn, psycopg.Connection):
        return conn
    raw = getattr(getattr(conn, "connection", None), "driver_connection", None)
    if isinstance(raw, psycopg.Connection):
        return raw
    raise TypeError(f"expected a psycopg or SQLAlchemy connection, got {type(conn).__name__}")


# -- settings read at migration time -------------------------------------------------------


def engine_override(env: Mapping[str, str] | None = None) -> str:
    """TIMESERIES_ENGINE: auto (default), timescaledb or native."""
    env = os.environ if env is None else env
    value = (env.get("TIMESERIES_ENGINE") or "auto").strip().lower()
    if value not in OVERRIDES:
        raise ValueError(f"TIMESERIES_ENGINE must be one of {', '.join(OVERRIDES)}, got {value!r}")
    return value


def disabled_features(env: Mapping[str, str] | None = None) -> tuple[str, ...]:
    """TIMESERIES_DISABLE_FEATURES: comma-separated optional features not to use."""
    env = os.environ if env is None else env
    names = tuple(n.strip().lower() for n in (env.get("TIMESERIES_DISABLE_FEATURES") or "")
                  .split(",") if n.strip())
    unknown = [n for n in names if n not in OPTIONAL_FEATURES]
    if unknown:
        raise ValueError(f"TIMESERIES_DISABLE_FEATURES may name {', '.join(OPTIONAL_FEATURES)};"
                         f" got {', '.join(unknown)}")
    return names


# -- detection -----------------------------------------------------------------------------


def detect(conn: Any, override: str = "auto", *, disabled: Iterable[str] = ()) -> Detection:
    """Choose the engine for this database and list the TimescaleDB features it has.

    Choosing TimescaleDB means installing the extension when it is not yet installed (its
    features can only be probed once it is). With `override="auto"` a server that lists the
    extension but cannot load it (not in shared_preload_libraries, no privilege) gets the
    native engine; with `override="timescaledb"` that is an error, as is a server without it.
    """
    if override not in OVERRIDES:
        raise ValueError(f"engine override must be one of {', '.join(OVERRIDES)}")
    if override == NATIVE:
        return Detection(NATIVE, (), None)
    raw = driver_connection(conn)
    forced = override == TIMESCALEDB
    row = raw.execute("select installed_version from pg_available_extensions"
                      " where name = 'timescaledb'").fetchone()
    if row is None:
        if forced:
            raise EngineUnavailable(
                "TIMESERIES_ENGINE=timescaledb, but this server does not have the timescaledb"
                " extension (it is not in pg_available_extensions); install TimescaleDB there,"
                " or set TIMESERIES_ENGINE=native (or auto) to use PostgreSQL partitions")
        return Detection(NATIVE, (), None)
    if row[0] is None and not _create_extension(raw, forced):
        return Detection(NATIVE, (), None)
    version = raw.execute("select extversion from pg_extension"
                          " where extname = 'timescaledb'").fetchone()
    probed = probe_features(raw)
    if "hypertable" not in probed:
        if forced:
            raise EngineUnavailable("TIMESERIES_ENGINE=timescaledb, but the timescaledb"
                                    " extension cannot create a hypertable here")
        log.warning("timescaledb is installed but cannot create a hypertable; using native"
                    " partitions")
        return Detection(NATIVE, (), None)
    skip = set(disabled)
    features = tuple(f for f in probed if f not in skip)
    return Detection(TIMESCALEDB, features, version[0] if version else None)


def _create_extension(raw: psycopg.Connection[Any], forced: bool) -> bool:
    try:
        with raw.transaction():  # a savepoint: a failure leaves the caller's transaction usable
            raw.execute("create extension if not exists timescaledb")
    except psycopg.Error as exc:
        reason = exc.diag.message_primary or str(exc)
        if forced:
            raise EngineUnavailable(
                "TIMESERIES_ENGINE=timescaledb, but the timescaledb extension could not be"
                f" created: {reason} (is it in shared_preload_libraries?)") from exc
        log.warning("timescaledb is listed but cannot be created (%s); using native"
                    " partitions", reason)
        return False
    return True


def probe_features(conn: Any) -> tuple[str, ...]:
    """Which TimescaleDB features work here, tried on a throw-away hypertable that is always
    rolled back. Requires the extension to be installed."""
    raw = driver_connection(conn)
    found: list[str] = []
    ext_schema = extension_schema(raw)
    table = sql.Identifier(_PROBE_SCHEMA, _PROBE_TABLE)
    try:
        with raw.transaction() as outer:
            # Transaction-local: the probe must not depend on the caller's search_path.
            raw.execute("select set_config('search_path', %s, true)",
                        (f"{_quote_ident(raw, ext_schema)}, pg_catalog",))
            # In `ts` (rolled back with the rest when it did not exist): a role that can
            # migrate this plane can create there, which is not true of a new schema.
            raw.execute(sql.SQL("create schema if not exists {}").format(
                sql.Identifier(_PROBE_SCHEMA)))
            raw.execute(sql.SQL("create table {} (t timestamptz not null, k integer)")
                        .format(table))
            if _attempt(raw, sql.SQL("select create_hypertable({}, 't')").format(
                    sql.Literal(f"{_PROBE_SCHEMA}.{_PROBE_TABLE}")), keep=True):
                found.append("hypertable")
            if _attempt(raw, sql.SQL("select time_bucket(interval '1 hour', now())")):
                found.append("time_bucket")
            if "hypertable" in found:
                found.extend(_tsl_features(raw, table))
            raise psycopg.Rollback(outer)
    except psycopg.Error as exc:
        log.warning("probing timescaledb failed: %s", exc)
        return ()
    return tuple(found)


def _tsl_features(raw: psycopg.Connection[Any], table: sql.Identifier) -> list[str]:
    """The features of the Timescale License edition (absent from the Apache-2 build)."""
    found = []
    if _attempt(raw, sql.SQL("alter table {} set (timescaledb.compress,"
                             " timescaledb.compress_segmentby = 'k')").format(table)):
        found.append("compression")
    if _attempt(raw, sql.SQL(
            "create materialized view {} with (timescaledb.continuous) as"
            " select time_bucket(interval '1 hour', t) as b, count(*) from {}"
            " group by 1 with no data").format(
                sql.Identifier(_PROBE_SCHEMA, f"{_PROBE_TABLE}_hourly"), table)):
        found.append("continuous_aggregates")
    # A policy is a job for the background scheduler: where no workers can run it (PGlite, a
    # server with timescaledb.max_background_workers = 0) it would never act, so the jobs must
    # do that work themselves; count the feature as missing there.
    workers = raw.execute("select current_setting('timescaledb.max_background_workers', true)"
                          ).fetchone()
    runnable = bool(workers and workers[0] and workers[0].isdigit() and int(workers[0]) > 0)
    if runnable and _attempt(raw, sql.SQL("select add_retention_policy({}, interval '1 day')")
                             .format(sql.Literal(f"{_PROBE_SCHEMA}.{_PROBE_TABLE}"))):
        found.append("policies")
    return found


def _attempt(raw: psycopg.Connection[Any], statement: sql.Composable, *,
             keep: bool = False) -> bool:
    """Run `statement` in a savepoint, rolled back unless `keep`; True when it worked."""
    try:
        with raw.transaction() as tx:
            raw.execute(statement)
            if not keep:
                raise psycopg.Rollback(tx)
    except psycopg.Error:
        return False
    return True


def _quote_ident(raw: psycopg.Connection[Any], name: str) -> str:
    return sql.Identifier(name).as_string(raw)


def extension_schema(conn: Any) -> str:
    """The schema TimescaleDB's functions live in (public, or e.g. `extensions` on Supabase)."""
    row = driver_connection(conn).execute(
        "select n.nspname from pg_extension e join pg_namespace n on n.oid = e.extnamespace"
        " where e.extname = 'timescaledb'").fetchone()
    if row is None:
        raise EngineUnavailable("the timescaledb extension is not installed in this database")
    return str(row[0])


# -- the recorded engine -------------------------------------------------------------------

ENGINE_INFO_SQL = (
    "select engine, features, timescaledb_version, chunk_interval, raw_retention,"
    " compress_after, detected_at from ts.engine_info"
)


def engine_info(conn: Any) -> EngineInfo | None:
    """The recorded engine, or None when the time-series schema is not migrated."""
    raw = driver_connection(conn)
    exists = raw.execute("select to_regclass('ts.engine_info') is not null").fetchone()
    if not exists or not exists[0]:
        return None
    row = raw.execute(ENGINE_INFO_SQL).fetchone()
    return None if row is None else _info(row)


def _info(row: tuple[Any, ...]) -> EngineInfo:
    engine, features, version, chunk, retention, compress, detected = row
    return EngineInfo(engine, tuple(features or ()), version, chunk, retention, compress,
                      detected)


# -- how a table is stored -----------------------------------------------------------------

HYPERTABLE, PARTITIONED, PLAIN = "hypertable", "partitioned", "plain"

# {hyper}: whether the table is a hypertable; `false` where TimescaleDB is not installed (its
# catalog views do not exist there, and a query naming them would not even parse).
_STORAGE_SQL = """
select n.name,
       case when c.oid is null then null
            when c.relkind = 'p' then 'partitioned'
            when {hyper} then 'hypertable'
            else 'plain' end
  from unnest(%(names)s::text[]) as n(name)
  left join pg_class c on c.oid = to_regclass(format('%%I.%%I', %(schema)s::text, n.name))
"""
_IS_HYPERTABLE = ("exists (select from timescaledb_information.hypertables h"
                  " where h.hypertable_schema = %(schema)s and h.hypertable_name = n.name)")


def table_storage(conn: Any, schema: str, names: Iterable[str]) -> dict[str, str | None]:
    """How each table is stored: HYPERTABLE, PARTITIONED, PLAIN, or None when it is missing.

    The legacy snapshot tables are hypertables on a legacy TimescaleDB, plain tables on a
    legacy plain PostgreSQL and range-partitioned on a fresh native database: the revisions
    after the baseline follow what is there rather than what they would have built.
    """
    raw = driver_connection(conn)
    installed = raw.execute("select exists (select from pg_extension"
                            " where extname = 'timescaledb')").fetchone()
    query = _STORAGE_SQL.format(hyper=_IS_HYPERTABLE if installed and installed[0] else "false")
    rows = raw.execute(query, {"schema": schema, "names": list(names)}).fetchall()
    return {name: kind for name, kind in rows}
