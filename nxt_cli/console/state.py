"""What the console shows, read from the running stack: the config, the jobs' declarations and
runs, the request log, and both planes."""

from __future__ import annotations

import asyncio
import time
from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

from nxt_cli.console import runs
from nxt_cli.console.requests import RequestLog, Seen

DAYS = 14  # of hourly consumption per grid
_SCHEMA_TTL_S = 60.0  # `nxt check` imports every function: cached for a minute


@dataclass
class FunctionRow:
    name: str
    trigger: str  # "HTTP" or the cron schedule
    verify_jwt: bool
    enabled: bool
    accepts: str
    last: list[Seen]
    p50_p99: tuple[float, float] | None


@dataclass
class JobRow:
    name: str
    cron: str
    timezone: str
    next_run: datetime | None
    runs: list[dict[str, Any]]


@dataclass
class TableFreshness:
    table: str
    status: str
    lag_seconds: int | None
    expected_seconds: int
    hourly_rows: list[int]  # the last 24 hours, oldest first


@dataclass
class GridConsumption:
    grid_id: int
    name: str
    kwh: list[float | None]  # per hour, oldest first; None: no row for that hour
    estimated: list[bool]

    @property
    def missing_hours(self) -> int:
        return sum(v is None for v in self.kwh)

    @property
    def estimated_hours(self) -> int:
        return sum(self.estimated)


@dataclass
class State:
    now: datetime
    functions: list[FunctionRow] = field(default_factory=list)
    jobs: list[JobRow] = field(default_factory=list)
    freshness: list[TableFreshness] = field(default_factory=list)
    consumption: list[GridConsumption] = field(default_factory=list)
    consumption_since: datetime | None = None
    schema: list[str] = field(default_factory=list)
    errors: list[str] = field(default_factory=list)


def _accepts(name: str) -> str:
    from shared.auth.declared import DECLARED

    spec = DECLARED.get(name)
    return ", ".join(sorted(spec.accepts)) if spec is not None else "?"


def functions_and_jobs(root: Path, log: RequestLog, now: datetime) -> tuple[
        list[FunctionRow], list[JobRow]]:
    from nxt_cli.config_lint import load_config
    from nxt_cli.functions import function_sources
    from nxt_cli.scheduler import next_fire
    from nxt_cli.stack import config_path
    from shared.jobs import SCHEDULES

    config = load_config(config_path(root))
    rows, jobs = [], []
    for name in function_sources(root, config):
        if name not in config.function_names():
            continue
        table = config.function(name)
        schedule = SCHEDULES.get(name)
        rows.append(FunctionRow(
            name, f"schedule {schedule.cron} {schedule.timezone}" if schedule else "HTTP",
            table.verify_jwt, table.enabled, _accepts(name), log.last(name),
            log.percentiles(name)))
        if schedule is not None:
            jobs.append(JobRow(name, schedule.cron, schedule.timezone,
                               next_fire(schedule, now) if table.enabled else None,
                               runs.recent(name)))
    return rows, jobs


async def freshness(now: datetime) -> list[TableFreshness]:
    from shared.db import timeseries
    from timeseries.freshness import report

    hour = now.replace(minute=0, second=0, microsecond=0)
    since = (hour - timedelta(hours=23)).replace(tzinfo=None)
    async with timeseries().work() as conn:
        found = await report(conn)
        counts: dict[str, dict[datetime, int]] = {}
        # When each row was written: the hour itself for the hourly table, the sync or the
        # build for the others (a legacy row has only created_at).
        for table, written in (("meter_snapshot_1_h", "created_at"),
                               ("order_snapshots",
                                "coalesce(synced_at at time zone 'UTC', created_at)"),
                               ("grid_business_snapshot_1_d",
                                "coalesce(built_at at time zone 'UTC', created_at)")):
            cur = await conn.execute(
                f"select date_trunc('hour', {written}), count(*) from public.{table}"
                f" where {written} >= %s group by 1", (since,))
            counts[table] = {r[0]: r[1] for r in await cur.fetchall()}
    hours = [since + timedelta(hours=i) for i in range(24)]
    return [TableFreshness(f.table, f.status, f.lag_seconds, f.expected_lag_seconds,
                           [counts.get(f.table, {}).get(h, 0) for h in hours]) for f in found]


# The same table and columns meter-consumption reads (NaN is not a reading, as there).
_CONSUMPTION = """
select s.grid_id, max(s.grid_name), date_trunc('hour', s.created_at),
       sum(coalesce(s.consumption_kwh_exact, s.consumption_kwh::numeric))::float8,
       bool_or(coalesce(s.is_estimated, false))
  from public.meter_snapshot_1_h s
 where s.created_at >= %s and s.created_at < %s and s.grid_id is not null
   and s.consumption_kwh is not null and s.consumption_kwh <> 'NaN'::double precision
 group by 1, 3
"""


async def consumption(now: datetime) -> tuple[datetime, list[GridConsumption]]:
    from shared.db import timeseries

    end = now.replace(minute=0, second=0, microsecond=0, tzinfo=None)
    start = end - timedelta(days=DAYS)
    async with timeseries().work() as conn:
        cur = await conn.execute(_CONSUMPTION, (start, end))
        rows = await cur.fetchall()
    hours = [start + timedelta(hours=i) for i in range(DAYS * 24)]
    by_grid: dict[int, tuple[str, dict[datetime, tuple[float, bool]]]] = {}
    for grid, name, hour, kwh, estimated in rows:
        by_grid.setdefault(grid, (name or f"grid {grid}", {}))[1][hour] = (kwh, estimated)
    out = []
    for grid, (name, values) in sorted(by_grid.items()):
        kwh = [values[h][0] if h in values else None for h in hours]
        out.append(GridConsumption(grid, name, kwh, [values.get(h, (0.0, False))[1]
                                                     for h in hours]))
    return start.replace(tzinfo=UTC), out


_schema_cache: tuple[float, list[str]] | None = None


def schema(root: Path) -> list[str]:
    """`nxt check` and `nxt db status`, as their commands print them (cached a minute)."""
    global _schema_cache
    if _schema_cache is not None and time.monotonic() - _schema_cache[0] < _SCHEMA_TTL_S:
        return _schema_cache[1]
    import os

    from nxt_cli.check import check
    from nxt_cli.stack import config_path
    from nxt_cli.status import status

    lines = check(config_path(root), root / "functions").lines()
    url = os.environ.get("DATABASE_URL")
    if url:
        lines += [line for p in status(url, os.environ.get("TIMESERIES_DATABASE_URL"))
                  for line in p.lines()]
    _schema_cache = (time.monotonic(), lines)
    return lines


async def gather(root: Path, log: RequestLog) -> State:
    now = datetime.now(UTC)
    state = State(now)
    state.functions, state.jobs = functions_and_jobs(root, log, now)
    for what, step in (("freshness", freshness(now)), ("consumption", consumption(now))):
        try:
            result = await step
        except Exception as exc:  # a plane that does not answer: say so, show the rest
            state.errors.append(f"{what}: {type(exc).__name__}: {str(exc)[:200]}")
            continue
        if what == "freshness":
            state.freshness = result  # type: ignore[assignment]
        else:
            state.consumption_since, state.consumption = result  # type: ignore[misc]
    try:
        state.schema = await asyncio.to_thread(schema, root)
    except Exception as exc:
        state.errors.append(f"schema: {type(exc).__name__}: {str(exc)[:200]}")
    return state
