"""meter-consumption: hourly consumption per meter for data aggregators and the operator,
compatible with the legacy clients. Accepts API keys, so its verify_jwt is false.

Two functions, one code: `meter-consumption`, and `meter-consumption-2`, the legacy URL the
data aggregator's client calls (the only function of the legacy config.toml). config.toml gives
the second its own table, whose entrypoint is this file, and its own target below; both answer
the same, each with its own name in its gate and its OpenAPI document.
"""

from __future__ import annotations

from typing import Any

import functions_framework.aio
from starlette.requests import Request

from shared.auth.access import is_operator, require_signed_in
from shared.auth.caller import Caller
from shared.auth.declared import API_KEY, JWT
from shared.auth.gate import gated
from shared.db import timeseries
from shared.totals import caller_key, totals_of
from shared.web.errors import BadRequest, Forbidden, NotFound
from shared.web.params import parse_query, subpath

from .models import ConsumptionQuery
from .queries import page

NAME = "meter-consumption"
LEGACY_NAME = "meter-consumption-2"
NAMES = (NAME, LEGACY_NAME)
MISSING = "Missing required parameters: FROM, TO"  # the legacy message, byte for byte


@functions_framework.aio.http
@gated(NAME, accepts={API_KEY, JWT}, methods=["GET"])
async def meter_consumption(request: Request, caller: Caller) -> Any:
    return await _answer(NAME, request, caller)


@functions_framework.aio.http
@gated(LEGACY_NAME, accepts={API_KEY, JWT}, methods=["GET"])
async def meter_consumption_2(request: Request, caller: Caller) -> Any:
    return await _answer(LEGACY_NAME, request, caller)


async def _answer(name: str, request: Request, caller: Caller) -> Any:
    match subpath(request):
        case []:
            _authorize(caller)
            if not request.query_params.get("FROM") or not request.query_params.get("TO"):
                raise BadRequest(MISSING)
            query = parse_query(request, ConsumptionQuery)
            # One cache for both names: the same rows, so the same totals.
            totals, key = totals_of(NAME), (caller_key(caller), query.filters())
            async with timeseries().work() as conn:
                body = await page(conn, query, known_total=totals.get(key))
            if body["total"] is not None:
                totals.put(key, body["total"])
            return body
        case ["openapi.json"]:
            return openapi(name)
    raise NotFound("no such route")


def _authorize(caller: Caller) -> None:
    require_signed_in(caller)
    if caller.is_service_role or is_operator(caller):
        return
    if caller.organization_type != "DATA_AGGREGATOR":
        raise Forbidden("meter consumption is for data aggregators and the operator")


def openapi(name: str = NAME) -> dict[str, Any]:
    """The OpenAPI document of `name` (either of NAMES: the same operations)."""
    from shared.openapi import build_document

    from .docs import OPERATIONS

    if name not in NAMES:
        raise ValueError(f"{name!r} is not served by this code; it serves {', '.join(NAMES)}")
    legacy = (" Served under the legacy name too: meter-consumption-2 is the URL the legacy"
              " clients call, answered by the same code." if name == LEGACY_NAME else "")
    return build_document(name, title=name, version="1.0.0",
                          accepts={API_KEY, JWT}, operations=OPERATIONS,
                          description="Hourly consumption per meter from the time-series"
                          " plane, for data aggregators (API key) and the operator." + legacy)
