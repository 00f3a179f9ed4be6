"""Legacy time-series databases for the adoption tests: built by the legacy builder
(../shared/legacy/timeseries/build-legacy-ts.sh) with the legacy-shaped data set of
tests/legacy/data/timeseries.sql, filled with more rows in every legacy table, and checksummed
so a test can tell that not one legacy row changed.

The extra rows are made from the catalog, so every table the legacy migrations create gets some,
whatever it is: column by column from its type, unique in every key column, NULL in every
nullable column now and then, NaN in a share of the snapshot's double precision consumption
and NULL consumption in another (as the legacy writers leave them).
"""

from __future__ import annotations

import json
import os
import subprocess
from datetime import datetime, timedelta
from pathlib import Path
from typing import Any

import psycopg
from psycopg import sql

from tests.support.legacy_support import LEGACY

BUILDER = LEGACY / "timeseries" / "build-legacy-ts.sh"
DATA = Path(__file__).resolve().parents[1] / "legacy" / "data" / "timeseries.sql"
PG15 = "postgresql://postgres@127.0.0.1:5432/postgres"
T0 = datetime(2025, 3, 30, 20)  # UTC, as the legacy tables hold it: across a month's end

# Schemas whose tables are the legacy's (tsdb_stub: the builder's stand-ins on --plain).
LEGACY_SCHEMAS = ("public", "tsdb_stub")


def require_pg15() -> None:
    """Skip where the machine's PostgreSQL 15 does not answer (a laptop: the TimescaleDB
    adoption test still runs); under CI, which runs the database tests on that server, fail."""
    import pytest

    reason = pg15_reason()
    if reason is None:
        return
    if os.environ.get("CI"):
        pytest.fail(f"{reason}; CI must run the adoption tests there")
    pytest.skip(reason)


def pg15_reason() -> str | None:
    """None when PostgreSQL 15 answers on 127.0.0.1:5432, else why these tests cannot run."""
    try:
        with psycopg.connect(PG15, connect_timeout=3) as conn:
            version = conn.execute("show server_version_num").fetchone()[0]  # type: ignore[index]
    except psycopg.Error as exc:
        return (f"needs the machine's PostgreSQL 15 on 127.0.0.1:5432, which build-legacy-ts.sh"
                f" --plain --recreate builds legacy databases on (not answering: {exc})")
    if int(version) // 10000 != 15:
        return f"needs PostgreSQL 15 on 127.0.0.1:5432 (found version {version})"
    return None


def build(url: str, *, plain: bool, data: bool = True) -> None:
    """The legacy schema at `url` (plain: recreated as a `legacy_ts_*` database), with the
    legacy-shaped data set loaded unless `data` is false."""
    args = [str(BUILDER), url, *(["--plain", "--recreate"] if plain else []),
            *(["--data", str(DATA)] if data else [])]
    done = subprocess.run(args, capture_output=True, text=True, timeout=300,
                          env={**os.environ, "PGCONNECT_TIMEOUT": "10"})
    if done.returncode != 0:
        raise RuntimeError(f"build-legacy-ts.sh failed ({done.returncode}):"
                           f" {done.stdout[-1500:]} {done.stderr[-1500:]}")


_TABLES = """
select n.nspname, c.relname, c.relkind::text
  from pg_class c join pg_namespace n on n.oid = c.relnamespace
 where n.nspname = any(%s) and c.relkind in ('r', 'p', 'm', 'v') and not c.relispartition
 order by 1, 2
"""
_COLUMNS = """
select a.attname, format_type(a.atttypid, a.atttypmod), not a.attnotnull,
       a.attidentity <> '' or pg_get_expr(d.adbin, d.adrelid) like 'nextval(%%'
  from pg_attribute a left join pg_attrdef d on d.adrelid = a.attrelid and d.adnum = a.attnum
 where a.attrelid = %s::regclass and a.attnum > 0 and not a.attisdropped
 order by a.attnum
"""


def relations(conn: psycopg.Connection[Any]) -> list[tuple[str, str, str]]:
    """(schema, name, relkind) of every legacy table, materialized view and view (on
    TimescaleDB the continuous aggregates are views)."""
    return [tuple(r) for r in conn.execute(_TABLES, (list(LEGACY_SCHEMAS),))]  # type: ignore[misc]


def columns(conn: psycopg.Connection[Any], schema: str, table: str
            ) -> list[tuple[str, str, bool, bool]]:
    """(name, type, nullable, generated) of a relation's columns, in order."""
    qualified = sql.Identifier(schema, table).as_string(conn)
    return [tuple(r) for r in conn.execute(_COLUMNS, (qualified,))]  # type: ignore[misc]


