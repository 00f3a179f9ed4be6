"""meter-readings: ingest a batch of up to 10,000 meter readings, all or nothing, idempotent on
(meter, ts). Called by the telemetry gateway with the service role."""

from __future__ import annotations

import asyncio
from datetime import UTC, datetime
from typing import Any

import functions_framework.aio
from starlette.requests import Request

from shared.auth.caller import Caller
from shared.auth.declared import SERVICE_ROLE
from shared.auth.gate import gated
from shared.db import transactional
from shared.web.bodies import read_body
from shared.web.deadline import abandon
from shared.web.errors import NotFound
from shared.web.params import subpath

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
    now = datetime.now(UTC)
    # The meters are looked up on the transactional plane while the batch is written on the
    # time-series plane; the write commits only if every meter exists.
    unknown = asyncio.ensure_future(_unknown_meters(batch.meter_ids))
    try:
        if batch.json:
            duplicates = await store_batch(batch.json, now - MAX_AGE, now + FUTURE_SKEW,
                                           unknown)
            if duplicates is not None:
                return {"received": batch.size, "inserted": batch.size - len(duplicates),
                        "duplicates": len(duplicates), "duplicate_rows": duplicates}
        # Refused: name every problem, row by row (the slow path, for bad batches only).
        return report(explain(body, await unknown, now), batch.size), 422
    finally:
        abandon(unknown)


async def _unknown_meters(meter_ids: set[int]) -> set[int]:
    async with transactional().transaction("service_role") as conn:
        return await unknown_meters(conn, meter_ids)


def openapi() -> dict[str, Any]:
    from shared.openapi import build_document

    return build_document(NAME, title="meter-readings", version="1.0.0", accepts={SERVICE_ROLE},
                          description="Bulk ingest of meter telemetry into the time-series"
                          " plane, for the service role.", operations=OPERATIONS)
