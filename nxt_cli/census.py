"""What a database holds, for proving that a change lost and changed nothing: every table's
row count and a checksum of its rows, the objects in its catalogs, and how many rows other
sessions wrote meanwhile.

The checksum of a table is the sum, modulo 2^64, of the first 64 bits of each row's MD5 over
the columns given: independent of row order (no sort of a big table), and computed over the
columns that existed before, so that columns added since do not count as a change.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

import psycopg
from psycopg import sql

# Internal schemas: PostgreSQL's, TimescaleDB's (chunks are counted through their hypertable).
_SKIPPED = ("pg_catalog", "information_schema", "pg_toast", "_timescaledb_internal",
            "_timescaledb_catalog", "_timescaledb_config", "_timescaledb_cache",
            "_timescaledb_functions", "_timescaledb_debug", "timescaledb_information",
            "timescaledb_experimental", "tsdb_stub")

_TABLES = """
select n.nspname, c.relname,
       array(select a.attname::text from pg_attribute a
              where a.attrelid = c.oid and a.attnum > 0 and not a.attisdropped
              order by a.attnum)
  from pg_class c join pg_namespace n on n.oid = c.relnamespace
 where c.relkind in ('r', 'p') and not c.relispartition
   and n.nspname <> all(%(skipped)s) and n.nspname not like 'pg_temp%%'
   and n.nspname not like 'pg_toast%%'
 order by 1, 2
"""

_OBJECTS = """
select 'schema ' || nspname from pg_namespace
 where nspname <> all(%(skipped)s) and nspname not like 'pg_%%'
union all
select 'table ' || n.nspname || '.' || c.relname from pg_class c
  join pg_namespace n on n.oid = c.relnamespace
 where c.relkind in ('r', 'p', 'v', 'm') and not c.relispartition
   and n.nspname <> all(%(skipped)s) and n.nspname not like 'pg_%%'
union all
select 'column ' || n.nspname || '.' || c.relname || '.' || a.attname from pg_attribute a
  join pg_class c on c.oid = a.attrelid join pg_namespace n on n.oid = c.relnamespace
 where c.relkind in ('r', 'p') and not c.relispartition and a.attnum > 0
   and not a.attisdropped and n.nspname <> all(%(skipped)s) and n.nspname not like 'pg_%%'
union all
select 'policy ' || schemaname || '.' || tablename || ' ' || policyname from pg_policies
union all
select 'trigger ' || n.nspname || '.' || c.relname || ' ' || t.tgname from pg_trigger t
  join pg_class c on c.oid = t.tgrelid join pg_namespace n on n.oid = c.relnamespace
 where not t.tgisinternal and n.nspname <> all(%(skipped)s) and not c.relispartition
union all
select 'function ' || n.nspname || '.' || p.proname || '(' ||
       pg_get_function_identity_arguments(p.oid) || ')' from pg_proc p
  join pg_namespace n on n.oid = p.pronamespace
 where n.nspname <> all(%(skipped)s) and n.nspname not like 'pg_%%'
   and not exists (select from pg_depend d where d.objid = p.oid and d.deptype = 'e')
union all
select 'index ' || schemaname || '.' || indexname from pg_indexes
 where schemaname <> all(%(skipped)s) and schemaname not like 'pg_%%'
"""

_ACTIVITY = """
select schemaname || '.' || relname, n_tup_ins, n_tup_upd, n_tup_del
  from pg_stat_all_tables where schemaname <> all(%(skipped)s)
"""


@dataclass(frozen=True)
class TableState:
    count: int
    checksum: str | None  # None when checksums were not asked for
    columns: tuple[str, ...]


def table_columns(conn: psycopg.Connection[Any]) -> dict[str, tuple[str, ...]]:
    """Every user table (`schema.name`) and its columns."""
    rows = conn.execute(_TABLES, {"skipped": list(_SKIPPED)}).fetchall()
    return {f"{schema}.{name}": tuple(columns) for schema, name, columns in rows}


def table_states(conn: psycopg.Connection[Any],
                 columns: dict[str, tuple[str, ...]] | None = None, *,
                 checksums: bool = True) -> dict[str, TableState]:
    """Count (and checksum) every table in `columns` (default: all) over those columns."""
    columns = table_columns(conn) if columns is None else columns
    out = {}
    for qualified, cols in columns.items():
        schema, name = qualified.split(".", 1)
        table = sql.Identifier(schema, name)
        if checksums and cols:
            row = sql.SQL("row({})").format(sql.SQL(", ").join(map(sql.Identifier, cols)))
            query = sql.SQL(
                "select count(*), (coalesce(sum(('x' || left(md5({row}::text), 16))::bit(64)"
                "::bigint::numeric), 0) % 18446744073709551616)::text from {table}"
            ).format(row=row, table=table)
        else:
            query = sql.SQL("select count(*), null::text from {table}").format(table=table)
        count, checksum = conn.execute(query).fetchone()  # type: ignore[misc]
        out[qualified] = TableState(count, checksum, cols)
    return out


def objects(conn: psycopg.Connection[Any]) -> set[str]:
    """The catalog objects a change could add: schemas, tables, columns, policies, triggers,
    functions (not an extension's) and indexes, each as one line."""
    return {r[0] for r in conn.execute(_OBJECTS, {"skipped": list(_SKIPPED)})}


def activity(conn: psycopg.Connection[Any]) -> dict[str, tuple[int, int, int]]:
    """Rows inserted, updated and deleted per table since the statistics were reset."""
    rows = conn.execute(_ACTIVITY, {"skipped": list(_SKIPPED)}).fetchall()
    return {name: (ins, upd, dele) for name, ins, upd, dele in rows}
