"""Request models of the customers function. Its response models and OpenAPI operations are
in docs.py, which only `openapi()` imports: a cold start builds none of them."""

from __future__ import annotations

from typing import Annotated, Literal

from pydantic import AwareDatetime, BaseModel, ConfigDict, Field

from shared.web.fields import ISO_8601

MASK = "*******"  # what the legacy API shows lenders instead of a name


class CustomerListQuery(BaseModel):
    # Unknown parameters are ignored, as the legacy function ignored them.
    model_config = ConfigDict(extra="ignore")

    page: int = Field(1, ge=1, le=1_000_000, description="Page number, from 1")
    size: int = Field(100, ge=1, le=1000, description="Entries per page")
    order: Literal["id", "created_at", "grid", "grid_id"] = Field(
        "id", description="Sort field")
    ascending: bool = Field(True, description="Sort direction")
    grid: int | None = Field(None, ge=1, le=2**31 - 1, description="Only this grid (id)")
    created_from: Annotated[AwareDatetime, ISO_8601] | None = Field(
        None, description="Created at or after (ISO 8601 with time zone)")
    created_to: Annotated[AwareDatetime, ISO_8601] | None = Field(
        None, description="Created before (ISO 8601 with time zone)")
    include_hidden: bool = Field(
        False, description="Also customers and grids hidden from reporting (operator and"
        " owning organization only)")

    def filters(self) -> tuple[object, ...]:
        """What the total depends on (not the page, its size or its order)."""
        return (self.grid, self.created_from, self.created_to, self.include_hidden)
