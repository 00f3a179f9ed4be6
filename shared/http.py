"""HTTP plumbing every function shares, on top of Starlette (functions-framework's ASGI mode).

Usage::

    import functions_framework.aio
    from shared.http import endpoint, json_response, read_json

    @functions_framework.aio.http
    @endpoint(["GET", "POST"])
    async def handler(request):
        ...
        return json_response({"ok": True})

:func:`endpoint` owns the cross-cutting behaviour clients rely on: CORS as the legacy Supabase
functions answer it, a request id on every response and log line, JSON errors (never an
exception's text), 503 when the database is down, and one access log line per request.

pydantic and psycopg are deliberately not imported: their exceptions are recognised by class
name and module, so a function that uses neither does not pay for them on cold start.
"""

from __future__ import annotations

import asyncio
import datetime as dt
import errno
import functools
import inspect
import json
import logging
import os
import re
import sys
import time
from collections.abc import Awaitable, Callable, Mapping, Sequence
from enum import Enum
from typing import Any, Final, TypeVar, get_args, get_origin

from starlette.requests import ClientDisconnect, Request
from starlette.responses import Response

from shared.logs import bind_request, configure_logging, reset_request
from shared.settings import get_settings

__all__ = [
    "CORS_ALLOW_HEADERS",
    "DEFAULT_MAX_BODY_BYTES",
    "MAX_QUERY_BYTES",
    "BadRequest",
    "Conflict",
    "Forbidden",
    "HTTPError",
    "MethodNotAllowed",
    "NotFound",
    "PayloadTooLarge",
    "ServiceUnavailable",
    "Unauthorized",
    "UnprocessableEntity",
    "UnsupportedMediaType",
    "cors_headers",
    "endpoint",
    "error_response",
    "is_database_unavailable",
    "json_response",
    "parse_body",
    "parse_query",
    "read_json",
    "resolve_request_id",
    "to_json",
    "validation_message",
]

logger = logging.getLogger(__name__)

# Legacy (Supabase Edge) functions answered an unsupported method with 400; these answer 405,
# correct HTTP, with an Allow header naming the methods.
METHOD_NOT_ALLOWED_STATUS = 405

DEFAULT_MAX_BODY_BYTES: Final = 1_048_576
# Our longest legitimate query (meter-consumption with a cursor) is a few hundred bytes; a
# longer one is refused before anything parses it.
MAX_QUERY_BYTES: Final = 8192

# The legacy list (authorization, x-client-info, apikey, content-type) plus headers our
# functions read: browsers refuse to send a header the preflight did not allow.
CORS_ALLOW_HEADERS: Final = (
    "authorization, x-client-info, apikey, content-type, x-api-key, idempotency-key, x-request-id"
)

REQUEST_ID_HEADER: Final = "X-Request-Id"
DB_RETRY_AFTER_SECONDS: Final = 5
DEADLINE_MESSAGE: Final = "database did not answer in time"


# --------------------------------------------------------------------------------------------
# Errors
# --------------------------------------------------------------------------------------------


class HTTPError(Exception):
    """Raise from a handler to answer ``{"error": message}`` with ``status``.

    ``message`` goes to the client verbatim, so it must be written for them.
    """

    def __init__(self, status: int, message: str, headers: Mapping[str, str] | None = None) -> None:
        super().__init__(status, message)
        self.status = status
        self.message = message
        self.headers: dict[str, str] = dict(headers or {})

    def __str__(self) -> str:
        return f"{self.status} {self.message}"


class _StatusError(HTTPError):
    status_code: int = 500
    default_message: str = "error"

    def __init__(
        self, message: str | None = None, headers: Mapping[str, str] | None = None
    ) -> None:
        super().__init__(self.status_code, message or self.default_message, headers)


class BadRequest(_StatusError):
    status_code = 400
    default_message = "bad request"


class Unauthorized(_StatusError):
    status_code = 401
    default_message = "unauthorized"


class Forbidden(_StatusError):
    status_code = 403
    default_message = "forbidden"


