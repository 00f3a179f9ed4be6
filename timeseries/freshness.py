"""How fresh each snapshot table is: the newest complete period, its lag, the lag its job's
schedule allows, and ok/stale. The operator's diagnostic for the tables behind reports."""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime, timedelta
from typing import Any

# table -> (how its newest complete period is found, the lag its schedule allows)
_CHECKS: dict[str, tuple[str, timedelta]] = {
    # Built hourly a few minutes past the hour: the newest hour ends at most ~2 h ago.
    "meter_hourly": ("select max(created_at) + interval '1 hour' from ts.meter_hourly",
                     timedelta(hours=2)),
    # Synced every 5 minutes: its watermark moves even when no order changed.
    "order_snapshots": ("select max(updated_at) from ts.job_watermarks"
                        " where job = 'sync-orders'", timedelta(minutes=15)),
    # Built daily for yesterday in each grid's zone: up to two days plus the widest offset.
    "grid_daily": ("select (max(day) + 1)::timestamp at time zone 'UTC' from ts.grid_daily",
                   timedelta(days=2, hours=14)),
}


@dataclass(frozen=True)
class Freshness:
    table: str
    newest_complete: datetime | None
    lag_seconds: int | None
    expected_lag_seconds: int
    status: str  # "ok" | "stale"

    def as_dict(self) -> dict[str, Any]:
        return self.__dict__.copy()


async def report(conn: Any) -> list[Freshness]:
    cur = await conn.execute("select now()")
    now = (await cur.fetchone())[0]
    found = []
    for table, (sql, expected) in _CHECKS.items():
        cur = await conn.execute(sql)
        newest = (await cur.fetchone())[0]
        lag = None if newest is None else max(0, int((now - newest).total_seconds()))
        stale = lag is None or lag > expected.total_seconds()
        found.append(Freshness(table, newest, lag, int(expected.total_seconds()),
                               "stale" if stale else "ok"))
    return found
