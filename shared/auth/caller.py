"""Who is calling, as established by a verified JWT or an API key."""

from __future__ import annotations

import re
from collections.abc import Mapping
from dataclasses import dataclass, field
from types import MappingProxyType
from typing import Any

from shared.auth.errors import MSG_MALFORMED, MSG_SUBJECT, AuthError

# organization_id becomes a bigint query parameter; anything outside bigint is not an id.
_MAX_BIGINT = 2**63 - 1




@dataclass(frozen=True)
class Caller:
    """Who is calling, as established by a verified JWT or an API key."""

    role: str
    user_id: str | None
    organization_id: int | None
    organization_type: str | None
    # Excluded from repr (claims hold e-mail addresses and phone numbers that do not belong in
    # logs) and from eq/hash (a dict is unhashable, and identity is in the fields above).
    claims: Mapping[str, Any] = field(repr=False, compare=False)
    via: str = "jwt"
    api_key_id: int | None = None
    account_id: int | None = None

    @property
    def is_service_role(self) -> bool:
        return self.role == "service_role"

    @property
    def is_anon(self) -> bool:
        return self.role == "anon"


def _organization_id(value: object) -> int | None:
    # bool is an int subclass; `true` is not organisation 1.
    if isinstance(value, bool):
        return None
    if isinstance(value, int):
        number = value
    elif isinstance(value, str) and 0 < len(value) <= 19 and value.isascii() and value.isdigit():
        # isascii() first: str.isdigit() also accepts digits such as "²" that int() refuses.
        number = int(value)
    else:
        return None
    return number if 0 < number <= _MAX_BIGINT else None


_UUID = re.compile(r"[0-9a-fA-F]{8}-[0-9a-fA-F]{4}-[0-9a-fA-F]{4}-[0-9a-fA-F]{4}-[0-9a-fA-F]{12}")


def caller_from_claims(claims: Mapping[str, Any]) -> Caller:
    """Build a :class:`Caller` from verified JWT claims.

    ``app_metadata`` is the only place organisation data is read from: it is writable only by
    the service role and the custom access token hook, whereas ``user_metadata`` is writable
    by the user and must never grant anything.
    """
    role = claims.get("role")
    if not isinstance(role, str) or not role:
        raise AuthError(MSG_MALFORMED)
    sub = claims.get("sub")
    # Supabase Auth's subjects are user ids: the database casts them to uuid (auth.uid()), so
    # anything else is refused here rather than failing a query later.
    if sub is not None and not (isinstance(sub, str) and _UUID.fullmatch(sub)):
        raise AuthError(MSG_SUBJECT)
    app_metadata = claims.get("app_metadata")
    if not isinstance(app_metadata, Mapping):
        app_metadata = {}
    org_type = app_metadata.get("organization_type")
    return Caller(
        role=role,
        user_id=sub if isinstance(sub, str) and sub else None,
        organization_id=_organization_id(app_metadata.get("organization_id")),
        organization_type=org_type if isinstance(org_type, str) and org_type else None,
        # A read-only copy: the caller is frozen, and its claims should not be mutable
        # through a reference the verifier's caller still holds.
        claims=MappingProxyType(dict(claims)),
        via="jwt",
    )


ANONYMOUS = Caller(role="anon", user_id=None, organization_id=None, organization_type=None,
                   claims={"role": "anon"}, via="none")
