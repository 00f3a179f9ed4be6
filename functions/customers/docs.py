"""Response models of the customers function and its OpenAPI operations, for `openapi()` and
`nxt openapi` only: imported when the document is built, never at cold start."""

from __future__ import annotations

from pydantic import AwareDatetime, BaseModel, Field

from shared.openapi import Operation

from .models import MASK, CustomerListQuery


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
