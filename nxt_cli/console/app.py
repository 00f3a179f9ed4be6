"""The console's routes, beside the functions in the local gateway.

Access: the operator or the service role only. A JWT arrives once, in `?token=` (the link
`nxt dev` prints) or the form of the sign-in page, and is kept in an HttpOnly, SameSite=Strict
cookie, so the address bar and the history keep no token and no other site can post "run now".
Every request is judged again from the token and the account as the database has it now.
"""

from __future__ import annotations

import asyncio
import sys
import time
from datetime import UTC, datetime
from pathlib import Path
from typing import Any
from urllib.parse import parse_qs

from starlette.applications import Starlette
from starlette.requests import Request
from starlette.responses import HTMLResponse, RedirectResponse, Response
from starlette.routing import Route

from nxt_cli.console.requests import RequestLog

COOKIE = "nxt_console"
_HEADERS = {"cache-control": "no-store", "referrer-policy": "no-referrer",
            "content-security-policy": "default-src 'none'; style-src 'unsafe-inline';"
                                       " img-src 'self'; form-action 'self'"}


async def _allowed(token: str | None) -> str | None:
    """None when `token` is the service role's or an operator's; else why not."""
    from shared.auth.access import is_operator
    from shared.auth.accounts import current_caller
    from shared.auth.caller import caller_from_claims
    from shared.auth.configured import jwt_verifier
    from shared.auth.errors import AuthError, AuthUnavailable
    from shared.db import transactional

    if not token:
        return "sign in with an operator JWT or the service role key"
    try:
        caller = caller_from_claims(await jwt_verifier().averify(token))
    except (AuthError, AuthUnavailable) as exc:
        return f"that token was refused: {exc}"
    if caller.is_service_role:
        return None
    caller = await current_caller(caller, transactional())
    return None if is_operator(caller) else "the console is for the operator only"


def _page(html: str, status: int = 200) -> HTMLResponse:
    return HTMLResponse(html, status_code=status, headers=_HEADERS)


def _sign_in(why: str, status: int) -> HTMLResponse:
    from html import escape

    from nxt_cli.console.page import CSS

    return _page("<!doctype html><html lang='en'><head><meta charset='utf-8'>"
                 "<meta name='viewport' content='width=device-width, initial-scale=1'>"
                 f"<title>nxt console: sign in</title><style>{CSS}</style></head><body><main>"
                 f"<section><h2>nxt console</h2><p class='bad'>{escape(why)}</p>"
                 "<form method='post' action='/console/sign-in'><label>token "
                 "<input type='password' name='token' autocomplete='off'></label> "
                 "<button type='submit'>sign in</button></form></section></main></body>"
                 "</html>", status)


def _signed_in(token: str) -> Response:
    response = RedirectResponse("/", status_code=303, headers=_HEADERS)
    response.set_cookie(COOKIE, token, httponly=True, samesite="strict", path="/")
    return response


def build(root: Path, log: RequestLog) -> Starlette:
    async def home(request: Request) -> Response:
        offered = request.query_params.get("token")
        if offered is not None:
            why = await _allowed(offered)
            return _sign_in(why, 403) if why else _signed_in(offered)
        why = await _allowed(request.cookies.get(COOKIE))
        if why:
            return _sign_in(why, 401 if not request.cookies.get(COOKIE) else 403)
        from nxt_cli.console.page import render
        from nxt_cli.console.state import gather

        return _page(render(await gather(root, log)))

    async def sign_in(request: Request) -> Response:
        body = parse_qs((await request.body()).decode("utf-8", "replace"))
        token = (body.get("token") or [""])[0].strip()
        why = await _allowed(token)
        return _sign_in(why, 403) if why else _signed_in(token)

    async def run_now(request: Request) -> Response:
        why = await _allowed(request.cookies.get(COOKIE))
        if why:
            return _sign_in(why, 403)
        from shared.jobs import SCHEDULES

        name = request.path_params["name"]
        if name not in SCHEDULES:
            return _sign_in(f"no job named {name!r}", 404)
        await run_job(name)
        return RedirectResponse("/#jobs", status_code=303, headers=_HEADERS)

    async def no_icon(request: Request) -> Response:
        return Response(status_code=204)  # the browser asks; the page has none

    return Starlette(routes=[
        Route("/", home, methods=["GET"]),
        Route("/favicon.ico", no_icon, methods=["GET"]),
        Route("/console/sign-in", sign_in, methods=["POST"]),
        Route("/console/jobs/{name}/run", run_now, methods=["POST"]),
    ])


async def run_job(name: str) -> dict[str, Any]:
    """The job through its real target, as `nxt invoke` runs it, recorded with its result."""
    from nxt_cli.console import runs
    from nxt_cli.scheduler import job_result, outcome

    started, clock = datetime.now(UTC), time.monotonic()
    proc = await asyncio.create_subprocess_exec(
        sys.executable, "-m", "nxt_cli.main", "invoke", name,
        stdout=asyncio.subprocess.PIPE, stderr=asyncio.subprocess.PIPE)
    out, err = await proc.communicate()
    stdout, stderr = out.decode(errors="replace"), err.decode(errors="replace")
    run = {"job": name, "started": started, "seconds": round(time.monotonic() - clock, 2),
           "status": outcome(proc.returncode or 0, stdout, stderr),
           "result": job_result(stdout), "by": "console"}
    runs.record(run)
    return run
