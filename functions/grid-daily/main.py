"""grid-daily (daily): the per-grid business snapshot, days in each grid's time zone."""

from __future__ import annotations

from typing import Any

import functions_framework.aio

from shared.jobs import already_running, job_connection, scheduled
from shared.settings import get_settings

NAME = "grid-daily"


@functions_framework.aio.cloud_event
@scheduled(NAME, "30 0 * * *")
async def grid_daily() -> dict[str, Any]:
    from shared.db import transactional

    from .daily import build

    async with job_connection(get_settings().require_timeseries_url(), NAME) as ts:
        if ts is None:
            return already_running(NAME)
        return await build(ts, transactional())
