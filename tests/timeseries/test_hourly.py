"""timeseries/hourly.py against a real PostgreSQL: the SQL writes exactly the rows of the plain
Python model (tests/support/hourly_model.py), and each rule a naive implementation gets wrong
has a test.

Tolerance: none is needed for whole pairs. Shares are computed in integer 0.0001 kWh units with
cumulative rounding (R(end) - R(start), R(a) = 0, R(b) = the pair's energy), so the hours of a
pair add up to its energy exactly, and the sum over any hours equals the sum of the energies of
the pairs they cover. Where a period's ends cut through pairs, its sum differs from the
interpolated counter increase by the two roundings at its ends: at most 0.0001 kWh for the
whole period (not per hour), which is what the conservation test allows.
"""

from __future__ import annotations

import asyncio
import itertools
import re
from collections.abc import Iterator, Sequence
from datetime import UTC, datetime, timedelta
from decimal import Decimal
from fractions import Fraction

import psycopg
import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from tests.support.hourly_model import (
    HOUR,
    TABLES_DDL,
    UNIT,
    HourRow,
    Reading,
    Rules,
    hour_of,
    hourly_rows,
    micros,
    pair_energy,
)
from timeseries.hourly import (
    BUILD_SQL,
    HOURS_TO_REBUILD_SQL,
    MEASURE_COLUMNS,
    PREVIEW_SQL,
    RebuildRange,
    abuild_hours,
    acreate_meter_dim,
    build_hours,
    build_params,
    create_meter_dim,
    hours_to_rebuild,
    preview_hours,
)

pytestmark = pytest.mark.db

T0 = datetime(2025, 6, 1, tzinfo=UTC)
D = Decimal


def at(hours: float = 0, minutes: float = 0, seconds: float = 0) -> datetime:
    return T0 + timedelta(hours=hours, minutes=minutes, seconds=seconds)


# -- database helpers ----------------------------------------------------------------------------


@pytest.fixture(scope="module")
def db_url(scratch) -> str:  # type: ignore[no-untyped-def]
    url: str = scratch.create("nxt_hourly")
    with psycopg.connect(url) as conn:
        conn.execute(TABLES_DDL)
    return url


@pytest.fixture(scope="module")
def shared_conn(db_url: str) -> Iterator[psycopg.Connection]:
    """One session for the hypothesis tests (pg_temp.meter_dim lives in the session)."""
    with psycopg.connect(db_url) as conn:
        create_meter_dim(conn)
        conn.commit()
        yield conn


@pytest.fixture
def conn(shared_conn: psycopg.Connection) -> psycopg.Connection:
    reset(shared_conn)
    return shared_conn


def reset(conn: psycopg.Connection) -> None:
    conn.rollback()
    conn.execute("truncate ts.meter_readings, public.meter_snapshot_1_h, ts.pending_hours,"
                 " pg_temp.meter_dim")
    conn.execute("set timezone = 'UTC'")
    conn.commit()


def insert(conn: psycopg.Connection, readings: Sequence[Reading]) -> None:
    with conn.cursor() as cur, cur.copy(
            "copy ts.meter_readings (meter_id, ts, counter_kwh, credit_kwh) from stdin") as copy:
        for r in readings:
            copy.write_row((r.meter_id, r.ts, r.counter_kwh, r.credit_kwh))
    conn.commit()


def describe(conn: psycopg.Connection, meters: Sequence[int]) -> None:
    with conn.cursor() as cur:
        cur.executemany(
            "insert into pg_temp.meter_dim (meter_id, meter_type, grid_id, grid_name,"
            " organization_name, is_hidden_from_reporting) values (%s, 'HPS', 7, 'Kano 1',"
            " 'Solar One', false)", [(m,) for m in meters])
    conn.commit()


def hour_row(row: Sequence[object]) -> HourRow:
    """The model's row of a table (or preview) row: created_at is UTC without a time zone."""
    created_at = row[0]
    assert isinstance(created_at, datetime) and created_at.tzinfo is None
    return HourRow(created_at.replace(tzinfo=UTC), *row[1:7])  # type: ignore[arg-type]


def stored(conn: psycopg.Connection) -> list[HourRow]:
    rows = conn.execute(
        "select created_at, meter_id, consumption_kwh_exact, is_estimated, reading_count,"
        " counter_kwh_exact, kwh_credit_available_exact from public.meter_snapshot_1_h"
        " order by meter_id, created_at").fetchall()
    return [hour_row(row) for row in rows]


def previewed(conn: psycopg.Connection, lo: datetime, hi: datetime, **options: object
              ) -> list[HourRow]:
    return [hour_row(row) for row in preview_hours(conn, lo, hi, **options)]


def options_of(rules: Rules) -> dict[str, object]:
    return {"max_gap": rules.max_gap, "max_interpolate": rules.max_interpolate,
            "register_max_kwh": rules.register_max_kwh, "max_power_kw": rules.max_power_kw}


def by_hour(rows: Sequence[HourRow], meter: int = 1) -> dict[datetime, HourRow]:
    return {r.created_at: r for r in rows if r.meter_id == meter}