class NotFound(_StatusError):
    status_code = 404
    default_message = "not found"


class MethodNotAllowed(_StatusError):
    status_code = 405
    default_message = "Method not supported"


class Conflict(_StatusError):
    status_code = 409
    default_message = "conflict"


class PayloadTooLarge(_StatusError):
    status_code = 413
    default_message = "request body too large"


class UnsupportedMediaType(_StatusError):
    status_code = 415
    default_message = "Content-Type must be application/json"


class UnprocessableEntity(_StatusError):
    status_code = 422
    default_message = "unprocessable entity"


class ServiceUnavailable(_StatusError):
    status_code = 503
    default_message = "service unavailable"


# --------------------------------------------------------------------------------------------
# JSON responses
# --------------------------------------------------------------------------------------------

# json.dumps cannot emit a raw number from ``default``, and a float would round Decimal amounts
# (kWh, money). So a Decimal is emitted as a marked string and the quotes are stripped after.
# The random part keeps a client-supplied string from ever looking like the marker.
_DECIMAL_MARK: Final = f"\x00decimal-{os.urandom(8).hex()}:"
_DECIMAL_RE: Final = re.compile('"' + re.escape(json.dumps(_DECIMAL_MARK)[1:-1]) + '([^"]*)"')


def _loaded(module: str, name: str) -> type | None:
    # If the module was never imported, no instance of its class can exist: checking
    # sys.modules spares every function the import (uuid alone pulls in platform).
    mod = sys.modules.get(module)
    cls = getattr(mod, name, None) if mod is not None else None
    return cls if isinstance(cls, type) else None


def to_json(body: Any) -> str:
    """Serialise ``body`` compactly; Decimal stays an exact number, dates become ISO 8601."""
    saw_decimal = False

    def default(obj: Any) -> Any:
        nonlocal saw_decimal
        decimal_type = _loaded("decimal", "Decimal")
        if decimal_type is not None and isinstance(obj, decimal_type):
            if not obj.is_finite():
                raise ValueError(f"{obj} is not a valid JSON number")
            saw_decimal = True
            return f"{_DECIMAL_MARK}{obj}"
        if isinstance(obj, dt.date | dt.time):  # datetime is a date
            return obj.isoformat()
        uuid_type = _loaded("uuid", "UUID")
        if uuid_type is not None and isinstance(obj, uuid_type):
            return str(obj)
        if isinstance(obj, Enum):
            return obj.value
        model_dump = getattr(obj, "model_dump", None)  # pydantic models, without importing it
        if callable(model_dump):
            return model_dump(mode="json")
        if isinstance(obj, set | frozenset):
            return list(obj)
        raise TypeError(f"Object of type {type(obj).__name__} is not JSON serializable")

    text = json.dumps(
        body, default=default, separators=(",", ":"), ensure_ascii=False, allow_nan=False
    )
    return _DECIMAL_RE.sub(r"\1", text) if saw_decimal else text


def json_response(
    body: Any, status: int = 200, headers: Mapping[str, str] | None = None
) -> Response:
    return Response(
        content=to_json(body).encode("utf-8"),
        status_code=status,
        headers=dict(headers) if headers else None,
        media_type="application/json",
    )


def error_response(status: int, message: str, headers: Mapping[str, str] | None = None) -> Response:
    return json_response({"error": message}, status, headers)


def cors_headers(methods: Sequence[str]) -> dict[str, str]:
    """The CORS headers legacy Supabase functions sent, with the methods actually served."""
    served = [m.upper() for m in methods if m.upper() != "OPTIONS"]
    return {
        "Access-Control-Allow-Origin": "*",
        "Access-Control-Allow-Headers": CORS_ALLOW_HEADERS,
        "Access-Control-Allow-Methods": ", ".join([*dict.fromkeys(served), "OPTIONS"]),
    }


# --------------------------------------------------------------------------------------------
# Request id and trace
# --------------------------------------------------------------------------------------------

