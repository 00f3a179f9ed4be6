"""`nxt`: the project's command line (local database, migrations, demo data, dev stack)."""

from __future__ import annotations

import argparse
import os
import signal
import subprocess
import sys
import threading
from collections.abc import Sequence


def _cmd_db_migrate(args: argparse.Namespace) -> int:
    from nxt_cli.migrate import migrate
    from nxt_cli.stack import database_url

    with database_url() as url:
        before, after = migrate(url)
    if before == after:
        print(f"transactional plane: up to date at revision {after}")
    else:
        print(f"transactional plane: migrated {before or 'empty'} -> {after}")
    return 0


def _cmd_db_reset(args: argparse.Namespace) -> int:
    from nxt_cli.migrate import reset
    from nxt_cli.seed import seed
    from nxt_cli.stack import database_url

    with database_url() as url:
        try:
            reset(url, force=args.force)
        except PermissionError as exc:
            print(f"nxt db reset: {exc}", file=sys.stderr)
            return 1
        print("transactional plane: dropped and re-applied every revision")
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
    from nxt_cli.seed import demo_user_id
    from shared.auth import mint_token
    from shared.credentials import resolve_jwt_secret
    from shared.settings import get_settings

    secret = resolve_jwt_secret(get_settings())
    if secret is None:
        print("nxt token: no JWT secret (set SUPABASE_JWT_SECRET)", file=sys.stderr)
        return 2
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
    from nxt_cli.stack import database_url

    stop = threading.Event()
    for sig in (signal.SIGINT, signal.SIGTERM):
        signal.signal(sig, lambda *_: stop.set())
    with database_url() as url:
        before, after = migrate(url)
        print(f"transactional plane: revision {after}" +
              ("" if before == after else f" (migrated from {before or 'empty'})"))
        _print_seed(seed(url))
        print(f"database: {_display_url(url)}")
        server = _start_functions(url, args.port)
        try:
            print("ready. Ctrl-C stops the stack.", flush=True)
            while not stop.wait(0.5):
                if server.poll() is not None:
                    print("the functions server exited; stopping", file=sys.stderr)
                    break
            print("stopping...", flush=True)
        finally:
            _stop_process(server)
    print("stopped.", flush=True)
    return 0


def _start_functions(database_url: str, port: int | None) -> subprocess.Popen[bytes]:
    """`nxt serve` as a child process, so a crash or a reload never takes the database down."""
    from nxt_cli.stack import config_path
    from shared.supabase_config import load_config

    port = port or load_config(config_path()).api_port
    env = {**os.environ, "DATABASE_URL": database_url}
    command = [sys.executable, "-m", "nxt_cli.main", "serve", "--port", str(port)]
    proc = subprocess.Popen(command, env=env)  # noqa: S603 (our own CLI, fixed arguments)
    _wait_for_port(port, proc)
    print(f"functions: http://127.0.0.1:{port}/functions/v1/<name>", flush=True)
    return proc


def _wait_for_port(port: int, proc: subprocess.Popen[bytes], timeout: float = 60) -> None:
    import socket
    import time

    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline and proc.poll() is None:
        with socket.socket() as sock:
            if sock.connect_ex(("127.0.0.1", port)) == 0:
                return
        time.sleep(0.1)
    _stop_process(proc)
    raise SystemExit(f"the functions server did not start on port {port}")


def _stop_process(proc: subprocess.Popen[bytes]) -> None:
    if proc.poll() is None:
        proc.terminate()
        try:
            proc.wait(timeout=15)
        except subprocess.TimeoutExpired:
            proc.kill()
            proc.wait()


def build_gateway(root: object = None) -> tuple[object, list[str]]:
    """Load every enabled function of the checkout behind one local gateway app."""
    from pathlib import Path

    from nxt_cli.functions import discover, load
    from nxt_cli.gateway import Gateway
    from nxt_cli.stack import config_path, project_root
    from shared.supabase_config import load_config

    base = Path(str(root)) if root else project_root()
    config = load_config(config_path(base))
    os.environ.setdefault("NXT_SUPABASE_CONFIG", str(config.path))
    apps = {}
    for name in discover(base):
        if name not in config.function_names():
            print(f"warning: functions/{name} has no [functions.{name}] in config.toml;"
                  " not served (run `nxt check`)", file=sys.stderr)
            continue
        if not config.function(name).enabled:
            continue
        apps[name] = load(base / "functions" / name / "main.py", name).app
    return Gateway(apps), sorted(apps)


def _cmd_serve(args: argparse.Namespace) -> int:
    import uvicorn

    from nxt_cli.stack import config_path
    from shared.supabase_config import load_config

    if not os.environ.get("DATABASE_URL"):
        print("nxt serve: DATABASE_URL is not set (`nxt dev` sets it for you)", file=sys.stderr)
        return 2
    port = args.port or load_config(config_path()).api_port
    app, names = build_gateway()
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


def _display_url(url: str) -> str:
    from urllib.parse import urlsplit, urlunsplit

    parts = urlsplit(url)
    if parts.password:
        netloc = parts.netloc.replace(f":{parts.password}@", ":***@")
        return urlunsplit(parts._replace(netloc=netloc))
    return url


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(prog="nxt", description=__doc__)
    sub = parser.add_subparsers(dest="command", required=True)

    db = sub.add_parser("db", help="the transactional database").add_subparsers(
        dest="db_command", required=True)
    db.add_parser("migrate", help="apply pending migrations (a no-op when up to date)"
                  ).set_defaults(func=_cmd_db_migrate)
    p = db.add_parser("reset", help="drop and re-apply every migration (local databases only)")
    p.add_argument("--force", action="store_true", help="allow a database that is not local")
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
    p.set_defaults(func=_cmd_serve)

    p = sub.add_parser("dev", help="start the local stack: database, migrations, demo data,"
                       " and every function at http://127.0.0.1:<[api] port>/functions/v1/")
    p.add_argument("--port", type=int, default=None, help="default: [api] port of config.toml")
    p.set_defaults(func=_cmd_dev)

    p = sub.add_parser("openapi", help="write each HTTP function's OpenAPI document to"
                       " docs/openapi/<name>.json")
    p.add_argument("--check", action="store_true",
                   help="write nothing; exit 1 when a checked-in document is stale")
    p.set_defaults(func=_cmd_openapi)
    return parser


def main(argv: Sequence[str] | None = None) -> int:
    args = build_parser().parse_args(argv)
    os.environ.setdefault("PYTHONUNBUFFERED", "1")
    return int(args.func(args))


if __name__ == "__main__":
    sys.exit(main())
