"""`nxt db diff`: drift between a live database and what the migrations produce.

For each plane: build a scratch database from the migrations, at the live database's own
revision (pending revisions are `nxt db status`'s business, not drift) and, for the time-series
plane, on its recorded engine; read both catalogs with `results` (the maintained successor of
migra's schemainspect: tables and columns, types, defaults, constraints, indexes, enums and
their values, policies, functions, triggers, sequences, extensions, and the grants of the
project's roles); compare them object by object; drop the scratch database.

What the migrations make and the live database lacks or has otherwise is drift. What only the
live database has is drift on a database the migrations built, and legacy-only on an adopted
one (the legacy schema's own tables, columns, policies, triggers: adoption leaves them alone).
On an adopted database the baseline's own objects were built by the legacy migrations, under
TypeORM's names and the legacy storage: they are compared by definition, as `nxt db adopt`
compared them (nxt_cli.catalog), and everything the later revisions made by name.
Partitions are left out: which exist depends on when the database was built and on the
maintenance job, not on the migrations.

Exit status: 0 no drift, 1 drift, 2 a database did not answer (or no scratch could be built).
"""

from __future__ import annotations

import uuid
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from dataclasses import asdict, dataclass, field
from typing import Any
from urllib.parse import urlsplit, urlunsplit

from nxt_cli.revisions import LABEL, TIMESERIES, TRANSACTIONAL

NO_DRIFT, DRIFT, UNREACHABLE = 0, 1, 2
MISSING, EXTRA, DIFFERENT, LEGACY_ONLY = "missing", "extra", "different", "legacy-only"

# The schemas each plane's migrations own (auth belongs to Supabase: the bootstrap only fills
# it in where the platform has not).
SCHEMAS = {TRANSACTIONAL: ("public", "app"), TIMESERIES: ("public", "ts")}
# Of those, the ones only this project writes: an object there that the migrations did not make
# is drift even on an adopted database (the legacy schema lives in public).
OWN_SCHEMAS = {TRANSACTIONAL: frozenset({"app"}), TIMESERIES: frozenset({"ts"})}
PROJECT_ROLES = frozenset({"anon", "authenticated", "service_role"})
CATEGORIES = {"schemas": "schema", "enums": "enum", "tables": "table", "views": "view",
              "sequences": "sequence", "functions": "function", "constraints": "constraint",
              "indexes": "index", "triggers": "trigger", "rlspolicies": "policy",
              "privileges": "grant", "extensions": "extension"}
_TABLE_ATTRIBUTES = ("relationtype", "rowsecurity", "forcerowsecurity", "persistence")


@dataclass(frozen=True)
class Difference:
    kind: str  # MISSING, EXTRA, DIFFERENT, LEGACY_ONLY
    category: str
    name: str
    detail: str = ""

    def text(self) -> str:
        what = {MISSING: "missing (the migrations make it)", EXTRA: "not from the migrations",
                DIFFERENT: "differs", LEGACY_ONLY: "legacy-only"}[self.kind]
        return f"{self.category} {self.name}: {what}" + (f": {self.detail}" if self.detail else "")


