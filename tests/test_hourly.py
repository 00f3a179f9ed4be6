"""timeseries/hourly.py against a real PostgreSQL: the SQL writes exactly the rows of the plain
Python model (tests/hourly_model.py), and each rule a naive implementation gets wrong has a test.

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

from tests.hourly_model import (
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
    conn.execute("truncate ts.meter_readings, ts.meter_hourly, ts.pending_hours,"
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


def stored(conn: psycopg.Connection) -> list[HourRow]:
    rows = conn.execute(
        "select created_at, meter_id, consumption_kwh, is_estimated, reading_count,"
        " counter_kwh, kwh_credit_available from ts.meter_hourly"
        " order by meter_id, created_at").fetchall()
    return [HourRow(*row) for row in rows]


def previewed(conn: psycopg.Connection, lo: datetime, hi: datetime, **options: object
              ) -> list[HourRow]:
    return [HourRow(*row[:7]) for row in preview_hours(conn, lo, hi, **options)]


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
    conn.execute("delete from ts.meter_hourly")
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
    conn.execute("delete from ts.meter_hourly")
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
    rows = conn.execute("select meter_id, created_at, built_at from ts.meter_hourly").fetchall()
    return {(m, t): b for m, t, b in rows}


def test_rebuilding_is_idempotent(conn: psycopg.Connection) -> None:
    insert(conn, series(1, at(0, 10), [str(i) for i in range(12)])
           + series(2, at(1, 5), ["3", "2", "4", "9"], timedelta(minutes=50)))
    describe(conn, [1])
    first = build_hours(conn, at(0), at(6))
    conn.commit()
    rows = conn.execute("select * from ts.meter_hourly order by 1, 2").fetchall()
    again = build_hours(conn, at(0), at(6))
    conn.commit()
    assert (again.hours, again.written, again.removed) == (first.hours, 0, 0)
    # identical rows, built_at included: an unchanged row is not rewritten
    assert conn.execute("select * from ts.meter_hourly order by 1, 2").fetchall() == rows

    # Readings withdrawn: the rebuild removes the rows that no longer have data (02:00 and
    # 03:00 of meter 2) and rewrites the one whose pair changed.
    conn.execute("delete from ts.meter_readings where meter_id = 2 and ts > %s", [at(2)])
    result = build_hours(conn, at(0), at(6))
    assert (result.written, result.removed) == (1, 2)
    assert stored(conn) == hourly_rows(conn_readings(conn), at(0), at(6), described=[1])


def test_no_float_anywhere_in_the_output(conn: psycopg.Connection) -> None:
    insert(conn, [Reading(1, at(0, 0, 0.000001), D("0.0001"), D("1.5")),
                  Reading(1, at(1, 0, 0.333333), D("0.0004"))])
    # no float type or cast anywhere in the statements
    for sql in (PREVIEW_SQL, BUILD_SQL, HOURS_TO_REBUILD_SQL):
        assert not re.findall(r"\bfloat\w*|\bdouble precision\b|\breal\b", sql.lower())
    with conn.cursor() as cur:
        cur.execute("select * from (" + PREVIEW_SQL.replace("order by meter_id, created_at", "")
                    + ") x limit 0", build_params(at(0), at(2)))
        assert cur.description is not None
        types = {col.name: col.type_code for col in cur.description}
    numeric = 1700
    assert {types[c] for c in ("consumption_kwh", "counter_kwh", "kwh_credit_available")} == {
        numeric}
    assert not {700, 701} & set(types.values())  # float4, float8
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
                        " is_hidden_from_reporting from ts.meter_hourly order by 1").fetchall()
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
