"""`nxt db adopt`: take a legacy database over in place, one plane at a time.

For each plane: recognise the database (legacy, already adopted, one of ours, empty); check
that it holds everything the plane's baseline declares (nxt_cli.catalog), refusing with each
missing or different object named; count and checksum every table; stamp the baseline
revision (the legacy migrations built it, so it is never run); apply the later revisions,
which only add; record the adoption; count and checksum again over the columns the tables had
before, and report what changed (nothing, or why), what was added, and the keys hashed.

Nothing is removed and no legacy row is rewritten: the revisions after the baselines are
additive (see migrations/README.md). Each runs in its own short transaction with a lock
timeout, so the legacy services keep running; a revision that cannot get its lock in time
fails, and running `nxt db adopt` again continues where it stopped.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import asdict, dataclass, field
from typing import Any
from urllib.parse import parse_qsl, urlencode, urlsplit, urlunsplit

import psycopg
from alembic import command
from alembic.config import Config
from alembic.script import ScriptDirectory

from migrations.baseline import Table
from migrations.guards import LOCK_TIMEOUT
from nxt_cli import census
from nxt_cli.catalog import Comparison, compare_baseline
from nxt_cli.stack import display_url

LEGACY, ADOPTED, IN_PROGRESS, OURS, EMPTY = "legacy", "adopted", "in progress", "ours", "empty"


class NotAdoptable(Exception):
    """The database cannot be adopted as it is; `findings` say why, object by object."""

    def __init__(self, message: str, findings: list[str] | None = None) -> None:
        super().__init__(message)
        self.message = message
        self.findings = findings or []


@dataclass(frozen=True)
class Plane:
    """What adoption needs to know of a plane."""

    name: str
    baseline: str  # the revision the legacy migrations stand for
    tables: tuple[Table, ...]
    enums: dict[str, tuple[str, ...]]
    config: Callable[[str], Config]
    version_table: str  # schema.table of alembic's version
    record_table: str  # schema.table of the adoption record
    # The table in which the legacy migration tool records what it applied: only a database
    # the legacy migrations built has rows there.
    legacy_record: str


def transactional_plane() -> Plane:
    from migrations.baseline import ENUMS, TABLES
    from nxt_cli.migrate import alembic_config

    return Plane("transactional", "0002", TABLES, ENUMS, alembic_config,
                 "public.alembic_version", "app.adoption",
                 "supabase_migrations.schema_migrations")


def timeseries_plane() -> Plane:
    from nxt_cli.migrate import timeseries_alembic_config
    from timeseries.migrations.baseline import TABLES

    return Plane("time-series", "ts0001", TABLES, {}, timeseries_alembic_config,
                 "ts.alembic_version", "ts.adoption", "public.migrations")


@dataclass
class TableChange:
    table: str
    before: int
    after: int
    checksum_changed: bool
    why: str


@dataclass
class PlaneReport:
    plane: str
    database: str  # password hidden
    status: str  # adopted | already adopted | planned (nothing changed) | refused
    recognised: str
    legacy_migration: str | None = None
    stamped: str | None = None
    applied: list[str] = field(default_factory=list)
    planned: list[str] = field(default_factory=list)
    problems: list[str] = field(default_factory=list)
    legacy_only: list[str] = field(default_factory=list)
    tables: int = 0
    rows_before: dict[str, int] = field(default_factory=dict)
    rows_after: dict[str, int] = field(default_factory=dict)
    changes: list[TableChange] = field(default_factory=list)
    added: list[str] = field(default_factory=list)
    removed: list[str] = field(default_factory=list)
    keys_hashed: int | None = None
    checksums: bool = True
    retries: list[str] = field(default_factory=list)

    def as_dict(self) -> dict[str, Any]:
        return asdict(self)


def connect(url: str) -> psycopg.Connection[Any]:
    """An autocommit connection to `url` read as alembic's SQLAlchemy engine reads it (so both
    reach the same database the same way, and libpq never quotes a malformed part of the URL,
    often the password, back in an error)."""
    from sqlalchemy.engine import make_url

    parts = make_url(url)
    params = {"host": parts.host, "port": parts.port, "user": parts.username,
              "password": parts.password, "dbname": parts.database, **parts.query}
    return psycopg.connect(**{k: v for k, v in params.items() if v is not None},
                           autocommit=True)


def _with_lock_timeout(url: str) -> str:
    parts = urlsplit(url)
    query = dict(parse_qsl(parts.query))
    query["options"] = (query.get("options", "") + f" -c lock_timeout={LOCK_TIMEOUT}").strip()
    return urlunsplit(parts._replace(query=urlencode(query)))


def _scalar(conn: psycopg.Connection[Any], query: str) -> Any:
    row = conn.execute(query).fetchone()
    return None if row is None else row[0]


def _exists(conn: psycopg.Connection[Any], qualified: str) -> bool:
    return bool(_scalar(conn, f"select to_regclass('{qualified}') is not null"))


def _has_rows(conn: psycopg.Connection[Any], qualified: str) -> bool:
    return _exists(conn, qualified) and bool(
        _scalar(conn, f"select exists (select from {qualified})"))


def recognise(conn: psycopg.Connection[Any], plane: Plane) -> tuple[str, str | None]:
    """(what the database is to this plane, its alembic revision)."""
    revision = None
    if _exists(conn, plane.version_table):
        revision = _scalar(conn, f"select version_num from {plane.version_table}")
    legacy = _has_rows(conn, plane.legacy_record)
    if revision is not None:
        if _has_rows(conn, plane.record_table):
            return ADOPTED, revision
        # Stamped (or part-migrated) by an adoption that stopped before its record.
        return (IN_PROGRESS if legacy else OURS), revision
    if legacy:
        return LEGACY, None
    if any(_exists(conn, f"public.{t.name}") for t in plane.tables):
        # Built by something else: the baseline check decides whether it can be adopted.
        return LEGACY, None
    return EMPTY, None


def is_unadopted_legacy(url: str, plane: Plane) -> bool:
    with connect(url) as conn:
        return recognise(conn, plane)[0] in (LEGACY, IN_PROGRESS)


def _newest_legacy_migration(conn: psycopg.Connection[Any], plane: Plane) -> str | None:
    if plane.name == "transactional":
        return _scalar(conn, "select max(version) from supabase_migrations.schema_migrations")
    if _exists(conn, "public.migrations"):  # TypeORM's record of the legacy time-series
        return _scalar(conn, "select name from public.migrations order by id desc limit 1")
    return None


def _pending(plane: Plane, url: str, after: str) -> list[str]:
    script = ScriptDirectory.from_config(plane.config(url))
    revisions = list(script.iterate_revisions("head", after))
    return [f"{r.revision} {(r.doc or '').splitlines()[0]}" for r in reversed(revisions)]


def adopt(url: str, plane: Plane, *, apply: bool, checksums: bool = True,
          operator_organization_id: int | None = None) -> PlaneReport:
    """Adopt the plane's database at `url` (or, without `apply`, say what adopting would do)."""
    with connect(url) as conn:
        kind, revision = recognise(conn, plane)
        report = PlaneReport(plane.name, display_url(url), "refused", kind,
                             checksums=checksums)
        if kind == ADOPTED:
            report.status = "already adopted"
            report.planned = _pending(plane, url, revision) if revision else []
            return report
        if kind in (OURS, EMPTY):
            raise NotAdoptable(
                f"{plane.name} plane: not a legacy database ("
                + ("it was built by this project's migrations; use `nxt db migrate`"
                   if kind == OURS else "it is empty; use `nxt db migrate`") + ")")
        report.legacy_migration = _newest_legacy_migration(conn, plane)
        comparison: Comparison = compare_baseline(conn, plane.tables, plane.enums)
        report.problems = [str(f) for f in comparison.problems]
        report.legacy_only = [str(f) for f in comparison.legacy_only]
        if not comparison.matches:
            raise NotAdoptable(
                f"{plane.name} plane: the database does not hold the baseline exactly; nothing"
                " was changed", report.problems)
        # Activity is read before counting and after counting again, so that whatever other
        # sessions write while the tables are counted is in the difference that explains it.
        activity_before = census.activity(conn)
        columns = census.table_columns(conn)
        before = census.table_states(conn, columns, checksums=checksums)
        objects_before = census.objects(conn)
        report.tables = len(before)
        report.rows_before = {t: s.count for t, s in before.items()}
        report.planned = _pending(plane, url, revision or plane.baseline)
        if not apply:
            report.status = "planned (nothing changed)"
            return report

    config = plane.config(_with_lock_timeout(url))
    if kind == LEGACY:
        command.stamp(config, plane.baseline)
        report.stamped = plane.baseline
    report.retries = _upgrade(config)
    report.applied = report.planned
    report.planned = []

    with connect(url) as conn:
        if plane.name == "transactional" and operator_organization_id is not None:
            conn.execute("update app.settings set operator_organization_id = %s",
                         (operator_organization_id,))
        after = census.table_states(conn, columns, checksums=checksums)
        objects_after = census.objects(conn)
        activity_after = census.activity(conn)
        report.rows_after = {t: s.count for t, s in after.items()}
        report.changes = _changes(before, after, activity_before, activity_after)
        report.added = sorted(objects_after - objects_before)
        report.removed = sorted(objects_before - objects_after)
        if plane.name == "transactional":
            report.keys_hashed = _scalar(
                conn, "select count(*) from public.api_keys where key_hash is not null")
        report.status = "adopted"
        _record(conn, plane, report)
    return report


