"""A small asynchronous load generator (httpx, loopback only): `workers` coroutines each send
one request after another until told to stop, and every outcome is recorded with its timing."""

from __future__ import annotations

import asyncio
import time
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any

import httpx

# A client must drop an idle keep-alive connection before the server does, or a request sent
# as the server closes it dies with a connection reset (ReadError) before it is read. uvicorn
# (`nxt serve`) closes after 5 idle seconds, which is also httpx's default expiry: a race that
# showed as a few ReadErrors per minute of load. Clients of the deployed functions talk to
# Google's front end, whose idle timeout is far longer.
KEEPALIVE_EXPIRY = 2.0


@dataclass
class Outcome:
    op: str
    started: float  # time.monotonic() when sent
    elapsed: float
    status: int | None = None  # None: no HTTP answer (see error)
    error: str | None = None
    headers: dict[str, str] = field(default_factory=dict)
    body: Any = None  # the parsed JSON answer, when there was one
    request: dict[str, Any] = field(default_factory=dict)  # what a retry needs to send again

    @property
    def ended(self) -> float:
        return self.started + self.elapsed


@dataclass(frozen=True)
class Call:
    """One request: its name in the report and what httpx needs to send it."""

    op: str
    method: str
    path: str
    kwargs: dict[str, Any]
    note: dict[str, Any] = field(default_factory=dict)


async def send(client: httpx.AsyncClient, call: Call) -> Outcome:
    started = time.monotonic()
    try:
        resp = await client.request(call.method, call.path, **call.kwargs)
    except httpx.HTTPError as exc:
        return Outcome(call.op, started, time.monotonic() - started,
                       error=f"{type(exc).__name__}: {exc}", request=call.note)
    try:
        body = resp.json()
    except ValueError:
        body = resp.text
    return Outcome(call.op, started, time.monotonic() - started, resp.status_code,
                   headers=dict(resp.headers), body=body, request=call.note)


async def run(base_url: str, next_call: Callable[[int], Call], *, workers: int,
              stop: asyncio.Event | None = None, seconds: float | None = None,
              request_timeout: float = 30.0) -> list[Outcome]:
    """Drive `workers` concurrent clients until `stop` is set or `seconds` have passed.

    `next_call(worker)` makes each worker's next request. One connection per worker (keep-alive),
    as a client library's pool would use.
    """
    stop = stop or asyncio.Event()
    outcomes: list[Outcome] = []
    limits = httpx.Limits(max_connections=workers, max_keepalive_connections=workers,
                          keepalive_expiry=KEEPALIVE_EXPIRY)
    async with httpx.AsyncClient(base_url=base_url, timeout=request_timeout,
                                 limits=limits) as client:

        async def worker(n: int) -> None:
            while not stop.is_set():
                outcomes.append(await send(client, next_call(n)))

        async def timer() -> None:
            if seconds is not None:
                try:
                    await asyncio.wait_for(stop.wait(), seconds)
                except TimeoutError:
                    stop.set()

        await asyncio.gather(timer(), *(worker(n) for n in range(workers)))
    return outcomes


def summary(outcomes: list[Outcome]) -> dict[str, Any]:
    """Counts by operation and status, and latency percentiles, for messages and the report."""
    by: dict[str, dict[str, int]] = {}
    for o in outcomes:
        key = str(o.status) if o.status is not None else (o.error or "error").split(":")[0]
        by.setdefault(o.op, {}).setdefault(key, 0)
        by[o.op][key] += 1
    times = sorted(o.elapsed for o in outcomes)

    def pct(p: float) -> float:
        return round(times[min(len(times) - 1, int(p * len(times)))] * 1000, 1) if times else 0.0

    return {"requests": len(outcomes), "by_op": by, "p50_ms": pct(0.5), "p99_ms": pct(0.99),
            "max_ms": pct(1.0)}



Flow = Callable[[httpx.AsyncClient, int], Any]  # async (client, worker) -> list[Outcome]


async def run_flows(base_url: str, flow: Flow, *, workers: int, seconds: float,
                    request_timeout: float = 30.0) -> list[Outcome]:
    """Like `run`, for requests that depend on each other: each worker runs `flow(client,
    worker)` (one round of several requests, returning their outcomes) again and again."""
    outcomes: list[Outcome] = []
    deadline = time.monotonic() + seconds
    limits = httpx.Limits(max_connections=workers * 2, max_keepalive_connections=workers * 2,
                          keepalive_expiry=KEEPALIVE_EXPIRY)
    async with httpx.AsyncClient(base_url=base_url, timeout=request_timeout,
                                 limits=limits) as client:

        async def worker(n: int) -> None:
            while time.monotonic() < deadline:
                outcomes.extend(await flow(client, n))

        await asyncio.gather(*(worker(n) for n in range(workers)))
    return outcomes
