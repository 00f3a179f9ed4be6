"""Alembic environment of the time-series plane: revisions of its own and a version table of
its own (ts.alembic_version), so the two planes migrate independently and may live on
different servers (locally a second database on the embedded server; in production
TIMESERIES_DATABASE_URL, a TimescaleDB service)."""

from __future__ import annotations

import os

from alembic import context
from sqlalchemy import Connection, create_engine, pool, text

from migrations.guards import SESSION_SETTINGS
from timeseries import SCHEMA
from timeseries.engine import sqlalchemy_url

config = context.config


def _url() -> str:
    url = config.attributes.get("database_url") or os.environ.get("TIMESERIES_DATABASE_URL")
    if not url:
        raise SystemExit("TIMESERIES_DATABASE_URL is not set: it names the time-series"
                         " database to migrate")
    return sqlalchemy_url(url)


def _create_schema(connection: Connection) -> None:
    for statement in SESSION_SETTINGS:  # the same lock and statement timeouts as the other plane
        connection.execute(text(statement))
    # Alembic creates its version table in `ts`, so the schema must exist before it looks.
    connection.execute(text(f"create schema if not exists {SCHEMA}"))


def _run(connection: Connection) -> None:
    context.configure(connection=connection, version_table_schema=SCHEMA,
                      transaction_per_migration=True)
    with context.begin_transaction():
        context.run_migrations()


def run_migrations_online() -> None:
    connectable = config.attributes.get("connection")
    if connectable is not None:  # the caller's connection and transaction
        _create_schema(connectable)
        _run(connectable)
        return
    engine = create_engine(_url(), poolclass=pool.NullPool)
    try:
        with engine.connect() as connection:
            _create_schema(connection)
            # Committed before alembic starts: it runs each revision in a transaction of its
            # own only when the connection is not already inside one.
            connection.commit()
            _run(connection)
    finally:
        engine.dispose()


def run_migrations_offline() -> None:
    # `nxt db plan`: revisions that branch on the engine read it from the "timeseries_engine"
    # attribute (the target's recorded engine, or --engine); those that must ask the live
    # database declare NOT_PLANNABLE and are not run here (nxt_cli.plan).
    context.configure(url=_url(), literal_binds=True, version_table_schema=SCHEMA,
                      transaction_per_migration=True)
    for statement in SESSION_SETTINGS:
        context.execute(statement)
    context.execute(f"create schema if not exists {SCHEMA}")
    with context.begin_transaction():
        context.run_migrations()


if context.is_offline_mode():
    run_migrations_offline()
else:
    run_migrations_online()
