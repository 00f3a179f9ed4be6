"""meter-readings: ingest a batch of up to 10,000 meter readings, all or nothing, idempotent on
(meter, ts). Called by the telemetry gateway with the service role."""

from __future__ import annotations

from datetime import UTC, datetime
from typing import Any

import functions_framework.aio
from starlette.requests import Request

from shared.auth import Caller
from shared.db import transactional
from shared.gate import SERVICE_ROLE, gated
from shared.http import NotFound, read_body, subpath

from .models import OPERATIONS
from .queries import store_batch, unknown_meters
from .validation import FUTURE_SKEW, MAX_AGE, explain, read_batch, report

NAME = "meter-readings"
MAX_BODY_BYTES = 8 * 1024 * 1024  # 10,000 readings with every field, and room to spare


@functions_framework.aio.http
@gated(NAME, accepts={SERVICE_ROLE}, methods=["GET", "POST"], max_body_bytes=MAX_BODY_BYTES)
async def meter_readings(request: Request, caller: Caller) -> Any:
    match request.method, subpath(request):
        case "POST", []:
            return await _ingest(await read_body(request))
        case "GET", ["openapi.json"]:
            return openapi()
    raise NotFound("no such route")


async def _ingest(body: bytes) -> Any:
    batch = read_batch(body)
    async with transactional().transaction("service_role") as conn:
        unknown = await unknown_meters(conn, batch.meter_ids)
    now = datetime.now(UTC)
    if batch.json and not unknown:
        duplicates = await store_batch(batch.json, now - MAX_AGE, now + FUTURE_SKEW)
        if duplicates is not None:
            return {"received": batch.size, "inserted": batch.size - len(duplicates),
                    "duplicates": len(duplicates), "duplicate_rows": duplicates}
    # Refused: find and name every problem, row by row (the slow path, for bad batches only).
    return report(explain(body, unknown, now), batch.size), 422


def openapi() -> dict[str, Any]:
    from shared.openapi import build_document

    return build_document(NAME, title="meter-readings", version="1.0.0", accepts={SERVICE_ROLE},
                          description="Bulk ingest of meter telemetry into the time-series"
                          " plane, for the service role.", operations=OPERATIONS)
