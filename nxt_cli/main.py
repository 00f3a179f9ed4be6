"""`nxt`: the project's command line (local database, migrations, demo data, dev stack)."""

from __future__ import annotations

import argparse
import os
import signal
import subprocess
import sys
import threading
from collections.abc import Sequence


def _migrate_timeseries(url: str) -> str | None:
    """Migrate the time-series plane that goes with `url`; returns its URL (None: it has none)."""
    from nxt_cli.dbcommands import say_migrated
    from nxt_cli.migrate import migrate_timeseries
    from nxt_cli.stack import timeseries_database_url

    ts_url = timeseries_database_url(url)
    if ts_url is None:
        print("time-series plane: skipped (DATABASE_URL is not local; set TIMESERIES_DATABASE_URL)")
        return None
    say_migrated("time-series", *migrate_timeseries(ts_url))
    return ts_url


def _cmd_db_adopt(args: argparse.Namespace) -> int:
    import json

    from nxt_cli.adopt import (
        NotAdoptable,
        adopt,
        finish_keys,
        render,
        timeseries_plane,
        transactional_plane,
    )
    from nxt_cli.migrate import is_local
    from nxt_cli.stack import database_url, timeseries_database_url
    from shared.settings import get_settings

    with database_url() as url:
        # Adoption takes over what exists; it never creates a time-series database.
        ts_url = timeseries_database_url(url, create=False)
        remote = not all(is_local(u) for u in (url, ts_url) if u)
        apply = args.yes or not remote
        try:
            if args.finish_keys:
                keys, done = finish_keys(url, apply=apply)
                print(f"API keys: plaintext of {keys} keys " + ("removed" if done else
                      "would be removed; nothing changed: re-run with --yes"))
                return 0
            reports = [adopt(url, transactional_plane(), apply=apply,
                             checksums=not args.no_checksums,
                             operator_organization_id=get_settings().operator_organization_id)]
            if ts_url:
                reports.append(adopt(ts_url, timeseries_plane(), apply=apply,
                                     checksums=not args.no_checksums))
        except NotAdoptable as refused:
            print(f"nxt db adopt: {refused.message}", file=sys.stderr)
            for finding in refused.findings:
                print(f"  {finding}", file=sys.stderr)
            return 1
    if args.json:
        print(json.dumps([r.as_dict() for r in reports], indent=2, default=str))
    else:
        print("\n\n".join(render(r) for r in reports))
        if not ts_url:
            print("\ntime-series plane: skipped (set TIMESERIES_DATABASE_URL to adopt the"
                  " legacy time-series database too)")
        if not apply:
            print("\nnothing changed: the database is not local; re-run with --yes to adopt")
    lost = [c for r in reports for c in r.changes if c.why == "unexplained"] + [
        x for r in reports for x in r.removed]
    return 1 if lost else 0


def _cmd_db_reset(args: argparse.Namespace) -> int:
    from nxt_cli.migrate import refuse_remote, reset, reset_timeseries
    from nxt_cli.seed import seed
    from nxt_cli.stack import database_url, timeseries_database_url

    with database_url() as url:
        ts_url = timeseries_database_url(url)
        try:
            for target in (url, ts_url):  # both planes checked before either is touched
                if target:
                    refuse_remote(target)
            reset(url)
            print("transactional plane: dropped and re-applied every revision")
            if ts_url:
                reset_timeseries(ts_url)
                print("time-series plane: dropped and re-applied every revision")
        except PermissionError as exc:
            print(f"nxt db reset: {exc}", file=sys.stderr)
            return 1
        if args.seed:
            _print_seed(seed(url))
    return 0


def _print_seed(result: object) -> None:
    from nxt_cli.seed import SeedResult

    assert isinstance(result, SeedResult)
    if result.skipped:
        print("demo data: already loaded (use `nxt db seed --force` to wipe and reload)")
        return
    print(
        f"demo data: {result.organizations} organizations, {result.grids} grids,"
        f" {result.customers} customers and meters, {result.orders} orders"
    )
    for org, key in result.api_keys:
        # Printed once: only the hash is stored.
        print(f"  API key for {org}: {key}")
    if result.api_keys:
        print("  (API keys are shown only now; they are stored as hashes)")


