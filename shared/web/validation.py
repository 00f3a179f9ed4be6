"""Client-facing texts for invalid input: pydantic's errors as one line naming the field (or
row and field), and the NUL refusal that PostgreSQL text needs."""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any, Final

# PostgreSQL text cannot hold U+0000: refused at the edge, naming the field, rather than as a
# driver error (a 500) when the value reaches the database.
NUL_MESSAGE: Final = "text must not contain NUL characters (\\u0000)"

_MAX_REPORTED_ERRORS: Final = 5
_MAX_MESSAGE_CHARS: Final = 200


def format_path(parts: Sequence[Any]) -> str:
    path = ""
    for part in parts:
        if isinstance(part, int):
            path += f"[{part}]"
        else:
            path += f".{part}" if path else str(part)
    return path


def validation_message(exc: Any, location: str = "field") -> str:
    """Short client-facing text for a pydantic ``ValidationError``.

    ``invalid query parameter 'size': Input should be less than or equal to 1000``; for a list
    payload the leading index is the (0-based) row: ``invalid row 3 field 'counter_kwh': ...``.
    Several problems are joined with "; ". The offending input is never echoed: it may be a
    secret, and the client already has it.
    """
    errors = exc.errors(include_url=False, include_input=False, include_context=False)
    parts: list[str] = []
    for error in errors:
        loc = list(error.get("loc") or ())
        row = loc.pop(0) if loc and isinstance(loc[0], int) else None
        msg = str(error.get("msg", "invalid value"))[:_MAX_MESSAGE_CHARS]
        prefix = "invalid" if row is None else f"invalid row {row}"
        if loc:
            text = f"{prefix} {location} '{format_path(loc)}': {msg}"
        elif row is None:
            text = f"invalid input: {msg}"
        else:
            text = f"{prefix}: {msg}"
        if text not in parts:
            parts.append(text)
    if not parts:
        return "invalid input"
    shown = parts[:_MAX_REPORTED_ERRORS]
    if len(parts) > len(shown):
        shown.append(f"and {len(parts) - len(shown)} more")
    return "; ".join(shown)


def printable_name(name: str) -> str:
    return name if name.isprintable() and len(name) <= 64 else "?"
