"""The cold-start floor: a bare functions-framework async function with a constant answer."""

from __future__ import annotations

import functions_framework.aio
from starlette.requests import Request


@functions_framework.aio.http
async def bare(request: Request) -> dict[str, bool]:
    return {"ok": True}