def _cmd_db_seed(args: argparse.Namespace) -> int:
    from nxt_cli.migrate import migrate
    from nxt_cli.seed import seed
    from nxt_cli.stack import database_url

    with database_url() as url:
        migrate(url)
        _print_seed(seed(url, force=args.force))
    return 0


def _cmd_db_start(args: argparse.Namespace) -> int:
    from nxt_cli.stack import local_database

    db = local_database().start()
    print(db.url)
    return 0


def _cmd_db_stop(args: argparse.Namespace) -> int:
    from nxt_cli.stack import local_database

    local_database().stop()
    print("local database stopped")
    return 0


def _cmd_token(args: argparse.Namespace) -> int:
    from nxt_cli.localkeys import local_jwt_secret
    from nxt_cli.seed import demo_user_id
    from nxt_cli.tokens import mint_token

    secret = local_jwt_secret()
    if args.role in ("anon", "service_role"):
        token = mint_token(secret, role=args.role, audience=None, expires_in=args.expires_in)
    else:
        sub = args.sub
        if sub is None and args.org is not None:
            try:
                sub = demo_user_id(args.org)
            except KeyError:
                print(f"nxt token: organization {args.org} has no demo user; pass --sub",
                      file=sys.stderr)
                return 2
        org_type = args.org_type
        if org_type is None and args.org is not None:
            from nxt_cli.seed import ORGANIZATIONS

            org_type = next((t for i, _, t, _ in ORGANIZATIONS if i == args.org), None)
        token = mint_token(secret, role="authenticated", sub=sub, organization_id=args.org,
                           organization_type=org_type, expires_in=args.expires_in)
    print(token)
    return 0


def _cmd_dev(args: argparse.Namespace) -> int:
    from nxt_cli.migrate import migrate
    from nxt_cli.seed import seed
    from nxt_cli.stack import database_url, display_url

    stop = threading.Event()
    for sig in (signal.SIGINT, signal.SIGTERM):
        signal.signal(sig, lambda *_: stop.set())
    with database_url() as url:
        if _refuse_remote_migrations(url):
            return 1
        before, after = migrate(url)
        print(f"transactional plane: revision {after}" +
              ("" if before == after else f" (migrated from {before or 'empty'})"))
        ts_url = _migrate_timeseries(url)
        _print_seed(seed(url))
        if ts_url:
            _seed_telemetry(url, ts_url)
        print(f"database: {display_url(url)}")
        if ts_url:
            print(f"time-series database: {display_url(ts_url)}")
        # Functions (reloaded on change), jobs on their schedules, keys: nxt_cli/emulator.py.
        from nxt_cli.config_lint import load_config
        from nxt_cli.emulator import run_dev
        from nxt_cli.stack import config_path, project_root

        run_dev(project_root(), database_url=url, timeseries_url=ts_url,
                port=args.port or load_config(config_path()).api_port, stop=stop,
                run_jobs_now=args.run_jobs_now)
    print("stopped.", flush=True)
    return 0


def _refuse_remote_migrations(url: str) -> bool:
    """`nxt dev` migrates its own databases; one elsewhere is migrated only deliberately."""
    from nxt_cli.migrate import (
        current_revision,
        head_revision,
        is_local,
        timeseries_current_revision,
        timeseries_head_revision,
    )
    from nxt_cli.stack import timeseries_database_url

    ts_url = timeseries_database_url(url, create=False)
    behind = [] if is_local(url) or current_revision(url) == head_revision() else ["transactional"]
    if ts_url and not is_local(ts_url) and (
            timeseries_current_revision(ts_url) != timeseries_head_revision()):
        behind.append("time-series")
    if behind:
        print(f"nxt dev: the {' and '.join(behind)} database is not on this machine and has"
              " pending revisions; `nxt dev` applies none there: run `nxt db plan`, then"
              " `nxt db migrate --yes`", file=sys.stderr)
    return bool(behind)


