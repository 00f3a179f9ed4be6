"""The per-function gate: `verify_jwt` from supabase/config.toml, enforced by the function itself,
then the credentials the function declares it accepts.

With `verify_jwt = true` a request without a valid JWT (of any role, anon included) is refused
with 401 before the handler runs, exactly as the Supabase gateway would; CORS preflight passes,
as it does on Supabase. So a function deployed alone (Cloud Run, Cloud Functions) behaves as it
does behind the gateway.
"""

from __future__ import annotations

import functools
from collections.abc import Awaitable, Callable, Iterable, Sequence
from typing import Any

from starlette.requests import Request

from shared.auth.caller import ANONYMOUS, Caller, caller_from_claims
from shared.auth.credentials import bearer_token
from shared.auth.declared import (
    API_KEY,
    DECLARED,
    JWT,
    KINDS,
    NONE,
    SERVICE_ROLE,
    GateSpec,
    target_name,
)
from shared.auth.errors import AuthError, AuthUnavailable
from shared.web.endpoint import endpoint
from shared.web.errors import Forbidden, HTTPError, ServiceUnavailable, Unauthorized
from shared.web.limits import DEFAULT_MAX_BODY_BYTES

GatedHandler = Callable[[Request, Caller], Awaitable[Any]]


def _auth_error(exc: AuthError | AuthUnavailable) -> HTTPError:
    if isinstance(exc, AuthUnavailable):
        return ServiceUnavailable(exc.message, retry_after=30)
    return Unauthorized(exc.message)


async def _verified_claims(token: str | None) -> dict[str, Any] | None:
    """The claims of the bearer JWT; None when there is none or it is in our API key shape.
    Raises HTTPError 401 (invalid) or 503 (keys unavailable)."""
    from shared.auth.api_keys import is_supabase_platform_key, looks_like_api_key
    from shared.auth.configured import jwt_verifier

    if token is None or looks_like_api_key(token):
        return None
    if is_supabase_platform_key(token):
        # As on the platform: publishable and secret keys are not JWTs and never pass the gate.
        raise Unauthorized("invalid JWT: Supabase API keys (sb_...) are not JWTs")
    try:
        return await jwt_verifier().averify(token)
    except (AuthError, AuthUnavailable) as exc:
        raise _auth_error(exc) from None


async def _key_caller(key: str) -> Caller:
    from shared.auth.key_lookup import caller_from_api_key
    from shared.db import transactional

    try:
        return await caller_from_api_key(key, transactional())
    except AuthError as exc:
        raise _auth_error(exc) from None


async def _legacy_key_caller(token: str) -> Caller | None:
    """The caller of a bearer that may be a legacy key; None when no key has that value (the
    bearer is then judged as the JWT it looks like)."""
    from shared.auth.key_lookup import MSG_BAD_API_KEY

    try:
        return await _key_caller(token)
    except HTTPError as refused:
        if refused.status == 401 and refused.message == MSG_BAD_API_KEY:
            return None
        raise


async def _live(caller: Caller) -> Caller:
    """The caller as its account is now: access never rests on claims that went stale."""
    from shared.auth.accounts import current_caller
    from shared.db import transactional

    return await current_caller(caller, transactional())


async def resolve_caller(request: Request, spec: GateSpec, verify_jwt: bool) -> Caller:
    """Apply the gate and the function's declaration; raise HTTPError 401/503 when refused."""
    from shared.auth.credentials import api_key_from_headers

    token = bearer_token(request.headers.get("authorization"))
    if verify_jwt and token is None:
        raise Unauthorized("missing authorization header")
    takes_keys = API_KEY in spec.accepts
    try:
        claims = await _verified_claims(token)
    except HTTPError as refused:
        # Not a JWT we accept. A function that takes API keys looks the bearer up as one: the
        # legacy keys have no shape of their own (some are JWT-shaped strings). Unknown as a
        # key too, it is refused as the JWT it was.
        if verify_jwt or not takes_keys or refused.status not in (401, 503) or token is None:
            raise
        caller = await _legacy_key_caller(token)
        if caller is None:
            raise
        return caller
    if verify_jwt and claims is None:
        # The bearer credential is not a JWT (an API key, an sb_ key): the gateway refuses it.
        raise Unauthorized("invalid JWT")

    api_key = api_key_from_headers(request.headers) if takes_keys else None
    if api_key is not None:
        return await _key_caller(api_key)
    if claims is not None:
        from shared.auth.roles import REQUEST_ROLES

        try:
            caller = caller_from_claims(claims)
        except AuthError as exc:
            raise _auth_error(exc) from None
        if takes_keys and caller.is_anon and token is not None:
            # A valid JWT of no user: on a function that takes keys it may be a legacy key
            # issued as a JWT; as a JWT it would only be refused.
            caller = await _legacy_key_caller(token) or caller
        # A signed token may carry any role (Supabase lets admins set custom ones); requests
        # run only as the three roles the policies know, so the others go no further.
        if caller.role in REQUEST_ROLES and (
                JWT in spec.accepts or (SERVICE_ROLE in spec.accepts and caller.is_service_role)):
            return await _live(caller)
        raise Forbidden("this function does not accept this role")
    if NONE in spec.accepts:
        return ANONYMOUS
    wanted = "an API key or a bearer JWT" if takes_keys else "a bearer JWT"
    raise Unauthorized(f"missing credentials: send {wanted}")


def gated(
    name: str,
    *,
    accepts: Iterable[str],
    methods: Sequence[str],
    max_body_bytes: int = DEFAULT_MAX_BODY_BYTES,
) -> Callable[[GatedHandler], Callable[[Request], Awaitable[Any]]]:
    """Decorate `async def handler(request, caller)` as function `name` of config.toml.

    Reads the function's table at import (cold start): a missing or malformed table fails
    the deployment instead of serving with the wrong gate.
    """
    kinds = frozenset(accepts)
    unknown = kinds - KINDS
    if unknown or not kinds:
        raise ValueError(f"accepts must be a non-empty subset of {sorted(KINDS)}")
    spec = GateSpec(name=name, target=target_name(name), accepts=kinds)
    DECLARED[name] = spec

    from shared.supabase_config import function_settings

    verify_jwt = function_settings(name).verify_jwt

    def decorate(handler: GatedHandler) -> Callable[[Request], Awaitable[Any]]:
        @endpoint(methods, max_body_bytes=max_body_bytes)
        @functools.wraps(handler)
        async def wrapper(request: Request) -> Any:
            caller = await resolve_caller(request, spec, verify_jwt)
            return await handler(request, caller)

        wrapper.__nxt_gate__ = spec  # type: ignore[attr-defined]
        wrapper.__name__ = spec.target
        return wrapper

    return decorate
