"""Which exception becomes which response: a client never sees an exception's text, only
``{"error": ...}`` with the status that says what to do next."""

from __future__ import annotations

import logging

from starlette.exceptions import HTTPException
from starlette.requests import ClientDisconnect
from starlette.responses import Response

from shared.web.errors import HTTPError
from shared.web.library_errors import INSUFFICIENT_PRIVILEGE, VALIDATION, is_a
from shared.web.outage import RETRY_AFTER_SECONDS, is_database_unavailable
from shared.web.responses import error_response
from shared.web.validation import validation_message

logger = logging.getLogger(__name__)


def response_for(exc: Exception) -> Response:
    if isinstance(exc, HTTPError):
        return error_response(exc.status, exc.message, exc.headers)
    if is_a(exc, VALIDATION):
        return error_response(400, validation_message(exc, "field"))
    if is_database_unavailable(exc):
        logger.error("database unavailable", exc_info=exc)
        return error_response(503, "database unavailable",
                              {"Retry-After": str(RETRY_AFTER_SECONDS)})
    if isinstance(exc, ClientDisconnect):
        # Nobody is listening; the status only shows in the access log.
        return error_response(400, "client disconnected")
    if isinstance(exc, HTTPException):
        # Starlette's own (e.g. from request.form()): its detail is written for the client.
        return error_response(exc.status_code, exc.detail, exc.headers)
    if is_a(exc, INSUFFICIENT_PRIVILEGE):
        # The caller is known but not allowed. Logged, since a function should have refused it
        # before the database did.
        logger.warning("database refused the statement: insufficient privilege")
        return error_response(403, "not allowed")
    logger.error("unhandled exception", exc_info=exc)
    return error_response(500, "internal error")
