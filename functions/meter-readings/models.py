"""Request and response models of meter-readings, and its OpenAPI operations."""

from __future__ import annotations

from datetime import datetime
from decimal import Decimal
from typing import Annotated, NamedTuple, NotRequired

from pydantic import AwareDatetime, BaseModel, ConfigDict, Field, StrictInt, StringConstraints
from typing_extensions import TypedDict  # pydantic needs this one before Python 3.12

from shared.openapi import Operation
from shared.web.fields import ISO_8601, NOT_BOOL

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


class Row(NamedTuple):
    """A valid reading as stored: the decimals as text, as COPY takes them."""

    meter_id: int
    ts: datetime
    counter_kwh: str
    power_w: str | None
    voltage_v: str | None
    credit_kwh: str | None


# The fast path. Parsing 10,000 readings with `Reading` costs ~45 ms, most of it building
# Decimals and checking their digits; these types accept only the plain decimal text and
# ISO 8601 timestamps that senders actually send (~7 ms), and the body then goes to the
# database as it came. Everything they accept, `Reading` accepts with the same value, except
# impossible dates such as 2026-02-30, which the database refuses (and `Reading` then
# names). Anything else (JSON numbers, exponents, leading zeros, bad rows) goes through
# `Reading`, which decides and names the errors.
def _decimal(integer_digits: int, places: int, signed: bool) -> type[str]:
    sign = "-?" if signed else ""
    pattern = rf"^{sign}[0-9]{{1,{integer_digits}}}(\.[0-9]{{1,{places}}})?$"
    return Annotated[str, StringConstraints(strict=True, pattern=pattern)]  # type: ignore[return-value]


_TS = Annotated[str, StringConstraints(
    strict=True,
    pattern=r"^[0-9]{4}-(0[1-9]|1[0-2])-(0[1-9]|[12][0-9]|3[01])"
            r"T([01][0-9]|2[0-3]):[0-5][0-9]:[0-5][0-9](\.[0-9]{1,6})?"
            r"(Z|[+-](0[0-9]|1[0-4]):[0-5][0-9])$")]


class PlainReading(TypedDict):
    __pydantic_config__ = ConfigDict(extra="forbid")  # type: ignore[misc]

    meter_id: Annotated[StrictInt, Field(ge=1, le=2**63 - 1)]
    ts: _TS
    counter_kwh: _decimal(10, 4, signed=False)  # type: ignore[valid-type]  # numeric(14, 4) >= 0
    power_w: NotRequired[_decimal(9, 3, signed=True) | None]  # type: ignore[valid-type]
    voltage_v: NotRequired[_decimal(5, 3, signed=False) | None]  # type: ignore[valid-type]
    credit_kwh: NotRequired[_decimal(10, 4, signed=True) | None]  # type: ignore[valid-type]


class PlainBatch(TypedDict):
    __pydantic_config__ = ConfigDict(extra="forbid")  # type: ignore[misc]

    readings: Annotated[list[PlainReading], Field(min_length=1, max_length=MAX_BATCH)]


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
