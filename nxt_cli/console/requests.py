"""The last requests each function answered, as the local gateway saw them."""

from __future__ import annotations

import time
from collections import deque
from dataclasses import dataclass
from statistics import quantiles
from typing import Any

KEPT = 200  # per function
WINDOW_S = 300.0  # p50/p99 over the last five minutes


@dataclass(frozen=True)
class Seen:
    at: float  # time.time()
    method: str
    path: str
    status: int
    ms: float
    request_id: str | None


class RequestLog:
    def __init__(self) -> None:
        self._by_function: dict[str, deque[Seen]] = {}

    def add(self, function: str, seen: Seen) -> None:
        self._by_function.setdefault(function, deque(maxlen=KEPT)).append(seen)

    def last(self, function: str, n: int = 5) -> list[Seen]:
        return list(self._by_function.get(function, ()))[-n:][::-1]

    def percentiles(self, function: str, now: float | None = None) -> tuple[float, float] | None:
        now = time.time() if now is None else now
        recent = [s.ms for s in self._by_function.get(function, ()) if now - s.at <= WINDOW_S]
        if not recent:
            return None
        if len(recent) == 1:
            return recent[0], recent[0]
        cuts = quantiles(recent, n=100, method="inclusive")
        return cuts[49], cuts[98]


def recording(app: Any, log: RequestLog, function: str) -> Any:
    """`app` (ASGI) with each HTTP response's status, latency and request id recorded."""

    async def wrapped(scope: dict[str, Any], receive: Any, send: Any) -> None:
        if scope["type"] != "http":
            await app(scope, receive, send)
            return
        started = time.monotonic()
        seen: dict[str, Any] = {"status": 500, "request_id": None}

        async def watch(message: dict[str, Any]) -> None:
            if message["type"] == "http.response.start":
                seen["status"] = message["status"]
                for key, value in message.get("headers", []):
                    if key.lower() == b"x-request-id":
                        seen["request_id"] = value.decode("latin-1")
            await send(message)

        try:
            await app(scope, receive, watch)
        finally:
            log.add(function, Seen(time.time(), scope.get("method", ""),
                                   scope.get("root_path", "") + scope.get("path", ""),
                                   int(seen["status"]), (time.monotonic() - started) * 1000,
                                   seen["request_id"]))

    return wrapped
