"""Request models of the orders function. Its response models and OpenAPI operations are in
docs.py, which only `openapi()` imports: a cold start builds none of them."""

from __future__ import annotations

from decimal import Decimal
from typing import Annotated, Literal

from pydantic import AwareDatetime, BaseModel, ConfigDict, Field

from shared.web.fields import ISO_8601, JSON_INTEGER, PLAIN_DECIMAL

Status = Literal["INITIALISED", "PENDING", "COMPLETED", "FAILED", "CANCELLED", "TIMED_OUT",
                 "IGNORED"]
OrderType = Literal["ENERGY_TOPUP", "CONNECTION_PAYMENT", "CONNECTION_REFUND",
                    "AGENT_WITHDRAWAL", "AGENT_TOPUP", "ORGANIZATION_TOPUP",
                    "ORGANIZATION_WITHDRAWAL", "CUSTOMER_TOPUP"]
Currency = Literal["USD", "NGN", "EUR"]
PaymentMethod = Literal["CREDIT_CARD", "USSD", "BANK_TRANSFER"]
PaymentChannel = Literal["USSD", "AYRTON", "NIFFLER", "TELEGRAM"]
MeterType = Literal["HPS", "FS"]


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
    grid: int | None = Field(None, ge=1, le=2**31 - 1, description="Only this grid (id)")
    created_from: Annotated[AwareDatetime, ISO_8601] | None = Field(
        None, description="Created at or after")
    created_to: Annotated[AwareDatetime, ISO_8601] | None = Field(
        None, description="Created before")
    include_hidden: bool = Field(
        False, description="Also orders hidden from reporting (operator and owning organization"
        " only)")

    def filters(self) -> tuple[object, ...]:
        """What the total depends on (not the page, its size or its order)."""
        return (self.status, self.type, self.grid, self.created_from, self.created_to,
                self.include_hidden)


class CreateOrder(BaseModel):
    """An energy top-up for a meter, in the meter's currency; the tariff (the meter's own, else
    its grid's for the meter's type) is fixed when the order completes, as the legacy does."""

    model_config = ConfigDict(extra="forbid")

    meter_id: Annotated[int, JSON_INTEGER] = Field(ge=1, le=2**31 - 1)
    amount: Annotated[Decimal, PLAIN_DECIMAL] = Field(
        gt=0, le=Decimal("100000000"), max_digits=12, decimal_places=2, allow_inf_nan=False)
    currency: Currency
    payment_method: PaymentMethod
    payment_channel: PaymentChannel | None = None
    external_reference: str | None = Field(None, min_length=1, max_length=128)
