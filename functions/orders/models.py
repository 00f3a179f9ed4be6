"""Request and response models of the orders function, and its OpenAPI operations."""

from __future__ import annotations

from decimal import Decimal
from typing import Annotated, Literal

from pydantic import AwareDatetime, BaseModel, ConfigDict, Field

from shared.inputs import ISO_8601, NOT_BOOL
from shared.openapi import Operation

Status = Literal["INITIALISED", "PENDING", "COMPLETED", "FAILED", "CANCELLED", "TIMED_OUT",
                 "IGNORED"]
OrderType = Literal["ENERGY_TOPUP", "CONNECTION_PAYMENT", "CONNECTION_REFUND",
                    "AGENT_WITHDRAWAL", "AGENT_TOPUP", "ORGANIZATION_TOPUP",
                    "ORGANIZATION_WITHDRAWAL"]
Currency = Literal["USD", "NGN", "EUR"]
PaymentMethod = Literal["CREDIT_CARD", "USSD", "BANK_TRANSFER"]


class OrderListQuery(BaseModel):
    model_config = ConfigDict(extra="ignore")

    page: int = Field(1, ge=1, le=1_000_000, description="Page number, from 1")
    size: int = Field(100, ge=1, le=1000, description="Entries per page")
    order: Literal["id", "created_at", "updated_at", "amount"] = Field(
        "id", description="Sort field")
    ascending: bool = Field(True, description="Sort direction")
    status: Status | None = Field(
        None, description="Order status (default COMPLETED); operator and owning organization")
    type: OrderType | None = Field(
        None, description="Order type (default ENERGY_TOPUP); operator and owning organization")
    grid: int | None = Field(None, ge=1, le=2**63 - 1, description="Only this grid (id)")
    created_from: Annotated[AwareDatetime, ISO_8601] | None = Field(
        None, description="Created at or after")
    created_to: Annotated[AwareDatetime, ISO_8601] | None = Field(
        None, description="Created before")


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


class CreateOrder(BaseModel):
    """An energy top-up for a meter; the tariff comes from the meter's grid."""

    model_config = ConfigDict(extra="forbid")

    meter_id: Annotated[int, NOT_BOOL] = Field(ge=1, le=2**63 - 1)
    amount: Decimal = Field(gt=0, le=Decimal("100000000"), max_digits=12, decimal_places=2,
                            allow_inf_nan=False)
    currency: Currency
    payment_method: PaymentMethod
    payment_channel: str = Field(min_length=1, max_length=64)
    external_reference: str | None = Field(None, min_length=1, max_length=128)


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
