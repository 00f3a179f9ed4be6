"""Row-by-row verdicts on a batch: every bad row is reported by index with its reasons, so a
sender can fix them all at once. Nothing is written unless every row is good."""

from __future__ import annotations

import json
import re
from collections import defaultdict
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from typing import Any

from pydantic import TypeAdapter, ValidationError

from shared.web.errors import BadRequest
from shared.web.validation import validation_message

from .models import MAX_BATCH, PlainBatch, Reading, ReadingBatch, Row

# A meter clock a little ahead of ours is normal; further ahead is a wrong clock.
FUTURE_SKEW = timedelta(minutes=5)
# Older than the raw retention: the maintenance job would drop it again at once.
MAX_AGE = timedelta(days=400)
# How far apart the readings of one batch may be. A native database makes a partition per day
# of readings on demand: a batch spanning the whole retention made ~400 tables in one request.
# A meter's upload, or a day-by-day backfill, spans far less; a longer backlog goes in batches
# of at most this span (each then creates at most 32 partitions).
MAX_SPAN = timedelta(days=31)

RowErrors = dict[int, list[str]]


def _describe(error: Any) -> str:
    field = ".".join(str(p) for p in error["loc"]) or "row"
    return f"{field}: {error['msg']}"


_PLAIN = TypeAdapter(PlainBatch)


@dataclass(frozen=True)
class Batch:
    """A batch as read: the JSON array of readings the store statement takes (empty if a row
    is invalid), the meters it names, its size, and the schema errors of its rows."""

    json: str
    meter_ids: set[int]
    size: int
    errors: RowErrors


def read_batch(body: bytes) -> Batch:
    """The batch, checked against the schema; raises BadRequest for a bad envelope."""
    try:
        plain = _PLAIN.validate_json(body)["readings"]
    except ValidationError:
        return _read_each(body)
    # Validated as it is: the statement reads the body's own array, nothing is rebuilt per
    # row. Cut out here, the database parses it once rather than once more to find the key.
    return Batch(_array_of(body) or json.dumps(plain), {r["meter_id"] for r in plain},
                 len(plain), {})


_ENVELOPE_START = re.compile(rb'\s*\{\s*"readings"\s*:\s*')
_ENVELOPE_END = re.compile(rb'\s*\}\s*')


def _array_of(body: bytes) -> str | None:
    """The `readings` array of a validated `{"readings": [...]}`, as text; None when the
    envelope is spelled any other way (an escaped or repeated key), to be rebuilt instead.
    In a body the schema accepted, brackets can only delimit readings arrays (every value is
    a number or a string of digits and separators), so one pair is the one array."""
    if body.count(b"[") != 1 or body.count(b"]") != 1:
        return None
    start, end = body.find(b"["), body.rfind(b"]") + 1
    if not _ENVELOPE_START.fullmatch(body, 0, start) or not _ENVELOPE_END.fullmatch(body, end):
        return None
    return body[start:end].decode()


def _read_each(body: bytes) -> Batch:
    rows, errors = parse_batch(body)
    good = [r for r in rows if r is not None]
    text = "" if errors else json.dumps([_plain(r) for r in good])
    return Batch(text, {r.meter_id for r in good}, len(rows), errors)


def _plain(r: Row) -> dict[str, Any]:
    # UTC: PostgreSQL reads offsets up to 15:59 only, ISO 8601 allows more.
    return {**r._asdict(), "ts": r.ts.astimezone(UTC).isoformat()}


def explain(body: bytes, unknown_meters: set[int], now: datetime) -> RowErrors:
    """Every problem of a batch the fast checks refused, by row."""
    errors = check_rows(*parse_batch(body), unknown_meters, now)
    if not errors:
        raise RuntimeError("the batch was refused but no row breaks a rule")
    return errors


def parse_batch(body: bytes) -> tuple[list[Row | None], RowErrors]:
    """The rows that parsed (None where one did not), and the errors of those that did not,
    by index. Raises BadRequest for a bad envelope."""
    try:
        return [_row(r) for r in ReadingBatch.model_validate_json(body).readings], {}
    except ValidationError as exc:
        envelope = [e for e in exc.errors() if len(e["loc"]) < 2 or e["loc"][0] != "readings"
                    or not isinstance(e["loc"][1], int)]
        if envelope:
            raise BadRequest(validation_message(_only(exc, envelope))) from None
    # Some rows are bad: parse them one by one to learn which, and keep the good ones so
    # their own checks (unknown meter, future) are reported in the same answer.
    raw = json.loads(body)["readings"]
    rows: list[Row | None] = []
    errors: RowErrors = {}
    for index, item in enumerate(raw):
        try:
            rows.append(_row(Reading.model_validate_json(json.dumps(item))))
        except ValidationError as exc:
            errors[index] = [_describe(e) for e in exc.errors(include_url=False)]
            rows.append(None)  # keeps indexes aligned
    return rows, errors


def _row(r: Reading) -> Row:
    return Row(r.meter_id, r.ts, str(r.counter_kwh), _text(r.power_w), _text(r.voltage_v),
               _text(r.credit_kwh))


def _text(value: object) -> str | None:
    return None if value is None else str(value)


def _only(exc: ValidationError, errors: list[Any]) -> ValidationError:
    return ValidationError.from_exception_data(exc.title, errors)  # type: ignore[arg-type]


def check_rows(rows: list[Row | None], errors: RowErrors, unknown_meters: set[int],
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
        if row.meter_id in unknown_meters:
            found[index].append(f"meter_id: meter {row.meter_id} does not exist")
        key = (row.meter_id, row.ts)
        twin = first_seen.setdefault(key, index)
        if twin != index:
            found[index].append(f"meter_id, ts: same meter and time as row {twin}")
    # Over the rows whose clocks are otherwise fine (one already named too old is not also
    # the reason its batch spans too long).
    timed = [(row.ts, index) for index, row in enumerate(rows) if row is not None
             and now - MAX_AGE <= row.ts <= now + FUTURE_SKEW]
    if timed:
        (oldest, first), (newest, last) = min(timed), max(timed)
        if newest - oldest > MAX_SPAN:
            found[last].append(
                f"ts: {(newest - oldest).days} days after row {first}; the readings of one batch"
                f" span at most {MAX_SPAN.days} days: send the rest in another batch")
    return dict(sorted(found.items()))


def report(errors: RowErrors, received: int) -> dict[str, Any]:
    return {"error": f"{len(errors)} of {received} rows are invalid; nothing was written",
            "rows": [{"index": i, "errors": e} for i, e in errors.items()]}


__all__ = ["MAX_BATCH", "MAX_SPAN", "Batch", "check_rows", "explain", "parse_batch", "read_batch",
           "report"]
