"""Database-unavailable detection: the errors that mean "unreachable or overloaded, try again",
answered 503 with Retry-After instead of 500."""

from __future__ import annotations

import errno
from typing import Final

from shared.web.library_errors import RETRYABLE, is_a

RETRY_AFTER_SECONDS: Final = 5

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

    The explicit ``raise ... from`` chain is followed because wrappers (SQLAlchemy, our own
    data layer) keep the driver error there.
    """
    seen = 0
    current: BaseException | None = exc
    while current is not None and seen < 5:
        if isinstance(current, BaseExceptionGroup) and any(
            is_database_unavailable(e) for e in current.exceptions
        ):
            return True
        if is_a(current, RETRYABLE):
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
