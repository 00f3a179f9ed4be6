"""timeseries-maintenance (daily): what the time-series engine does not do by itself.

Native PostgreSQL: partitions created ahead, raw readings dropped past retention. TimescaleDB
without a background scheduler (or the Apache edition): retention, compression and aggregate
refreshes. See timeseries/partitions.py `maintain`.
"""

from __future__ import annotations

import asyncio
from typing import Any

import functions_framework.aio

from shared.jobs import already_running, scheduled
from shared.settings import get_settings

NAME = "timeseries-maintenance"


@functions_framework.aio.cloud_event
@scheduled(NAME, "15 2 * * *")
async def timeseries_maintenance() -> dict[str, Any]:
    return await asyncio.to_thread(_run, get_settings().require_timeseries_url())


def _run(url: str) -> dict[str, Any]:
    import psycopg

    from shared.jobs import lock_key
    from timeseries.partitions import maintain

    # Autocommit: TimescaleDB refreshes continuous aggregates only outside a transaction.
    with psycopg.connect(url, autocommit=True, prepare_threshold=None) as conn:
        locked = conn.execute("select pg_try_advisory_lock(hashtext(%s))",
                              (lock_key(NAME),)).fetchone()
        if not (locked and locked[0]):
            return already_running(NAME)
        report = maintain(conn)
    return {"status": "done", **{k: len(v) for k, v in report.items()}, "detail": report}
