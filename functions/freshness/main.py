"""freshness: for the operator, how far behind each snapshot table is (GET)."""

from __future__ import annotations

from typing import Any

import functions_framework.aio
from starlette.requests import Request

from shared.auth.access import require_operator_or_service
from shared.auth.caller import Caller
from shared.auth.declared import JWT
from shared.auth.gate import gated
from shared.db import timeseries
from shared.web.errors import NotFound
from shared.web.params import subpath

NAME = "freshness"


@functions_framework.aio.http
@gated(NAME, accepts={JWT}, methods=["GET"])
async def freshness(request: Request, caller: Caller) -> Any:
    match subpath(request):
        case []:
            require_operator_or_service(caller, "the freshness report")
            from timeseries.freshness import report

            async with timeseries().work() as conn:
                tables = [f.as_dict() for f in await report(conn)]
            return {"ok": all(t["status"] == "ok" for t in tables), "tables": tables}
        case ["openapi.json"]:
            return openapi()
    raise NotFound("no such route")


def openapi() -> dict[str, Any]:
    from shared.openapi import build_document

    # Only the document needs the response models (and pydantic): not a cold start.
    from .models import OPERATIONS

    return build_document(NAME, title="freshness", version="1.0.0", accepts={JWT},
                          description="Freshness of the snapshot tables, for the operator.",
                          operations=OPERATIONS)
