"""Request and response models of meter-readings, and its OpenAPI operations."""

from __future__ import annotations

from decimal import Decimal
from typing import Annotated

from pydantic import AwareDatetime, BaseModel, ConfigDict, Field

from shared.inputs import ISO_8601, NOT_BOOL
from shared.openapi import Operation

MAX_BATCH = 10_000


class Reading(BaseModel):
    """One meter reading; `counter_kwh` is the cumulative energy register."""

    model_config = ConfigDict(extra="forbid")

    meter_id: Annotated[int, NOT_BOOL] = Field(ge=1, le=2**63 - 1)
    ts: Annotated[AwareDatetime, ISO_8601] = Field(
        description="When the meter took the reading (with time zone)")
    counter_kwh: Decimal = Field(ge=0, max_digits=14, decimal_places=4, allow_inf_nan=False)
    power_w: Decimal | None = Field(None, max_digits=12, decimal_places=3, allow_inf_nan=False)
    voltage_v: Decimal | None = Field(None, ge=0, max_digits=8, decimal_places=3,
                                      allow_inf_nan=False)
    credit_kwh: Decimal | None = Field(None, max_digits=14, decimal_places=4,
                                       allow_inf_nan=False)


class ReadingBatch(BaseModel):
    model_config = ConfigDict(extra="forbid")

    readings: list[Reading] = Field(min_length=1, max_length=MAX_BATCH)


class IngestResult(BaseModel):
    received: int
    inserted: int
    duplicates: int = Field(description="Rows already stored (same meter and ts): unchanged")
    duplicate_rows: list[int] = Field(description="Indexes of the duplicate rows")


class RowError(BaseModel):
    index: int
    errors: list[str]


class BatchRejected(BaseModel):
    error: str
    rows: list[RowError] = Field(description="Every invalid row, by index in `readings`")


OPERATIONS = (
    Operation("POST", "/", "Ingest a batch of meter readings (all or nothing, idempotent)",
              {200: ("What was stored", IngestResult),
               422: ("Invalid rows; nothing of the batch was written", BatchRejected)},
              body=ReadingBatch),
)