def _seed_telemetry(url: str, ts_url: str) -> None:
    """Demo readings on first start, and the snapshots built from them, so meter-consumption
    answers real figures at once."""
    from nxt_cli.telemetry import seed_telemetry

    days = int(os.environ.get("NXT_DEMO_TELEMETRY_DAYS", "14"))
    result = seed_telemetry(url, ts_url, days=days)
    if result.skipped:
        print("telemetry: already loaded")
        return
    print(f"telemetry: {result.readings} readings from {result.meters} meters over {days} days"
          f" ({result.resets} counter resets, {result.gaps} gaps, {result.late} late backlogs)",
          flush=True)
    env = {**os.environ, "DATABASE_URL": url, "TIMESERIES_DATABASE_URL": ts_url}
    for job in ("snapshot-meters", "sync-orders", "grid-daily"):
        command = [sys.executable, "-m", "nxt_cli.main", "invoke", job]
        done = subprocess.run(command, env=env, capture_output=True, text=True)  # noqa: S603
        if done.returncode != 0:
            raise SystemExit(f"{job} failed while building the demo snapshots:\n{done.stderr}")
        print(f"{job}: {done.stdout.strip()}", flush=True)


def build_gateway(root: object = None) -> tuple[object, list[str]]:
    """Load every enabled function of the checkout behind one local gateway app."""
    from pathlib import Path

    from nxt_cli.config_lint import load_config
    from nxt_cli.console import app as console
    from nxt_cli.console.requests import RequestLog, recording
    from nxt_cli.functions import function_sources, load
    from nxt_cli.gateway import Gateway, ServiceRoleOnly
    from nxt_cli.stack import config_path, project_root

    base = Path(str(root)) if root else project_root()
    config = load_config(config_path(base))
    os.environ.setdefault("NXT_SUPABASE_CONFIG", str(config.path))
    requests = RequestLog()
    apps = {}
    # Aliases (a table whose entrypoint is another function's main.py) are served too.
    for name, source in function_sources(base, config).items():
        if name not in config.function_names():
            print(f"warning: functions/{name} has no [functions.{name}] in config.toml;"
                  " not served (run `nxt check`)", file=sys.stderr)
            continue
        if not config.function(name).enabled:
            continue
        loaded = load(source, name)
        # A job (a CloudEvent target) runs here for the service role only (finding 8).
        is_job = getattr(getattr(loaded.module, loaded.target, None), "__nxt_schedule__", None)
        app = ServiceRoleOnly(loaded.app) if is_job else loaded.app
        apps[name] = recording(app, requests, name)  # the console's "last requests"
    return Gateway(apps, console=console.build(base, requests)), sorted(apps)


def _cmd_serve(args: argparse.Namespace) -> int:
    import uvicorn

    from nxt_cli.config_lint import load_config
    from nxt_cli.stack import config_path

    if not os.environ.get("DATABASE_URL"):
        print("nxt serve: DATABASE_URL is not set (`nxt dev` sets it for you)", file=sys.stderr)
        return 2
    from nxt_cli.localkeys import local_jwt_secret

    local_jwt_secret()  # the functions served here verify with the local stack's secret
    port = args.port or load_config(config_path()).api_port
    app, names = build_gateway()
    if not args.quiet:
        print(f"serving {', '.join(names)} at http://{args.host}:{port}/functions/v1/<name>",
              flush=True)
    uvicorn.run(app, host=args.host, port=port, log_level="warning", lifespan="on")  # type: ignore[arg-type]
    return 0


def _cmd_openapi(args: argparse.Namespace) -> int:
    from nxt_cli.openapi import sync
    from nxt_cli.stack import project_root

    paths = sync(project_root(), check=args.check)
    if args.check and paths:
        for path in paths:
            print(f"{path}: stale; run `nxt openapi` and commit the result", file=sys.stderr)
        return 1
    for path in paths:
        print(f"wrote {path}")
    return 0


