"""grid-daily (daily): the per-grid business snapshot, days in each grid's time zone."""

from __future__ import annotations

from typing import Any

import functions_framework.aio

from shared.jobs import run_locked, scheduled

NAME = "grid-daily"


@functions_framework.aio.cloud_event
@scheduled(NAME, "30 0 * * *")
async def grid_daily() -> dict[str, Any]:
    from shared.db import transactional

    from .daily import build

    return await run_locked(NAME, lambda ts: build(ts, transactional()))
