"""A live database's catalogs against a declared baseline: what is missing, what differs, and
what the database holds beyond it (legacy-only objects, reported, never touched).

Used by `nxt db adopt` before it stamps a baseline: a database is adopted only when it holds
everything the baseline declares, exactly. Keys and indexes are matched by definition, not by
name (the legacy ones carry TypeORM's generated names); types and defaults are compared as
PostgreSQL prints them with `public` first on the search path.
"""

from __future__ import annotations

import re
from dataclasses import dataclass, field
from typing import Any

import psycopg

from migrations.baseline import ENUMS, TABLES, Table


@dataclass(frozen=True)
class Finding:
    """One object: `kind` is 'missing' or 'different' (refuse) or 'legacy-only' (keep)."""

    kind: str
    object: str
    detail: str = ""

    def __str__(self) -> str:
        return f"{self.kind}: {self.object}" + (f" ({self.detail})" if self.detail else "")


@dataclass
class Comparison:
    findings: list[Finding] = field(default_factory=list)

    @property
    def problems(self) -> list[Finding]:
        return [f for f in self.findings if f.kind != "legacy-only"]

    @property
    def legacy_only(self) -> list[Finding]:
        return [f for f in self.findings if f.kind == "legacy-only"]

    @property
    def matches(self) -> bool:
        return not self.problems

    def add(self, kind: str, obj: str, detail: str = "") -> None:
        self.findings.append(Finding(kind, obj, detail))


_COLUMNS = """
select c.relname, a.attname, format_type(a.atttypid, a.atttypmod), not a.attnotnull,
       pg_get_expr(d.adbin, d.adrelid)
  from pg_attribute a
  join pg_class c on c.oid = a.attrelid
  join pg_namespace n on n.oid = c.relnamespace
  left join pg_attrdef d on d.adrelid = a.attrelid and d.adnum = a.attnum
 where n.nspname = 'public' and c.relname = any(%(tables)s) and c.relkind in ('r', 'p')
   and a.attnum > 0 and not a.attisdropped
 order by c.relname, a.attnum
"""

_TABLES = """
select c.relname, c.relrowsecurity from pg_class c join pg_namespace n on n.oid = c.relnamespace
 where n.nspname = 'public' and c.relname = any(%(tables)s) and c.relkind in ('r', 'p')
"""

# Keys by their columns; foreign keys with what they reference.
_CONSTRAINTS = """
select c.conrelid::regclass::text, c.contype,
       array(select a.attname from unnest(c.conkey) with ordinality k(n, o)
             join pg_attribute a on a.attrelid = c.conrelid and a.attnum = k.n order by k.o),
       case when c.contype = 'f' then c.confrelid::regclass::text end,
       array(select a.attname from unnest(c.confkey) with ordinality k(n, o)
             join pg_attribute a on a.attrelid = c.confrelid and a.attnum = k.n order by k.o)
  from pg_constraint c
 where c.conrelid = any(%(oids)s::regclass[]) and c.contype in ('p', 'u', 'f')
"""

# Indexes that no constraint owns, as "(key) where predicate", unique or not.
_INDEXES = """
select i.indrelid::regclass::text, i.indisunique, pg_get_indexdef(i.indexrelid)
  from pg_index i
 where i.indrelid = any(%(oids)s::regclass[])
   and not exists (select from pg_constraint c where c.conindid = i.indexrelid)
"""

_ENUMS = """
select t.typname, array_agg(e.enumlabel::text order by e.enumsortorder)
  from pg_type t join pg_enum e on e.enumtypid = t.oid
  join pg_namespace n on n.oid = t.typnamespace
 where n.nspname = 'public'
 group by t.typname
"""

_INDEXDEF = re.compile(r" USING btree \((?P<key>.*?)\)(?: WHERE (?P<where>.*))?$")


def _strip_public(text: str | None) -> str | None:
    return None if text is None else text.replace("public.", "")


