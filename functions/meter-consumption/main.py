"""meter-consumption: hourly consumption per meter for data aggregators and the operator,
compatible with the legacy clients. Accepts API keys, so its verify_jwt is false."""

from __future__ import annotations

from typing import Any

import functions_framework.aio
from starlette.requests import Request

from shared.access import is_operator, require_signed_in
from shared.auth import Caller
from shared.db import timeseries
from shared.gate import API_KEY, JWT, gated
from shared.http import BadRequest, Forbidden, NotFound, parse_query, subpath
from shared.totals import caller_key, totals_of

from .models import ConsumptionQuery
from .queries import page

NAME = "meter-consumption"
MISSING = "Missing required parameters: FROM, TO"  # the legacy message, byte for byte


@functions_framework.aio.http
@gated(NAME, accepts={API_KEY, JWT}, methods=["GET"])
async def meter_consumption(request: Request, caller: Caller) -> Any:
    match subpath(request):
        case []:
            _authorize(caller)
            if not request.query_params.get("FROM") or not request.query_params.get("TO"):
                raise BadRequest(MISSING)
            query = parse_query(request, ConsumptionQuery)
            totals, key = totals_of(NAME), (caller_key(caller), query.filters())
            async with timeseries().work() as conn:
                body = await page(conn, query, known_total=totals.get(key))
            if body["total"] is not None:
                totals.put(key, body["total"])
            return body
        case ["openapi.json"]:
            return openapi()
    raise NotFound("no such route")


def _authorize(caller: Caller) -> None:
    require_signed_in(caller)
    if caller.is_service_role or is_operator(caller):
        return
    if caller.organization_type != "DATA_AGGREGATOR":
        raise Forbidden("meter consumption is for data aggregators and the operator")


def openapi() -> dict[str, Any]:
    from shared.openapi import build_document

    from .docs import OPERATIONS

    return build_document(NAME, title="meter-consumption", version="1.0.0",
                          accepts={API_KEY, JWT}, operations=OPERATIONS,
                          description="Hourly consumption per meter from the time-series"
                          " plane, for data aggregators (API key) and the operator.")
