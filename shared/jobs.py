"""Scheduled jobs: each declares its schedule here, in code, once; the emulator, `nxt invoke`
and the deployment manifest read it from the declaration.

A job is a CloudEvent function (Cloud Scheduler -> Pub/Sub -> the function). It answers no
HTTP caller, so it has no JWT gate: `verify_jwt = false` in config.toml, and the platform's IAM
decides who may trigger it. Each run holds a session advisory lock on a direct connection, so
a second concurrent run returns at once, and a run killed mid-way frees its lock with its
connection.

A job that declares a `payload` parameter gets the trigger's payload (shared/shards.py): a
shard `{"shard": k, "shards": n}` runs beside the other shards of the same job. Its locks: the
job's lock in shared mode (so no unsharded run overlaps any shard, and shards overlap each
other) and its own shard number's lock exclusively (so two invocations of one shard never
overlap). Shards of different n would build overlapping meters (shard 0 of 2 and shard 2 of 4
both hold meter 4), so a shard also holds its n in shared mode and steps back when it finds a
shard of another n holding its own.
"""

from __future__ import annotations

import functools
import inspect
import logging
import time
from collections.abc import AsyncIterator, Awaitable, Callable
from contextlib import asynccontextmanager
from dataclasses import dataclass
from typing import Any

from shared.auth.declared import DECLARED, NONE, GateSpec, target_name
from shared.shards import Shard, event_payload

logger = logging.getLogger("nxt.jobs")

JobResult = dict[str, Any]
# `async def body()`, or `async def body(payload)` for a job that reads its trigger's payload.
JobBody = Callable[..., Awaitable[JobResult]]


@dataclass(frozen=True)
class Schedule:
    cron: str  # five fields, as Cloud Scheduler and cron read them
    timezone: str = "UTC"


SCHEDULES: dict[str, Schedule] = {}


def scheduled(name: str, cron: str, timezone: str = "UTC"
              ) -> Callable[[JobBody], Callable[[Any], Awaitable[None]]]:
    """Declare `async def body() -> dict` as job `name`, run on `cron` in `timezone`.

    The decorated object is the CloudEvent target; `.run(payload=None)` runs the body and
    returns its result (what `nxt invoke` prints). A body with a `payload` parameter gets the
    event's JSON payload (None without one); any other body ignores it, as before.
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
        takes_payload = "payload" in inspect.signature(body).parameters

        @functools.wraps(body)
        async def run(payload: dict[str, Any] | None = None) -> JobResult:
            started = time.monotonic()
            try:
                result = await (body(payload) if takes_payload else body())
            except Exception:
                logger.exception("job failed", extra={"fields": {"job": name}})
                raise
            result = {"job": name, **result,
                      "seconds": round(time.monotonic() - started, 3)}
            logger.info("job %s: %s", name, result.get("status", "done"), extra={"fields": result})
            return result

        async def target(cloud_event: Any) -> None:
            try:
                payload = event_payload(cloud_event) if takes_payload else None
            except Exception:
                logger.exception("job failed", extra={"fields": {"job": name}})
                raise
            await run(payload)

        target.__name__ = spec.target
        target.__nxt_gate__ = spec  # type: ignore[attr-defined]
        target.__nxt_schedule__ = schedule  # type: ignore[attr-defined]
        target.run = run  # type: ignore[attr-defined]
        target.takes_payload = takes_payload  # type: ignore[attr-defined]
        return target

    return decorate


def lock_key(name: str) -> str:
    return f"nxt-job:{name}"


def shard_lock_key(name: str, shard: int) -> str:
    return f"nxt-job:{name}:shard:{shard}"


def shards_lock_key(name: str) -> str:
    """With n as the second key: the n a running shard of `name` uses."""
    return f"nxt-job:{name}:shards"


_TRY = "select pg_try_advisory_lock(hashtext(%s))"
_TRY_SHARED = "select pg_try_advisory_lock_shared(hashtext(%s))"
_UNLOCK = "select pg_advisory_unlock(hashtext(%s))"
_UNLOCK_SHARED = "select pg_advisory_unlock_shared(hashtext(%s))"
_HOLD_N = "select pg_advisory_lock_shared(hashtext(%s), %s)"
_UNLOCK_N = "select pg_advisory_unlock_shared(hashtext(%s), %s)"
# Another n held by a shard of the same job. A two-key advisory lock shows its keys as classid
# and objid (objsubid 2); hashtext's int4 is cast to oid the way the lock function did.
_OTHER_N = """
select min(objid::bigint) from pg_locks
 where locktype = 'advisory' and objsubid = 2 and granted
   and database = (select oid from pg_database where datname = current_database())
   and classid = hashtext(%s)::oid and objid <> %s::int::oid
