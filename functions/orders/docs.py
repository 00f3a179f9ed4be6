"""Response models of the orders function and its OpenAPI operations, for `openapi()` and
`nxt openapi` only: imported when the document is built, never at cold start."""

from __future__ import annotations

from decimal import Decimal

from pydantic import AwareDatetime, BaseModel, Field

from shared.openapi import Operation

from .models import CreateOrder, Currency, OrderListQuery, OrderType, PaymentMethod, Status


class OrderEntry(BaseModel):
    id: int
    created_at: AwareDatetime
    amount: Decimal
    order_status: Status
    currency: Currency
    tariff: Decimal | None
    grid: str | None = Field(description="The grid's name")
    customer: str | None = Field(description="The customer's name; masked for lenders")


class OrderPage(BaseModel):
    total: int
    page: int
    size: int
    total_pages: int
    entries: list[OrderEntry]


class Order(BaseModel):
    id: int
    created_at: AwareDatetime
    updated_at: AwareDatetime
    completed_at: AwareDatetime | None
    amount: Decimal
    currency: Currency
    order_status: Status
    meta_order_type: OrderType
    tariff: Decimal | None
    payment_method: PaymentMethod | None
    payment_channel: str | None
    external_reference: str | None
    meter_id: int | None
    customer_id: int | None
    grid_id: int | None
    kwh: Decimal | None = Field(None, description="kWh credited (completed energy top-ups)")


_ORDER_ID = {"id": "Order id"}
_TRANSITION = {200: ("The order after the transition", Order),
               404: ("No such order", None),
               409: ("Not a legal transition from the order's current status", None)}

OPERATIONS = (
    Operation("GET", "/", "List orders (legacy: completed energy top-ups)",
              {200: ("A page of orders", OrderPage)}, query=OrderListQuery),
    Operation("POST", "/", "Create an energy top-up",
              {201: ("The new order", Order),
               409: ("The twin request with this Idempotency-Key is still running", None),
               422: ("Idempotency-Key reused with another body, or an unknown meter", None)},
              body=CreateOrder,
              headers=(("Idempotency-Key", True, "Unique per operation; replays return the"
                        " original response with Idempotent-Replayed: true"),)),
    Operation("GET", "/{id}", "One order", {200: ("The order", Order),
                                             404: ("No such order", None)},
              path_params=_ORDER_ID),
    Operation("POST", "/{id}/complete", "Complete an order (credits the meter once)",
              _TRANSITION, path_params=_ORDER_ID),
    Operation("POST", "/{id}/fail", "Mark an order failed", _TRANSITION, path_params=_ORDER_ID),
    Operation("POST", "/{id}/cancel", "Cancel an order", _TRANSITION, path_params=_ORDER_ID),
)
