"""The request deadline: a frozen database cannot enforce statement_timeout, so without one a
request would hang."""

from __future__ import annotations

import asyncio
import logging
from collections.abc import Awaitable, Callable
from typing import Any, Final

from starlette.requests import Request
from starlette.responses import Response

from shared.settings import get_settings
from shared.web.errors import ServiceUnavailable
from shared.web.outage import RETRY_AFTER_SECONDS

DEADLINE_MESSAGE: Final = "database did not answer in time"

Next = Callable[[Request], Awaitable[Response]]

logger = logging.getLogger(__name__)


def _drain(task: asyncio.Task[Any]) -> None:
    # The abandoned handler's outcome (CancelledError, or the OperationalError of a connection
    # psycopg closed) is of no interest; retrieving it keeps asyncio from logging it.
    if not task.cancelled():
        task.exception()


def abandon(task: asyncio.Future[Any]) -> None:
    """Let go of a side task: cancel it if it still runs (not waiting for its cleanup, see
    within_deadline) and retrieve its outcome, so that asyncio logs no unretrieved error."""
    if task.done():
        _drain(task)  # type: ignore[arg-type]
    else:
        task.cancel()
        task.add_done_callback(_drain)  # type: ignore[arg-type]


async def within_deadline(call: Next, request: Request) -> Response:
    """The rest of the chain's response, or 503 after REQUEST_DEADLINE_SECONDS.

    A frozen database (a partition, a stopped host) cannot enforce statement_timeout, so
    without this a request would hang. The handler runs as a task (copying the request's log
    context) behind a shield: on expiry it is cancelled but not awaited, because psycopg
    reacts to a cancelled query by cancelling it on the server and waiting for that (seconds
    more on a frozen server) before it closes the connection. That cleanup finishes in the
    background; the pool discards the closed connection when it comes back, never reusing it.
    """
    seconds = get_settings().request_deadline_seconds  # cached after the first call
    task = asyncio.ensure_future(call(request))
    try:
        async with asyncio.timeout(seconds) as deadline:
            return await asyncio.shield(task)
    except TimeoutError:
        if not deadline.expired():
            raise  # the handler's own TimeoutError
        abandon(task)
        logger.warning("request exceeded its deadline of %gs: answered 503", seconds)
        raise ServiceUnavailable(DEADLINE_MESSAGE, RETRY_AFTER_SECONDS) from None
    except asyncio.CancelledError:
        task.cancel()  # the server gave up on the request: so does the handler
        raise