def _value(table: str, column: str, typ: str, nullable: bool, i: int) -> Any:
    if nullable and i % 7 == 3:
        return None
    if table == "meter_snapshot_1_h" and column == "consumption_kwh":
        # as the legacy writers leave unknown hours: NaN, or NULL (the power-limit rows)
        return float("nan") if i % 9 == 4 else None if i % 9 == 5 else round(i * 0.137, 4)
    if table == "meter_snapshot_1_h" and column == "is_hidden_from_reporting":
        return i % 5 == 0
    if column == "grid_name":
        return ("Gbamu", "GBAMU", "Okpokunou")[i % 3]
    if typ.startswith("timestamp"):
        return T0 + timedelta(hours=i, seconds=(i * 7) % 3, microseconds=(i * 7919) % 10**6)
    if typ in ("integer", "bigint", "smallint"):
        return i + 1
    if typ in ("double precision", "real") or typ.startswith("numeric"):
        return i * 1.25 + 0.0005
    if typ == "boolean":
        return i % 2 == 0
    if typ in ("json", "jsonb"):
        return json.dumps({"i": i, "note": "legacy"})
    if typ in ("character varying", "text") or typ.startswith("character varying"):
        return f"{column}-{i}"
    raise ValueError(f"no value for {table}.{column} of type {typ}")


def fill(url: str, rows: int = 60) -> dict[str, int]:
    """Rows in every legacy table (views refreshed after); table -> rows inserted."""
    counts: dict[str, int] = {}
    with psycopg.connect(url, autocommit=True) as conn:
        rels = relations(conn)
        for schema, table, kind in rels:
            if kind in ("m", "v") or table == "migrations" or schema == "tsdb_stub":
                continue
            cols = [c for c in columns(conn, schema, table) if not c[3]]
            row = sql.SQL("({})").format(
                sql.SQL(", ").join(sql.SQL("%s::") + sql.SQL(c[1]) for c in cols))
            # One statement of many rows: the TimescaleDB test server can stall on the
            # pipeline executemany would send.
            statement = sql.SQL("insert into {} ({}) values {}").format(
                sql.Identifier(schema, table),
                sql.SQL(", ").join(sql.Identifier(c[0]) for c in cols),
                sql.SQL(", ").join([row] * rows))
            conn.execute(statement, [_value(table, name, typ, null, i)
                                     for i in range(rows) for name, typ, null, _ in cols])
            counts[table] = rows
        for schema, view, kind in rels:
            if kind == "m":
                conn.execute(sql.SQL("refresh materialized view {}").format(
                    sql.Identifier(schema, view)))
        if conn.execute("select exists (select from pg_extension where extname = 'timescaledb')"
                        ).fetchone() == (True,):
            for (view,) in conn.execute("select format('%I.%I', view_schema, view_name)"
                                        " from timescaledb_information.continuous_aggregates"
                                        ).fetchall():
                conn.execute("call refresh_continuous_aggregate(%s, null, null)", (view,))
    return counts


def snapshot(url: str) -> dict[str, tuple[list[str], int, str]]:
    """relation -> (its columns, rows, md5 of every row's text over those columns)."""
    out: dict[str, tuple[list[str], int, str]] = {}
    with psycopg.connect(url, autocommit=True) as conn:
        for schema, table, _ in relations(conn):
            names = [c[0] for c in columns(conn, schema, table)]
            out[f"{schema}.{table}"] = (names, *checksum(conn, schema, table, names))
    return out


def checksum(conn: psycopg.Connection[Any], schema: str, table: str, names: list[str]
             ) -> tuple[int, str]:
    """(rows, md5 of their text) over `names` only: the columns a later revision adds do not
    count, the legacy ones must not change."""
    row = sql.SQL("row({})").format(sql.SQL(", ").join(sql.Identifier(n) for n in names))
    found = conn.execute(sql.SQL("select count(*), coalesce(md5(string_agg({}::text, ','"
                                 " order by {}::text)), '') from {}").format(
        row, row, sql.Identifier(schema, table))).fetchone()
    assert found is not None
    return int(found[0]), str(found[1])


def changed_since(before: dict[str, tuple[list[str], int, str]], url: str) -> dict[str, Any]:
    """The legacy relations whose rows differ now (over the columns they had), or vanished."""
    diff: dict[str, Any] = {}
    with psycopg.connect(url, autocommit=True) as conn:
        for name, (names, count, digest) in before.items():
            schema, table = name.split(".")
            now = checksum(conn, schema, table, names)
            if now != (count, digest):
                diff[name] = ((count, digest), now)
    return diff
