"""Who may read and write what, decided from the verified caller before any query runs.

Row-level security is the backstop: it bounds every query to the caller's rows even when these
checks or a query's filter are wrong.
"""

from __future__ import annotations

from enum import Enum

from shared.auth.caller import Caller
from shared.settings import get_settings
from shared.web.errors import Forbidden, Unauthorized


class View(Enum):
    NAMED = "named"  # the operator, the owning organization, the service role
    MASKED = "masked"  # lenders: names masked, hidden rows absent


def require_signed_in(caller: Caller) -> None:
    if caller.is_anon:
        raise Unauthorized("sign in: this function needs a user or service-role JWT")


def is_operator(caller: Caller) -> bool:
    return (caller.organization_id is not None
            and caller.organization_id == get_settings().operator_organization_id)


def reporting_view(caller: Caller, what: str) -> View:
    """The view of customers and orders a caller gets; 401/403 for everyone else."""
    require_signed_in(caller)
    if caller.is_service_role or is_operator(caller):
        return View.NAMED
    if caller.organization_id is None:
        raise Forbidden(f"reading {what} needs an organization; this account has none")
    if caller.organization_type == "LENDER":
        return View.MASKED
    if caller.organization_type == "SOLAR_DEVELOPER":
        return View.NAMED
    raise Forbidden(f"organizations of type {caller.organization_type} may not read {what}")


def require_operator_or_service(caller: Caller, action: str) -> None:
    require_signed_in(caller)
    if not (caller.is_service_role or is_operator(caller)):
        raise Forbidden(f"{action} is for the operator and the service role")
