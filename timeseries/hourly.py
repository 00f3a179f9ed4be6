"""Hourly consumption per meter: `ts.meter_readings` -> `ts.meter_hourly`, in one SQL statement.

The rules (tests/test_hourly.py has a test for each, tests/hourly_model.py a plain-Python model
of all of them that the SQL must match row for row):

Hours
    An hour is [h, h + 1 h) with h on a whole UTC hour (`created_at`), whatever the session's
    TimeZone: hours are binned with `date_bin` against a UTC origin, never `date_trunc`, which
    truncates in local time and is off by 30 min in zones such as Asia/Kolkata.

Pairs
    A meter's readings, ordered by time, form consecutive pairs (a, b). The energy of a pair is
    the counter's increase `b.counter - a.counter`, spread linearly in time over [a.ts, b.ts]:
    each hour gets the part of it that falls inside the hour. A pair that straddles an hour
    boundary is split across the hours it touches, never lost and never counted twice.

Exact shares (conservation)
    Energy is numeric end to end, never float. The share of a pair in an hour is computed in
    integer units of 0.0001 kWh and microseconds: with d the pair's energy in units, the part
    of the pair up to time t is R(t) = round_half_up(d * (t - a.ts) / (b.ts - a.ts)), and an
    hour gets R(end) - R(start) of its overlap. R(a.ts) = 0 and R(b.ts) = d, so the shares of a
    pair telescope to exactly d: the sum of hourly consumption over any set of hours equals the
    sum of the energies of the pairs inside them, to the last 0.0001 kWh, and a period whose
    ends cut pairs differs from the interpolated counter increase by at most 0.0001 kWh in all
    (one half-unit rounding at each end), not per hour.

Resets and rollovers (register segments)
    A counter that goes down starts a new register segment (meter replaced or reset). The pair
    across the drop is of unknown energy: it contributes nothing. It is never negative, never
    the new register's whole value (a replacement meter that starts at 5000 kWh adds nothing).
    A rollover counts only where a known register maximum explains it: with `register_max_kwh`
    set, a drop from a >= 0.99 * max (and a <= max) to b <= 0.01 * max has energy max - a + b.
    Optionally, `max_power_kw` bounds plausible consumption: a pair whose average power would
    exceed it (say a replacement meter reading *higher* than the old one) is a new segment too.

Gaps
    A pair longer than `max_gap` (2 h) is a gap: its energy is still spread linearly, but every
    hour it touches is marked `is_estimated`. A pair longer than `max_interpolate` (48 h) is of
    unknown energy, like a reset: the hours inside it are written with consumption NULL
    (unknown), never 0 kWh.

Which hours are written, and what they hold
    Within [lo, hi), a row is written for every hour that a pair overlaps (a known one or not)
    or that holds a reading. Hours before a meter's first reading and after its last are not
    written: no row is the documented way of saying "no data there".
    - consumption_kwh: the sum of the shares of the known pairs overlapping the hour; NULL
      when no known pair overlaps it (inside a long gap, across a reset, or an hour that only
      holds a meter's first/last reading).
    - is_estimated: the value is not a complete measurement: the known pairs cover only part
      of the hour (first/last hour of a meter, next to a reset or long gap) or one of them is a
      gap. It qualifies a value, so it is false on a NULL row (nothing was estimated).
    - reading_count, counter_kwh, kwh_credit_available: the number of readings whose time is
      in the hour; the counter and the credit of the last of them - one snapshot, so the two
      always describe the same instant (the credit is NULL when that reading carried none).

Dimensions
    Each row copies the meter's dimension from `pg_temp.meter_dim`, which the job fills from the
    transactional database before it builds (`create_meter_dim`). A meter missing there is
    still written (its energy is not lost), with NULL dimensions and
    `is_hidden_from_reporting = true`: a meter nobody has described yet must not leak into
    lender and aggregator reports; the next rebuild after the dimension catches up shows it.

Late readings and rebuilds
    `build_hours(conn, lo, hi)` recomputes every hour of [lo, hi) from the readings and makes
    the table's rows for it exactly that: it upserts what changed (rows whose values are
    unchanged are not rewritten, so `built_at` tells when a row last changed) and deletes rows
    of the range that should no longer exist. Re-running it changes nothing. It needs the pairs
    that cross lo and hi, so besides the readings of [lo, hi) it looks up, per meter, the last
    reading before lo and the first one at or after hi (two index probes per meter, however
    long the gap, rather than reading days of readings on either side).
    A reading that arrives late changes the pairs on both of its sides: `hours_to_rebuild`
    turns the hours queued in `ts.pending_hours` into, per meter, the range from the hour of
    the previous reading before the touched hours to the hour of the next reading after them,
    grouped into (lo, hi, meters) for `build_hours(..., meters=...)`.

The functions take a psycopg `Connection` (sync) or `AsyncConnection` (`a`-prefixed) and never
commit: the caller's transaction decides, so the job can drain its pending hours and build in
one transaction. `*_query` functions return (sql, params) for any other runner.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from decimal import Decimal
from typing import Any, NamedTuple

import psycopg

MAX_GAP = timedelta(hours=2)
MAX_INTERPOLATE = timedelta(hours=48)
HOUR = timedelta(hours=1)

# The meter's dimension columns, in meter_hourly's order; meter_dim has the same names and types.
DIM_COLUMNS: tuple[tuple[str, str], ...] = (
    ("meter_type", "text"),
    ("external_reference", "text"),
    ("external_system", "text"),
    ("meter_phase", "text"),
    ("customer_id", "bigint"),
    ("customer_name", "text"),
    ("dcu_id", "bigint"),
    ("dcu_external_reference", "text"),
    ("grid_id", "bigint"),
    ("grid_name", "text"),
    ("organization_id", "bigint"),
    ("organization_name", "text"),
    ("power_limit_watts", "integer"),
    ("is_on", "boolean"),
    ("should_be_on", "boolean"),
    ("is_fs_consumption", "boolean"),
    ("is_hps_consumption", "boolean"),
    ("is_hidden_from_reporting", "boolean"),
    ("is_cabin_meter", "boolean"),
    ("connection_id", "bigint"),
    ("customer_account_id", "bigint"),
)
_DIM_NAMES = tuple(name for name, _ in DIM_COLUMNS)

# What build_hours computes from the readings, besides the dimension.
MEASURE_COLUMNS = ("consumption_kwh", "is_estimated", "reading_count", "counter_kwh",
                   "kwh_credit_available")
HOURLY_COLUMNS = ("created_at", "meter_id", *MEASURE_COLUMNS, *_DIM_NAMES)

# `preserve rows`: the job may build several ranges, one transaction each, from one copy.
# is_hidden_from_reporting is NOT NULL so the job decides it for every meter it copies; NULL
# there would otherwise have to be guessed here.
CREATE_METER_DIM_SQL = (
    "drop table if exists pg_temp.meter_dim;\n"
    "create temp table meter_dim (\n    meter_id bigint primary key,\n"
    + ",\n".join(
        f"    {name} {typ}"
        + (" not null default false" if name == "is_hidden_from_reporting" else "")
        for name, typ in DIM_COLUMNS)
    + "\n) on commit preserve rows"
)

# Hours are binned against this origin, so they are whole UTC hours in any session TimeZone.
_ORIGIN = "timestamptz '2000-01-01 00:00:00+00'"
_HOUR_OF_TS = f"date_bin('1 hour', r.ts, {_ORIGIN})"


def _hour_of(expr: str) -> str:
    return f"date_bin('1 hour', {expr}, {_ORIGIN})"


def _micros(interval: str) -> str:
    # tstz - tstz is an interval of whole 24 h days and microseconds: its epoch is exact.
    return f"(extract(epoch from {interval}) * 1000000)::bigint"


def _energy(a_ts: str, a_c: str, b_ts: str, b_c: str) -> str:
    """SQL: the energy of the pair (a, b) in 0.0001 kWh units (bigint), NULL when unknown."""
    return f"""(case
        when {a_ts} is null or {a_c} is null then null
        -- Too long to interpolate: unknown, like a reset (NULL hours, never 0 kWh).
        when {b_ts} - {a_ts} > %(max_interpolate)s::interval then null
        -- Implausible average power (when bounded): a new register segment too.
        when %(max_power_kw)s::numeric is not null
             and (case when {b_c} >= {a_c} then {b_c} - {a_c}
                       else %(register_max)s::numeric - {a_c} + {b_c} end) * 3600
                 > %(max_power_kw)s::numeric * extract(epoch from {b_ts} - {a_ts}) then null
        when {b_c} >= {a_c} then ({b_c} - {a_c}) * 10000
        -- A rollover only where the known register maximum explains the drop.
        when {a_c} >= 0.99 * %(register_max)s::numeric and {a_c} <= %(register_max)s::numeric
             and {b_c} <= 0.01 * %(register_max)s::numeric
          then (%(register_max)s::numeric - {a_c} + {b_c}) * 10000
        -- Any other drop starts a new register segment: the pair's energy is unknown.
        else null
    end)::bigint"""


def _share(d: str, a_ts: str, b_ts: str, t: str) -> str:
    """SQL: R(t), the units of the pair (a, b) of energy d up to time t, rounded half up with
    exact integer division: floor((2 d x + span) / (2 span)) for x = t - a. R(a) = 0 and
    R(b) = d, so the shares of a pair add up to d exactly. bigint while 2 d x cannot overflow
    (always, for real meters); numeric beyond."""
    span, x = _micros(f"{b_ts} - {a_ts}"), _micros(f"{t} - {a_ts}")
    return (f"(case when {d} < 4000000000000000000 / {span}"
            f" then (2 * {d} * {x} + {span}) / (2 * {span})"
            f" else div(2 * {d}::numeric * {x} + {span}, 2 * {span}::numeric)::bigint end)")


def _neighbour(column: str, side: str) -> str:
    # The reading just outside [lo, hi): one index probe, made only for a meter's first (last)
    # reading of the range, however long ago (or far ahead) that reading is.
    if side == "prev":
        return (f"(select q.{column} from ts.meter_readings q where q.meter_id = r.meter_id"
                f" and q.ts < %(lo)s order by q.ts desc limit 1)")
    return (f"(select q.{column} from ts.meter_readings q where q.meter_id = r.meter_id"
            f" and q.ts >= %(hi)s order by q.ts limit 1)")


_W = "over w"

# The computation, as CTEs ending in `computed`: one row per meter and hour of [lo, hi).
# Parameters: lo, hi (timestamptz, whole hours), meters (bigint[] or NULL for all), max_gap,
# max_interpolate (interval), register_max, max_power_kw (numeric or NULL).
#
# Shape, for speed: one pass over the readings of [lo, hi) sorted by (meter, hour, ts) - the
# window functions give each reading its neighbours, and the grouping by (meter, hour) reads
# that same order, so nothing is sorted twice and nothing is expanded per pair. Within an hour
# the increases of the pairs telescope: their sum is last counter - first counter, corrected
# only by the (rare) pairs that are not a plain increase. The two pairs that cross the hour's
# boundaries are split with _share; hours without a reading (inside a gap) come from the pair
# around them.
_COMPUTE_SQL = f"""
with readings as (
    select r.meter_id, {_HOUR_OF_TS} as hour, r.ts, r.counter_kwh as c,
           r.credit_kwh as credit,
           lag({_HOUR_OF_TS}) {_W} is distinct from {_HOUR_OF_TS} as is_first,
           lead({_HOUR_OF_TS}) {_W} is distinct from {_HOUR_OF_TS} as is_last,
           -- the previous and next readings, across lo and hi too
           coalesce(lag(r.ts) {_W},
                    case when lag(r.ts) {_W} is null then {_neighbour("ts", "prev")} end) as a_ts,
           coalesce(lag(r.counter_kwh) {_W},
                    case when lag(r.ts) {_W} is null then {_neighbour("counter_kwh", "prev")} end)
             as a_c,
           coalesce(lead(r.ts) {_W},
                    case when lead(r.ts) {_W} is null then {_neighbour("ts", "next")} end) as n_ts,
           coalesce(lead(r.counter_kwh) {_W},
                    case when lead(r.ts) {_W} is null then {_neighbour("counter_kwh", "next")} end)
             as n_c,
           -- a pair inside the hour that is not a plain increase: a drop (reset or rollover),
           -- too long, or implausible
           lag({_HOUR_OF_TS}) {_W} = {_HOUR_OF_TS}
             and not (r.counter_kwh >= lag(r.counter_kwh) {_W}
                      and r.ts - lag(r.ts) {_W} <= %(max_interpolate)s::interval
                      and (%(max_power_kw)s::numeric is null
                           or (r.counter_kwh - lag(r.counter_kwh) {_W}) * 3600
                              <= %(max_power_kw)s::numeric
                                 * extract(epoch from r.ts - lag(r.ts) {_W}))) as odd,
           lag({_HOUR_OF_TS}) {_W} = {_HOUR_OF_TS}
             and r.ts - lag(r.ts) {_W} > %(max_gap)s::interval as gap
    from ts.meter_readings r
    where r.ts >= %(lo)s and r.ts < %(hi)s
      and (%(meters)s::bigint[] is null or r.meter_id = any(%(meters)s::bigint[]))
    window w as (partition by r.meter_id order by {_HOUR_OF_TS}, r.ts)
),
grouped as (
    -- F: the hour's first reading, L: its last. Rows arrive sorted by (meter, hour, ts).
    select meter_id, hour,
           count(*) as reading_count,
           min(ts) as f_ts,
           max(ts) as l_ts,
           min(a_ts) as f_a_ts,  -- F's predecessor when it is before the hour
           max(a_c) filter (where is_first) as f_a_c,
           max(c) filter (where is_first) as f_c,
           max(c) filter (where is_last) as l_c,
           max(credit) filter (where is_last) as l_credit,
           max(n_ts) as l_n_ts,  -- L's successor when it is after L
           max(n_c) filter (where is_last) as l_n_c,
           -- inside the hour: how far the odd pairs' energy is from their raw difference
           sum(case when odd
                    then (c - a_c) * 10000 - coalesce({_energy("a_ts", "a_c", "ts", "c")}, 0)
               end) as odd_fix,
           count(*) filter (where odd and {_energy("a_ts", "a_c", "ts", "c")} is null)
             as inner_unknown,
           coalesce(bool_or(gap), false) as inner_gap
    from readings
    group by meter_id, hour
),
hours as materialized (
    select g.*,
           case when g.f_a_ts < g.hour
                then {_energy("g.f_a_ts", "g.f_a_c", "g.f_ts", "g.f_c")} end as start_d,
           case when g.l_n_ts > g.l_ts
                then {_energy("g.l_ts", "g.l_c", "g.l_n_ts", "g.l_n_c")} end as end_d
    from grouped g
),
quiet as (
    -- Described meters without a reading in [lo, hi): the pair around the range, if any.
    select d.meter_id, p.ts as a_ts, p.counter_kwh as a_c, n.ts as b_ts, n.counter_kwh as b_c
    from pg_temp.meter_dim d
    cross join lateral (
        select q.ts, q.counter_kwh from ts.meter_readings q
        where q.meter_id = d.meter_id and q.ts < %(lo)s order by q.ts desc limit 1) p
    cross join lateral (
        select q.ts, q.counter_kwh from ts.meter_readings q
        where q.meter_id = d.meter_id and q.ts >= %(hi)s order by q.ts limit 1) n
    where (%(meters)s::bigint[] is null or d.meter_id = any(%(meters)s::bigint[]))
      and not exists (select 1 from ts.meter_readings q
                      where q.meter_id = d.meter_id and q.ts >= %(lo)s and q.ts < %(hi)s)
),
spans as (
    -- Pairs with whole hours inside them and no reading there: those hours, within [lo, hi).
    select meter_id, l_ts as a_ts, l_n_ts as b_ts, end_d as d,
           hour + interval '1 hour' as first_hour,
           least({_hour_of("l_n_ts")}, %(hi)s::timestamptz) - interval '1 hour' as last_hour
    from hours where l_n_ts >= hour + interval '2 hours'
    union all
    -- (the pair into the range's first reading is not another hour's pair after it)
    select meter_id, f_a_ts, f_ts, start_d,
           greatest({_hour_of("f_a_ts")} + interval '1 hour', %(lo)s::timestamptz),
           hour - interval '1 hour'
    from hours where f_a_ts < %(lo)s and f_a_ts < hour - interval '1 hour'
    union all
    select meter_id, a_ts, b_ts, {_energy("a_ts", "a_c", "b_ts", "b_c")},
           greatest({_hour_of("a_ts")} + interval '1 hour', %(lo)s::timestamptz),
           least({_hour_of("b_ts")}, %(hi)s::timestamptz) - interval '1 hour'
    from quiet
),
measured as (
    select h.meter_id, h.hour,
           case when h.known > 0 then
             (case when h.start_d is not null and h.f_ts > h.hour
                   then h.start_d - {_share("h.start_d", "h.f_a_ts", "h.f_ts", "h.hour")}
                   else 0 end
              + (h.l_c - h.f_c) * 10000 - coalesce(h.odd_fix, 0)
              + case when h.end_d is not null
                     then {_share("h.end_d", "h.l_ts", "h.l_n_ts", "h.hour + interval '1 hour'")}
                     else 0 end) * 0.0001
           end as consumption_kwh,
           h.known > 0 and (
             -- the hour's start: not covered, or by an unknown pair or a gap
             (h.f_ts > h.hour and (h.start_d is null
                                   or h.f_ts - h.f_a_ts > %(max_gap)s::interval))
             or h.inner_unknown > 0 or h.inner_gap
             -- the hour's end likewise (L is always before it)
             or h.end_d is null or h.l_n_ts - h.l_ts > %(max_gap)s::interval) as is_estimated,
           h.reading_count, h.l_c as counter_kwh, h.l_credit as kwh_credit_available
    from (select hours.*,
                 (start_d is not null and f_ts > hour)::int
                 + (reading_count - 1 - inner_unknown)
                 + (end_d is not null)::int as known
          from hours) h
    union all
    select s.meter_id, m.hour,
           case when s.d is not null then
             ({_share("s.d", "s.a_ts", "s.b_ts", "m.hour + interval '1 hour'")}
              - {_share("s.d", "s.a_ts", "s.b_ts", "m.hour")}) * 0.0001
           end,
           s.d is not null and s.b_ts - s.a_ts > %(max_gap)s::interval,
           0, null, null
    from spans s
    cross join lateral generate_series(s.first_hour, s.last_hour, interval '1 hour') as m(hour)
),
computed as (
    select m.hour as created_at, m.meter_id,
           m.consumption_kwh::numeric(14, 4) as consumption_kwh,
           m.is_estimated,
           m.reading_count::integer as reading_count,
           m.counter_kwh::numeric(14, 4) as counter_kwh,
           m.kwh_credit_available::numeric(14, 4) as kwh_credit_available,
           {", ".join(f"d.{n}" for n in _DIM_NAMES if n != "is_hidden_from_reporting")},
           -- Not described yet: hidden from reporting until the dimension catches up.
           coalesce(d.is_hidden_from_reporting, true) as is_hidden_from_reporting
    from measured m
    left join pg_temp.meter_dim d on d.meter_id = m.meter_id
)"""

_COMPUTED_ORDER = (
    "created_at", "meter_id", *MEASURE_COLUMNS,
    *(n for n in _DIM_NAMES if n != "is_hidden_from_reporting"), "is_hidden_from_reporting")

PREVIEW_SQL = (_COMPUTE_SQL + "\nselect " + ", ".join(HOURLY_COLUMNS)
               + " from computed order by meter_id, created_at")

_SET_COLUMNS = [c for c in HOURLY_COLUMNS if c not in ("created_at", "meter_id")]

BUILD_SQL = (
    _COMPUTE_SQL
    + """,
