"""The steps every request passes, each ``async def step(request, call_next) -> Response``
(Starlette's middleware shape, per function rather than per app); `endpoint` lists their order.
"""

from __future__ import annotations

import logging
import time
from collections.abc import Awaitable, Callable, Sequence

from starlette.requests import Request
from starlette.responses import Response

from shared.logs import bind_request, reset_request
from shared.web import limits
from shared.web.cors import cors_headers
from shared.web.deadline import within_deadline
from shared.web.error_mapping import response_for
from shared.web.request_id import REQUEST_ID_HEADER, resolve_request_id

Next = Callable[[Request], Awaitable[Response]]
Step = Callable[[Request, Next], Awaitable[Response]]

access_logger = logging.getLogger("shared.web.access")


async def request_context(request: Request, call_next: Next) -> Response:
    """A request id (the caller's, the platform trace's or a fresh one) on every log line of
    the request and on its response."""
    request_id, trace_id = resolve_request_id(request.headers)
    request.state.request_id = request_id
    token = bind_request(request_id, trace_id)
    try:
        response = await call_next(request)
        response.headers[REQUEST_ID_HEADER] = request_id
        return response
    finally:
        reset_request(token)


async def access_log(request: Request, call_next: Next) -> Response:
    """One line per request with the status it got and how long it took."""
    started = time.perf_counter()
    response = await call_next(request)
    duration_ms = round((time.perf_counter() - started) * 1000, 1)
    # The path only: query strings carry api keys and tokens often enough.
    path = request.scope.get("path", "/")
    access_logger.info(
        "%s %s %s %.1fms", request.method, path, response.status_code, duration_ms,
        extra={"fields": {"method": request.method, "path": path,
                          "status": response.status_code, "duration_ms": duration_ms}},
    )
    return response


def cors(methods: Sequence[str]) -> Step:
    """Preflight answered; the legacy CORS headers on every response, errors included."""
    headers = cors_headers(methods)

    async def step(request: Request, call_next: Next) -> Response:
        if request.method.upper() == "OPTIONS":
            response = Response("ok", media_type="text/plain")
        else:
            response = await call_next(request)
        for name, value in headers.items():
            response.headers.setdefault(name, value)
        return response

    return step


async def error_mapping(request: Request, call_next: Next) -> Response:
    """Every exception of the steps inside and the handler becomes a JSON error response."""
    try:
        return await call_next(request)
    except Exception as exc:
        return response_for(exc)


def within_limits(methods: Sequence[str], max_body_bytes: int) -> Step:
    """The method, query string and declared body checked before the handler reads anything."""
    served = frozenset(m.upper() for m in methods) - {"OPTIONS"}
    allow = cors_headers(methods)["Access-Control-Allow-Methods"]

    async def step(request: Request, call_next: Next) -> Response:
        limits.check(request, served, allow, max_body_bytes)
        request.state.max_body_bytes = max_body_bytes
        return await call_next(request)

    return step


async def deadline(request: Request, call_next: Next) -> Response:
    """503 when the handler (the database, in practice) does not answer in time."""
    return await within_deadline(call_next, request)


def chain(steps: Sequence[Step], handler: Next) -> Next:
    """``steps[0]`` outermost, ``handler`` innermost."""
    call = handler
    for step in reversed(steps):
        call = _bind(step, call)
    return call


def _bind(step: Step, call_next: Next) -> Next:
    async def call(request: Request) -> Response:
        return await step(request, call_next)

    return call
