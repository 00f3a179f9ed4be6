"""Field types of the request models where pydantic's lax mode reads the wrong thing.

- Timestamps: lax mode reads `1700000000`, `"1700000000"` or `"-1e-262"` as seconds since 1970;
  the documents promise ISO 8601 (`format: date-time`), so anything that does not start with a
  calendar date is refused before pydantic parses it.
- Ids: lax mode reads `true` as 1, so `{"meter_id": true}` would top up meter 1, and `"5"` or
  `5.0` as 5: an id is a JSON integer, nothing else.
- Amounts: Python's Decimal reads `" 100"` and Arabic-Indic digits (`"١٠٠"`) as 100; an amount
  is a JSON number or a string of ASCII digits with an optional fraction, one canonical form.
"""

from __future__ import annotations

import re
from datetime import datetime
from typing import Any, Final

from pydantic import BeforeValidator

_DATE_FIRST: Final = re.compile(r"\d{4}-\d{2}-\d{2}")
_PLAIN_DECIMAL: Final = re.compile(r"-?[0-9]+(\.[0-9]+)?")


def iso_8601(value: Any) -> Any:
    if isinstance(value, datetime):  # callers in Python
        return value
    if isinstance(value, str) and _DATE_FIRST.match(value):
        return value
    raise ValueError("expected an ISO 8601 timestamp, e.g. 2026-10-05T00:00:00Z")


def not_bool(value: Any) -> Any:
    if isinstance(value, bool):
        raise ValueError("expected an integer, not a boolean")
    return value


def json_integer(value: Any) -> Any:
    if isinstance(value, bool) or not isinstance(value, int):
        raise ValueError("expected a JSON integer (no quotes, no fraction)")
    return value


def plain_decimal(value: Any) -> Any:
    if isinstance(value, bool):
        raise ValueError("expected a decimal number, not a boolean")
    if isinstance(value, int | float):
        return value
    if isinstance(value, str) and _PLAIN_DECIMAL.fullmatch(value):
        return value
    raise ValueError("expected a decimal number in ASCII digits, e.g. 1000.50 or \"1000.50\"")


ISO_8601 = BeforeValidator(iso_8601)
"""`Annotated[AwareDatetime, ISO_8601]`: the field takes ISO 8601 text only."""

NOT_BOOL = BeforeValidator(not_bool)
"""`Annotated[int, NOT_BOOL]`: the field refuses `true` and `false`."""

JSON_INTEGER = BeforeValidator(json_integer)
"""`Annotated[int, JSON_INTEGER]`: a JSON integer only (not `"5"`, `5.0` or `true`)."""

PLAIN_DECIMAL = BeforeValidator(plain_decimal)
"""`Annotated[Decimal, PLAIN_DECIMAL]`: a JSON number or a string of ASCII digits."""
