"""Response models of meter-consumption (legacy names kept) and its OpenAPI operations, for
`openapi()` and `nxt openapi` only: imported when the document is built, never at cold start."""

from __future__ import annotations

from datetime import datetime
from decimal import Decimal

from pydantic import BaseModel, Field

from shared.openapi import Operation

from .models import ConsumptionQuery


class ConsumptionReading(BaseModel):
    timestamp: datetime = Field(description="Start of the hour (UTC)")
    meterId: str = Field(description="The meter's external reference")
    energyConsumptionKwh: Decimal = Field(description="kWh in the hour, 3 decimals")
    timeIntervalMinutes: int = Field(description="Always 60")
    customerAccountId: int | None = Field(description="The customer's account id")


class ConsumptionPage(BaseModel):
    total: int | None = Field(description="Rows in the range (omitted, null, on cursor pages)")
    offset: int
    pageLimit: int
    readings: list[ConsumptionReading]
    next_cursor: str | None = Field(description="Pass as cursor for the next page; null at"
                                    " the end")


OPERATIONS = (
    Operation("GET", "/", "Hourly consumption per meter (legacy-compatible)",
              {200: ("A page of hourly readings", ConsumptionPage)}, query=ConsumptionQuery),
)
