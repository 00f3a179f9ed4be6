"""The local stand-in for the Supabase gateway: `/functions/v1/<name>[/...]` to each function's
own functions-framework app. The gate itself lives in each function, not here, so what passes
locally passes deployed."""

from __future__ import annotations

import json
import re
from collections.abc import Awaitable, Callable, Mapping
from typing import Any

Scope = dict[str, Any]
ASGIApp = Callable[[Scope, Callable[[], Awaitable[Any]], Callable[[Any], Awaitable[None]]],
                   Awaitable[None]]

_ROUTE = re.compile(r"^/functions/v1/(?P<name>[A-Za-z0-9_-]+)(?P<rest>/.*)?$")


class Gateway:
    """`console`: the app for `/` and `/console/...` (the operator console), when served."""

    def __init__(self, functions: Mapping[str, ASGIApp], console: ASGIApp | None = None
                 ) -> None:
        self.functions = dict(functions)
        self.console = console

    async def __call__(self, scope: Scope, receive: Any, send: Any) -> None:
        if scope["type"] == "lifespan":
            await self._lifespan(receive, send)
            return
        if scope["type"] != "http":
            return
        if self.console is not None and (scope["path"] in ("/", "/favicon.ico")
                                         or scope["path"].startswith("/console/")):
            await self.console(scope, receive, send)
            return
        match = _ROUTE.match(scope["path"])
        app = self.functions.get(match["name"]) if match else None
        if match is None or app is None:
            await _json(send, 404, {"error": "function not found"})
            return
        rest = match["rest"] or "/"
        prefix = scope["path"][: len(scope["path"]) - len(match["rest"] or "")]
        inner = dict(scope, path=rest, raw_path=rest.encode(),
                     root_path=scope.get("root_path", "") + prefix)
        await app(inner, receive, send)

    async def _lifespan(self, receive: Any, send: Any) -> None:
        while True:
            message = await receive()
            if message["type"] == "lifespan.startup":
                await send({"type": "lifespan.startup.complete"})
            elif message["type"] == "lifespan.shutdown":
                from shared.db import close_all

                await close_all()
                await send({"type": "lifespan.shutdown.complete"})
                return


class ServiceRoleOnly:
    """A scheduled job's route, locally: only a service-role JWT may run it.

    Deployed, a job is a Pub/Sub-triggered function that IAM keeps private; the local gateway
    would otherwise run it for anyone who can reach the port (its config says verify_jwt =
    false: it has no caller). `nxt dev` runs jobs through `nxt invoke`, not this route; the
    route is for running one by hand, as the service role.
    """

    def __init__(self, app: ASGIApp) -> None:
        self.app = app

    async def __call__(self, scope: Scope, receive: Any, send: Any) -> None:
        if scope["type"] == "http" and not await _is_service_role(scope):
            await _json(send, 401, {"error": "a scheduled job: send a service-role JWT to run"
                                    " it by hand (or use `nxt invoke`)"},
                        [(b"www-authenticate", b"Bearer")])
            return
        await self.app(scope, receive, send)


async def _is_service_role(scope: Scope) -> bool:
    from shared.auth.configured import jwt_verifier
    from shared.auth.credentials import bearer_token
    from shared.auth.errors import AuthError, AuthUnavailable

    headers = {k.decode("latin-1").lower(): v.decode("latin-1")
               for k, v in scope.get("headers", [])}
    token = bearer_token(headers.get("authorization"))
    if token is None:
        return False
    try:
        claims = await jwt_verifier().averify(token)
    except (AuthError, AuthUnavailable):
        return False
    return claims.get("role") == "service_role"


async def _json(send: Any, status: int, body: dict[str, Any],
                headers: list[tuple[bytes, bytes]] | None = None) -> None:
    payload = json.dumps(body).encode()
    await send({"type": "http.response.start", "status": status,
                "headers": [(b"content-type", b"application/json"),
                            (b"content-length", str(len(payload)).encode()),
                            *(headers or [])]})
    await send({"type": "http.response.body", "body": payload})
