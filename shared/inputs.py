"""Field types of the request models where pydantic's lax mode reads the wrong thing.

- Timestamps: lax mode reads `1700000000`, `"1700000000"` or `"-1e-262"` as seconds since 1970;
  the documents promise ISO 8601 (`format: date-time`), so anything that does not start with a
  calendar date is refused before pydantic parses it.
- Ids: lax mode reads `true` as 1, so `{"meter_id": true}` would top up meter 1.
"""

from __future__ import annotations

import re
from datetime import datetime
from typing import Any, Final

from pydantic import BeforeValidator

_DATE_FIRST: Final = re.compile(r"\d{4}-\d{2}-\d{2}")


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


ISO_8601 = BeforeValidator(iso_8601)
"""`Annotated[AwareDatetime, ISO_8601]`: the field takes ISO 8601 text only."""

NOT_BOOL = BeforeValidator(not_bool)
"""`Annotated[int, NOT_BOOL]`: the field refuses `true` and `false`."""
