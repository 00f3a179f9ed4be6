"""`endpoint`: an ``async def handler(request)`` made a function's HTTP entry point.

Usage::

    import functions_framework.aio
    from shared.web.endpoint import endpoint

    @functions_framework.aio.http
    @endpoint(["GET", "POST"])
    async def handler(request):
        ...
        return {"ok": True}

Every request passes the steps of ``STEPS`` below, outermost first; that list is the one place
to read what a function does around its handler.
"""

from __future__ import annotations

import functools
import inspect
from collections.abc import Awaitable, Callable, Sequence
from typing import Any

from starlette.requests import Request
from starlette.responses import Response

from shared.logs import configure_logging
from shared.web import steps
from shared.web.limits import DEFAULT_MAX_BODY_BYTES
from shared.web.responses import to_response

HandlerResult = Response | tuple[Any, ...] | dict[str, Any] | list[Any] | str | bytes
Handler = Callable[[Request], Awaitable[HandlerResult]]
Endpoint = Callable[[Request], Awaitable[Response]]


def endpoint(
    methods: Sequence[str], *, max_body_bytes: int = DEFAULT_MAX_BODY_BYTES
) -> Callable[[Handler], Endpoint]:
    """Wrap an ``async def handler(request)`` with CORS, request ids, errors and access logs.

    The handler may return a Response, a dict/list (JSON), a str, or ``(body, status)`` /
    ``(body, status, headers)``. Apply it under ``@functions_framework.aio.http``.

    Also configures JSON logging (idempotently), since a function without it would lose the
    INFO access lines to the root logger's WARNING default.
    """
    if isinstance(methods, str):
        # endpoint("GET") would otherwise serve the methods "G", "E" and "T".
        raise TypeError("methods must be a sequence of method names, e.g. ['GET']")
    methods = list(dict.fromkeys(m.upper() for m in methods))
    configure_logging()
    around: list[steps.Step] = [
        steps.request_context,  # the request id, on every log line and the response
        steps.access_log,  # one line per request: method, path, status, duration
        steps.cors(methods),  # preflight answered; CORS headers on every response
        steps.error_mapping,  # any exception inside becomes a JSON error, never a traceback
        steps.within_limits(methods, max_body_bytes),  # 405, 414, 413 before any parsing
        steps.deadline,  # 503 when the database does not answer in time
    ]

    def decorate(handler: Handler) -> Endpoint:
        if not inspect.iscoroutinefunction(handler):
            raise TypeError(f"{handler!r} must be an async def function")

        async def respond(request: Request) -> Response:
            return to_response(await handler(request))

        call = steps.chain(around, respond)

        @functools.wraps(handler)
        async def wrapper(request: Request) -> Response:
            return await call(request)

        return wrapper

    return decorate