def series(meter: int, start: datetime, counters: Sequence[str | Decimal],
           step: timedelta = timedelta(minutes=15)) -> list[Reading]:
    return [Reading(meter, start + i * step, D(c)) for i, c in enumerate(counters)]


# -- random reading series -----------------------------------------------------------------------

MICRO = 1
MINUTE = 60_000_000
HOUR_US = 60 * MINUTE


@st.composite
def rules_strategy(draw: st.DrawFn) -> Rules:
    max_gap = draw(st.sampled_from([timedelta(hours=2), timedelta(minutes=30),
                                    timedelta(hours=3)]))
    max_interpolate = draw(st.sampled_from([timedelta(hours=48), timedelta(hours=5),
                                            max_gap]))
    return Rules(max_gap=max_gap, max_interpolate=max(max_gap, max_interpolate),
                 register_max_kwh=draw(st.sampled_from([None, D("10000"), D("99999.9999")])),
                 max_power_kw=draw(st.sampled_from([None, None, D("50")])))


@st.composite
def readings_strategy(draw: st.DrawFn, rules: Rules, *, monotone: bool = False,
                      max_meters: int = 3) -> list[Reading]:
    out: list[Reading] = []
    register_max = rules.register_max_kwh or D("10000")
    for meter in range(1, draw(st.integers(1, max_meters)) + 1):
        t = T0 + timedelta(microseconds=draw(st.integers(0, 6 * HOUR_US)))
        units = draw(st.integers(0, 9_000 * 10_000))
        for _ in range(draw(st.integers(0, 14))):
            credit = draw(st.one_of(st.none(), st.integers(0, 10**7).map(lambda u: u * UNIT)))
            out.append(Reading(meter, t, units * UNIT, credit))
            t += timedelta(microseconds=draw(st.one_of(
                st.integers(MICRO, 20 * MINUTE),  # sub-second, irregular
                st.sampled_from([15 * MINUTE, HOUR_US, 2 * HOUR_US, 2 * HOUR_US + 1,
                                 48 * HOUR_US, 48 * HOUR_US + 1]),  # right on the rules' edges
                st.integers(MICRO, 60 * HOUR_US))))
            change = draw(st.sampled_from(
                ["zero", "small", "small", "large"] if monotone
                else ["zero", "small", "small", "large", "drop", "near_max", "roll"]))
            if change == "small":
                units += draw(st.integers(0, 50_000))
            elif change == "large":
                units += draw(st.integers(0, 10**7))
            elif change == "drop":
                units = draw(st.integers(0, units))
            elif change == "near_max":
                units = draw(st.integers(int(register_max * D("0.99") / UNIT),
                                         int(register_max / UNIT)))
            elif change == "roll":
                units = draw(st.integers(0, int(register_max * D("0.01") / UNIT)))
            units = min(units, 10**6 * 10_000)  # stays inside numeric(14, 4)
    return out


@st.composite
def scenario(draw: st.DrawFn) -> tuple[Rules, list[Reading], list[int], int, int]:
    rules = draw(rules_strategy())
    readings = draw(readings_strategy(rules))
    meters = sorted({r.meter_id for r in readings})
    described = draw(st.lists(st.sampled_from(meters), unique=True)) if meters else []
    # a sub-window, in hours relative to the full range
    return rules, readings, described, draw(st.integers(-3, 40)), draw(st.integers(1, 30))


def full_range(readings: Sequence[Reading]) -> tuple[datetime, datetime]:
    if not readings:
        return T0, T0 + HOUR
    return (hour_of(min(r.ts for r in readings)) - 2 * HOUR,
            hour_of(max(r.ts for r in readings)) + 3 * HOUR)


# -- properties ----------------------------------------------------------------------------------


