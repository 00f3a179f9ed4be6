"""The schema change flow of `nxt db`: new, status, plan, changelog, and a deliberate migrate.

Applying revisions to a database that is not on this machine is a deliberate step, never a
side effect: `nxt db migrate` prints the plan there and applies nothing without `--yes`.
"""

from __future__ import annotations

import argparse
import json
import os
import sys
from pathlib import Path

PLANE_CHOICES = ("transactional", "timeseries", "both")
ENGINE_CHOICES = ("timescaledb", "native")
CHANGELOG = Path(__file__).resolve().parent.parent / "migrations" / "CHANGELOG.md"


def cmd_new(args: argparse.Namespace) -> int:
    from nxt_cli.revisions import new_revisions
    from nxt_cli.stack import project_root

    try:
        paths = new_revisions(args.message, args.plane)
    except ValueError as exc:
        print(f"nxt db new: {exc}", file=sys.stderr)
        return 1
    for path in paths:
        print(f"wrote {path.relative_to(project_root())}")
    if args.plane != "transactional":
        print("fill in RETENTION and BACKFILL of the time-series revision: `nxt check` fails"
              " until they say something")
    print("then `nxt db changelog` (make lint checks it is current)")
    return 0


def cmd_status(args: argparse.Namespace) -> int:
    from nxt_cli.stack import database_url, existing_timeseries_url
    from nxt_cli.status import exit_code, status

    with database_url() as url:
        planes = status(url, existing_timeseries_url(url))
    if args.json:
        print(json.dumps([p.as_dict() for p in planes], indent=2))
    else:
        print("\n".join(line for p in planes for line in p.lines()))
    return exit_code(planes)


def cmd_plan(args: argparse.Namespace) -> int:
    from nxt_cli.plan import exit_code, plan
    from nxt_cli.stack import database_url, existing_timeseries_url

    with database_url() as url:
        plans = plan(url, existing_timeseries_url(url), engine=args.engine)
    if args.json:
        print(json.dumps([p.as_dict() for p in plans], indent=2))
    else:
        print("\n".join(p.text() for p in plans), end="")
    return exit_code(plans)


def cmd_changelog(args: argparse.Namespace) -> int:
    from nxt_cli.revisions import changelog

    text = changelog()
    if args.check:
        current = CHANGELOG.read_text() if CHANGELOG.exists() else ""
        if current != text:
            print(f"{CHANGELOG.relative_to(CHANGELOG.parent.parent)} is stale: run"
                  " `nxt db changelog` and commit it", file=sys.stderr)
            return 1
        print("migrations/CHANGELOG.md is current")
        return 0
    CHANGELOG.write_text(text)
    print("wrote migrations/CHANGELOG.md")
    return 0


def cmd_migrate(args: argparse.Namespace) -> int:
    from nxt_cli.migrate import LegacyDatabase, is_local, migrate, migrate_timeseries
    from nxt_cli.stack import database_url, timeseries_database_url, url_problem

    with database_url() as url:
        problems = [f"{name}: {problem}" for name, value in (
            ("DATABASE_URL", url), ("TIMESERIES_DATABASE_URL", os.environ.get(
                "TIMESERIES_DATABASE_URL", ""))) if value and (problem := url_problem(value))]
        if problems:
            print("nxt db migrate: " + "; ".join(problems) + "; nothing was changed",
                  file=sys.stderr)
            return 2
        ts_url = timeseries_database_url(url)  # created here when local and missing
        remote = not all(is_local(u) for u in (url, ts_url) if u)
        if remote and not args.yes:
            return _plan_only(url, ts_url)
        if not args.backup_done and not _backed_up(url, ts_url, Path(args.backup_dir)):
            return 1
        try:
            before, after = migrate(url)
            say_migrated("transactional", before, after)
            if ts_url is None:
                print("time-series plane: skipped (DATABASE_URL is not local; set"
                      " TIMESERIES_DATABASE_URL)")
            else:
                say_migrated("time-series", *migrate_timeseries(ts_url))
        except LegacyDatabase as refused:
            print(f"nxt db migrate: {refused}", file=sys.stderr)
            return 1
    return 0


def say_migrated(plane: str, before: str | None, after: str | None) -> None:
    if before == after:
        print(f"{plane} plane: up to date at revision {after}")
    else:
        print(f"{plane} plane: migrated {before or 'empty'} -> {after}")


def _backed_up(url: str, ts_url: str | None, directory: Path) -> bool:
    """A pg_dump of every table a pending destructive revision touches, before it runs."""
    from nxt_cli.destructive import BackupFailed, checkpoint
    from nxt_cli.plan import plan

    for planned in plan(url, ts_url):
        tables = planned.touched()
        if not tables:
            continue
        target = ts_url if planned.status.plane == "timeseries" else url
        assert target is not None
        revisions = "+".join(r.revision.id for r in planned.revisions if r.destructions)
        try:
            path = checkpoint(target, tables, directory, revisions)
        except BackupFailed as exc:
            print(f"nxt db migrate: revision {revisions} is destructive and the backup of"
                  f" {', '.join(tables)} failed: {exc}; nothing was applied. Take a backup"
                  " (or a PITR checkpoint) and re-run with --backup-done", file=sys.stderr)
            return False
        if path is not None:
            print(f"backup before the destructive revision {revisions}: {path}"
                  f" ({', '.join(tables)})")
    return True


