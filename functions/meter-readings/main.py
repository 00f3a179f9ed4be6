"""meter-readings: ingest a batch of up to 10,000 meter readings, all or nothing, idempotent on
(meter, ts). Called by the telemetry gateway with the service role."""

from __future__ import annotations

from typing import Any

import functions_framework.aio
from starlette.requests import Request

from shared.auth import Caller
from shared.db import timeseries, transactional
from shared.gate import SERVICE_ROLE, gated
from shared.http import NotFound, read_body, subpath

from .models import OPERATIONS
from .queries import known_meters, store
from .validation import check_rows, parse_batch, report

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
    rows, errors = parse_batch(body)
    meter_ids = {r.meter_id for r in rows if r is not None}
    async with transactional().transaction("service_role") as conn:
        meters = await known_meters(conn, meter_ids)
    errors = check_rows(rows, errors, meters)
    if errors:
        return report(errors, len(rows)), 422

    from timeseries.partitions import aensure_partitions

    async with timeseries().work(statement_timeout_ms=20_000) as conn:  # < the request deadline
        await aensure_partitions(conn, "meter_readings", min(r.ts for r in rows),
                                 max(r.ts for r in rows))
        duplicates = await store(conn, rows)
    return {"received": len(rows), "inserted": len(rows) - len(duplicates),
            "duplicates": len(duplicates), "duplicate_rows": duplicates}


def openapi() -> dict[str, Any]:
    from shared.openapi import build_document

    return build_document(NAME, title="meter-readings", version="1.0.0", accepts={SERVICE_ROLE},
                          description="Bulk ingest of meter telemetry into the time-series"
                          " plane, for the service role.", operations=OPERATIONS)
