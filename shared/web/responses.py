"""JSON out: the body encoding every function answers with, and the handler result types
`endpoint` accepts."""

from __future__ import annotations

import datetime as dt
import json
import os
import re
import sys
from collections.abc import Mapping
from enum import Enum
from typing import Any, Final

from starlette.responses import Response

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


def to_response(result: Any) -> Response:
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
