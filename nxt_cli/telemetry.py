"""Demo telemetry: 15-minute readings for every demo meter over the last days, shaped like a
mini-grid's: an evening peak, quiet nights, commercial meters busy by day, and the faults the
snapshot job must survive (a few counter resets with a replacement meter, gaps, late backlogs).

Deterministic for a given end time: the same meters and `now` give the same readings.
"""

from __future__ import annotations

import random
from collections.abc import Iterator
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from decimal import Decimal
from typing import Any
from zoneinfo import ZoneInfo

import psycopg

SEED = 20261128
STEP = timedelta(minutes=15)

# Share of a day's energy by local hour: residential (lights and TV at night) and commercial.
RESIDENTIAL = (2, 2, 2, 2, 2, 3, 5, 6, 4, 3, 3, 3, 3, 3, 3, 3, 4, 6, 10, 12, 11, 8, 5, 3)
COMMERCIAL = (1, 1, 1, 1, 1, 1, 2, 5, 8, 9, 9, 9, 9, 9, 9, 9, 8, 7, 5, 3, 2, 1, 1, 1)

# The credit is the meter's exact one where the transactional plane keeps it beside the
# legacy double.
_METERS_SQL = """
select m.id, g.timezone, coalesce(n.is_commercial, false),
       coalesce(m.kwh_credit_available_exact, m.kwh_credit_available::numeric, 0)
  from public.meters m
  join public.connections n on n.id = m.connection_id
  join public.customers c on c.id = n.customer_id
  join public.grids g on g.id = c.grid_id
 where m.deleted_at is null and g.deleted_at is null
 order by m.id
"""


@dataclass(frozen=True)
class DemoMeter:
    id: int
    timezone: str
    commercial: bool
    credit: Decimal


@dataclass
class TelemetryResult:
    meters: int = 0
    readings: int = 0
    resets: int = 0
    gaps: int = 0
    late: int = 0
    skipped: bool = False


def readings(meter: DemoMeter, start: datetime, end: datetime, rng: random.Random,
             result: TelemetryResult) -> Iterator[tuple[Any, ...]]:
    """(meter_id, ts, counter_kwh, power_w, voltage_v, credit_kwh, received_at) rows."""
    shape = COMMERCIAL if meter.commercial else RESIDENTIAL
    daily = rng.lognormvariate(2.3 if meter.commercial else 0.4, 0.5)  # kWh per day
    zone = ZoneInfo(meter.timezone)
    counter = Decimal(rng.randint(0, 5000)) + Decimal(rng.randint(0, 9999)) / 10000
    credit = meter.credit + Decimal(rng.randint(20, 80))
    slots = int((end - start) / STEP)
    reset_at = rng.randrange(slots) if rng.random() < 0.02 else None
    gap = (rng.randrange(slots), rng.randint(12, 120)) if rng.random() < 0.04 else None
    backlog = rng.randrange(slots) if rng.random() < 0.03 else None
    result.resets += reset_at is not None
    result.gaps += gap is not None
    result.late += backlog is not None
    for i in range(slots):
        ts = start + i * STEP
        hour = ts.astimezone(zone).hour
        kwh = Decimal(daily * shape[hour] / sum(shape) / 4 * rng.uniform(0.6, 1.4))
        kwh = kwh.quantize(Decimal("0.0001"))
        counter += kwh
        credit = max(Decimal(0), credit - kwh)
        if i == reset_at:
            # A replacement meter: its register starts where the factory left it, not at 0.
            counter = Decimal(rng.randint(0, 300)) + Decimal("0.5000")
        if gap is not None and gap[0] <= i < gap[0] + gap[1]:
            continue  # the concentrator was offline: these readings never arrive
        delay = timedelta(seconds=rng.randint(2, 40))
        if backlog is not None and i >= backlog and i < backlog + 96:
            delay = (start + (backlog + 96) * STEP) - ts + timedelta(minutes=7)
        yield (meter.id, ts, counter, (kwh * 4000).quantize(Decimal("0.001")),
               Decimal(rng.randint(2200, 2400)) / 10, credit.quantize(Decimal("0.0001")),
               min(ts + delay, end))


def seed_telemetry(transactional_url: str, timeseries_url: str, *, days: int = 14,
                   now: datetime | None = None, force: bool = False) -> TelemetryResult:
    """Load the demo readings into the time-series plane and queue their hours for snapshots."""
    from timeseries.partitions import ensure_partitions

    result = TelemetryResult()
    end = (now or datetime.now(UTC)).replace(minute=0, second=0, microsecond=0)
    start = end - timedelta(days=days)
    with psycopg.connect(transactional_url) as conn:
        meters = [DemoMeter(*row) for row in conn.execute(_METERS_SQL)]
    with psycopg.connect(timeseries_url) as conn:
        if conn.execute("select exists (select 1 from ts.meter_readings)").fetchone()[0]:  # type: ignore[index]
            if not force:
                result.skipped = True
                return result
            # This project's rows only: a legacy table may hold history that is not ours.
            conn.execute("truncate ts.meter_readings, ts.pending_hours, ts.pending_hours_built")
            conn.execute("delete from public.meter_snapshot_1_h where inserted_by_build")
        ensure_partitions(conn, "meter_readings", start, end)
        rng = random.Random(SEED)
        with conn.cursor().copy(
                "copy ts.meter_readings (meter_id, ts, counter_kwh, power_w, voltage_v,"
                " credit_kwh, received_at) from stdin (format binary)") as copy:
            copy.set_types(["int8", "timestamptz", "numeric", "numeric", "numeric", "numeric",
                            "timestamptz"])
            for meter in meters:
                for row in readings(meter, start, end, rng, result):
                    copy.write_row(row)
                    result.readings += 1
        conn.execute("insert into ts.pending_hours (hour) select generate_series(%s::timestamptz,"
                     " %s::timestamptz - interval '1 hour', interval '1 hour')", (start, end))
    result.meters = len(meters)
    return result
