"""JSON in: a request body read with a cap, parsed strictly, and validated with a model."""

from __future__ import annotations

import json
from typing import Any, Final, TypeVar

from starlette.requests import Request

from shared.web.errors import BadRequest, HTTPError
from shared.web.library_errors import VALIDATION, is_a
from shared.web.limits import DEFAULT_MAX_BODY_BYTES
from shared.web.validation import NUL_MESSAGE, format_path, printable_name, validation_message

_M = TypeVar("_M")

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
        raise BadRequest(f"invalid field '{where}': {NUL_MESSAGE}" if where
                         else f"invalid input: {NUL_MESSAGE}")
    return data


def _nul_path(data: Any) -> str | None:
    """The path of the first string (value or key) in parsed JSON holding U+0000, else None.

    Iterative: a body nested as deep as json.loads allows must not exhaust the stack here.
    """
    stack: list[tuple[Any, list[Any]]] = [(data, [])]
    while stack:
        value, path = stack.pop()
        if isinstance(value, str):
            if "\x00" in value:
                return format_path(path)
        elif isinstance(value, dict):
            for key, item in value.items():
                if "\x00" in key:
                    return format_path([*path, printable_name(key)])
                stack.append((item, [*path, printable_name(key)]))
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
        raise HTTPError("Content-Type must be application/json", status=415)
    declared = request.headers.get("content-length")
    if declared is not None and declared.isdigit() and int(declared) > limit:
        raise HTTPError("request body too large", status=413)

    chunks: list[bytes] = []
    size = 0
    # Streamed with a cap rather than request.body(): a chunked upload has no Content-Length to
    # check up front. stream() also replays a body that was already read.
    async for chunk in request.stream():
        size += len(chunk)
        if size > limit:
            raise HTTPError("request body too large", status=413)
        chunks.append(chunk)
    body = b"".join(chunks)
    # Cache it where Starlette's request.body()/json() look, so they still work afterwards.
    request._body = body
    return body


async def parse_body(request: Request, model: type[_M], max_bytes: int | None = None) -> _M:
    """:func:`read_json` then validate with a pydantic model class; 400 naming the bad field."""
    data = await read_json(request, max_bytes)
    try:
        return model.model_validate(data)  # type: ignore[attr-defined, no-any-return]
    except Exception as exc:
        if is_a(exc, VALIDATION):
            raise BadRequest(validation_message(exc, "field")) from None
        raise