removed as (
    -- Rows of the range that should no longer exist, of the meters built here: those with a
    -- row now, and the described ones.
    delete from ts.meter_hourly t
    where t.created_at >= %(lo)s and t.created_at < %(hi)s
      and (t.meter_id in (select meter_id from computed)
           or t.meter_id in (select d.meter_id from pg_temp.meter_dim d
                             where %(meters)s::bigint[] is null
                                or d.meter_id = any(%(meters)s::bigint[])))
      and not exists (select 1 from computed c
                      where c.meter_id = t.meter_id and c.created_at = t.created_at)
    returning 1
),
written as (
    insert into ts.meter_hourly as t ("""
    + ", ".join(_COMPUTED_ORDER)
    + ")\n    select " + ", ".join(_COMPUTED_ORDER) + """ from computed
    on conflict (created_at, meter_id) do update set
        """
    + ",\n        ".join(f"{c} = excluded.{c}" for c in _SET_COLUMNS)
    + """,
        built_at = now()
    -- An unchanged row is not rewritten: a rebuild of settled hours writes nothing.
    where ("""
    + ", ".join(f"t.{c}" for c in _SET_COLUMNS)
    + """)
          is distinct from ("""
    + ", ".join(f"excluded.{c}" for c in _SET_COLUMNS)
    + """)
    returning 1
)
select (select count(*) from computed), (select count(*) from written),
       (select count(*) from removed)"""
)

# Pending hours -> per meter, the hours whose rows the late readings may change; meters with
# the same range grouped, so the job runs one build per distinct range.
HOURS_TO_REBUILD_SQL = f"""
with pending as (
    select distinct {_hour_of('p.hour')} as hour
    from (select hour from ts.pending_hours
          where %(hours)s::timestamptz[] is null
            and (%(lo)s::timestamptz is null or hour >= %(lo)s::timestamptz)
            and (%(hi)s::timestamptz is null or hour < %(hi)s::timestamptz)
          union all
          select unnest(%(hours)s::timestamptz[])) p
),
spans as (
    -- Runs of consecutive pending hours (gaps and islands).
    select min(hour) as s, max(hour) + interval '1 hour' as e
    from (select hour, hour - row_number() over (order by hour) * interval '1 hour' as grp
          from pending) g
    group by grp
),
touched as (
    select r.meter_id, min(r.ts) as first_ts, max(r.ts) as last_ts
    from spans sp
    join ts.meter_readings r on r.ts >= sp.s and r.ts < sp.e
    group by r.meter_id, sp.s
),
ranges as (
    -- From the hour of the reading before the touched ones to the hour of the one after:
    -- the pairs on both sides of a late reading change.
    select t.meter_id,
           {_hour_of('coalesce((select max(r.ts) from ts.meter_readings r '
                 'where r.meter_id = t.meter_id and r.ts < t.first_ts), t.first_ts)')} as lo,
           {_hour_of('coalesce((select min(r.ts) from ts.meter_readings r '
                 'where r.meter_id = t.meter_id and r.ts > t.last_ts), t.last_ts)')}
             + interval '1 hour' as hi
    from touched t
),
islands as (
    -- Overlapping or adjacent ranges of one meter merge into one.
    select meter_id, lo, hi,
           sum(case when lo > prev_hi then 1 else 0 end)
             over (partition by meter_id order by lo, hi) as grp
    from (select meter_id, lo, hi,
                 max(hi) over (partition by meter_id order by lo, hi
                               rows between unbounded preceding and 1 preceding) as prev_hi
          from ranges) x
),
merged as (
    select meter_id, min(lo) as lo, max(hi) as hi from islands group by meter_id, grp
)
select lo, hi, array_agg(meter_id order by meter_id) as meters
from merged
group by lo, hi
order by lo, hi"""


class BuildResult(NamedTuple):
    hours: int  # rows computed for the range
    written: int  # rows inserted or changed
    removed: int  # rows of the range deleted because they should no longer exist


@dataclass(frozen=True)
class RebuildRange:
    lo: datetime
    hi: datetime
    meters: tuple[int, ...]


def _check_hour(name: str, value: datetime) -> None:
    if value.tzinfo is None or value.utcoffset() is None:
        raise ValueError(f"{name} must be timezone-aware")
    # Whole UTC hours only: meter_hourly's keys are hour starts.
    if value.astimezone(UTC).replace(minute=0, second=0, microsecond=0) != value:
        raise ValueError(f"{name} must be a whole UTC hour, got {value.isoformat()}")


def build_params(lo: datetime, hi: datetime, *, meters: Sequence[int] | None = None,
                 max_gap: timedelta = MAX_GAP, max_interpolate: timedelta = MAX_INTERPOLATE,
                 register_max_kwh: Decimal | None = None,
                 max_power_kw: Decimal | None = None) -> dict[str, Any]:
    _check_hour("lo", lo)
    _check_hour("hi", hi)
    if hi <= lo:
        raise ValueError("hi must be after lo")
    if not timedelta(0) < max_gap <= max_interpolate:
        raise ValueError("need 0 < max_gap <= max_interpolate")
    for name, value in (("register_max_kwh", register_max_kwh), ("max_power_kw", max_power_kw)):
        # Energy stays decimal: a float here would bring binary rounding into the SQL.
        if value is not None and (not isinstance(value, Decimal) or value <= 0):
            raise ValueError(f"{name} must be a positive Decimal")
    return {"lo": lo, "hi": hi, "meters": None if meters is None else [int(m) for m in meters],
            "max_gap": max_gap, "max_interpolate": max_interpolate,
            "register_max": register_max_kwh, "max_power_kw": max_power_kw}


def build_hours_query(lo: datetime, hi: datetime, **options: Any) -> tuple[str, dict[str, Any]]:
    """The statement that rebuilds [lo, hi) and returns one row (hours, written, removed)."""
    return BUILD_SQL, build_params(lo, hi, **options)


def preview_hours_query(lo: datetime, hi: datetime, **options: Any
                        ) -> tuple[str, dict[str, Any]]:
    """The rows build_hours would write for [lo, hi) (HOURLY_COLUMNS), without writing."""
    return PREVIEW_SQL, build_params(lo, hi, **options)


def hours_to_rebuild_query(lo: datetime | None = None, hi: datetime | None = None, *,
                           hours: Sequence[datetime] | None = None
                           ) -> tuple[str, dict[str, Any]]:
    """Rows (lo, hi, meters[]): the ranges to rebuild for the pending hours in [lo, hi) (all
    when None), or for the given touched `hours` (any time in an hour stands for the hour)
    instead of the table."""
    return HOURS_TO_REBUILD_SQL, {"lo": lo, "hi": hi,
                                  "hours": None if hours is None else list(hours)}


def _rebuild_ranges(rows: list[tuple[Any, ...]]) -> list[RebuildRange]:
    return [RebuildRange(lo, hi, tuple(meters)) for lo, hi, meters in rows]


# -- sync ------------------------------------------------------------------------------------


def create_meter_dim(conn: psycopg.Connection[Any]) -> None:
    """(Re)create the session's empty pg_temp.meter_dim for the job to fill."""
    conn.execute(CREATE_METER_DIM_SQL)


def build_hours(conn: psycopg.Connection[Any], lo: datetime, hi: datetime,
                **options: Any) -> BuildResult:
    """Rebuild the hours [lo, hi) of all meters (or `meters=`); see the module's rules."""
    sql, params = build_hours_query(lo, hi, **options)
    with conn.cursor() as cur:
        row = cur.execute(sql, params).fetchone()
    assert row is not None
    return BuildResult(*row)


def preview_hours(conn: psycopg.Connection[Any], lo: datetime, hi: datetime,
                  **options: Any) -> list[tuple[Any, ...]]:
    sql, params = preview_hours_query(lo, hi, **options)
    with conn.cursor() as cur:
        return cur.execute(sql, params).fetchall()


def hours_to_rebuild(conn: psycopg.Connection[Any], lo: datetime | None = None,
                     hi: datetime | None = None, *,
                     hours: Sequence[datetime] | None = None) -> list[RebuildRange]:
    sql, params = hours_to_rebuild_query(lo, hi, hours=hours)
    with conn.cursor() as cur:
        return _rebuild_ranges(cur.execute(sql, params).fetchall())


# -- async (the scheduled job) ---------------------------------------------------------------


async def acreate_meter_dim(aconn: psycopg.AsyncConnection[Any]) -> None:
    await aconn.execute(CREATE_METER_DIM_SQL)


async def abuild_hours(aconn: psycopg.AsyncConnection[Any], lo: datetime, hi: datetime,
                       **options: Any) -> BuildResult:
    sql, params = build_hours_query(lo, hi, **options)
    async with aconn.cursor() as cur:
        await cur.execute(sql, params)
        row = await cur.fetchone()
    assert row is not None
    return BuildResult(*row)


async def apreview_hours(aconn: psycopg.AsyncConnection[Any], lo: datetime, hi: datetime,
                         **options: Any) -> list[tuple[Any, ...]]:
    sql, params = preview_hours_query(lo, hi, **options)
    async with aconn.cursor() as cur:
        await cur.execute(sql, params)
        return await cur.fetchall()


async def ahours_to_rebuild(aconn: psycopg.AsyncConnection[Any], lo: datetime | None = None,
                            hi: datetime | None = None, *,
                            hours: Sequence[datetime] | None = None) -> list[RebuildRange]:
    sql, params = hours_to_rebuild_query(lo, hi, hours=hours)
    async with aconn.cursor() as cur:
        await cur.execute(sql, params)
        return _rebuild_ranges(await cur.fetchall())
