"""Creating an energy top-up: what must hold before the order is written, each refusal naming
the field it is about."""

from __future__ import annotations

from typing import Any

from psycopg import AsyncConnection

from shared.web.errors import Conflict, ServiceUnavailable, UnprocessableEntity

from .models import CreateOrder
from .queries import banking_wallet, insert_topup, meter_for_topup, reference_taken


async def create_topup(conn: AsyncConnection[Any], body: CreateOrder) -> dict[str, Any]:
    meter = await meter_for_topup(conn, body.meter_id)
    if meter is None:
        raise UnprocessableEntity(f"field 'meter_id': meter {body.meter_id} not found")
    # A meter is paid in its connection's currency; no conversion is configured, so a top-up
    # in another currency would be credited at a tariff it was never priced in.
    if body.currency != meter["currency"]:
        raise UnprocessableEntity(f"field 'currency': meter {body.meter_id} is paid in"
                                  f" {meter['currency']}, not {body.currency}")
    if not meter["tariff"] or meter["tariff"] <= 0:
        raise UnprocessableEntity(f"field 'meter_id': meter {body.meter_id} has no kWh tariff"
                                  f" (its own or grid {meter['grid_id']}'s); cannot top up")
    if body.external_reference and await reference_taken(conn, body.external_reference):
        raise Conflict(f"field 'external_reference': an order with reference"
                       f" {body.external_reference!r} already exists")
    sender = await banking_wallet(conn)
    if sender is None:
        raise ServiceUnavailable("top-ups are unavailable: there is no BANKING_SYSTEM wallet to"
                                 " pay them from", retry_after=60)
    return await insert_topup(conn, body, meter, sender)