def compare_baseline(conn: psycopg.Connection[Any], tables: tuple[Table, ...] = TABLES,
                     enums: dict[str, tuple[str, ...]] = ENUMS) -> Comparison:
    """Compare the `public` schema of `conn` with the declared baseline."""
    result = Comparison()
    # Defaults and predicates print unqualified only for what is on the search path.
    conn.execute("select set_config('search_path', 'public', true)")
    names = [t.name for t in tables]
    present = dict(conn.execute(_TABLES, {"tables": names}).fetchall())
    _compare_enums(conn, enums, result)
    columns: dict[str, dict[str, tuple[str, bool, str | None]]] = {}
    for table, column, typ, null, default in conn.execute(_COLUMNS, {"tables": names}):
        columns.setdefault(table, {})[column] = (typ, null, _strip_public(default))
    oids = [f"public.{t}" for t in names if t in present]
    constraints: dict[str, list[tuple[str, tuple[str, ...], str | None, tuple[str, ...]]]] = {}
    for rel, kind, cols, ref, refcols in conn.execute(_CONSTRAINTS, {"oids": oids}):
        constraints.setdefault(_strip_public(rel) or rel, []).append(
            (kind, tuple(cols), _strip_public(ref), tuple(refcols)))
    indexes: dict[str, list[tuple[bool, str, str | None]]] = {}
    for rel, unique, definition in conn.execute(_INDEXES, {"oids": oids}):
        match = _INDEXDEF.search(definition)
        key, where = (match["key"], match["where"]) if match else (definition, None)
        indexes.setdefault(_strip_public(rel) or rel, []).append(
            (unique, key, _strip_public(where)))
    for table in tables:
        if table.name not in present:
            result.add("missing", f"table {table.name}")
            continue
        if table.row_level_security and not present[table.name]:
            result.add("different", f"table {table.name}", "row-level security is not enabled")
        _compare_columns(table, columns.get(table.name, {}), result)
        _compare_keys(table, constraints.get(table.name, []), indexes.get(table.name, []),
                      result)
    return result


def _compare_enums(conn: psycopg.Connection[Any], enums: dict[str, tuple[str, ...]],
                   result: Comparison) -> None:
    live = {name: tuple(values) for name, values in conn.execute(_ENUMS)}
    for name, values in enums.items():
        if name not in live:
            result.add("missing", f"enum {name}")
            continue
        missing = [v for v in values if v not in live[name]]
        if missing:
            result.add("different", f"enum {name}", f"values missing: {', '.join(missing)}")
        # Declared values must keep their relative order: enums sort by it.
        elif [v for v in live[name] if v in values] != list(values):
            result.add("different", f"enum {name}",
                       f"order {', '.join(live[name])}, baseline {', '.join(values)}")
        extra = [v for v in live[name] if v not in values]
        if extra:
            result.add("legacy-only", f"enum {name}", f"values {', '.join(extra)}")


def _compare_columns(table: Table, live: dict[str, tuple[str, bool, str | None]],
                     result: Comparison) -> None:
    for column in table.columns:
        name = f"column {table.name}.{column.name}"
        if column.name not in live:
            result.add("missing", name)
            continue
        typ, null, default = live[column.name]
        wanted_default = (f"nextval('{table.name}_{column.name}_seq'::regclass)"
                          if column.serial else column.default)
        wanted_null = False if column.serial else column.null
        if typ != column.type:
            result.add("different", name, f"type {typ}, baseline {column.type}")
        if null != wanted_null:
            result.add("different", name, "nullable" if null else "not null")
        if default != wanted_default:
            result.add("different", name, f"default {default or 'none'},"
                       f" baseline {wanted_default or 'none'}")
    declared = {c.name for c in table.columns}
    extra = [c for c in live if c not in declared]
    if extra:
        result.add("legacy-only", f"columns of {table.name}", ", ".join(extra))


def _compare_keys(table: Table, constraints: list[tuple[str, tuple[str, ...], str | None,
                  tuple[str, ...]]], indexes: list[tuple[bool, str, str | None]],
                  result: Comparison) -> None:
    primary = [cols for kind, cols, _, _ in constraints if kind == "p"]
    if primary != [table.primary_key]:
        found = ", ".join(primary[0]) if primary else "none"
        result.add("different", f"primary key of {table.name}",
                   f"({found}), baseline ({', '.join(table.primary_key)})")
    uniques = {cols for kind, cols, _, _ in constraints if kind == "u"}
    uniques |= {tuple(k.strip() for k in key.split(","))
                for unique, key, where in indexes if unique and where is None}
    for cols in table.unique:
        if cols not in uniques:
            result.add("missing", f"unique ({', '.join(cols)}) on {table.name}")
    foreign = {(cols, ref, refcols) for kind, cols, ref, refcols in constraints if kind == "f"}
    for fk in table.foreign_keys:
        if (fk.columns, fk.references, fk.referenced) not in foreign:
            result.add("missing", f"foreign key {table.name} ({', '.join(fk.columns)})"
                       f" -> {fk.references} ({', '.join(fk.referenced)})")
    declared_fks = {(fk.columns, fk.references, fk.referenced) for fk in table.foreign_keys}
    extra_fks = [f"({', '.join(c)}) -> {r}" for c, r, _ in foreign - declared_fks]
    if extra_fks:
        result.add("legacy-only", f"foreign keys of {table.name}", "; ".join(sorted(extra_fks)))
    plain = {(key, where) for unique, key, where in indexes if not unique}
    for index in table.indexes:
        if (index.columns, index.where) not in plain:
            where = f" where {index.where}" if index.where else ""
            result.add("missing", f"index on {table.name} ({index.columns}){where}")
