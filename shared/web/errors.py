"""The errors a handler raises to answer ``{"error": message}``: one class, with a subclass per
status a handler commonly answers; the subclasses that need a header add it themselves.

``message`` goes to the client verbatim, so it must be written for them.
"""

from __future__ import annotations

from collections.abc import Mapping


class HTTPError(Exception):
    """``HTTPError(message, status=414)`` for a status without a subclass."""

    status: int = 500

    def __init__(self, message: str, headers: Mapping[str, str] | None = None, *,
                 status: int | None = None) -> None:
        super().__init__(message)
        if status is not None:
            self.status = status
        self.message = message
        self.headers: dict[str, str] = dict(headers or {})

    def __str__(self) -> str:
        return f"{self.status} {self.message}"


class BadRequest(HTTPError):
    status = 400


class Unauthorized(HTTPError):
    """401 with the challenge RFC 7235 requires, naming the scheme clients must use."""

    status = 401

    def __init__(self, message: str) -> None:
        super().__init__(message, {"WWW-Authenticate": "Bearer"})


class Forbidden(HTTPError):
    status = 403


class NotFound(HTTPError):
    status = 404


class Conflict(HTTPError):
    status = 409


class UnprocessableEntity(HTTPError):
    status = 422


class ServiceUnavailable(HTTPError):
    """503 with the Retry-After a client (and Supabase's clients) wait before trying again."""

    status = 503

    def __init__(self, message: str, retry_after: int) -> None:
        super().__init__(message, {"Retry-After": str(retry_after)})
