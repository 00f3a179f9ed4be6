"""Response models of freshness, and its OpenAPI operation."""

from __future__ import annotations

from typing import Literal

from pydantic import AwareDatetime, BaseModel, Field

from shared.openapi import Operation


class TableFreshness(BaseModel):
    table: str
    newest_complete: AwareDatetime | None = Field(description="End of the newest complete"
                                                  " period in the table")
    lag_seconds: int | None
    expected_lag_seconds: int = Field(description="The lag the job's schedule allows")
    status: Literal["ok", "stale"]


class FreshnessReport(BaseModel):
    ok: bool
    tables: list[TableFreshness]


OPERATIONS = (
    Operation("GET", "/", "Freshness of each snapshot table",
              {200: ("One entry per snapshot table", FreshnessReport)}),
)