@dataclass
class PlaneDiff:
    plane: str
    database: str | None
    revision: str | None = None
    adopted: bool = False
    error: str | None = None
    note: str | None = None
    differences: list[Difference] = field(default_factory=list)

    @property
    def drift(self) -> list[Difference]:
        return [d for d in self.differences if d.kind != LEGACY_ONLY]

    @property
    def exit_code(self) -> int:
        if self.database is None:
            return NO_DRIFT
        if self.error:
            return UNREACHABLE
        return DRIFT if self.drift else NO_DRIFT

    def as_dict(self) -> dict[str, Any]:
        return {"plane": self.plane, "database": self.database, "revision": self.revision,
                "adopted": self.adopted, "error": self.error, "note": self.note,
                "drift": [asdict(d) for d in self.drift],
                "legacy_only": [asdict(d) for d in self.differences if d.kind == LEGACY_ONLY]}

    def lines(self) -> list[str]:
        label = f"{LABEL[self.plane]} plane"
        if self.database is None:
            return [f"{label}: no database (set TIMESERIES_DATABASE_URL)"]
        if self.error:
            return [f"{label}: {self.database}: {self.error}"]
        legacy = [d for d in self.differences if d.kind == LEGACY_ONLY]
        head = (f"{label}: {self.database} at {self.revision}: "
                + (f"{len(self.drift)} differences from the migrations" if self.drift
                   else "no drift"))
        out = [head] + [f"  {d.text()}" for d in self.drift]
        if self.note:
            out.append(f"  note: {self.note}")
        if legacy:
            counts: dict[str, int] = {}
            for d in legacy:
                counts[d.category] = counts.get(d.category, 0) + 1
            by_category = ", ".join(f"{n} {_plural(c) if n > 1 else c}"
                                    for c, n in counts.items())
            out.append(f"  legacy-only, left alone (adopted): {by_category} (--json lists them)")
        return out


def _plural(category: str) -> str:
    return {"index": "indexes", "policy": "policies"}.get(category, category + "s")


# -- reading a catalog ---------------------------------------------------------------------


def _inspect(url: str, plane: str) -> tuple[int, dict[str, dict[str, Any]]]:
    """The server's major version, and the plane's objects by category and name (partitions
    and other roles' grants left out)."""
    from results.schemainspect import get_inspector
    from sqlalchemy import create_engine, pool

    from timeseries.engine import sqlalchemy_url

    engine = create_engine(sqlalchemy_url(url), poolclass=pool.NullPool)
    try:
        with engine.connect() as conn:
            inspected = get_inspector(conn)
    finally:
        engine.dispose()
    schemas = SCHEMAS[plane]
    partitions = {name for name, t in inspected.tables.items() if t.parent_table}
    objects: dict[str, dict[str, Any]] = {}
    for attribute, category in CATEGORIES.items():
        found: dict[str, Any] = {}
        for key, obj in getattr(inspected, attribute).items():
            if not _in_scope(category, key, obj, schemas, partitions):
                continue
            found[_name(category, key)] = obj
        objects[category] = found
    return int(inspected.pg_version), objects


def _in_scope(category: str, key: Any, obj: Any, schemas: tuple[str, ...],
              partitions: set[str]) -> bool:
    if category == "extension":
        return True
    if category == "schema":
        return obj.schema in schemas or getattr(obj, "name", None) in schemas
    if getattr(obj, "schema", None) not in schemas:
        return False
    if category == "table" and obj.parent_table:
        return False
    if category == "index" and getattr(obj, "parent_index", None):
        return False
    table = getattr(obj, "quoted_full_table_name", None)
    if table in partitions:
        return False
    if category == "grant":
        return obj.target_user in PROJECT_ROLES and (
            f'"{obj.schema}"."{obj.name}"' not in partitions)
    return True


def _name(category: str, key: Any) -> str:
    if category == "grant":  # (object type, object, role, privilege)
        kind, target, role, privilege = key
        return f"{privilege} on {kind} {target} to {role}"
    return str(key)


def _same(category: str, a: Any, b: Any) -> bool:
    if category == "extension":  # the version is the platform's to choose
        return a.name == b.name
    return bool(a == b)


# -- comparing -----------------------------------------------------------------------------