RETRIES = 6


def _upgrade(config: Config) -> list[str]:
    """Apply every pending revision, retrying the one that loses a deadlock to a legacy writer
    or cannot get its lock within the lock timeout; returns why it retried. Each revision
    commits on its own, so a retry goes on from the one that failed."""
    import random
    import time

    from sqlalchemy.exc import DBAPIError

    retries = []
    for attempt in range(RETRIES):
        try:
            command.upgrade(config, "head")
            return retries
        except DBAPIError as exc:
            transient = isinstance(exc.orig, psycopg.errors.DeadlockDetected
                                   | psycopg.errors.LockNotAvailable)
            if not transient or attempt == RETRIES - 1:
                raise
            retries.append(f"{type(exc.orig).__name__}: {str(exc.orig).splitlines()[0]}")
            time.sleep(0.2 * 2 ** attempt * (1 + random.random()))
    return retries


def _changes(before: dict[str, census.TableState], after: dict[str, census.TableState],
             activity_before: dict[str, tuple[int, int, int]],
             activity_after: dict[str, tuple[int, int, int]]) -> list[TableChange]:
    """Tables whose rows differ after adoption, each with what explains it."""
    out = []
    for table, was in before.items():
        now = after[table]
        if now.count == was.count and now.checksum == was.checksum:
            continue
        ins, upd, dele = (a - b for a, b in zip(activity_after.get(table, (0, 0, 0)),
                                                activity_before.get(table, (0, 0, 0)),
                                                strict=True))
        why = (f"written by other sessions while adopting: {ins} inserted, {upd} updated,"
               f" {dele} deleted" if ins or upd or dele else "unexplained")
        out.append(TableChange(table, was.count, now.count, now.checksum != was.checksum, why))
    return out


