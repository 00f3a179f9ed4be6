"""A scheduled job's shard, from its trigger's payload: `{"shard": k, "shards": n}` means "do
the k-th of n parts" (0 <= k < n); no payload (or `{}`) means the whole job, as one run.

Cloud Scheduler publishes the payload to the job's Pub/Sub topic; it reaches the function as
the base64 `message.data` of the CloudEvent. `nxt invoke <job> --payload '...'` passes the same
JSON. A bad payload is refused with the field it is about, never read as "no shard": a
mistyped scheduler job would otherwise run the whole job in every one of its n invocations.
"""

from __future__ import annotations

import base64
import binascii
import json
from dataclasses import dataclass
from typing import Any

MAX_SHARDS = 999  # as ts.pending_hours_built checks it (revision ts0005)


class InvalidPayload(ValueError):
    """The trigger's payload is not one the job accepts; the message names the field."""


@dataclass(frozen=True)
class Shard:
    shard: int  # k
    shards: int  # n

    def __str__(self) -> str:
        return f"shard {self.shard} of {self.shards}"


def _whole(payload: dict[str, Any], field: str) -> int:
    if field not in payload:
        raise InvalidPayload(f"payload field {field!r} is missing (a shard needs both 'shard'"
                             " and 'shards')")
    value = payload[field]
    # bool is an int in Python, and JSON's true would otherwise pass as shard 1.
    if not isinstance(value, int) or isinstance(value, bool):
        raise InvalidPayload(f"payload field {field!r} must be an integer, got {value!r}")
    return value


def parse_shard(payload: dict[str, Any] | None) -> Shard | None:
    """The shard the payload asks for; None for the whole job (no payload, or `{}`)."""
    if not payload:
        return None
    if not isinstance(payload, dict):
        raise InvalidPayload(f"the payload must be a JSON object, got {payload!r}")
    unknown = sorted(set(payload) - {"shard", "shards"})
    if unknown:
        raise InvalidPayload(f"payload field {unknown[0]!r} is not known (accepted: 'shard',"
                             " 'shards')")
    shards = _whole(payload, "shards")
    if not 1 <= shards <= MAX_SHARDS:
        raise InvalidPayload(f"payload field 'shards' must be from 1 to {MAX_SHARDS},"
                             f" got {shards}")
    shard = _whole(payload, "shard")
    if not 0 <= shard < shards:
        raise InvalidPayload(f"payload field 'shard' must be from 0 to {shards - 1}"
                             f" (shards - 1), got {shard}")
    return Shard(shard, shards)


def event_payload(cloud_event: Any) -> dict[str, Any] | None:
    """The JSON object a Pub/Sub CloudEvent carries in `message.data`; None when it carries
    nothing."""
    data = getattr(cloud_event, "data", None)
    if isinstance(data, bytes | str):
        data = json.loads(data or "{}")
    message = data.get("message") if isinstance(data, dict) else None
    raw = message.get("data") if isinstance(message, dict) else None
    if not raw:
        return None
    try:
        decoded = json.loads(base64.b64decode(raw, validate=True))
    except (binascii.Error, ValueError) as exc:
        raise InvalidPayload(f"the event's message.data is not base64 JSON: {exc}") from None
    if not isinstance(decoded, dict):
        raise InvalidPayload(f"the payload must be a JSON object, got {decoded!r}")
    return decoded
