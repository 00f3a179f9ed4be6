"""Idempotency keys for POST handlers, after the IETF idempotency-key draft and Stripe.

- no key: 400; the same key and body: the stored status and body again, marked replayed;
  the same key with another body: 422; the twin request still running: 409 (retry later);
- the claim on a key commits on its own, before the work starts, so a concurrent twin sees it;
  the response is recorded in the work's own transaction, so an order exists if and only if
  its response is stored;
- a request that fails gives its key back, so a corrected retry may use it.

A handler holds its key with :func:`guard`::

    async with idempotency.guard(db, caller, key, payload) as claim:
        if claim.replay is not None:
            return claim.replay
        async with as_caller(caller) as conn:
            ...  # the work
            response = await claim.finish(conn, 201, result)
"""

from __future__ import annotations

import asyncio
import hashlib
import json
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any

from starlette.responses import Response

from shared.auth.caller import Caller
from shared.web.errors import BadRequest, Conflict, UnprocessableEntity
from shared.web.responses import to_json

if TYPE_CHECKING:
    from psycopg import AsyncConnection

    from shared.db import Database

HEADER = "idempotency-key"
REPLAYED_HEADER = "Idempotent-Replayed"
MAX_KEY_LENGTH = 255
# A claim older than this belongs to a request that died; a retry may take it over.
STALE_SECONDS = 60

_CLEAR_EXPIRED = (
    "delete from app.idempotency_keys"
    " where scope = app.request_scope() and key = %s and expires_at < now()"
)
_CLAIM = (
    "insert into app.idempotency_keys (key, request_hash) values (%s, %s)"
    " on conflict (scope, key) do nothing returning key"
)
_EXISTING = (
    "select request_hash, state, status_code, response,"
    " locked_at < now() - make_interval(secs => %s) as stale"
    " from app.idempotency_keys where scope = app.request_scope() and key = %s"
)
_TAKE_OVER = (
    "update app.idempotency_keys set locked_at = now()"
    " where scope = app.request_scope() and key = %s and state = 'running'"
    " and locked_at < now() - make_interval(secs => %s) returning key"
)
_FINISH = (
    "update app.idempotency_keys set state = 'done', status_code = %s, response = %s"
    " where scope = app.request_scope() and key = %s"
)
_RELEASE = (
    "delete from app.idempotency_keys"
    " where scope = app.request_scope() and key = %s and state = 'running'"
)


@dataclass(frozen=True)
class Replay:
    status: int
    body: str  # the JSON text first answered, byte for byte

    def response(self) -> Response:
        return Response(self.body, self.status, {REPLAYED_HEADER: "true"},
                        media_type="application/json")


def key_from_headers(headers: Any) -> str:
    getlist = getattr(headers, "getlist", None)  # Starlette's headers; a dict has one value
    if getlist is not None and len(getlist(HEADER)) > 1:
        # Which one would a retry send? Neither can be trusted to name the operation.
        raise BadRequest("invalid Idempotency-Key header: sent more than once; send one key")
    key = (headers.get(HEADER) or "").strip()
    if not key:
        raise BadRequest("missing Idempotency-Key header: send a unique key per operation")
    if len(key) > MAX_KEY_LENGTH or not key.isprintable() or not key.isascii():
        raise BadRequest(
            f"invalid Idempotency-Key header: at most {MAX_KEY_LENGTH} printable ASCII characters"
        )
    return key


def request_fingerprint(body: Any) -> bytes:
    """Hash of the parsed body, so formatting differences are not a different request."""
    canonical = json.dumps(body, sort_keys=True, separators=(",", ":"), default=str)
    return hashlib.sha256(canonical.encode()).digest()


async def _claim(db: Database, caller: Caller, key: str, fingerprint: bytes) -> Replay | None:
    """Claim `key` for this request. None: go ahead. A Replay: answer it. Raises 409/422."""
    async with db.transaction(caller.role, dict(caller.claims)) as conn:
        await conn.execute(_CLEAR_EXPIRED, (key,))
        cur = await conn.execute(_CLAIM, (key, fingerprint))
        if await cur.fetchone() is not None:
            return None
        cur = await conn.execute(_EXISTING, (STALE_SECONDS, key))
        row = await cur.fetchone()
        if row is None:  # released between our insert and select: the caller may retry
            raise Conflict("a request with this Idempotency-Key just finished; retry")
        stored_hash, state, status, response, stale = row
        if bytes(stored_hash) != fingerprint:
            raise UnprocessableEntity(
                "Idempotency-Key was already used with a different request body"
            )
        if state == "done":
            return Replay(status=status, body=response)
        if stale:
            cur = await conn.execute(_TAKE_OVER, (key, STALE_SECONDS))
            if await cur.fetchone() is not None:
                return None
        raise Conflict("a request with this Idempotency-Key is still being processed;"
                       " retry later", {"Retry-After": "1"})


class Claim:
    """A key held for one request: ``replay`` is the stored answer when the key already has
    one; otherwise the work records its answer with :meth:`finish`."""

    def __init__(self, key: str, replay: Response | None) -> None:
        self.key = key
        self.replay = replay
        self.finished = False

    async def finish(self, conn: AsyncConnection[Any], status: int, body: Any) -> Response:
        """Record the response inside the transaction that did the work, and return it."""
        text = to_json(body)
        await conn.execute(_FINISH, (status, text, self.key))
        self.finished = True
        return Response(text, status, media_type="application/json")


@asynccontextmanager
async def guard(db: Database, caller: Caller, key: str, payload: Any) -> AsyncIterator[Claim]:
    """Hold ``key`` for the request whose parsed body is ``payload``; raises 409/422 when it
    may not. The key is given back when the block raises or ends without :meth:`Claim.finish`
    (its transaction then rolled back, or never recorded an answer)."""
    replay = await _claim(db, caller, key, request_fingerprint(payload))
    held = Claim(key, replay.response() if replay is not None else None)
    if replay is not None:
        yield held
        return
    try:
        yield held
    except BaseException:
        await release(db, caller, key)
        raise
    if not held.finished:
        await release(db, caller, key)


async def _release(db: Database, caller: Caller, key: str) -> None:
    async with db.transaction(caller.role, dict(caller.claims)) as conn:
        await conn.execute(_RELEASE, (key,))


# Releases that could not reach the database, retried in the background (held here so the
# tasks are not garbage-collected while they wait).
_RETRYING: set[asyncio.Task[None]] = set()


async def release(db: Database, caller: Caller, key: str) -> None:
    """Give the key back after a failed request, so a corrected retry may use it. Never raises:
    when the database cannot be reached (the failure was an outage), the release is retried in
    the background until the claim would go stale anyway, so a client retrying after the
    outage is not refused with 409 for STALE_SECONDS."""
    try:
        await _release(db, caller, key)
    except Exception:
        task = asyncio.create_task(_release_later(db, caller, key))
        _RETRYING.add(task)
        task.add_done_callback(_RETRYING.discard)


async def _release_later(db: Database, caller: Caller, key: str) -> None:
    loop = asyncio.get_running_loop()
    deadline = loop.time() + STALE_SECONDS
    delay = 0.25
    while loop.time() < deadline:
        await asyncio.sleep(delay)
        try:
            await _release(db, caller, key)
            return
        except Exception:  # still unreachable: try again, a little later
            delay = min(delay * 2, 5.0)
