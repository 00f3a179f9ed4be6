"""The library exception types the error mapping answers specially, matched by type.

A function that never imports psycopg or pydantic must not pay for them at cold start, so each
type is named here and resolved only once its module is loaded: an exception of a module never
imported cannot exist. The lookup has no default: a type renamed upstream fails loudly, and
tests/foundation/test_http_helpers.py resolves every name against the pinned versions, so an
upgrade that renames one fails the tests instead of silently turning a 503 into a 500.
"""

from __future__ import annotations

import sys
from typing import Final

Names = tuple[tuple[str, str], ...]

# "Database unreachable or overloaded: try again". psycopg.OperationalError covers its
# subclasses: connection failures, admin shutdown, statement and lock timeouts, serialization
# failures. socket's are the DNS lookup of the database host.
RETRYABLE: Final[Names] = (
    ("psycopg", "OperationalError"),
    ("psycopg_pool", "PoolTimeout"),
    ("psycopg_pool", "PoolClosed"),
    ("psycopg_pool", "TooManyRequests"),
    ("sqlalchemy.exc", "OperationalError"),
    ("sqlalchemy.exc", "TimeoutError"),
    ("sqlalchemy.exc", "DisconnectionError"),
    ("socket", "gaierror"),
    ("socket", "herror"),
)
VALIDATION: Final[Names] = (("pydantic_core", "ValidationError"),)
# Row-level security or a missing grant refused the statement (SQLSTATE 42501).
INSUFFICIENT_PRIVILEGE: Final[Names] = (("psycopg.errors", "InsufficientPrivilege"),)

ALL: Final[Names] = RETRYABLE + VALIDATION + INSUFFICIENT_PRIVILEGE


def loaded(names: Names) -> tuple[type[BaseException], ...]:
    """The types among ``names`` whose module this process has imported."""
    found: list[type[BaseException]] = []
    for module, attribute in names:
        mod = sys.modules.get(module)
        if mod is not None:
            found.append(getattr(mod, attribute))
    return tuple(found)


def is_a(exc: BaseException, names: Names) -> bool:
    types = loaded(names)
    return bool(types) and isinstance(exc, types)
