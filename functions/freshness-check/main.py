"""freshness-check (every 15 minutes): logs each stale snapshot table as a warning."""

from __future__ import annotations

import logging
from typing import Any

import functions_framework.aio

from shared.db import timeseries
from shared.jobs import scheduled

logger = logging.getLogger("nxt.freshness")


@functions_framework.aio.cloud_event
@scheduled("freshness-check", "*/15 * * * *")
async def freshness_check() -> dict[str, Any]:
    from timeseries.freshness import report

    async with timeseries().work() as conn:
        tables = await report(conn)
    stale = [t for t in tables if t.status == "stale"]
    for t in stale:
        logger.warning("snapshot table %s is stale", t.table, extra={"fields": t.as_dict()})
    return {"status": "stale" if stale else "ok", "stale": [t.table for t in stale]}