def _cmd_invoke(args: argparse.Namespace) -> int:
    import json

    from nxt_cli.invoke import invoke
    from nxt_cli.stack import database_url, project_root, timeseries_database_url
    from shared.shards import InvalidPayload
    from shared.web.responses import to_json

    try:
        payload = json.loads(args.payload) if args.payload else None
    except ValueError as exc:
        print(f"nxt invoke: --payload is not JSON: {exc}", file=sys.stderr)
        return 2
    if payload is not None and not isinstance(payload, dict):
        print(f"nxt invoke: --payload must be a JSON object, got {args.payload}",
              file=sys.stderr)
        return 2
    with database_url() as url:
        os.environ["DATABASE_URL"] = url
        ts_url = timeseries_database_url(url)
        if ts_url:
            os.environ["TIMESERIES_DATABASE_URL"] = ts_url
        try:
            result = invoke(project_root(), args.name, payload)
        except (LookupError, InvalidPayload) as exc:
            print(f"nxt invoke: {exc}", file=sys.stderr)
            return 2
    print(to_json(result))
    return 0


def _cmd_backfill(args: argparse.Namespace) -> int:
    import asyncio

    from nxt_cli.backfill import backfill, parse_hour
    from nxt_cli.stack import database_url, project_root, timeseries_database_url
    from shared.web.responses import to_json

    lo, hi = parse_hour(args.from_, "from"), parse_hour(args.to, "to")
    if hi <= lo:
        print("nxt backfill: --to must be after --from", file=sys.stderr)
        return 2
    with database_url() as url:
        os.environ["DATABASE_URL"] = url
        ts_url = timeseries_database_url(url)
        if not ts_url:
            print("nxt backfill: set TIMESERIES_DATABASE_URL", file=sys.stderr)
            return 2
        os.environ["TIMESERIES_DATABASE_URL"] = ts_url
        try:
            result = asyncio.run(backfill(project_root(), ts_url, lo, hi))
        except KeyboardInterrupt:
            print("\ninterrupted: finished days are kept; run the same command to resume",
                  file=sys.stderr)
            return 130
        except RuntimeError as exc:
            print(f"nxt backfill: {exc}", file=sys.stderr)
            return 1
    print(to_json(result))
    return 0


def _cmd_bundle(args: argparse.Namespace) -> int:
    from nxt_cli.bundle import run
    from nxt_cli.stack import project_root

    return run(project_root(), args)


def _cmd_deploy(args: argparse.Namespace) -> int:
    from nxt_cli.deploy import run
    from nxt_cli.stack import project_root

    return run(project_root(), args)


def _cmd_check(args: argparse.Namespace) -> int:
    from nxt_cli.check import run

    return run(config=args.config, functions_dir=args.functions_dir, as_json=args.json)


