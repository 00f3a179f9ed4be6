"""`nxt deploy`: the gcloud commands that deploy every enabled function from its bundle.

HTTP functions deploy with `--trigger-http --allow-unauthenticated`: their own JWT gate
(verify_jwt of config.toml, enforced in code) decides who gets in, as the Supabase gateway does.
Scheduled jobs are CloudEvent functions on a Pub/Sub topic (`nxt-<name>`), private
(`--no-allow-unauthenticated`), triggered by a Cloud Scheduler job publishing `{}` on the
schedule their code declares (`shared.jobs.scheduled`).

Secrets are passed by reference only (`--set-secrets=DATABASE_URL=nxt-database-url:latest`):
this module never reads their values. Each function gets only the settings its code reads, as
`nxt_cli.bundle.analyse` finds it: a function that never reaches the time-series plane gets no
TIMESERIES_DATABASE_URL.
"""

from __future__ import annotations

import argparse
import os
import re
import shlex
import shutil
import subprocess
import sys
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING

from nxt_cli.bundle import RUNTIME, BundleError, Reach, analyse, bundle, enabled_functions

if TYPE_CHECKING:
    from shared.jobs import Schedule

DEFAULT_REGION = "europe-west1"
REGION_ENV = "NXT_DEPLOY_REGION"
TOPIC_PREFIX = "nxt-"
_REGION = re.compile(r"[a-z]+-[a-z]+[0-9]+")


@dataclass(frozen=True)
class Setting:
    """An environment variable a function may read, and how a deployment provides it."""

    env: str
    # What reached code reads when it needs the variable: a name, or "module:definition".
    marker: str
    stored_in: str | None = None  # the Secret Manager secret holding it: by reference
    always: bool = False  # plain settings: set to the effective value even when unset here


SETTINGS = (
    Setting("DATABASE_URL", "require_database_url", stored_in="nxt-database-url"),
    Setting("TIMESERIES_DATABASE_URL", "require_timeseries_url",
            stored_in="nxt-timeseries-database-url"),
    Setting("SUPABASE_JWT_SECRET", "resolve_jwt_secret", stored_in="nxt-jwt-secret"),
    Setting("JWT_AUDIENCE", "shared.auth.configured:jwt_verifier", always=True),
    Setting("SUPABASE_JWKS_URL", "shared.auth.configured:jwt_verifier"),
    Setting("OPERATOR_ORGANIZATION_ID", "shared.auth.access:is_operator", always=True),
    Setting("DB_POOL_MIN_SIZE", "shared.db:_get"),
    Setting("DB_POOL_MAX_SIZE", "shared.db:_get", always=True),
    Setting("DB_POOL_TIMEOUT", "shared.db:_get"),
    Setting("DB_STATEMENT_TIMEOUT_MS", "shared.db:_get"),
    Setting("REQUEST_DEADLINE_SECONDS", "shared.web.deadline:within_deadline"),
    Setting("LIST_TOTAL_TTL_SECONDS", "shared.totals:totals_of"),
    Setting("LOG_LEVEL", "shared.logs:configure_logging"),
)
PLAIN = tuple(s.env for s in SETTINGS if s.stored_in is None)


@dataclass(frozen=True)
class Plan:
    """One function's deployment: its commands, as argument lists."""

    name: str
    summary: str
    commands: tuple[tuple[str, ...], ...]


def region_from(arg: str | None, env: Mapping[str, str]) -> str:
    region = arg or env.get(REGION_ENV) or DEFAULT_REGION
    if not _REGION.fullmatch(region):
        raise ValueError(f"{region!r} is not a Google Cloud region (e.g. {DEFAULT_REGION})")
    return region


def plain_values(env: Mapping[str, str]) -> dict[str, str]:
    """The non-secret settings to deploy with: as set here, else their defaults for those set
    always. Validated as a function would at cold start, so a typo fails here, not there."""
    from shared.settings import Settings

    given = {k: env[k] for k in PLAIN if env.get(k, "").strip()}
    settings = Settings.from_env(given)  # reads no secret: `given` holds none
    effective = {"OPERATOR_ORGANIZATION_ID": str(settings.operator_organization_id),
                 "JWT_AUDIENCE": ",".join(settings.jwt_audiences),
                 "DB_POOL_MAX_SIZE": str(settings.pool_max_size)}
    return {s.env: given.get(s.env) or effective[s.env] for s in SETTINGS
            if s.stored_in is None and (s.always or s.env in given)}


def _env_flag(values: Mapping[str, str]) -> str:
    pairs = [f"{k}={v}" for k, v in values.items()]
    if not any("," in v for v in values.values()):
        return "--set-env-vars=" + ",".join(pairs)
    # gcloud splits on commas; `^X^` makes X the delimiter instead (`gcloud topic escaping`).
    for delimiter in "@|;#~":
        if not any(delimiter in pair for pair in pairs):
            return f"--set-env-vars=^{delimiter}^" + delimiter.join(pairs)
    raise ValueError("the environment variables hold every delimiter gcloud could split on")


