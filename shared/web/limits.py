"""What a request may be before anything parses it: a served method, a bounded query string, a
declared body within the function's limit."""

from __future__ import annotations

from collections.abc import Collection
from typing import Final

from starlette.requests import Request

from shared.web.errors import BadRequest, HTTPError

DEFAULT_MAX_BODY_BYTES: Final = 1_048_576
# Our longest legitimate query (meter-consumption with a cursor) is a few hundred bytes; a
# longer one is refused before anything parses it.
MAX_QUERY_BYTES: Final = 8192


def check(request: Request, served: Collection[str], allow: str, max_body_bytes: int) -> None:
    """Raise the HTTPError a request outside the limits gets."""
    if request.method.upper() not in served:
        # Legacy (Supabase Edge) functions answered an unsupported method with 400; these
        # answer 405, correct HTTP, with an Allow header naming the methods.
        raise HTTPError("Method not supported", {"Allow": allow}, status=405)
    if len(request.scope.get("query_string") or b"") > MAX_QUERY_BYTES:
        raise HTTPError(f"query string too long: at most {MAX_QUERY_BYTES} bytes", status=414)
    declared = request.headers.get("content-length")
    if declared is not None:
        if not declared.strip().isdigit():
            raise BadRequest("invalid Content-Length header")
        if int(declared) > max_body_bytes:
            raise HTTPError("request body too large", status=413)