def build_parser() -> argparse.ArgumentParser:
    from nxt_cli import dbcommands

    parser = argparse.ArgumentParser(prog="nxt", description=__doc__)
    sub = parser.add_subparsers(dest="command", required=True)

    db = sub.add_parser("db", help="the databases of both planes: schema changes, adoption,"
                        " demo data").add_subparsers(dest="db_command", required=True)
    dbcommands.register(db)
    p = db.add_parser("adopt", help="take over a legacy database in place (both planes):"
                      " check the baseline, stamp it, apply the later revisions, report")
    p.add_argument("--yes", action="store_true",
                   help="apply to a database that is not local (without it: the plan only)")
    p.add_argument("--finish-keys", action="store_true",
                   help="remove the legacy plaintext of every hashed API key (once no legacy"
                   " reader needs it)")
    p.add_argument("--no-checksums", action="store_true",
                   help="count rows but skip the checksums (they read every row once)")
    p.add_argument("--json", action="store_true", help="print the reports as JSON")
    p.set_defaults(func=_cmd_db_adopt)
    p = db.add_parser("reset", help="drop and re-apply every migration (local databases only;"
                      " never an adopted one)")
    p.add_argument("--seed", action="store_true", help="load the demo data afterwards")
    p.set_defaults(func=_cmd_db_reset)
    p = db.add_parser("seed", help="load the deterministic demo data")
    p.add_argument("--force", action="store_true", help="wipe existing data first")
    p.set_defaults(func=_cmd_db_seed)
    db.add_parser("start", help="start the embedded database and leave it running"
                  ).set_defaults(func=_cmd_db_start)
    db.add_parser("stop", help="stop the embedded database").set_defaults(func=_cmd_db_stop)

    p = sub.add_parser("token", help="mint a JWT signed with the local secret")
    p.add_argument("--role", default="authenticated",
                   choices=("anon", "authenticated", "service_role"))
    p.add_argument("--org", type=int, help="organization id (a demo user of it is the subject)")
    p.add_argument("--org-type", help="organization type claim (default: from the demo data)")
    p.add_argument("--sub", help="subject (Supabase user id)")
    p.add_argument("--expires-in", type=int, default=3600, help="seconds")
    p.set_defaults(func=_cmd_token)

    p = sub.add_parser("serve", help="serve the functions against DATABASE_URL (no database"
                       " management; `nxt dev` runs this for you)")
    p.add_argument("--host", default="127.0.0.1")
    p.add_argument("--port", type=int, default=None, help="default: [api] port of config.toml")
    p.add_argument("--quiet", action="store_true",
                   help="no banner (`nxt dev` prints its own, once, not on every reload)")
    p.set_defaults(func=_cmd_serve)

    p = sub.add_parser("dev", help="start the local stack: database, migrations, demo data,"
                       " and every function at http://127.0.0.1:<[api] port>/functions/v1/")
    p.add_argument("--port", type=int, default=None, help="default: [api] port of config.toml")
    p.add_argument("--run-jobs-now", action="store_true",
                   help="run every scheduled job once at start, then on its schedule")
    p.set_defaults(func=_cmd_dev)

    p = sub.add_parser("openapi", help="write each HTTP function's OpenAPI document to"
                       " docs/openapi/<name>.json")
    p.add_argument("--check", action="store_true",
                   help="write nothing; exit 1 when a checked-in document is stale")
    p.set_defaults(func=_cmd_openapi)

    p = sub.add_parser("backfill", help="rebuild snapshots of a time range (resumable)")
    p.add_argument("what", choices=("snapshots",))
    p.add_argument("--from", dest="from_", required=True, help="ISO 8601 start (UTC if no zone)")
    p.add_argument("--to", required=True, help="ISO 8601 end, exclusive")
    p.set_defaults(func=_cmd_backfill)

    p = sub.add_parser("invoke", help="run a scheduled job now and print its result")
    p.add_argument("name", help="the job, e.g. snapshot-meters")
    p.add_argument("--payload", help="the JSON its Cloud Scheduler job would publish, e.g."
                   ' \'{"shard": 0, "shards": 2}\' (snapshot-meters: one shard)')
    p.set_defaults(func=_cmd_invoke)

    p = sub.add_parser("check", help="check that supabase/config.toml and functions/ agree"
                       " (exit 1 when they disagree, 2 when the config cannot be read)")
    p.add_argument("--config", help="default: the project's supabase/config.toml")
    p.add_argument("--functions-dir", help="default: the project's functions/")
    p.add_argument("--json", action="store_true", help="print one JSON object instead")
    p.set_defaults(func=_cmd_check)

    p = sub.add_parser("bundle", help="write dist/<name>/ and dist/<name>.zip: one function,"
                       " self-contained and deployable")
    p.add_argument("name", nargs="?", help="the function, e.g. customers")
    p.add_argument("--all", action="store_true", help="every enabled function")
    p.add_argument("--out", help="output directory (default: dist/ of the checkout)")
    p.set_defaults(func=_cmd_bundle)

    p = sub.add_parser("deploy", help="bundle and deploy every enabled function with gcloud")
    p.add_argument("--dry-run", action="store_true", help="print the commands, run nothing")
    p.add_argument("--region", help="default: $NXT_DEPLOY_REGION, else europe-west1")
    p.add_argument("--out", help="bundle directory (default: dist/ of the checkout)")
    p.set_defaults(func=_cmd_deploy)
    return parser


def main(argv: Sequence[str] | None = None) -> int:
    args = build_parser().parse_args(argv)
    os.environ.setdefault("PYTHONUNBUFFERED", "1")
    return int(args.func(args))


if __name__ == "__main__":
    sys.exit(main())