_REQUEST_ID_RE: Final = re.compile(r"[A-Za-z0-9._:-]{1,128}")
_TRACEPARENT_RE: Final = re.compile(
    r"([0-9a-f]{2})-([0-9a-f]{32})-([0-9a-f]{16})-([0-9a-f]{2})(-.*)?"
)
_CLOUD_TRACE_RE: Final = re.compile(r"([0-9a-fA-F]{32})(?:/[0-9]*)?(?:;o=[0-9]+)?")


def _trace_id(headers: Mapping[str, str]) -> str | None:
    traceparent = headers.get("traceparent", "").strip()
    m = _TRACEPARENT_RE.fullmatch(traceparent)
    # W3C: version ff is invalid, version 00 has no trailing fields, all-zero ids are invalid.
    if (
        m
        and m.group(1) != "ff"
        and not (m.group(1) == "00" and m.group(5))
        and m.group(2) != "0" * 32
        and m.group(3) != "0" * 16
    ):
        return m.group(2)
    m = _CLOUD_TRACE_RE.fullmatch(headers.get("x-cloud-trace-context", "").strip())
    if m and m.group(1) != "0" * 32:
        return m.group(1).lower()
    return None


def resolve_request_id(headers: Mapping[str, str]) -> tuple[str, str | None]:
    """``(request id, trace id)`` for a request's headers.

    A caller's ``X-Request-Id`` is kept only if it is short and plain, because it is echoed into
    response headers and logs. Otherwise the trace id ties our logs to the platform's request
    log; failing both, a fresh random id.
    """
    trace_id = _trace_id(headers)
    given = headers.get(REQUEST_ID_HEADER.lower(), "")
    if _REQUEST_ID_RE.fullmatch(given):
        return given, trace_id
    if trace_id:
        return trace_id, trace_id
    import uuid  # only here: most functions never need it otherwise

    return uuid.uuid4().hex, trace_id


# --------------------------------------------------------------------------------------------
# Request bodies and validation
# --------------------------------------------------------------------------------------------

_NOT_JSON: Final = "request body is not valid JSON"


def _is_json_media_type(content_type: str) -> bool:
    media = content_type.split(";", 1)[0].strip().lower()
    return media == "application/json" or (
        media.startswith("application/") and media.endswith("+json")
    )


def _reject_constant(name: str) -> Any:
    raise ValueError(f"{name} is not valid JSON")


async def read_json(request: Request, max_bytes: int | None = None) -> Any:
    """Parse the request body as JSON, reading at most ``max_bytes``.

    ``max_bytes`` defaults to the enclosing :func:`endpoint`'s ``max_body_bytes``. Raises
    :class:`HTTPError` 415 (not a JSON content type), 413 (too large, including chunked bodies
    with no Content-Length) or 400 (empty, not UTF-8, not JSON, NaN/Infinity).
    """
    body = await read_body(request, max_bytes)
    try:
        # Decoded explicitly: json.loads(bytes) would also accept UTF-16/32, which JSON does not.
        data = json.loads(body.decode("utf-8"), parse_constant=_reject_constant)
    except (UnicodeDecodeError, ValueError, RecursionError):
        # ValueError covers JSONDecodeError and ints longer than Python's digit limit.
        raise BadRequest(_NOT_JSON) from None
    where = _nul_path(data)
    if where is not None:
        raise BadRequest(f"invalid field '{where}': {_NUL_MESSAGE}" if where
                         else f"invalid input: {_NUL_MESSAGE}")
    return data


# PostgreSQL text cannot hold U+0000: refused here, naming the field, rather than as a driver
# error (a 500) when the value reaches the database.
_NUL_MESSAGE: Final = "text must not contain NUL characters (\\u0000)"


def _printable_name(name: str) -> str:
    return name if name.isprintable() and len(name) <= 64 else "?"


