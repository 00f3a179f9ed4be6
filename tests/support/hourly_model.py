"""A plain-Python reference model of timeseries/hourly.py's rules (see its module docstring).

Written to be obviously right rather than fast: every hour is computed on its own, by looking
at every pair of the meter, with exact fractions; nothing is shared with the SQL. The tests
check that the SQL writes exactly the rows this model gives.

Also holds the DDL of the three tables as the tests (and bench/hourly_probe.py) create them:
plain, non-partitioned, with the columns of the time-series migrations (from tables.py).
"""

from __future__ import annotations

from collections import defaultdict
from collections.abc import Iterable
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from decimal import Decimal
from fractions import Fraction
from itertools import pairwise

HOUR = timedelta(hours=1)
UNIT = Decimal("0.0001")  # kWh: the scale of every stored energy
ORIGIN = datetime(2000, 1, 1, tzinfo=UTC)

def _tables_ddl() -> str:
    """The tables the build reads and writes, plain (no partitions), rendered from
    timeseries/tables.py: exactly the columns, types and keys of a migrated database."""
    from sqlalchemy.dialects import postgresql
    from sqlalchemy.schema import CreateIndex, CreateTable

    from timeseries import tables

    dialect = postgresql.dialect()  # type: ignore[no-untyped-call]
    out = ["create schema if not exists ts"]
    for table in (tables.meter_readings, tables.pending_hours, tables.meter_snapshot_1_h):
        out.append(str(CreateTable(table).compile(dialect=dialect)))
        out += [str(CreateIndex(index).compile(dialect=dialect)) for index in table.indexes]
    return ";\n".join(out)


TABLES_DDL = _tables_ddl()


@dataclass(frozen=True)
class Reading:
    meter_id: int
    ts: datetime
    counter_kwh: Decimal
    credit_kwh: Decimal | None = None


@dataclass(frozen=True)
class HourRow:
    """The measured columns of one meter_snapshot_1_h row: its exact values, created_at as an
    aware UTC datetime (the table stores it as UTC timestamp without time zone)."""

    created_at: datetime
    meter_id: int
    consumption_kwh: Decimal | None
    is_estimated: bool
    reading_count: int
    counter_kwh: Decimal | None
    kwh_credit_available: Decimal | None


@dataclass(frozen=True)
class Rules:
    max_gap: timedelta = timedelta(hours=2)
    max_interpolate: timedelta = timedelta(hours=48)
    register_max_kwh: Decimal | None = None
    max_power_kw: Decimal | None = None


def hour_of(t: datetime) -> datetime:
    return ORIGIN + ((t - ORIGIN) // HOUR) * HOUR


def micros(d: timedelta) -> int:
    return (d.days * 86400 + d.seconds) * 1_000_000 + d.microseconds


def pair_energy(a: Reading, b: Reading, rules: Rules) -> Decimal | None:
    """The energy of the pair (a, b) in kWh, or None when it is unknown."""
    span = b.ts - a.ts
    if span > rules.max_interpolate:
        return None
    if b.counter_kwh >= a.counter_kwh:
        energy = b.counter_kwh - a.counter_kwh
    elif (rules.register_max_kwh is not None
          and Decimal("0.99") * rules.register_max_kwh <= a.counter_kwh
          <= rules.register_max_kwh
          and b.counter_kwh <= Decimal("0.01") * rules.register_max_kwh):
        energy = rules.register_max_kwh - a.counter_kwh + b.counter_kwh
    else:
        return None  # a new register segment
    if rules.max_power_kw is not None:
        hours = Fraction(micros(span), 3_600_000_000)
        if Fraction(energy) / hours > Fraction(rules.max_power_kw):
            return None
    return energy


def _round_half_up(x: Fraction) -> int:
    # x >= 0 here: the floor of x + 1/2 is the nearest integer, halves going up.
    return int(x + Fraction(1, 2)) if x >= 0 else -_round_half_up(-x)


def share(a: Reading, b: Reading, energy: Decimal, start: datetime, end: datetime) -> Decimal:
    """The part of the pair's energy in [start, end] (inside [a.ts, b.ts]): R(end) - R(start),
    where R(t) is the energy up to t in 0.0001 kWh units, rounded half up."""
    units = int(energy / UNIT)
    span = micros(b.ts - a.ts)

    def r(t: datetime) -> int:
        return _round_half_up(Fraction(units * micros(t - a.ts), span))

    return (r(end) - r(start)) * UNIT


def meter_rows(readings: list[Reading], lo: datetime, hi: datetime, rules: Rules,
               described: bool) -> list[HourRow]:
    """The rows of one meter (readings of that meter, any order) for the hours [lo, hi)."""
    rs = sorted(readings, key=lambda r: r.ts)
    if not rs:
        return []
    # The SQL only sees a meter with a reading in [lo, hi) or a row in meter_dim.
    if not described and not any(lo <= r.ts < hi for r in rs):
        return []
    pairs = [(a, b, pair_energy(a, b, rules)) for a, b in pairwise(rs)]
    rows = []
    hour = max(lo, hour_of(rs[0].ts))
    last_hour = min(hi - HOUR, hour_of(rs[-1].ts))
    while hour <= last_hour:
        end = hour + HOUR
        inside = [r for r in rs if hour <= r.ts < end]
        overlapping = [(a, b, e) for a, b, e in pairs if a.ts < end and b.ts > hour]
        if inside or overlapping:
            known = [(a, b, e) for a, b, e in overlapping if e is not None]
            covered = timedelta(0)
            total = Decimal(0)
            gap = False
            for a, b, e in known:
                s, t = max(a.ts, hour), min(b.ts, end)
                assert e is not None
                covered += t - s
                total += share(a, b, e, s, t)
                gap = gap or b.ts - a.ts > rules.max_gap
            rows.append(HourRow(
                created_at=hour,
                meter_id=rs[0].meter_id,
                consumption_kwh=total if known else None,
                is_estimated=bool(known) and (covered < HOUR or gap),
                reading_count=len(inside),
                counter_kwh=inside[-1].counter_kwh if inside else None,
                kwh_credit_available=inside[-1].credit_kwh if inside else None,
            ))
        hour = end
    return rows


def hourly_rows(readings: Iterable[Reading], lo: datetime, hi: datetime,
                rules: Rules = Rules(), described: Iterable[int] = ()) -> list[HourRow]:
    """Every meter's rows for [lo, hi), ordered by (meter_id, created_at). `described`: the
    meters in meter_dim."""
    by_meter: dict[int, list[Reading]] = defaultdict(list)
    for r in readings:
        by_meter[r.meter_id].append(r)
    known = set(described)
    return [row for meter in sorted(by_meter)
            for row in meter_rows(by_meter[meter], lo, hi, rules, meter in known)]