def _settings_flags(reach: Reach, plain: Mapping[str, str]) -> list[str]:
    used = [s for s in SETTINGS if reach.touches(s.marker)]
    values = {s.env: plain[s.env] for s in used if s.stored_in is None and s.env in plain}
    secrets = [f"{s.env}={s.stored_in}:latest" for s in used if s.stored_in is not None]
    flags = [_env_flag(values)] if values else []
    if secrets:
        flags.append("--set-secrets=" + ",".join(secrets))
    return flags


JOB_TIMEOUT = "--timeout=540s"
# One instance serves many requests at once, one uvicorn worker (WORKERS=1, the framework's
# default) sharing a pool of DB_POOL_MAX_SIZE (4) connections: the settings bench/sweep.py
# measured (bench/README.md, "Server mode, workers and pool"). Gen2's default of one request
# per instance would leave three of the pool's connections idle and start an instance, with its
# cold start, for every concurrent request. Concurrency needs a whole CPU.
HTTP_INSTANCE = ("--cpu=1", "--memory=512Mi", "--concurrency=16")


def plan_function(name: str, target: str, schedule: Schedule | None, reach: Reach, *,
                  region: str, source: str, plain: Mapping[str, str]) -> Plan:
    deploy = ["gcloud", "functions", "deploy", name, "--gen2", f"--runtime={RUNTIME}",
              f"--region={region}", f"--source={source}", f"--entry-point={target}"]
    if schedule is None:
        deploy += ["--trigger-http", "--allow-unauthenticated", *HTTP_INSTANCE]
        deploy += _settings_flags(reach, plain)
        return Plan(name, f"{name}: HTTP", (tuple(deploy),))
    cron, timezone = schedule.cron, schedule.timezone
    topic = TOPIC_PREFIX + name
    # Event functions default to a 60 s limit; a snapshot backlog or maintenance can take longer.
    deploy += [f"--trigger-topic={topic}", "--no-allow-unauthenticated", JOB_TIMEOUT]
    deploy += _settings_flags(reach, plain)
    scheduler = ("gcloud", "scheduler", "jobs", "create", "pubsub", topic, f"--schedule={cron}",
                 f"--time-zone={timezone}", f"--topic={topic}", "--message-body={}",
                 f"--location={region}")
    return Plan(name, f"{name}: scheduled job, {cron} ({timezone})", (tuple(deploy), scheduler))


def plan(root: Path, *, region: str, dist: str, env: Mapping[str, str]) -> tuple[
        list[Plan], list[str]]:
    """(a plan per enabled function, notes on those skipped)."""
    from nxt_cli.invoke import jobs
    from shared.auth.declared import target_name

    names, notes = enabled_functions(root)
    schedules = {n: getattr(t, "__nxt_schedule__") for n, t in jobs(root).items()}  # noqa: B009
    plain = plain_values(env)
    plans = [plan_function(name, target_name(name), schedules.get(name), analyse(root, name),
                           region=region, source=f"{dist.rstrip('/')}/{name}", plain=plain)
             for name in names]
    return plans, notes


def render(command: Sequence[str]) -> str:
    """A command as one shell line: `--flag=value` with the value quoted when it must be."""
    parts = []
    for arg in command:
        flag, eq, value = arg.partition("=")
        parts.append(f"{flag}={shlex.quote(value)}" if eq and arg.startswith("--")
                     else shlex.quote(arg))
    return " ".join(parts)


def _run(root: Path, command: Sequence[str]) -> int:
    print(f"$ {render(command)}", flush=True)
    return subprocess.run(list(command), cwd=root).returncode  # noqa: S603 (argv, no shell)


def _execute(root: Path, plans: list[Plan], out: Path) -> int:
    for p in plans:
        bundle(root, p.name, out)
    for p in plans:
        for command in p.commands:
            code = _run(root, command)
            if code and command[1:4] == ("scheduler", "jobs", "create"):
                # The job exists from an earlier deployment: update it to this schedule.
                code = _run(root, [*command[:3], "update", *command[4:]])
            if code:
                print(f"nxt deploy: {p.name} failed (exit {code}); later functions were not"
                      " deployed", file=sys.stderr)
                return 1
    return 0


def run(root: Path, args: argparse.Namespace) -> int:
    env = os.environ
    try:
        region = region_from(args.region, env)
    except ValueError as exc:
        print(f"nxt deploy: {exc}", file=sys.stderr)
        return 2
    out = Path(args.out) if args.out else root / "dist"
    try:
        shown = out.resolve().relative_to(root.resolve()).as_posix()
    except ValueError:
        shown = str(out.resolve())
    if not args.dry_run and shutil.which("gcloud") is None:
        print("nxt deploy: gcloud is not installed or not on PATH; install the Google Cloud"
              " CLI, or pass --dry-run to print the commands", file=sys.stderr)
        return 2
    try:
        plans, notes = plan(root, region=region, dist=shown, env=env)
    except (BundleError, ValueError) as exc:
        print(f"nxt deploy: {exc}", file=sys.stderr)
        return 1
    for note in notes:
        print(f"# {note}")
    if not args.dry_run:
        return _execute(root, plans, out)
    for p in plans:
        print(f"# {p.summary}")
        for command in p.commands:
            print(render(command))
    return 0
