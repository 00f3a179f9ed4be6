"""orders: the order list (legacy-compatible for lenders), energy top-ups with idempotency
keys, and the lifecycle transitions that credit meters exactly once."""

from __future__ import annotations

import math
from typing import Any

import functions_framework.aio
from starlette.requests import Request

from shared.auth.access import View, reporting_view, require_operator_or_service
from shared.auth.caller import Caller
from shared.auth.declared import JWT
from shared.auth.gate import gated
from shared.db import as_caller, transactional
from shared.totals import caller_key, totals_of
from shared.web.bodies import parse_body
from shared.web.errors import Conflict, Forbidden, NotFound
from shared.web.params import parse_query, path_id, subpath

from .models import CreateOrder, OrderListQuery
from .queries import TRANSITIONS, TransitionRefused, get_order, list_orders, transition
from .topups import create_topup

NAME = "orders"


@functions_framework.aio.http
@gated(NAME, accepts={JWT}, methods=["GET", "POST"])
async def orders(request: Request, caller: Caller) -> Any:
    match request.method, subpath(request):
        case "GET", []:
            return await _list(parse_query(request, OrderListQuery), caller)
        case "GET", ["openapi.json"]:
            return openapi()
        case "GET", [raw_id]:
            return await _one(path_id(raw_id), caller)
        case "POST", []:
            return await _create(request, caller)
        case "POST", [raw_id, action] if action in TRANSITIONS:
            return await _transition(path_id(raw_id), action, caller)
    raise NotFound("no such route")


async def _list(query: OrderListQuery, caller: Caller) -> dict[str, Any]:
    view = reporting_view(caller, "orders")
    if view is View.MASKED and (query.status not in (None, "COMPLETED")
                                or query.type not in (None, "ENERGY_TOPUP")):
        raise Forbidden("lenders see completed energy top-ups only")
    if view is View.MASKED and query.include_hidden:
        raise Forbidden("include_hidden is for the operator and the owning organization")
    totals = totals_of(NAME)
    key = (caller_key(caller), view, query.filters())
    async with as_caller(caller) as conn:
        total, entries = await list_orders(conn, query, named=view is View.NAMED,
                                           known_total=totals.get(key))
    totals.put(key, total)
    return {"total": total, "page": query.page, "size": query.size,
            "total_pages": math.ceil(total / query.size), "entries": entries}


async def _one(order_id: int, caller: Caller) -> dict[str, Any]:
    if reporting_view(caller, "orders") is View.MASKED:
        raise Forbidden("single orders are for the operator and the owning organization")
    async with as_caller(caller) as conn:
        order = await get_order(conn, order_id)
    if order is None:
        raise NotFound(f"order {order_id} not found")
    return order


async def _create(request: Request, caller: Caller) -> Any:
    from shared.web import idempotency  # only creating orders needs it: not every cold start

    require_operator_or_service(caller, "creating orders")
    key = idempotency.key_from_headers(request.headers)
    body = await parse_body(request, CreateOrder)
    payload = body.model_dump(mode="json")
    async with idempotency.guard(transactional(), caller, key, payload) as claim:
        if claim.replay is not None:
            return claim.replay
        async with as_caller(caller) as conn:
            order = await create_topup(conn, body)
            response = await claim.finish(conn, 201, order)
    totals_of(NAME).clear()  # after the commit, so no count can cache the old total
    return response


async def _transition(order_id: int, action: str, caller: Caller) -> dict[str, Any]:
    require_operator_or_service(caller, "changing an order's status")
    try:
        async with as_caller(caller) as conn:
            order = await transition(conn, order_id, action)
    except TransitionRefused as refused:
        raise Conflict(refused.message, {"Retry-After": "1"} if refused.retry else None) from None
    totals_of(NAME).clear()
    if order is None:
        raise NotFound(f"order {order_id} not found")
    return order


def openapi() -> dict[str, Any]:
    from shared.openapi import build_document

    from .docs import OPERATIONS

    return build_document(NAME, title="orders", version="1.0.0", accepts={JWT},
                          description="Orders: the legacy lender listing, energy top-ups and"
                          " their lifecycle.", operations=OPERATIONS)