@settings(max_examples=60, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(case=scenario())
def test_sql_writes_exactly_the_models_rows(shared_conn: psycopg.Connection,
                                            case: tuple[Rules, list[Reading], list[int], int, int]
                                            ) -> None:
    rules, readings, described, offset, width = case
    conn = shared_conn
    reset(conn)
    insert(conn, readings)
    describe(conn, described)
    options = options_of(rules)

    lo, hi = full_range(readings)
    build_hours(conn, lo, hi, **options)
    conn.commit()
    expected = hourly_rows(readings, lo, hi, rules, described)
    assert stored(conn) == expected

    # Any sub-window computes the same rows as the model for that window (the build knows a
    # meter by its description, a reading in the window, or a row already there)...
    sub_lo = lo + offset * HOUR
    sub_hi = sub_lo + width * HOUR
    known = {*described, *(r.meter_id for r in expected if sub_lo <= r.created_at < sub_hi)}
    assert previewed(conn, sub_lo, sub_hi, **options) == hourly_rows(
        readings, sub_lo, sub_hi, rules, known)
    # ...so rebuilding it over the full build changes nothing.
    result = build_hours(conn, sub_lo, sub_hi, **options)
    conn.commit()
    assert (result.written, result.removed) == (0, 0)
    assert stored(conn) == expected


@settings(max_examples=40, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(data=st.data())
def test_conservation(shared_conn: psycopg.Connection, data: st.DataObject) -> None:
    rules = Rules()  # default rules: 2 h gaps estimated, 48 h the interpolation limit
    readings = data.draw(readings_strategy(rules, monotone=True, max_meters=2))
    conn = shared_conn
    reset(conn)
    insert(conn, readings)
    lo, hi = full_range(readings)
    build_hours(conn, lo, hi)
    conn.commit()
    rows = stored(conn)

    for meter in {r.meter_id for r in readings}:
        rs = sorted((r for r in readings if r.meter_id == meter), key=lambda r: r.ts)
        hourly = [r.consumption_kwh for r in rows if r.meter_id == meter]
        known = [pair_energy(a, b, rules) for a, b in itertools.pairwise(rs)]
        # Whole series: the hours hold exactly the energy of the pairs that can be
        # interpolated, which within one segment and without a >48 h pair is the counter's
        # increase, to the last 0.0001 kWh.
        assert sum(v for v in hourly if v is not None) == sum(e for e in known if e is not None)
        if all(e is not None for e in known):
            increase = rs[-1].counter_kwh - rs[0].counter_kwh
            assert sum(v for v in hourly if v is not None) == increase
        assert all(v is None or v >= 0 for v in hourly)

    # Any hour-aligned period: the interpolated counter increase, within 0.0001 kWh in all.
    meter_rs = sorted((r for r in readings if r.meter_id == 1), key=lambda r: r.ts)
    if len(meter_rs) >= 2 and all(pair_energy(a, b, rules) is not None
                                  for a, b in itertools.pairwise(meter_rs)):
        first, last = hour_of(meter_rs[0].ts), hour_of(meter_rs[-1].ts) + HOUR
        p_lo = first + data.draw(st.integers(0, max(0, (last - first) // HOUR))) * HOUR
        p_hi = p_lo + data.draw(st.integers(1, 30)) * HOUR
        total = sum((r.consumption_kwh for r in rows
                     if r.meter_id == 1 and p_lo <= r.created_at < p_hi
                     and r.consumption_kwh is not None), D(0))
        exact = interpolated(meter_rs, p_hi) - interpolated(meter_rs, p_lo)
        assert abs(Fraction(total) - exact) <= Fraction(1, 10_000)


def interpolated(rs: Sequence[Reading], t: datetime) -> Fraction:
    """The counter at t, linear between readings, clamped to the first and last reading."""
    if t <= rs[0].ts:
        return Fraction(rs[0].counter_kwh)
    for a, b in itertools.pairwise(rs):
        if a.ts <= t <= b.ts:
            part = Fraction(micros(t - a.ts), micros(b.ts - a.ts))
            return Fraction(a.counter_kwh) + part * Fraction(b.counter_kwh - a.counter_kwh)
    return Fraction(rs[-1].counter_kwh)


# -- one test per rule a naive implementation gets wrong ----------------------------------------


def test_a_pair_straddling_an_hour_boundary_is_split_exactly(conn: psycopg.Connection) -> None:
    insert(conn, [
        Reading(1, at(10), D("99")),
        Reading(1, at(10, 50), D("100")),
        Reading(1, at(11, 10), D("102")),  # 2 kWh over 20 min: 1 kWh each side of 11:00
        Reading(1, at(12), D("103")),
        # 1 kWh from 10:45 to 11:05: three quarters before 11:00, one quarter after
        Reading(2, at(10, 45), D("5")),
        Reading(2, at(11, 5), D("6")),
        # 0.0002 kWh over 100 min across three hours: 20 / 60 / 20 min give 0.4 / 1.2 / 0.4
        # units; cumulative rounding gives 0 / 2 / 0 - nothing lost, nothing made up
        Reading(3, at(10, 40), D("7")),
        Reading(3, at(12, 20), D("7.0002")),
    ])
    build_hours(conn, at(9), at(14))
    rows = stored(conn)

    one = by_hour(rows, 1)
    assert (one[at(10)].consumption_kwh, one[at(10)].is_estimated) == (D("2"), False)
    assert (one[at(11)].consumption_kwh, one[at(11)].is_estimated) == (D("2"), False)
    # 12:00 only holds the last reading: a row with its counter, no energy (nothing after it)
    assert (one[at(12)].consumption_kwh, one[at(12)].reading_count,
            one[at(12)].counter_kwh) == (None, 1, D("103"))
    assert [r.consumption_kwh for r in by_hour(rows, 2).values()] == [D("0.75"), D("0.25")]
    assert [r.consumption_kwh for r in by_hour(rows, 3).values()] == [D(0), D("0.0002"), D(0)]
    assert rows == hourly_rows(conn_readings(conn), at(9), at(14))


def conn_readings(conn: psycopg.Connection) -> list[Reading]:
    return [Reading(*row) for row in conn.execute(
        "select meter_id, ts, counter_kwh, credit_kwh from ts.meter_readings")]


def test_a_replacement_meter_starting_at_5000_kwh_adds_nothing(conn: psycopg.Connection) -> None:
    old = series(1, at(0, 5), ["7320", "7320.5", "7321", "7321.5"])  # 00:05 .. 00:50
    new = series(1, at(1, 20), ["5000", "5000.25", "5000.5", "5000.75", "5001"])  # 01:20 ..
    insert(conn, old + new)
    build_hours(conn, at(0), at(4))
    hours = by_hour(stored(conn))

    values = [r.consumption_kwh for r in hours.values() if r.consumption_kwh is not None]
    assert all(D(0) <= v < 2 for v in values)  # no negative hour, no 5000 (or 2321.5) spike
    # The pair across the swap (00:50 -> 01:20) is unknown: the hours it touches hold only
    # what the other pairs measured, and are estimated.
    assert (hours[at(0)].consumption_kwh, hours[at(0)].is_estimated) == (D("1.5"), True)
    # 01:20 .. 01:50, and 10 of the 15 minutes of 01:50 -> 02:05
    assert (hours[at(1)].consumption_kwh, hours[at(1)].is_estimated) == (D("0.6667"), True)
    assert sum(values) == D("1.5") + D("1")  # both segments' increases, nothing else


def test_a_reset_spanning_whole_hours_leaves_them_null(conn: psycopg.Connection) -> None:
    insert(conn, [Reading(1, at(0, 30), D("800")), Reading(1, at(3, 30), D("5000")),
                  Reading(1, at(3, 45), D("5001")), Reading(1, at(2, 0, 1), D("10"))])
    build_hours(conn, at(0), at(5))
    hours = by_hour(stored(conn))
    # 00:30 -> 02:00:01 drops (reset): hour 1 is inside it, not covered by anything known
    assert hours[at(1)].consumption_kwh is None
    assert hours[at(0)].consumption_kwh is None  # only the unknown pair after 00:30
    # 02:00:01 -> 03:30 climbs 4990 kWh in 1.5 h: a plain increase without a power bound...
    assert hours[at(2)].consumption_kwh is not None
    # ...and unknown (a replacement meter reading higher) with one
    build_hours(conn, at(0), at(5), max_power_kw=D("50"))
    bounded = by_hour(stored(conn))
    assert bounded[at(2)].consumption_kwh is None
    assert bounded[at(3)].consumption_kwh == D(1) and bounded[at(3)].is_estimated


def test_a_rollover_counts_only_with_a_known_register_maximum(conn: psycopg.Connection) -> None:
    insert(conn, series(1, at(0), ["99990", "99995", "2", "7", "12"], timedelta(minutes=30)))
    build_hours(conn, at(0), at(3), register_max_kwh=D("100000"))
    rolled = by_hour(stored(conn))
    # 99995 -> 2 across the maximum is 7 kWh
    assert [r.consumption_kwh for r in rolled.values()] == [D(5) + D(7), D(5) + D(5), None]
    assert not rolled[at(0)].is_estimated

    build_hours(conn, at(0), at(3))  # no maximum known: the drop is a reset
    reset_rows = by_hour(stored(conn))
    assert reset_rows[at(0)].consumption_kwh == D(5) and reset_rows[at(0)].is_estimated
    assert reset_rows[at(1)].consumption_kwh == D(10)

    # A drop the maximum does not explain (from the middle of the register) stays a reset.
    reset(conn)
    insert(conn, series(1, at(0), ["50000", "3"], timedelta(minutes=30)))
    build_hours(conn, at(0), at(2), register_max_kwh=D("100000"))
    assert by_hour(stored(conn))[at(0)].consumption_kwh is None


def test_a_gap_is_spread_and_marked_estimated(conn: psycopg.Connection) -> None:
    before = series(1, at(0), ["100", "101", "102", "103", "104"])  # 00:00 .. 01:00
    after = series(1, at(6), ["114", "115", "116", "117", "118"])  # 06:00 .. 07:00
    insert(conn, before + after)  # 01:00 -> 06:00: 10 kWh over a 5 h gap
    build_hours(conn, at(0), at(8))
    hours = by_hour(stored(conn))

    assert (hours[at(0)].consumption_kwh, hours[at(0)].is_estimated) == (D(4), False)
    for h in range(1, 6):
        assert (hours[at(h)].consumption_kwh, hours[at(h)].is_estimated) == (D(2), True)
    assert (hours[at(6)].consumption_kwh, hours[at(6)].is_estimated) == (D(4), False)
    assert sum(r.consumption_kwh or 0 for r in hours.values()) == D(18)


def test_a_long_gap_is_null_not_zero(conn: psycopg.Connection) -> None:
    before = series(1, at(0), ["100", "100.5", "101"], timedelta(minutes=20))  # 00:00 .. 00:40
    # 72 h later, and the counter did not move: a naive build writes 0 kWh for three days
    after = series(1, at(72, 40), ["101", "101.5", "102", "102.5"], timedelta(minutes=20))
    insert(conn, before + after)
    build_hours(conn, at(0), at(75))
    hours = by_hour(stored(conn))

    assert (hours[at(0)].consumption_kwh, hours[at(0)].is_estimated) == (D(1), True)
    inside = [hours[at(h)] for h in range(1, 72)]
    assert all(r.consumption_kwh is None and r.reading_count == 0 for r in inside)
    assert not any(r.consumption_kwh == 0 for r in hours.values())
    assert (hours[at(72)].consumption_kwh, hours[at(72)].is_estimated) == (D(0.5), True)
    assert (hours[at(73)].consumption_kwh, hours[at(73)].reading_count) == (D(1), 3)

    # A window inside the gap, with no reading in it, writes the same NULL hours for a
    # described meter (its neighbours are found however far away they are).
    conn.execute("delete from public.meter_snapshot_1_h")
    describe(conn, [1])
    build_hours(conn, at(30), at(32))
    assert [(r.created_at, r.consumption_kwh) for r in stored(conn)] == [
        (at(30), None), (at(31), None)]


def test_a_late_backlog_rebuilds_exactly_the_hours_it_touches(conn: psycopg.Connection) -> None:
    # Meter 1 reports every 15 min (a few seconds late each time) for three days, but what it
    # sent from day 1 09:58 to day 2 10:00 arrives only later. Meter 2 is complete.
    def day(meter: int, start: datetime, count: int, first: int) -> list[Reading]:
        return [Reading(meter, start + timedelta(minutes=15 * i, seconds=7 + i % 5),
                        D(first + i) / 4, D(50) - D(i) / 100) for i in range(count)]

    everything = day(1, at(0), 288, 0) + day(2, at(0), 288, 1000)
    late = [r for r in everything if r.meter_id == 1 and at(33, 58) <= r.ts < at(58)]
    on_time = [r for r in everything if r not in late]
    insert(conn, on_time)
    describe(conn, [1, 2])
    build_hours(conn, at(0), at(73))
    conn.commit()
    before = {(r.meter_id, r.created_at): r for r in stored(conn)}
    built_at = built_times(conn)

    insert(conn, late)
    hours = sorted({hour_of(r.ts) for r in late})
    with conn.cursor() as cur:
        cur.executemany("insert into ts.pending_hours (hour) values (%s)"
                        " on conflict do nothing", [(h,) for h in hours])
    conn.commit()

    ranges = hours_to_rebuild(conn)
    assert ranges == hours_to_rebuild(conn, hours=[r.ts for r in late])  # same from timestamps
    prev_reading = max(r.ts for r in on_time if r.meter_id == 1 and r.ts < late[0].ts)
    next_reading = min(r.ts for r in on_time if r.meter_id == 1 and r.ts > late[-1].ts)
    # Both sides: from the hour of the reading before the backlog to that of the one after.
    # Meter 2 comes along: a pending hour does not say whose reading arrived, so every meter
    # with a reading in it is rebuilt (its rows come out unchanged and are not rewritten).
    assert ranges == [RebuildRange(hour_of(prev_reading), hour_of(next_reading) + HOUR, (1, 2))]
    for rng in ranges:
        build_hours(conn, rng.lo, rng.hi, meters=rng.meters)
    conn.execute("delete from ts.pending_hours")
    conn.commit()
    after = {(r.meter_id, r.created_at): r for r in stored(conn)}

    # The incremental rebuild is complete: it equals a build from scratch...
    conn.execute("delete from public.meter_snapshot_1_h")
    build_hours(conn, at(0), at(73))
    assert stored(conn) == sorted(after.values(), key=lambda r: (r.meter_id, r.created_at))
    # ...and it changed exactly the rows the model says the backlog changes: the gap's hours,
    # and the hour on each side whose pair got shorter.
    model_before = {(r.meter_id, r.created_at): r
                    for r in hourly_rows(on_time, at(0), at(73), described=[1, 2])}
    model_after = {(r.meter_id, r.created_at): r
                   for r in hourly_rows(everything, at(0), at(73), described=[1, 2])}
    changed = {k for k in after if before.get(k) != after[k]}
    assert changed == {k for k in model_after if model_before.get(k) != model_after[k]}
    assert (1, hour_of(prev_reading)) in changed and (1, hour_of(next_reading)) in changed
    # rows outside the change were not even rewritten
    conn.rollback()
    rebuilt = built_times(conn)
    assert {k for k in built_at if rebuilt[k] != built_at[k]} == changed


def built_times(conn: psycopg.Connection) -> dict[tuple[int, datetime], datetime]:
    rows = conn.execute("select meter_id, created_at, built_at from public.meter_snapshot_1_h"
                        ).fetchall()
    return {(m, t.replace(tzinfo=UTC)): b for m, t, b in rows}


def test_rebuilding_is_idempotent(conn: psycopg.Connection) -> None:
    insert(conn, series(1, at(0, 10), [str(i) for i in range(12)])
           + series(2, at(1, 5), ["3", "2", "4", "9"], timedelta(minutes=50)))
    describe(conn, [1])
    first = build_hours(conn, at(0), at(6))
    conn.commit()
    rows = conn.execute("select * from public.meter_snapshot_1_h order by 1, 2").fetchall()
    again = build_hours(conn, at(0), at(6))
    conn.commit()
    assert (again.hours, again.written, again.removed) == (first.hours, 0, 0)
    # identical rows, built_at included: an unchanged row is not rewritten
    assert conn.execute("select * from public.meter_snapshot_1_h order by 1, 2").fetchall() == rows

    # Readings withdrawn: the rebuild removes the rows that no longer have data (02:00 and
    # 03:00 of meter 2) and rewrites the one whose pair changed.
    conn.execute("delete from ts.meter_readings where meter_id = 2 and ts > %s", [at(2)])
    result = build_hours(conn, at(0), at(6))
    assert (result.written, result.removed) == (1, 2)
    assert stored(conn) == hourly_rows(conn_readings(conn), at(0), at(6), described=[1])


def test_no_float_anywhere_in_the_output(conn: psycopg.Connection) -> None:
    insert(conn, [Reading(1, at(0, 0, 0.000001), D("0.0001"), D("1.5")),
                  Reading(1, at(1, 0, 0.333333), D("0.0004"))])
    # No float type or cast anywhere in the computation; the build's only floats are the
    # legacy columns, each written as the float of its exact value.
    for sql in (PREVIEW_SQL, HOURS_TO_REBUILD_SQL,
                re.sub(r"\b\w+_exact::(double precision|real)\b", "", BUILD_SQL)):
        assert not re.findall(r"\bfloat\w*|\bdouble precision\b|\breal\b", sql.lower())
    assert set(re.findall(r"\b\w+_exact::(?:double precision|real)\b", BUILD_SQL)) == {
        "consumption_kwh_exact::double precision", "counter_kwh_exact::real",
        "kwh_credit_available_exact::real"}
    with conn.cursor() as cur:
        cur.execute("select * from (" + PREVIEW_SQL.replace("order by meter_id, created_at", "")
                    + ") x limit 0", build_params(at(0), at(2)))
        assert cur.description is not None
        types = {col.name: col.type_code for col in cur.description}
    numeric = 1700
    assert {types[c] for c in ("consumption_kwh_exact", "counter_kwh_exact",
                               "kwh_credit_available_exact")} == {numeric}
    assert not {700, 701} & {types[c] for c in MEASURE_COLUMNS}  # float4, float8
    values = [v for row in preview_hours(conn, at(0), at(2)) for v in row[2:7]]
    assert not any(isinstance(v, float) for v in values)
    assert all(isinstance(v, Decimal) for row in preview_hours(conn, at(0), at(2))
               for v in (row[2],) if v is not None)


def test_hours_are_utc_in_any_session_timezone(conn: psycopg.Connection) -> None:
    insert(conn, series(1, at(0, 20), ["1", "2", "3", "4", "5", "6", "7"], timedelta(minutes=25)))
    utc = previewed(conn, at(0), at(4))
    conn.execute("set timezone = 'Asia/Kolkata'")  # +05:30: date_trunc would be 30 min off
    assert previewed(conn, at(0), at(4)) == utc
    assert all(r.created_at.minute == 0 for r in utc)


def test_dimensions_are_copied_and_undescribed_meters_hidden(conn: psycopg.Connection) -> None:
    insert(conn, series(1, at(0), ["1", "2"]) + series(2, at(0), ["1", "2"]))
    describe(conn, [1])
    build_hours(conn, at(0), at(1))
    rows = conn.execute("select meter_id, meter_type, grid_name, organization_name,"
                        " is_hidden_from_reporting from public.meter_snapshot_1_h order by 1"
                        ).fetchall()
    assert rows == [(1, "HPS", "Kano 1", "Solar One", False), (2, None, None, None, True)]


def test_bounds_must_be_whole_utc_hours() -> None:
    with pytest.raises(ValueError, match="whole UTC hour"):
        build_params(at(0, 30), at(2))
    with pytest.raises(ValueError, match="timezone-aware"):
        build_params(datetime(2025, 6, 1), at(2))
    with pytest.raises(ValueError, match="Decimal"):
        build_params(at(0), at(2), register_max_kwh=99999.9999)  # type: ignore[arg-type]


def test_async_wrappers_give_the_same_rows(db_url: str, conn: psycopg.Connection) -> None:
    insert(conn, series(5, at(0, 7), ["10", "10.4", "11", "13", "13"], timedelta(minutes=40)))

    async def scenario() -> tuple[int, int, str]:
        # as the scheduled job connects: autocommit, its own transaction per build
        async with await psycopg.AsyncConnection.connect(db_url, autocommit=True) as aconn:
            await acreate_meter_dim(aconn)
            async with aconn.transaction():
                result = await abuild_hours(aconn, at(0), at(4))
            again = await abuild_hours(aconn, at(0), at(4))  # outside any transaction
            jit = await (await aconn.execute("show jit")).fetchone()
            return result.hours, again.written, jit[0]  # type: ignore[index]

    before = conn.execute("show jit").fetchone()
    hours, written, jit = asyncio.run(scenario())
    assert (hours, written) == (3, 0)  # 00:07 .. 02:47, then nothing left to change
    assert stored(conn) == hourly_rows(conn_readings(conn), at(0), at(4))
    # JIT is off for the build only (see hourly._JIT_OFF): the session's setting is back
    assert (jit,) == before
    build_hours(conn, at(0), at(4))
    assert conn.execute("show jit").fetchone() == before


# -- the legacy table and its other writers --------------------------------------------------

SNAPSHOT = "public.meter_snapshot_1_h"


def full_row(conn: psycopg.Connection, meter: int, hour: datetime) -> dict[str, object]:
    cur = conn.execute(f"select * from {SNAPSHOT} where meter_id = %s and created_at = %s",
                       (meter, hour.replace(tzinfo=None)))
    names = [d.name for d in cur.description or ()]
    row = cur.fetchone()
    assert row is not None, (meter, hour)
    return dict(zip(names, row, strict=True))


def legacy_write(conn: psycopg.Connection, meter: int, hour: datetime, **columns: object) -> None:
    """A row as the legacy writers insert it: their columns only (this project's are NULL)."""
    values = {"created_at": hour.replace(tzinfo=None), "meter_id": meter, "meter_type": "HPS",
              "meter_external_reference": f"LEG-{meter}", "grid_id": 3, "grid_name": "Okpokunou",
              "customer_id": 900 + meter, "is_hidden_from_reporting": False, **columns}
    names = ", ".join(values)
    marks = ", ".join(["%s"] * len(values))
    conn.execute(f"insert into {SNAPSHOT} ({names}) values ({marks})", list(values.values()))
    conn.commit()


def test_a_built_hour_fills_the_legacy_columns(conn: psycopg.Connection) -> None:
    insert(conn, [Reading(7, at(0, 10), D("1234.5678"), D("20.1234")),
                  Reading(7, at(0, 40), D("1234.9012"), D("19.7777")),
                  Reading(7, at(1, 10), D("1235.0001"))])
    conn.execute(
        "insert into pg_temp.meter_dim values (7, 'FS', 'SM-7', 'CALIN', 'THREE_PHASE',"
        " 'Ada Obi', 31, 21, 'DCU-1', 'CALIN', 3, 2, 'Okpokunou', 'Solar One', 1.2, 0.2,"
        " true, false, true, false, 41, false, true)")
    conn.commit()
    build_hours(conn, at(0), at(2))
    conn.commit()
    row = full_row(conn, 7, at(0))
    built_at = row.pop("built_at")
    assert isinstance(built_at, datetime)
    assert row == {
        # the legacy columns: the whole UTC hour without a zone, the meter, its dimension
        "created_at": datetime(2025, 6, 1, 0, 0), "meter_id": 7, "meter_type": "FS",
        "meter_external_reference": "SM-7", "meter_external_system": "CALIN",
        "meter_phase": "THREE_PHASE", "customer_full_name": "Ada Obi", "customer_id": 31,
        "dcu_id": 21, "dcu_external_reference": "DCU-1", "dcu_external_system": "CALIN",
        "grid_id": 3, "organization_id": 2, "grid_name": "Okpokunou",
        "organization_name": "Solar One",
        # 0.3334 kWh from 00:10 to 00:40, and 20 of the 30 minutes of the 0.0989 kWh after it
        "consumption_kwh": 0.3993, "power_limit_kw": 1.2, "power_limit_kw_should_be": 0.2,
        "is_fs_consumption": True, "is_hps_consumption": False, "is_on": True,
        "should_be_on": False, "connection_id": 41, "is_hidden_from_reporting": False,
        "is_cabin_meter": True,
        # real (float4): the legacy columns round the counter to seven digits...
        "counter_kwh": pytest.approx(1234.9012, abs=1e-4), "kwh_credit_available":
            pytest.approx(19.7777, abs=1e-5),
        # ...the exact values stay beside them
        "consumption_kwh_exact": D("0.3993"), "counter_kwh_exact": D("1234.9012"),
        "kwh_credit_available_exact": D("19.7777"), "is_estimated": True, "reading_count": 2,
        "inserted_by_build": True,
    }
    # Each legacy float is the database's own float of the exact value.
    floats = conn.execute(
        f"select bool_and(consumption_kwh is not distinct from consumption_kwh_exact::float8"
        f" and counter_kwh is not distinct from counter_kwh_exact::float4"
        f" and kwh_credit_available is not distinct from kwh_credit_available_exact::float4)"
        f" from {SNAPSHOT}").fetchone()
    assert floats == (True,)


def test_rows_the_legacy_wrote_survive_a_rebuild_unchanged(conn: psycopg.Connection) -> None:
    # Meter 1 is the build's (readings); 50-53 are written only by the legacy services.
    insert(conn, series(1, at(0), ["10", "11", "12", "13", "14", "15", "16", "17", "18"]))
    describe(conn, [1, 50, 51, 52, 53])
    # yeti's hourly power-limit row: no consumption, no counter
    legacy_write(conn, 50, at(1), power_limit_kw=0.2, power_limit_kw_should_be=0.2, is_on=True,
                 should_be_on=True)
    # consumption rows as the legacy writers leave them: NaN, NULL with a counter, a value
    legacy_write(conn, 51, at(1), consumption_kwh=float("nan"), counter_kwh=88.5)
    legacy_write(conn, 52, at(1), consumption_kwh=None, counter_kwh=120.25,
                 kwh_credit_available=3.5)
    legacy_write(conn, 53, at(1), consumption_kwh=0.7, is_hps_consumption=True)
    before = {m: full_row(conn, m, at(1)) for m in (50, 51, 52, 53)}

    for _ in range(2):  # the first build, then a rebuild of the same hours
        result = build_hours(conn, at(0), at(3))
        conn.commit()
        assert result.removed == 0
        after = {m: full_row(conn, m, at(1)) for m in (50, 51, 52, 53)}
        assert repr(after) == repr(before)  # repr: NaN equals itself there
    assert len(by_hour(stored(conn))) == 3  # the build's own rows are there too


def test_a_power_limit_row_gets_the_measures_and_keeps_the_rest(
        conn: psycopg.Connection) -> None:
    # yeti writes the power-limit row at the start of the hour, before the build closes it.
    legacy_write(conn, 1, at(1), power_limit_kw=0.2, power_limit_kw_should_be=0.0,
                 is_on=False, should_be_on=True, customer_full_name="From yeti",
                 is_hidden_from_reporting=True)
    original = full_row(conn, 1, at(1))
    insert(conn, series(1, at(0, 30), ["10", "11", "12", "13", "14"]))  # 00:30 .. 01:30
    describe(conn, [1])  # says visible: the row yeti wrote says hidden, and stays so
    build_hours(conn, at(0), at(3))
    conn.commit()
    row = full_row(conn, 1, at(1))
    legacy_columns = {k for k in original if original[k] is not None or k in (
        "dcu_id", "organization_id", "organization_name")}
    assert {k: row[k] for k in legacy_columns} == {k: original[k] for k in legacy_columns}
    # 01:00, 01:15 and 01:30 in the hour: the two pairs between them, 2 kWh
    assert (row["consumption_kwh_exact"], row["consumption_kwh"], row["reading_count"]) == (
        D("2.0000"), 2.0, 3)
    assert row["inserted_by_build"] is None and row["built_at"] is not None

    # The readings withdrawn: the build clears what it wrote and leaves yeti's row as it was.
    conn.execute("delete from ts.meter_readings")
    conn.commit()
    result = build_hours(conn, at(0), at(3), meters=[1])
    conn.commit()
    assert result.removed == 2  # its own row of 00:00 deleted, yeti's of 01:00 cleared
    assert full_row(conn, 1, at(1)) == original
    assert [r.created_at for r in stored(conn)] == [at(1)]


def test_a_value_a_legacy_writer_puts_in_a_built_row_is_kept(conn: psycopg.Connection) -> None:
    insert(conn, series(1, at(0), ["10", "11", "12", "13", "14"]))  # 00:00 .. 01:00
    build_hours(conn, at(0), at(2))
    # Calin's daily download upserts consumption into the hour the build wrote.
    conn.execute(f"update {SNAPSHOT} set consumption_kwh = 3.75 where created_at = %s",
                 (at(0).replace(tzinfo=None),))
    conn.commit()
    kept = full_row(conn, 1, at(0))
    insert(conn, [Reading(1, at(0, 50), D("13.5"))])  # a late reading changes that hour
    build_hours(conn, at(0), at(2))
    conn.commit()
    assert full_row(conn, 1, at(0)) == kept


def test_reporting_flags_are_fixed_when_a_row_is_first_written(
        conn: psycopg.Connection) -> None:
    insert(conn, series(1, at(0), ["10", "11", "12", "13", "14"]))  # 00:00 .. 01:00
    describe(conn, [1])  # visible
    build_hours(conn, at(0), at(2))
    conn.commit()
    # The customer is hidden afterwards, and readings go on (with a late one in hour 0).
    conn.execute("update pg_temp.meter_dim set is_hidden_from_reporting = true,"
                 " grid_name = 'Renamed'")
    insert(conn, [Reading(1, at(0, 50), D("13.4")), *series(1, at(2, 15), ["15", "16"])])
    build_hours(conn, at(0), at(3))
    conn.commit()
    first, later = full_row(conn, 1, at(0)), full_row(conn, 1, at(1))
    # The row that existed keeps the flags it was written with; its measures follow.
    assert (first["is_hidden_from_reporting"], first["grid_name"]) == (False, "Kano 1")
    assert first["reading_count"] == 5
    # Hour 1 existed too (the 01:00 reading): still visible, now with the pair to 02:15.
    assert (later["is_hidden_from_reporting"], later["consumption_kwh_exact"]) == (
        False, D("0.8000"))
    # Hour 2 is new: written after the hiding, so hidden.
    assert full_row(conn, 1, at(2))["is_hidden_from_reporting"] is True
    # A meter first built with no dimension at all is hidden (and stays so).
    insert(conn, series(2, at(0), ["1", "2"]))
    build_hours(conn, at(0), at(1))
    conn.commit()
    assert full_row(conn, 2, at(0))["is_hidden_from_reporting"] is True