def _plan_only(url: str, ts_url: str | None) -> int:
    from nxt_cli.plan import plan

    plans = plan(url, ts_url)
    print("\n".join(p.text() for p in plans), end="")
    if any(p.revisions or p.refused for p in plans):
        print("\nnothing applied: the database is not on this machine; read the plan, take a"
              " backup, then re-run `nxt db migrate --yes`", file=sys.stderr)
        return 1
    return 0


def cmd_diff(args: argparse.Namespace) -> int:
    from contextlib import ExitStack

    from nxt_cli.drift import TIMESERIES, TRANSACTIONAL, diff_plane, exit_code
    from nxt_cli.migrate import is_local
    from nxt_cli.stack import database_url, existing_timeseries_url, local_database

    with database_url() as url, ExitStack() as stack:
        ts_url = existing_timeseries_url(url)

        def scratch_server(target: str | None) -> str:
            # The scratch database goes where it is cheap and harmless: --scratch, else the
            # target's own server when it is this machine's, else the embedded server.
            if args.scratch:
                return str(args.scratch)
            if target and is_local(target):
                return target
            db = local_database().start()
            if db.started_here:
                stack.callback(db.stop)
            return db.url

        diffs = [diff_plane(url, TRANSACTIONAL, lambda: scratch_server(url)),
                 diff_plane(ts_url, TIMESERIES, lambda: scratch_server(ts_url))]
    if args.json:
        print(json.dumps([d.as_dict() for d in diffs], indent=2))
    else:
        print("\n".join(line for d in diffs for line in d.lines()))
    return exit_code(diffs)


def cmd_reconcile(args: argparse.Namespace) -> int:
    from nxt_cli.stack import database_url, existing_timeseries_url, url_problem
    from timeseries.reconcile import UNREACHABLE, reconcile

    with database_url() as url:
        ts_url = existing_timeseries_url(url)
        if ts_url is None:
            print("nxt db reconcile: no time-series database (set TIMESERIES_DATABASE_URL)",
                  file=sys.stderr)
            return UNREACHABLE
        for name, value in (("DATABASE_URL", url), ("TIMESERIES_DATABASE_URL", ts_url)):
            if (problem := url_problem(value)) is not None:
                print(f"nxt db reconcile: {name}: {problem}", file=sys.stderr)
                return UNREACHABLE
        report = reconcile(url, ts_url, days=args.days)
    if args.json:
        print(json.dumps(report.as_dict(), indent=2))
    else:
        print("\n".join(report.lines()))
    return report.exit_code


def cmd_lint(args: argparse.Namespace) -> int:
    from nxt_cli.lint import run

    return run(as_json=args.json)


def register(db: argparse._SubParsersAction) -> None:  # type: ignore[type-arg]
    p = db.add_parser("migrate", help="apply pending revisions of both planes (a no-op when up"
                      " to date; on a database that is not local, the plan unless --yes)")
    p.add_argument("--yes", action="store_true",
                   help="apply to a database that is not on this machine")
    p.add_argument("--backup-done", action="store_true",
                   help="a backup or PITR checkpoint exists: no pg_dump before a destructive"
                   " revision")
    p.add_argument("--backup-dir", default="backups",
                   help="where the pg_dump before a destructive revision goes (default:"
                   " ./backups)")
    p.set_defaults(func=cmd_migrate)
    p = db.add_parser("new", help="write a revision from the template, in the owning path")
    p.add_argument("message", help="what the change does (the revision's first line)")
    p.add_argument("--plane", required=True, choices=PLANE_CHOICES,
                   help="both: one revision per plane, each naming the other")
    p.set_defaults(func=cmd_new)
    p = db.add_parser("status", help="per plane: database, engine, adopted or fresh, revision,"
                      " pending (exit 0 up to date, 1 pending, 2 unreachable)")
    p.add_argument("--json", action="store_true", help="print one JSON array instead")
    p.set_defaults(func=cmd_status)
    p = db.add_parser("plan", help="the SQL each pending revision would run, changing nothing"
                      " (exit 0 complete, 1 incomplete, 2 unreachable)")
    p.add_argument("--engine", choices=ENGINE_CHOICES,
                   help="the time-series target's engine (default: the one it recorded)")
    p.add_argument("--json", action="store_true", help="print one JSON array instead")
    p.set_defaults(func=cmd_plan)
    p = db.add_parser("diff", help="drift between the live databases and what the migrations"
                      " make (exit 0 none, 1 drift, 2 unreachable)")
    p.add_argument("--scratch", metavar="URL",
                   help="a server on which to build the scratch databases (default: the"
                   " target's when local, else the embedded one)")
    p.add_argument("--json", action="store_true", help="print one JSON array instead")
    p.set_defaults(func=cmd_diff)
    p = db.add_parser("reconcile", help="where the planes meet: unknown meters and grids, order"
                      " snapshots, wallet ledgers, snapshot dimensions (exit 0 agree, 1 not,"
                      " 2 unreachable)")
    p.add_argument("--days", type=int, default=30,
                   help="how far back to read the time-series tables (default 30)")
    p.add_argument("--json", action="store_true", help="print one JSON object instead")
    p.set_defaults(func=cmd_reconcile)
    p = db.add_parser("lint", help="every revision's SQL through squawk, the migration linter"
                      " (exit 0 clean, 1 findings, 2 squawk missing)")
    p.add_argument("--json", action="store_true", help="print one JSON object instead")
    p.set_defaults(func=cmd_lint)
    p = db.add_parser("changelog", help="write migrations/CHANGELOG.md from the revisions")
    p.add_argument("--check", action="store_true",
                   help="write nothing; exit 1 when the file is stale")
    p.set_defaults(func=cmd_changelog)
