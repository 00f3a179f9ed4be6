"""Input from the URL: the query string validated with a model, path segments and ids."""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any, TypeVar, get_args, get_origin

from starlette.requests import Request

from shared.web.errors import BadRequest
from shared.web.library_errors import VALIDATION, is_a
from shared.web.validation import NUL_MESSAGE, printable_name, validation_message

_M = TypeVar("_M")


def _query_data(request: Request) -> dict[str, Any]:
    data: dict[str, Any] = {}
    for key, value in request.query_params.multi_items():
        if key in data:
            previous = data[key]
            data[key] = [*previous, value] if isinstance(previous, list) else [previous, value]
        else:
            data[key] = value
    return data


def _repeated_scalars(model: type[Any], counts: Mapping[str, int]) -> list[str]:
    """Parameters sent more than once for a field that takes one value (pydantic would say
    "Input should be a valid integer" of `size=1&size=2`, which leaves the client guessing)."""
    repeated = []
    for name, info in getattr(model, "model_fields", {}).items():
        for key in dict.fromkeys((info.alias or name, name)):
            if counts.get(key, 0) > 1 and not _takes_many(info.annotation):
                repeated.append(key)
    return repeated


def _takes_many(annotation: Any) -> bool:
    origin = get_origin(annotation)
    if origin in (list, tuple, set, frozenset):
        return True
    return any(_takes_many(arg) for arg in get_args(annotation)) if origin else False


def parse_query(request: Request, model: type[_M]) -> _M:
    """Validate the query string with a pydantic model; 400 naming the bad parameter.

    A repeated parameter arrives as a list, a single one as a string.
    """
    seen: dict[str, int] = {}
    for key, value in request.query_params.multi_items():
        if "\x00" in key or "\x00" in value:
            raise BadRequest(f"invalid query parameter '{printable_name(key)}': {NUL_MESSAGE}")
        seen[key] = seen.get(key, 0) + 1
    repeated = _repeated_scalars(model, seen)
    if repeated:
        key = repeated[0]
        raise BadRequest(f"invalid query parameter '{key}': given {seen[key]} times; send it once")
    try:
        return model.model_validate(_query_data(request))  # type: ignore[attr-defined, no-any-return]
    except Exception as exc:
        if is_a(exc, VALIDATION):
            raise BadRequest(validation_message(exc, "query parameter")) from None
        raise


def subpath(request: Request) -> list[str]:
    """The path below the function's root, as segments: `/123/complete` -> ["123", "complete"]."""
    path = request.path_params.get("path") or ""
    return [segment for segment in path.split("/") if segment]


def path_id(raw: str, name: str = "id") -> int:
    """A positive bigint from a path segment; 400 naming the parameter otherwise."""
    if not (raw.isascii() and raw.isdigit() and len(raw) <= 18 and int(raw) > 0):
        raise BadRequest(f"invalid path parameter '{name}': expected a positive integer")
    return int(raw)
