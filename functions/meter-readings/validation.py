"""Row-by-row verdicts on a batch: every bad row is reported by index with its reasons, so a
sender can fix them all at once. Nothing is written unless every row is good."""

from __future__ import annotations

import json
from collections import defaultdict
from datetime import UTC, datetime, timedelta
from typing import Any

from pydantic import ValidationError

from shared.http import BadRequest, validation_message

from .models import MAX_BATCH, Reading, ReadingBatch

# A meter clock a little ahead of ours is normal; further ahead is a wrong clock.
FUTURE_SKEW = timedelta(minutes=5)
# Older than the raw retention: the maintenance job would drop it again at once.
MAX_AGE = timedelta(days=400)

RowErrors = dict[int, list[str]]


def _describe(error: Any) -> str:
    field = ".".join(str(p) for p in error["loc"]) or "row"
    return f"{field}: {error['msg']}"


def parse_batch(body: bytes) -> tuple[list[Reading], RowErrors]:
    """The rows that parsed, and the errors of those that did not (by index)."""
    try:
        return ReadingBatch.model_validate_json(body).readings, {}
    except ValidationError as exc:
        envelope = [e for e in exc.errors() if len(e["loc"]) < 2 or e["loc"][0] != "readings"
                    or not isinstance(e["loc"][1], int)]
        if envelope:
            raise BadRequest(validation_message(_only(exc, envelope))) from None
    # Some rows are bad: parse them one by one to learn which, and keep the good ones so
    # their own checks (unknown meter, future) are reported in the same answer.
    raw = json.loads(body)["readings"]
    rows: list[Reading] = []
    errors: RowErrors = {}
    for index, item in enumerate(raw):
        try:
            rows.append(Reading.model_validate_json(json.dumps(item)))
        except ValidationError as exc:
            errors[index] = [_describe(e) for e in exc.errors(include_url=False)]
            rows.append(None)  # type: ignore[arg-type]  # keeps indexes aligned
    return rows, errors


def _only(exc: ValidationError, errors: list[Any]) -> ValidationError:
    return ValidationError.from_exception_data(exc.title, errors)  # type: ignore[arg-type]


def check_rows(rows: list[Reading | None], errors: RowErrors, known_meters: set[int],
               now: datetime | None = None) -> RowErrors:
    """Add what a schema cannot know: clocks, duplicate keys in the batch, unknown meters."""
    now = now or datetime.now(UTC)
    found: RowErrors = defaultdict(list, {i: list(e) for i, e in errors.items()})
    first_seen: dict[tuple[int, datetime], int] = {}
    for index, row in enumerate(rows):
        if row is None:
            continue
        if row.ts > now + FUTURE_SKEW:
            found[index].append(f"ts: in the future (more than {FUTURE_SKEW.seconds // 60}"
                                " minutes ahead of the server clock)")
        elif row.ts < now - MAX_AGE:
            found[index].append(f"ts: older than the raw retention ({MAX_AGE.days} days)")
        if row.meter_id not in known_meters:
            found[index].append(f"meter_id: meter {row.meter_id} does not exist")
        key = (row.meter_id, row.ts)
        twin = first_seen.setdefault(key, index)
        if twin != index:
            found[index].append(f"meter_id, ts: same meter and time as row {twin}")
    return dict(sorted(found.items()))


def report(errors: RowErrors, received: int) -> dict[str, Any]:
    return {"error": f"{len(errors)} of {received} rows are invalid; nothing was written",
            "rows": [{"index": i, "errors": e} for i, e in errors.items()]}


__all__ = ["MAX_BATCH", "check_rows", "parse_batch", "report"]
