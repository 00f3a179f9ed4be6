"""sync-orders (every 5 minutes): orders changed since the watermark, into the order
snapshots of the time-series plane."""

from __future__ import annotations

from typing import Any

import functions_framework.aio

from shared.jobs import run_locked, scheduled

NAME = "sync-orders"


@functions_framework.aio.cloud_event
@scheduled(NAME, "*/5 * * * *")
async def sync_orders() -> dict[str, Any]:
    from shared.db import transactional

    from .sync import sync

    return await run_locked(NAME, lambda ts: sync(ts, transactional()))
