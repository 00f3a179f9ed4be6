"""The request id on every response and log line, and the platform trace it ties to."""

from __future__ import annotations

import re
from collections.abc import Mapping
from typing import Final

REQUEST_ID_HEADER: Final = "X-Request-Id"

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
