"""Request and response models of the customers function, and its OpenAPI operations."""

from __future__ import annotations

from typing import Annotated, Literal

from pydantic import AwareDatetime, BaseModel, ConfigDict, Field

from shared.inputs import ISO_8601
from shared.openapi import Operation

MASK = "*******"  # what the legacy API shows lenders instead of a name


class CustomerListQuery(BaseModel):
    # Unknown parameters are ignored, as the legacy function ignored them.
    model_config = ConfigDict(extra="ignore")

    page: int = Field(1, ge=1, le=1_000_000, description="Page number, from 1")
    size: int = Field(100, ge=1, le=1000, description="Entries per page")
    order: Literal["id", "created_at", "grid", "grid_id"] = Field(
        "id", description="Sort field")
    ascending: bool = Field(True, description="Sort direction")
    grid: int | None = Field(None, ge=1, le=2**63 - 1, description="Only this grid (id)")
    created_from: Annotated[AwareDatetime, ISO_8601] | None = Field(
        None, description="Created at or after (ISO 8601 with time zone)")
    created_to: Annotated[AwareDatetime, ISO_8601] | None = Field(
        None, description="Created before (ISO 8601 with time zone)")
    include_hidden: bool = Field(
        False, description="Also customers and grids hidden from reporting (operator and"
        " owning organization only)")


class CustomerEntry(BaseModel):
    id: int
    full_name: str | None = Field(description=f"Masked as {MASK!r} for lenders")
    grid: str = Field(description="The grid's name")


class CustomerPage(BaseModel):
    total: int
    page: int
    size: int
    total_pages: int
    entries: list[CustomerEntry]


class Customer(CustomerEntry):
    grid_id: int
    created_at: AwareDatetime
    is_hidden_from_reporting: bool


OPERATIONS = (
    Operation("GET", "/", "List customers (legacy-compatible page envelope)",
              {200: ("A page of customers", CustomerPage)}, query=CustomerListQuery),
    Operation("GET", "/{id}", "One customer",
              {200: ("The customer", Customer),
               404: ("No such customer visible to the caller", None)},
              path_params={"id": "Customer id"}),
)