def _record(conn: psycopg.Connection[Any], plane: Plane, report: PlaneReport) -> None:
    import json

    summary = {k: v for k, v in report.as_dict().items()
               if k in ("stamped", "applied", "tables", "rows_before", "rows_after", "changes",
                        "keys_hashed", "legacy_migration")}
    conn.execute(
        f"insert into {plane.record_table} (baseline, legacy_migration, report)"
        " values (%s, %s, %s)", (plane.baseline, report.legacy_migration, json.dumps(summary)))


def finish_keys(url: str, *, apply: bool) -> tuple[int, bool]:
    """Remove the legacy plaintext of every hashed API key; (keys, applied)."""
    with connect(url) as conn:
        kind, _ = recognise(conn, transactional_plane())
        if kind != ADOPTED:
            raise NotAdoptable("--finish-keys: adopt the database first (`nxt db adopt`)")
        unhashed = _scalar(conn, "select count(*) from public.api_keys where key is not null"
                                 " and key_hash is distinct from sha256(convert_to(key, 'UTF8'))")
        if unhashed:
            raise NotAdoptable(f"--finish-keys: {unhashed} keys are not hashed yet; nothing"
                               " was changed")
        keys = _scalar(conn, "select count(*) from public.api_keys where key is not null")
        if not apply:
            return keys, False
        with conn.transaction():
            conn.execute("update app.settings set plaintext_api_keys_retired_at = now()")
            conn.execute("update public.api_keys set key = null where key is not null")
    return keys, True


def render(report: PlaneReport) -> str:
    """The report for a person: what was found, done and added, and every table's rows."""
    lines = [f"{report.plane} plane ({report.database}): {report.status}"
             f" [recognised: {report.recognised}]"]
    if report.legacy_migration:
        lines.append(f"  newest legacy migration: {report.legacy_migration}")
    if report.problems:
        lines.append("  the baseline is not there as declared:")
        lines += [f"    {p}" for p in report.problems]
    if report.legacy_only:
        lines.append(f"  legacy-only, left alone: {len(report.legacy_only)} findings")
        lines += [f"    {p}" for p in report.legacy_only]
    if report.stamped:
        lines.append(f"  stamped baseline {report.stamped} (not run: the legacy built it)")
    for title, revisions in (("applied", report.applied), ("would apply", report.planned)):
        if revisions:
            lines.append(f"  {title}:")
            lines += [f"    {r}" for r in revisions]
    if report.retries:
        lines.append(f"  retried {len(report.retries)} times (the legacy writers held locks):")
        lines += [f"    {r}" for r in report.retries]
    if report.keys_hashed is not None:
        lines.append(f"  API keys hashed: {report.keys_hashed}")
    if report.added:
        lines.append(f"  added ({len(report.added)}):")
        lines += [f"    {a}" for a in report.added]
    if report.removed:
        lines.append(f"  REMOVED ({len(report.removed)}):")
        lines += [f"    {r}" for r in report.removed]
    if report.rows_before:
        what = "rows and checksums" if report.checksums else "rows (checksums skipped)"
        lines.append(f"  {report.tables} tables, {what}, before -> after:")
        changed = {c.table: c for c in report.changes}
        width = max(len(t) for t in report.rows_before)
        for table, count in report.rows_before.items():
            after = report.rows_after.get(table)
            if after is None:
                state = ""
            elif table in changed:
                c = changed[table]
                what = "rows" if c.checksum_changed else "count"
                state = f"{after:>9}  CHANGED ({what}): {c.why}"
            else:
                state = f"{after:>9}  unchanged"
            lines.append(f"    {table:<{width}}  {count:>9}  {state}")
    return "\n".join(lines)
