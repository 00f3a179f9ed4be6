"""sync-orders (every 5 minutes): orders changed since the watermark, into the order
snapshots of the time-series plane."""

from __future__ import annotations

from typing import Any

import functions_framework.aio

from shared.jobs import already_running, job_connection, scheduled
from shared.settings import get_settings

NAME = "sync-orders"


@functions_framework.aio.cloud_event
@scheduled(NAME, "*/5 * * * *")
async def sync_orders() -> dict[str, Any]:
    from shared.db import transactional

    from .sync import sync

    async with job_connection(get_settings().require_timeseries_url(), NAME) as ts:
        if ts is None:
            return already_running(NAME)
        return await sync(ts, transactional())