def _nul_path(data: Any) -> str | None:
    """The path of the first string (value or key) in parsed JSON holding U+0000, else None.

    Iterative: a body nested as deep as json.loads allows must not exhaust the stack here.
    """
    stack: list[tuple[Any, list[Any]]] = [(data, [])]
    while stack:
        value, path = stack.pop()
        if isinstance(value, str):
            if "\x00" in value:
                return _format_path(path)
        elif isinstance(value, dict):
            for key, item in value.items():
                if "\x00" in key:
                    return _format_path([*path, _printable_name(key)])
                stack.append((item, [*path, _printable_name(key)]))
        elif isinstance(value, list):
            stack.extend((item, [*path, i]) for i, item in enumerate(value))
    return None


async def read_body(request: Request, max_bytes: int | None = None) -> bytes:
    """The raw body of a JSON request, at most ``max_bytes`` (415/413 as for read_json), for
    handlers that hand the bytes straight to a pydantic ``validate_json``."""
    limit = max_bytes
    if limit is None:
        limit = getattr(request.state, "max_body_bytes", DEFAULT_MAX_BODY_BYTES)
    if not _is_json_media_type(request.headers.get("content-type", "")):
        raise UnsupportedMediaType()
    declared = request.headers.get("content-length")
    if declared is not None and declared.isdigit() and int(declared) > limit:
        raise PayloadTooLarge()

    chunks: list[bytes] = []
    size = 0
    # Streamed with a cap rather than request.body(): a chunked upload has no Content-Length to
    # check up front. stream() also replays a body that was already read.
    async for chunk in request.stream():
        size += len(chunk)
        if size > limit:
            raise PayloadTooLarge()
        chunks.append(chunk)
    body = b"".join(chunks)
    # Cache it where Starlette's request.body()/json() look, so they still work afterwards.
    request._body = body
    return body


def _is_validation_error(exc: BaseException) -> bool:
    return any(
        cls.__name__ == "ValidationError" and cls.__module__.startswith("pydantic")
        for cls in type(exc).__mro__
    )


_MAX_REPORTED_ERRORS: Final = 5
_MAX_MESSAGE_CHARS: Final = 200


def _format_path(parts: Sequence[Any]) -> str:
    path = ""
    for part in parts:
        if isinstance(part, int):
            path += f"[{part}]"
        else:
            path += f".{part}" if path else str(part)
    return path


def validation_message(exc: Any, location: str = "field") -> str:
    """Short client-facing text for a pydantic ``ValidationError``.

    ``invalid query parameter 'size': Input should be less than or equal to 1000``; for a list
    payload the leading index is the (0-based) row: ``invalid row 3 field 'counter_kwh': ...``.
    Several problems are joined with "; ". The offending input is never echoed: it may be a
    secret, and the client already has it.
    """
    errors = exc.errors(include_url=False, include_input=False, include_context=False)
    parts: list[str] = []
    for error in errors:
        loc = list(error.get("loc") or ())
        row = loc.pop(0) if loc and isinstance(loc[0], int) else None
        msg = str(error.get("msg", "invalid value"))[:_MAX_MESSAGE_CHARS]
        prefix = "invalid" if row is None else f"invalid row {row}"
        if loc:
            text = f"{prefix} {location} '{_format_path(loc)}': {msg}"
        elif row is None:
            text = f"invalid input: {msg}"
        else:
            text = f"{prefix}: {msg}"
        if text not in parts:
            parts.append(text)
    if not parts:
        return "invalid input"
    shown = parts[:_MAX_REPORTED_ERRORS]
    if len(parts) > len(shown):
        shown.append(f"and {len(parts) - len(shown)} more")
    return "; ".join(shown)


_M = TypeVar("_M")


def _query_data(request: Request) -> dict[str, Any]:
    data: dict[str, Any] = {}
    for key, value in request.query_params.multi_items():
        if key in data:
            previous = data[key]
            data[key] = [*previous, value] if isinstance(previous, list) else [previous, value]
        else:
            data[key] = value
    return data


