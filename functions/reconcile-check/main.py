"""reconcile-check (hourly): logs, as a warning per check, where the two planes disagree."""

from __future__ import annotations

import asyncio
import logging
import os
from typing import Any

import functions_framework.aio

from shared.jobs import scheduled

logger = logging.getLogger("nxt.reconcile")


@functions_framework.aio.cloud_event
@scheduled("reconcile-check", "41 * * * *")
async def reconcile_check() -> dict[str, Any]:
    from dataclasses import asdict

    from shared.settings import get_settings
    from timeseries.reconcile import reconcile

    settings = get_settings()
    days = int(os.environ.get("RECONCILE_DAYS", "2"))  # each hour re-reads the last two days
    report = await asyncio.to_thread(reconcile, settings.require_database_url(),
                                     settings.require_timeseries_url(), days=days)
    if report.error:
        raise RuntimeError(report.error)
    disagree = [c for c in report.checks if c.count]
    for check in disagree:
        logger.warning("the planes disagree: %s (%d)", check.name, check.count,
                       extra={"fields": asdict(check)})
    return {"status": "disagree" if disagree else "agree",
            "checks": {c.name: c.count for c in report.checks}}