def compare(live: dict[str, dict[str, Any]], wanted: dict[str, dict[str, Any]], *,
            adopted: bool, same_server_version: bool = True,
            baseline: dict[str, dict[str, Any]] | None = None,
            own_schemas: frozenset[str] = frozenset()) -> list[Difference]:
    """The differences of `live` from `wanted`. On an adopted database, `baseline` (what the
    baseline revision alone makes) is left to the baseline comparison: the legacy migrations
    built those objects, under their own names and storage, and adoption checked them by
    definition (nxt_cli.catalog), which diff_plane runs again."""
    out: list[Difference] = []
    extra_kind = LEGACY_ONLY if adopted else EXTRA
    skip = (baseline or {}) if adopted else {}
    for category in CATEGORIES.values():
        have, want = live.get(category, {}), wanted.get(category, {})
        own = skip.get(category, {})
        for name in sorted(want.keys() - have.keys() - own.keys()):
            out.append(Difference(MISSING, category, name))
        for name in sorted(have.keys() - want.keys()):
            ours = getattr(have[name], "schema", None) in own_schemas
            out.append(Difference(EXTRA if ours else extra_kind, category, name))
        for name in sorted(want.keys() & have.keys()):
            if _same(category, have[name], want[name]):
                continue
            if category == "view" and not same_server_version:
                continue  # each major version deparses a view its own way (see diff_plane)
            if category == "table":
                ours = have[name].schema in own_schemas
                out += _table_differences(name, have[name], want[name],
                                          EXTRA if ours else extra_kind, own.get(name))
            elif name in own:
                continue
            else:
                out.append(Difference(DIFFERENT, category, name, _detail(category,
                                                                         have[name],
                                                                         want[name])))
    return out


def _table_differences(name: str, have: Any, want: Any, extra_kind: str,
                       baseline: Any = None) -> list[Difference]:
    """Column by column; with `baseline` (the table as the baseline revision makes it, on an
    adopted database) only the columns later revisions added, and not how it is stored."""
    out = []
    left_out = set(baseline.columns) if baseline is not None else set()
    for column in want.columns.keys() - have.columns.keys() - left_out:
        out.append(Difference(MISSING, "column", f"{name}.{column}"))
    for column in have.columns.keys() - want.columns.keys():
        out.append(Difference(extra_kind, "column", f"{name}.{column}",
                              str(have.columns[column].dbtypestr)))
    for column in (want.columns.keys() & have.columns.keys()) - left_out:
        a, b = have.columns[column], want.columns[column]
        changes = [f"{what} {getattr(a, attr)!r}, migrations {getattr(b, attr)!r}"
                   for attr, what in (("dbtypestr", "type"), ("default", "default"),
                                      ("not_null", "not null"))
                   if getattr(a, attr) != getattr(b, attr)]
        if changes:
            out.append(Difference(DIFFERENT, "column", f"{name}.{column}", "; ".join(changes)))
    attributes = [f"{attr} {getattr(have, attr)!r}, migrations {getattr(want, attr)!r}"
                  for attr in (*_TABLE_ATTRIBUTES, "partition_def")
                  if getattr(have, attr, None) != getattr(want, attr, None)
                  and (baseline is None or attr not in ("relationtype", "partition_def"))]
    if attributes:
        out.append(Difference(DIFFERENT, "table", name, "; ".join(attributes)))
    return out


def _detail(category: str, have: Any, want: Any) -> str:
    if category == "enum":
        missing = [v for v in want.elements if v not in have.elements]
        extra = [v for v in have.elements if v not in want.elements]
        parts = ([f"values missing {missing}"] if missing else []) + (
            [f"values not from the migrations {extra}"] if extra else [])
        return "; ".join(parts) or "the values are in another order"
    for attr in ("definition", "qual", "withcheck", "roles", "commandtype", "permissive"):
        if getattr(have, attr, None) != getattr(want, attr, None):
            return f"its {attr} differs"
    return "its definition differs"


# -- the scratch database ------------------------------------------------------------------


@contextmanager
def scratch_database(server_url: str, label: str) -> Iterator[str]:
    import psycopg
    from psycopg import sql

    from nxt_cli.adopt import connect

    name = f"nxt_diff_{label}_{uuid.uuid4().hex[:8]}"
    with connect(server_url) as conn:
        conn.execute(sql.SQL("create database {}").format(sql.Identifier(name)))
    try:
        yield urlunsplit(urlsplit(server_url)._replace(path=f"/{name}"))
    finally:
        with connect(server_url) as conn:
            try:
                conn.execute(sql.SQL("drop database if exists {} with (force)").format(
                    sql.Identifier(name)))
            except psycopg.Error:
                pass  # left for the operator; named in nxt_diff_*