def _repeated_scalars(model: type[Any], counts: Mapping[str, int]) -> list[str]:
    """Parameters sent more than once for a field that takes one value (pydantic would say
    "Input should be a valid integer" of `size=1&size=2`, which leaves the client guessing)."""
    repeated = []
    for name, info in getattr(model, "model_fields", {}).items():
        for key in dict.fromkeys((info.alias or name, name)):
            if counts.get(key, 0) > 1 and not _takes_many(info.annotation):
                repeated.append(key)
    return repeated


def _takes_many(annotation: Any) -> bool:
    origin = get_origin(annotation)
    if origin in (list, tuple, set, frozenset):
        return True
    return any(_takes_many(arg) for arg in get_args(annotation)) if origin else False


def parse_query(request: Request, model: type[_M]) -> _M:
    """Validate the query string with a pydantic model; 400 naming the bad parameter.

    A repeated parameter arrives as a list, a single one as a string.
    """
    seen: dict[str, int] = {}
    for key, value in request.query_params.multi_items():
        if "\x00" in key or "\x00" in value:
            raise BadRequest(f"invalid query parameter '{_printable_name(key)}': {_NUL_MESSAGE}")
        seen[key] = seen.get(key, 0) + 1
    repeated = _repeated_scalars(model, seen)
    if repeated:
        key = repeated[0]
        raise BadRequest(f"invalid query parameter '{key}': given {seen[key]} times; send it once")
    try:
        return model.model_validate(_query_data(request))  # type: ignore[attr-defined, no-any-return]
    except Exception as exc:
        if _is_validation_error(exc):
            raise BadRequest(validation_message(exc, "query parameter")) from None
        raise


async def parse_body(request: Request, model: type[_M], max_bytes: int | None = None) -> _M:
    """:func:`read_json` then validate with a pydantic model class; 400 naming the bad field."""
    data = await read_json(request, max_bytes)
    try:
        return model.model_validate(data)  # type: ignore[attr-defined, no-any-return]
    except Exception as exc:
        if _is_validation_error(exc):
            raise BadRequest(validation_message(exc, "field")) from None
        raise


def subpath(request: Request) -> list[str]:
    """The path below the function's root, as segments: `/123/complete` -> ["123", "complete"]."""
    path = request.path_params.get("path") or ""
    return [segment for segment in path.split("/") if segment]


def path_id(raw: str, name: str = "id") -> int:
    """A positive bigint from a path segment; 400 naming the parameter otherwise."""
    if not (raw.isascii() and raw.isdigit() and len(raw) <= 18 and int(raw) > 0):
        raise BadRequest(f"invalid path parameter '{name}': expected a positive integer")
    return int(raw)


# --------------------------------------------------------------------------------------------
# Database-unavailable detection
# --------------------------------------------------------------------------------------------

_DB_UNAVAILABLE_CLASSES: Final = {
    # psycopg.OperationalError covers its subclasses: connection failures, admin shutdown,
    # statement/lock timeouts, serialization failures; all worth a retry.
    "psycopg": {"OperationalError"},
    "psycopg_pool": {"PoolTimeout", "PoolClosed", "TooManyRequests"},
    "sqlalchemy": {"OperationalError", "TimeoutError", "DisconnectionError"},
    "socket": {"gaierror", "herror"},  # DNS lookup of the database host
}
_CONNECT_ERRNOS: Final = frozenset(
    {
        errno.ECONNREFUSED,
        errno.ECONNRESET,
        errno.ETIMEDOUT,
        errno.EHOSTUNREACH,
        errno.ENETUNREACH,
        errno.ENETDOWN,
        errno.EHOSTDOWN,
        errno.EADDRNOTAVAIL,
    }
)


