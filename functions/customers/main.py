"""customers: the customer list and single customers, legacy-compatible for lenders."""

from __future__ import annotations

import math
from typing import Any

import functions_framework.aio
from starlette.requests import Request

from shared.auth.access import View, reporting_view
from shared.auth.caller import Caller
from shared.auth.declared import JWT
from shared.auth.gate import gated
from shared.db import as_caller
from shared.totals import caller_key, totals_of
from shared.web.errors import Forbidden, NotFound
from shared.web.params import parse_query, path_id, subpath

from .models import CustomerListQuery
from .queries import get_customer, list_customers

NAME = "customers"


@functions_framework.aio.http
@gated(NAME, accepts={JWT}, methods=["GET"])
async def customers(request: Request, caller: Caller) -> Any:
    match subpath(request):
        case []:
            return await _list(parse_query(request, CustomerListQuery), caller)
        case ["openapi.json"]:
            return openapi()
        case [raw_id]:
            return await _one(path_id(raw_id), caller)
    raise NotFound("no such route")


async def _list(query: CustomerListQuery, caller: Caller) -> dict[str, Any]:
    view = reporting_view(caller, "customers")
    if query.include_hidden and view is View.MASKED:
        raise Forbidden("include_hidden is for the operator and the owning organization")
    totals = totals_of(NAME)
    key = (caller_key(caller), view, query.filters())
    async with as_caller(caller) as conn:
        total, entries = await list_customers(conn, query, masked=view is View.MASKED,
                                              known_total=totals.get(key))
    totals.put(key, total)
    return {"total": total, "page": query.page, "size": query.size,
            "total_pages": math.ceil(total / query.size), "entries": entries}


async def _one(customer_id: int, caller: Caller) -> dict[str, Any]:
    view = reporting_view(caller, "customers")
    async with as_caller(caller) as conn:
        customer = await get_customer(conn, customer_id, masked=view is View.MASKED)
    if customer is None:
        raise NotFound(f"customer {customer_id} not found")
    return customer


def openapi() -> dict[str, Any]:
    from shared.openapi import build_document

    from .docs import OPERATIONS

    return build_document(NAME, title="customers", version="1.0.0", accepts={JWT},
                          description="Customers of the mini-grids, for the operator, the owning"
                          " organization, and lenders (names masked).", operations=OPERATIONS)
