"""Response models of the orders function and its OpenAPI operations, for `openapi()` and
`nxt openapi` only: imported when the document is built, never at cold start."""

from __future__ import annotations

from decimal import Decimal

from pydantic import AwareDatetime, BaseModel, Field

from shared.openapi import Operation

from .models import (
    CreateOrder,
    Currency,
    MeterType,
    OrderListQuery,
    OrderType,
    PaymentChannel,
    PaymentMethod,
    Status,
)


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
    completed_at: AwareDatetime | None = Field(
        description="When its money moved (its first successful transaction)")
    amount: Decimal
    currency: Currency
    order_status: Status
    meta_order_type: OrderType | None
    tariff: Decimal | None = Field(description="kWh tariff, fixed when the order completes")
    tariff_type: MeterType | None
    payment_method: PaymentMethod | None
    payment_channel: PaymentChannel | None
    external_reference: str | None
    meter_id: int | None = Field(description="The meter an energy top-up is for")
    customer_id: int | None = Field(description="That meter's customer")
    grid_id: int | None
    sender_wallet_id: int | None
    receiver_wallet_id: int | None
    is_hidden_from_reporting: bool | None
    kwh: Decimal | None = Field(None, description="kWh credited: amount / tariff rounded up to"
                                " 0.1 kWh (completed energy top-ups)")


_ORDER_ID = {"id": "Order id"}
_TRANSITION = {200: ("The order after the transition", Order),
               404: ("No such order", None),
               409: ("Not a legal transition from the order's current status, or the legacy"
                     " order loop holds the order or its wallets (with Retry-After)", None)}

OPERATIONS = (
    Operation("GET", "/", "List orders (legacy: completed energy top-ups)",
              {200: ("A page of orders", OrderPage)}, query=OrderListQuery),
    Operation("POST", "/", "Create an energy top-up",
              {201: ("The new order", Order),
               409: ("The twin request with this Idempotency-Key is still running, or the"
                     " external_reference is taken", None),
               422: ("Idempotency-Key reused with another body, an unknown meter, a currency"
                     " other than the meter's, or no tariff", None),
               503: ("No BANKING_SYSTEM wallet to pay top-ups from", None)},
              body=CreateOrder,
              headers=(("Idempotency-Key", True, "Unique per operation; replays return the"
                        " original response with Idempotent-Replayed: true"),)),
    Operation("GET", "/{id}", "One order", {200: ("The order", Order),
                                             404: ("No such order", None)},
              path_params=_ORDER_ID),
    Operation("POST", "/{id}/complete", "Complete an order: moves its amount from the sender's"
              " wallet to the receiver's and credits the meter, once",
              _TRANSITION, path_params=_ORDER_ID),
    Operation("POST", "/{id}/fail", "Mark an order failed", _TRANSITION, path_params=_ORDER_ID),
    Operation("POST", "/{id}/cancel", "Cancel an order", _TRANSITION, path_params=_ORDER_ID),
)