def is_database_unavailable(exc: BaseException) -> bool:
    """True for errors that mean "database unreachable or overloaded, try again".

    Matched by class name and top-level module so psycopg need not be imported; the explicit
    ``raise ... from`` chain is followed because wrappers (SQLAlchemy, our own data layer) keep
    the driver error there.
    """
    seen = 0
    current: BaseException | None = exc
    while current is not None and seen < 5:
        if isinstance(current, BaseExceptionGroup) and any(
            is_database_unavailable(e) for e in current.exceptions
        ):
            return True
        for cls in type(current).__mro__:
            names = _DB_UNAVAILABLE_CLASSES.get(cls.__module__.split(".", 1)[0])
            if names and cls.__name__ in names:
                return True
        # ConnectionError: refused/reset/aborted. A plain OSError counts only with a
        # connect-time errno, so FileNotFoundError and the like stay 500s.
        if isinstance(current, ConnectionError | TimeoutError):
            return True
        if isinstance(current, OSError) and current.errno in _CONNECT_ERRNOS:
            return True
        current = current.__cause__
        seen += 1
    return False


# --------------------------------------------------------------------------------------------
# The endpoint decorator
# --------------------------------------------------------------------------------------------

HandlerResult = Response | tuple[Any, ...] | dict[str, Any] | list[Any] | str | bytes
Handler = Callable[[Request], Awaitable[HandlerResult]]
Endpoint = Callable[[Request], Awaitable[Response]]


def _to_response(result: Any) -> Response:
    if isinstance(result, Response):
        return result
    status = 200
    headers: Mapping[str, str] | None = None
    if isinstance(result, tuple):
        if len(result) == 2:
            body, status = result
        elif len(result) == 3:
            body, status, headers = result
        else:
            raise TypeError("handler returned a tuple that is not (body, status[, headers])")
        if body is None:
            return Response(status_code=status, headers=dict(headers) if headers else None)
    elif result is None:
        raise TypeError("handler returned None")
    else:
        body = result
    if isinstance(body, str):
        return Response(body, status, dict(headers) if headers else None, "text/plain")
    if isinstance(body, bytes | bytearray):
        return Response(
            bytes(body), status, dict(headers) if headers else None, "application/octet-stream"
        )
    return json_response(body, status, headers)


def _exception_response(exc: Exception) -> Response:
    if isinstance(exc, HTTPError):
        return error_response(exc.status, exc.message, exc.headers)
    if _is_validation_error(exc):
        return error_response(400, validation_message(exc, "field"))
    if is_database_unavailable(exc):
        logger.error("database unavailable", exc_info=exc)
        return error_response(
            503, "database unavailable", {"Retry-After": str(DB_RETRY_AFTER_SECONDS)}
        )
    if isinstance(exc, ClientDisconnect):
        # Nobody is listening; the status only shows in the access log.
        return error_response(400, "client disconnected")
    # Starlette raises its own HTTPException (e.g. from request.form()); its detail is ours.
    status = getattr(exc, "status_code", None)
    detail = getattr(exc, "detail", None)
    if (
        type(exc).__name__ == "HTTPException"
        and type(exc).__module__.startswith("starlette")
        and isinstance(status, int)
        and isinstance(detail, str)
    ):
        return error_response(status, detail, getattr(exc, "headers", None))
    if getattr(exc, "sqlstate", None) == "42501":
        # Row-level security or a missing grant refused the statement: the caller is known but
        # not allowed. Logged, since a function should have refused it before the database.
        logger.warning("database refused the statement: insufficient privilege")
        return error_response(403, "not allowed")
    logger.error("unhandled exception", exc_info=exc)
    return error_response(500, "internal error")


class _DeadlineExceeded(Exception):
    def __init__(self, seconds: float) -> None:
        super().__init__(seconds)
        self.seconds = seconds


def _drain(task: asyncio.Task[Any]) -> None:
    # The abandoned handler's outcome (CancelledError, or the OperationalError of a connection
    # psycopg closed) is of no interest; retrieving it keeps asyncio from logging it.
    if not task.cancelled():
        task.exception()


def abandon(task: asyncio.Future[Any]) -> None:
    """Let go of a side task: cancel it if it still runs (not waiting for its cleanup, see
    _within_deadline) and retrieve its outcome, so that asyncio logs no unretrieved error."""
    if task.done():
        _drain(task)  # type: ignore[arg-type]
    else:
        task.cancel()
        task.add_done_callback(_drain)  # type: ignore[arg-type]


