"""How fresh each snapshot table is: the newest complete period, its lag, the lag its job's
schedule allows, and ok/stale. The operator's diagnostic for the tables behind reports.

The tables are the legacy ones, which the legacy writers may write too: freshness is read from
what the reports use (an hour with a consumption, a day with its consumption total), not from
any row, since yeti writes each hour's power-limit row (no consumption) as the hour starts and
each day's battery row as the day starts. Their created_at is UTC without a zone."""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime, timedelta
from typing import Any

# table -> (how its newest complete period is found, the lag its schedule allows)
_CHECKS: dict[str, tuple[str, timedelta]] = {
    # Built hourly a few minutes past the hour: the newest hour ends at most ~2 h ago.
    "meter_snapshot_1_h": ("select (max(created_at) + interval '1 hour') at time zone 'UTC'"
                           " from public.meter_snapshot_1_h where consumption_kwh is not null"
                           " and consumption_kwh <> 'NaN'::double precision",
                           timedelta(hours=2)),
    # Synced every 5 minutes: its watermark moves even when no order changed.
    "order_snapshots": ("select max(updated_at) from ts.job_watermarks"
                        " where job = 'sync-orders'", timedelta(minutes=15)),
    # Built daily for yesterday in each grid's zone (created_at its local date): up to two
    # days plus the widest offset.
    "grid_business_snapshot_1_d": ("select (max(created_at) + interval '1 day') at time zone"
                                   " 'UTC' from public.grid_business_snapshot_1_d"
                                   " where total_consumption_kwh is not null",
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
