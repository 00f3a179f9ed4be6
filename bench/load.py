"""A small HTTP/1.1 keep-alive client on asyncio streams, and the load loops the rows use.

Not httpx: on a 2-core machine the load generator shares the CPU with the server and
PostgreSQL, and httpx costs several times more per request than these few lines. Every row
drives its hot path and its floor with the same client, so what the client costs weighs on
both sides alike.
"""

from __future__ import annotations

import asyncio
import math
import time
from collections.abc import Mapping, Sequence
from dataclasses import dataclass


@dataclass(frozen=True)
class Response:
    status: int
    body: bytes


def encode_request(method: str, target: str, headers: Mapping[str, str] | None = None,
                   body: bytes = b"") -> bytes:
    """The bytes of one request, built once and sent many times."""
    lines = [f"{method} {target} HTTP/1.1", "Host: 127.0.0.1"]
    lines += [f"{name}: {value}" for name, value in (headers or {}).items()]
    if body or method in ("POST", "PUT", "PATCH"):
        lines.append(f"Content-Length: {len(body)}")
    return ("\r\n".join(lines) + "\r\n\r\n").encode("latin-1") + body


class Connection:
    """One keep-alive connection; reopens itself when the server closes it."""

    def __init__(self, port: int, host: str = "127.0.0.1") -> None:
        self.host, self.port = host, port
        self.reader: asyncio.StreamReader | None = None
        self.writer: asyncio.StreamWriter | None = None

    async def send(self, raw: bytes) -> Response:
        if self.writer is None:
            self.reader, self.writer = await asyncio.open_connection(
                self.host, self.port, limit=1 << 24)
        assert self.reader is not None
        self.writer.write(raw)
        await self.writer.drain()
        head = await self.reader.readuntil(b"\r\n\r\n")
        lines = head.decode("latin-1").split("\r\n")
        status = int(lines[0].split(" ", 2)[1])
        headers = {k.strip().lower(): v.strip()
                   for k, _, v in (line.partition(":") for line in lines[1:] if line)}
        if "content-length" in headers:
            body = await self.reader.readexactly(int(headers["content-length"]))
        elif headers.get("transfer-encoding", "").lower() == "chunked":
            body = await self._chunks()
        else:
            body = await self.reader.read()
            headers["connection"] = "close"
        if headers.get("connection", "").lower() == "close":
            await self.close()
        return Response(status, body)

    async def _chunks(self) -> bytes:
        assert self.reader is not None
        parts = []
        while size := int((await self.reader.readuntil(b"\r\n")).split(b";")[0], 16):
            parts.append((await self.reader.readexactly(size + 2))[:-2])
        await self.reader.readuntil(b"\r\n")
        return b"".join(parts)

    async def close(self) -> None:
        if self.writer is not None:
            self.writer.close()
            self.reader = self.writer = None


@dataclass(frozen=True)
class Run:
    latencies: list[float]  # seconds, one per request
    seconds: float  # wall time of the whole run
    errors: int  # responses other than 200, with the first one kept for the report
    first_error: str = ""


async def closed_loop(port: int, raw: bytes, *, concurrency: int, seconds: float) -> Run:
    """One request sent over and over by `concurrency` clients for `seconds`, each client
    sending its next request as soon as the previous one is answered."""
    latencies: list[float] = []
    failures: list[str] = []
    deadline = time.perf_counter() + seconds

    async def client() -> None:
        conn = Connection(port)
        try:
            while time.perf_counter() < deadline:
                started = time.perf_counter()
                resp = await conn.send(raw)
                latencies.append(time.perf_counter() - started)
                if resp.status != 200:
                    failures.append(f"{resp.status} {resp.body[:200]!r}")
        finally:
            await conn.close()

    started = time.perf_counter()
    await asyncio.gather(*(client() for _ in range(concurrency)))
    return Run(latencies, time.perf_counter() - started, len(failures),
               failures[0] if failures else "")


async def senders(port: int, batches: Sequence[Sequence[bytes]]) -> Run:
    """One sender per list of requests, each sending its own in order; the run's wall time is
    until the last one is answered."""
    results = await asyncio.gather(*(send_all(port, reqs) for reqs in batches))
    latencies = [t for r in results for t in r.latencies]
    errors = [r.first_error for r in results if r.errors]
    return Run(latencies, max(r.seconds for r in results), sum(r.errors for r in results),
               errors[0] if errors else "")


async def send_all(port: int, requests: Sequence[bytes]) -> Run:
    conn = Connection(port)
    latencies, failures = [], []
    started = time.perf_counter()
    try:
        for raw in requests:
            t = time.perf_counter()
            resp = await conn.send(raw)
            latencies.append(time.perf_counter() - t)
            if resp.status != 200:
                failures.append(f"{resp.status} {resp.body[:300]!r}")
    finally:
        await conn.close()
    return Run(latencies, time.perf_counter() - started, len(failures),
               failures[0] if failures else "")


def percentile(values: Sequence[float], q: float) -> float:
    """Nearest-rank percentile (q in 0..100)."""
    ordered = sorted(values)
    rank = min(len(ordered), max(1, math.ceil(q / 100 * len(ordered))))
    return ordered[rank - 1]
