"""The two ways a credential is refused, and the fixed client-safe texts they carry."""

from __future__ import annotations

MSG_MISSING = "missing bearer token"
MSG_EXPIRED = "token expired"
MSG_SIGNATURE = "invalid token signature"
MSG_AUDIENCE = "token audience not accepted"
MSG_NOT_YET_VALID = "token not yet valid"
MSG_ALGORITHM = "unsupported token algorithm"
MSG_UNKNOWN_KEY = "unknown signing key"
MSG_MALFORMED = "malformed token"
MSG_TOO_LARGE = "token too large"
MSG_UNAVAILABLE = "authentication temporarily unavailable"
MSG_SUBJECT = "malformed token: its subject (sub) is not a user id (a UUID)"


class AuthError(Exception):
    """The request's credentials are missing or not acceptable (HTTP 401).

    The message is safe to return to the client: it is one of the fixed ``MSG_*`` strings and
    never contains the token or any key material.
    """

    status: int = 401

    def __init__(self, message: str = MSG_MALFORMED) -> None:
        super().__init__(message)
        self.message = message


class AuthUnavailable(Exception):
    """The JWKS could not be fetched and no cached key fits the token (HTTP 503).

    Distinct from :class:`AuthError` because the client did nothing wrong: retrying later may
    succeed, and a 401 would make clients throw away a good session.
    """

    status: int = 503

    def __init__(self, message: str = MSG_UNAVAILABLE) -> None:
        super().__init__(message)
        self.message = message