"""


async def _one(conn: Any, sql: str, params: tuple[Any, ...]) -> Any:
    cur = await conn.execute(sql, params)
    row = await cur.fetchone()
    return row[0] if row else None


async def _take_locks(conn: Any, name: str, shard: Shard | None
                      ) -> tuple[list[tuple[str, tuple[Any, ...]]], str | None]:
    """(what to unlock, in order; why the run may not go on, or None)."""
    if shard is None:
        if not await _one(conn, _TRY, (lock_key(name),)):
            return [], f"another run of {name} holds its lock"
        return [(_UNLOCK, (lock_key(name),))], None
    held: list[tuple[str, tuple[Any, ...]]] = []
    if not await _one(conn, _TRY_SHARED, (lock_key(name),)):
        return held, f"an unsharded run of {name} holds its lock"
    held.insert(0, (_UNLOCK_SHARED, (lock_key(name),)))
    if not await _one(conn, _TRY, (shard_lock_key(name, shard.shard),)):
        return held, f"another run of {name} shard {shard.shard} holds its lock"
    held.insert(0, (_UNLOCK, (shard_lock_key(name, shard.shard),)))
    # Held before looking, so of two shards of different n starting together at least one
    # sees the other (both may step back: safe, the next run builds).
    await _one(conn, _HOLD_N, (shards_lock_key(name), shard.shards))
    held.insert(0, (_UNLOCK_N, (shards_lock_key(name), shard.shards)))
    other = await _one(conn, _OTHER_N, (shards_lock_key(name), shard.shards))
    if other is not None:
        return held, (f"a shard of {name} with shards={other} is running: all shards must"
                      f" share one n (this run has shards={shard.shards})")
    return held, None


@asynccontextmanager
async def job_connection(url: str, name: str, shard: Shard | None = None
                         ) -> AsyncIterator[Any | None]:
    """A direct (unpooled) connection holding job `name`'s advisory lock (a shard's: the locks
    the module describes), or None when another run holds it (`skip_reason` says why). Session
    locks need a session: never point `url` at a transaction pooler."""
    async with _job_connection(url, name, shard) as (conn, _):
        yield conn


@asynccontextmanager
async def _job_connection(url: str, name: str, shard: Shard | None
                          ) -> AsyncIterator[tuple[Any | None, str | None]]:
    import psycopg

    suffix = "" if shard is None else f"-shard-{shard.shard}-of-{shard.shards}"
    conn = await psycopg.AsyncConnection.connect(url, autocommit=True, prepare_threshold=None,
                                                 application_name=f"nxt-job-{name}{suffix}")
    held: list[tuple[str, tuple[Any, ...]]] = []
    try:
        held, refused = await _take_locks(conn, name, shard)
        if refused is not None:
            yield None, refused
            return
        # JIT compiles the snapshot's window-function plans for longer than they then run
        # (measured: 1.75 s with it, 0.44 s without on PostgreSQL 15 with jit=on).
        await conn.execute("set timezone = 'UTC'")
        await conn.execute("set jit = off")
        yield conn, None
    finally:
        try:
            if not conn.closed:
                for sql, params in held:
                    await conn.execute(sql, params)
        finally:
            await conn.close()


def already_running(name: str, reason: str | None = None) -> JobResult:
    return {"status": "skipped", "reason": reason or f"another run of {name} holds its lock"}


async def run_locked(name: str, work: Callable[[Any], Awaitable[JobResult]],
                     shard: Shard | None = None) -> JobResult:
    """`work(conn)` on a direct time-series connection holding job `name`'s lock (or, for a
    shard, the shard's locks); a skip result when another run holds it."""
    from shared.settings import get_settings

    url = get_settings().require_timeseries_url()
    async with _job_connection(url, name, shard) as (conn, refused):
        if conn is None:
            return already_running(name, refused)
        return await work(conn)