def _build(scratch: str, plane: str, revision: str, engine: str | None) -> None:
    from alembic import command

    from nxt_cli.revisions import plane_config

    cfg = plane_config(plane)
    cfg.attributes["database_url"] = scratch
    if engine is not None:
        cfg.attributes["timeseries_engine"] = engine
    command.upgrade(cfg, revision)


def _baseline_findings(url: str, plane: str) -> list[Difference]:
    """The baseline comparison `nxt db adopt` made, made again: the legacy objects the baseline
    declares, matched by definition whatever their names."""
    from nxt_cli.adopt import connect, timeseries_plane, transactional_plane
    from nxt_cli.catalog import compare_baseline

    spec = transactional_plane() if plane == TRANSACTIONAL else timeseries_plane()
    with connect(url) as conn:
        found = compare_baseline(conn, spec.tables, spec.enums)
    return [Difference(MISSING if f.kind == "missing" else DIFFERENT, "baseline", f.object,
                       f.detail) for f in found.problems]


def diff_plane(url: str | None, plane: str,
               scratch_server: str | Callable[[], str]) -> PlaneDiff:
    """`scratch_server`: the admin URL of a server for the scratch database, or what gives one
    (called only once a scratch database is needed)."""
    import psycopg

    from nxt_cli.status import plane_status
    from timeseries.engine import engine_info

    status = plane_status(url, plane)
    result = PlaneDiff(plane, status.database, revision=status.current,
                       adopted=status.state == "adopted")
    if url is None:
        return result
    if not status.reachable:
        result.error = f"unreachable: {status.error}"
        return result
    if status.state in ("legacy", "in progress"):
        result.error = "the legacy schema, not adopted: `nxt db adopt` compares it first"
        return result
    if status.current is None:
        result.error = "no revision applied: nothing to compare (`nxt db migrate`)"
        return result
    engine = None
    if plane == TIMESERIES:
        from nxt_cli.adopt import connect

        with connect(url) as conn:
            info = engine_info(conn)
        engine = info.engine if info else None
    from nxt_cli.adopt import timeseries_plane, transactional_plane

    baseline_revision = (transactional_plane() if plane == TRANSACTIONAL
                         else timeseries_plane()).baseline
    baseline: dict[str, dict[str, Any]] | None = None
    try:
        server = scratch_server if isinstance(scratch_server, str) else scratch_server()
    except Exception as exc:  # the embedded server would not start: say so, not a traceback
        result.error = (f"no server for the scratch database ({type(exc).__name__}): pass"
                        " --scratch URL")
        return result
    try:
        with scratch_database(server, "tx" if plane == TRANSACTIONAL else "ts") as db:
            if result.adopted:  # what the baseline alone makes: the legacy built it instead
                _build(db, plane, baseline_revision, engine)
                baseline = _inspect(db, plane)[1]
            _build(db, plane, status.current, engine)
            scratch_version, wanted = _inspect(db, plane)
        live_version, live = _inspect(url, plane)
    except (psycopg.Error, RuntimeError) as exc:
        first = str(exc).strip().splitlines()[0] if str(exc).strip() else type(exc).__name__
        result.error = (f"could not build the scratch database from the migrations: {first}"
                        " (pass --scratch with a server that can, e.g. one with TimescaleDB)")
        return result
    same = scratch_version == live_version
    if not same:
        result.note = (f"the scratch database ran on PostgreSQL {scratch_version}, this one on"
                       f" {live_version}: view definitions were not compared (each version"
                       f" writes them its own way); pass --scratch with a PostgreSQL"
                       f" {live_version} server to compare them too")
    result.differences = compare(live, wanted, adopted=result.adopted, same_server_version=same,
                                 baseline=baseline, own_schemas=OWN_SCHEMAS[plane])
    if result.adopted:
        result.differences = _baseline_findings(url, plane) + result.differences
    return result


def exit_code(diffs: list[PlaneDiff]) -> int:
    return max((d.exit_code for d in diffs), default=NO_DRIFT)