async def _within_deadline(handler: Handler, request: Request) -> HandlerResult:
    """The handler's result, or :class:`_DeadlineExceeded` after REQUEST_DEADLINE_SECONDS.

    A frozen database (a partition, a stopped host) cannot enforce statement_timeout, so
    without this a request would hang. The handler runs as a task (copying the request's log
    context) behind a shield: on expiry it is cancelled but not awaited, because psycopg
    reacts to a cancelled query by cancelling it on the server and waiting for that (seconds
    more on a frozen server) before it closes the connection. That cleanup finishes in the
    background; the pool discards the closed connection when it comes back, never reusing it.
    """
    seconds = get_settings().request_deadline_seconds  # cached after the first call
    task = asyncio.ensure_future(handler(request))
    try:
        async with asyncio.timeout(seconds) as deadline:
            return await asyncio.shield(task)
    except TimeoutError:
        if not deadline.expired():
            raise  # the handler's own TimeoutError
        task.cancel()
        task.add_done_callback(_drain)
        raise _DeadlineExceeded(seconds) from None
    except asyncio.CancelledError:
        task.cancel()  # the server gave up on the request: so does the handler
        raise


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
    served = frozenset(m.upper() for m in methods) - {"OPTIONS"}
    cors = cors_headers(list(dict.fromkeys(m.upper() for m in methods)))
    allow = cors["Access-Control-Allow-Methods"]
    configure_logging()

    def decorate(handler: Handler) -> Endpoint:
        if not inspect.iscoroutinefunction(handler):
            raise TypeError(f"{handler!r} must be an async def function")

        async def dispatch(request: Request, request_id: str) -> Response:
            method = request.method.upper()
            if method == "OPTIONS":
                return Response("ok", media_type="text/plain")
            if method not in served:
                return error_response(
                    METHOD_NOT_ALLOWED_STATUS, "Method not supported", {"Allow": allow}
                )
            if len(request.scope.get("query_string") or b"") > MAX_QUERY_BYTES:
                return error_response(
                    414, f"query string too long: at most {MAX_QUERY_BYTES} bytes"
                )
            declared = request.headers.get("content-length")
            if declared is not None:
                if not declared.strip().isdigit():
                    return error_response(400, "invalid Content-Length header")
                if int(declared) > max_body_bytes:
                    return error_response(413, "request body too large")
            request.state.max_body_bytes = max_body_bytes
            request.state.request_id = request_id
            try:
                return _to_response(await _within_deadline(handler, request))
            except _DeadlineExceeded as exc:
                logger.warning("request exceeded its deadline of %gs: answered 503", exc.seconds)
                return error_response(
                    503, DEADLINE_MESSAGE, {"Retry-After": str(DB_RETRY_AFTER_SECONDS)}
                )
            except Exception as exc:
                return _exception_response(exc)

        @functools.wraps(handler)
        async def wrapper(request: Request) -> Response:
            started = time.perf_counter()
            request_id, trace_id = resolve_request_id(request.headers)
            token = bind_request(request_id, trace_id)
            try:
                response = await dispatch(request, request_id)
                for name, value in cors.items():
                    response.headers.setdefault(name, value)
                response.headers[REQUEST_ID_HEADER] = request_id
                duration_ms = round((time.perf_counter() - started) * 1000, 1)
                # The path only: query strings carry api keys and tokens often enough.
                path = request.scope.get("path", "/")
                logger.info(
                    "%s %s %s %.1fms",
                    request.method,
                    path,
                    response.status_code,
                    duration_ms,
                    extra={
                        "fields": {
                            "method": request.method,
                            "path": path,
                            "status": response.status_code,
                            "duration_ms": duration_ms,
                        }
                    },
                )
                return response
            finally:
                reset_request(token)

        return wrapper

    return decorate
