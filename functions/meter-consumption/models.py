"""The query model of meter-consumption (legacy names kept: FROM, TO, offset, pageLimit, site).
Its response models and OpenAPI operations are in docs.py, which only `openapi()` imports: a
cold start builds none of them."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta
from typing import Annotated

from pydantic import (
    AfterValidator,
    BaseModel,
    ConfigDict,
    Field,
    WithJsonSchema,
    model_validator,
)

from shared.web.fields import ISO_8601

MAX_RANGE = timedelta(days=93)  # a quarter: bounds the work of one query
MAX_OFFSET = 100_000  # deeper pages go by cursor, whose cost does not grow with depth


def _utc(value: datetime) -> datetime:
    # Legacy clients send ISO timestamps with and without a zone; without one means UTC,
    # as the legacy function (a JavaScript Date on a UTC server) read them.
    try:
        return value.replace(tzinfo=UTC) if value.tzinfo is None else value.astimezone(UTC)
    except OverflowError:  # 0001-01-01T00:00+01:00 is in year 0 in UTC
        raise ValueError("out of the range of timestamps (years 1 to 9999 in UTC)") from None


# Documented as it is read: RFC 3339, or the same without a zone (then UTC), or a bare date.
_LEGACY_SCHEMA = {"anyOf": [
    {"type": "string", "format": "date-time"},
    {"type": "string", "pattern": r"^\d{4}-\d{2}-\d{2}([T ]\d{2}:\d{2}(:\d{2}(\.\d+)?)?)?$"},
]}

Timestamp = Annotated[datetime, ISO_8601, AfterValidator(_utc), WithJsonSchema(_LEGACY_SCHEMA)]


class ConsumptionQuery(BaseModel):
    model_config = ConfigDict(extra="ignore", populate_by_name=True)

    from_: Timestamp = Field(alias="FROM", description="Start, inclusive (ISO 8601; UTC when"
                             " no zone is given)")
    to: Timestamp = Field(alias="TO", description="End, inclusive, as the legacy function"
                          " read it (ISO 8601; UTC when no zone is given)")
    offset: int = Field(0, ge=0, le=MAX_OFFSET, description="Rows to skip (legacy paging;"
                        " prefer cursor)")
    page_limit: int = Field(20, alias="pageLimit", ge=1, le=1000, description="Rows per page")
    site: str | None = Field(None, min_length=1, max_length=200,
                             description="Grid name, case-insensitive")
    meter: str | None = Field(None, min_length=1, max_length=200,
                              description="Meter external reference")
    cursor: str | None = Field(None, min_length=1, max_length=200,
                               description="next_cursor of the previous page")

    @model_validator(mode="after")
    def _bounded(self) -> ConsumptionQuery:
        if self.to < self.from_:
            raise ValueError("TO must be at or after FROM")
        if self.to - self.from_ > MAX_RANGE:
            raise ValueError(f"the range from FROM to TO is at most {MAX_RANGE.days} days;"
                             " split the request")
        if self.cursor is not None and self.offset:
            raise ValueError("send either cursor or offset, not both")
        return self

    def filters(self) -> tuple[object, ...]:
        """What the total depends on (not the page's place or size)."""
        return (self.from_, self.to, self.site, self.meter)
