"""Response models of meter-consumption (legacy names kept) and its OpenAPI operations, for
`openapi()` and `nxt openapi` only: imported when the document is built, never at cold start."""

from __future__ import annotations

from pydantic import BaseModel, Field

from shared.openapi import Operation

from .models import ConsumptionQuery


class ConsumptionReading(BaseModel):
    timestamp: str = Field(description="Start of the hour, UTC, as the legacy function printed"
                           " it: YYYY-MM-DDTHH:MM:SS.mmmZ",
                           pattern=r"^\d{4}-\d{2}-\d{2}T\d{2}:\d{2}:\d{2}\.\d{3}Z$")
    meterId: str | None = Field(description="The meter's external reference")
    energyConsumptionKwh: float | None = Field(
        description="kWh in the hour, rounded to 3 decimals as the legacy JavaScript did"
        " (Math.round(kWh * 1000) / 1000: halves toward +infinity, on the double); null only"
        " for an infinite value a legacy writer left")
    timeIntervalMinutes: int = Field(description="Always 60")
    customerAccountId: int | None = Field(description="The customer's id (customers.id), as"
                                          " the legacy function returned it")


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
