"""Scheduled jobs: each declares its schedule here, in code, once; the emulator, `nxt invoke`
and the deployment manifest read it from the declaration.

A job is a CloudEvent function (Cloud Scheduler -> Pub/Sub -> the function). It answers no
HTTP caller, so it has no JWT gate: `verify_jwt = false` in config.toml, and the platform's IAM
decides who may trigger it. Each run holds a session advisory lock on a direct connection, so
a second concurrent run returns at once, and a run killed mid-way frees its lock with its
connection.
"""

from __future__ import annotations

import functools
import logging
import time
from collections.abc import AsyncIterator, Awaitable, Callable
from contextlib import asynccontextmanager
from dataclasses import dataclass
from typing import Any

from shared.auth.declared import DECLARED, NONE, GateSpec, target_name

logger = logging.getLogger("nxt.jobs")

JobResult = dict[str, Any]
JobBody = Callable[[], Awaitable[JobResult]]


@dataclass(frozen=True)
class Schedule:
    cron: str  # five fields, as Cloud Scheduler and cron read them
    timezone: str = "UTC"


SCHEDULES: dict[str, Schedule] = {}


def scheduled(name: str, cron: str, timezone: str = "UTC"
              ) -> Callable[[JobBody], Callable[[Any], Awaitable[None]]]:
    """Declare `async def body() -> dict` as job `name`, run on `cron` in `timezone`.

    The decorated object is the CloudEvent target; `.run()` runs the body and returns its
    result (what `nxt invoke` prints).
    """
    if len(cron.split()) != 5:
        raise ValueError(f"schedule of {name}: {cron!r} is not a five-field cron expression")
    spec = GateSpec(name=name, target=target_name(name), accepts=frozenset({NONE}))
    DECLARED[name] = spec
    schedule = SCHEDULES[name] = Schedule(cron, timezone)

    from shared.logs import configure_logging
    from shared.supabase_config import function_settings

    function_settings(name)  # a missing or malformed config table fails the cold start
    configure_logging()

    def decorate(body: JobBody) -> Callable[[Any], Awaitable[None]]:
        @functools.wraps(body)
        async def run() -> JobResult:
            started = time.monotonic()
            try:
                result = await body()
            except Exception:
                logger.exception("job failed", extra={"fields": {"job": name}})
                raise
            result = {"job": name, **result,
                      "seconds": round(time.monotonic() - started, 3)}
            logger.info("job %s: %s", name, result.get("status", "done"), extra={"fields": result})
            return result

        async def target(cloud_event: Any) -> None:
            await run()

        target.__name__ = spec.target
        target.__nxt_gate__ = spec  # type: ignore[attr-defined]
        target.__nxt_schedule__ = schedule  # type: ignore[attr-defined]
        target.run = run  # type: ignore[attr-defined]
        return target

    return decorate


def lock_key(name: str) -> str:
    return f"nxt-job:{name}"


@asynccontextmanager
async def job_connection(url: str, name: str) -> AsyncIterator[Any | None]:
    """A direct (unpooled) connection holding job `name`'s advisory lock, or None when another
    run holds it. Session locks need a session: never point `url` at a transaction pooler."""
    import psycopg

    conn = await psycopg.AsyncConnection.connect(url, autocommit=True, prepare_threshold=None,
                                                 application_name=f"nxt-job-{name}")
    try:
        cur = await conn.execute("select pg_try_advisory_lock(hashtext(%s))", (lock_key(name),))
        row = await cur.fetchone()
        if not (row and row[0]):
            yield None
            return
        # JIT compiles the snapshot's window-function plans for longer than they then run
        # (measured: 1.75 s with it, 0.44 s without on PostgreSQL 15 with jit=on).
        await conn.execute("set timezone = 'UTC'")
        await conn.execute("set jit = off")
        try:
            yield conn
        finally:
            if not conn.closed:
                await conn.execute("select pg_advisory_unlock(hashtext(%s))", (lock_key(name),))
    finally:
        await conn.close()


def already_running(name: str) -> JobResult:
    return {"status": "skipped", "reason": f"another run of {name} holds its lock"}


async def run_locked(name: str, work: Callable[[Any], Awaitable[JobResult]]) -> JobResult:
    """`work(conn)` on a direct time-series connection holding job `name`'s lock; a skip
    result when another run holds it."""
    from shared.settings import get_settings

    async with job_connection(get_settings().require_timeseries_url(), name) as conn:
        if conn is None:
            return already_running(name)
        return await work(conn)
