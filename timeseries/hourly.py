"""Hourly consumption per meter: `ts.meter_readings` -> `public.meter_snapshot_1_h`, in one SQL
statement.

The rules (tests/timeseries/test_hourly.py has a test for each, tests/support/hourly_model.py a
plain-Python model of all of them that the SQL must match row for row):

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
    Energy is numeric end to end, never float: the computation, the preview and the `*_exact`
    columns; the legacy float columns get the nearest float of the exact value when written. The
    share of a pair in an hour is computed in integer units of 0.0001 kWh and microseconds: with
    d the pair's energy in units, the part of the pair up to time t is R(t) = round_half_up(d *
    (t - a.ts) / (b.ts - a.ts)), and an hour gets R(end) - R(start) of its overlap. R(a.ts) = 0
    and R(b.ts) = d, so the shares of a pair telescope to exactly d: the sum of hourly
    consumption over any set of hours equals the sum of the energies of the pairs inside them,
    to the last 0.0001 kWh, and a period whose ends cut pairs differs from the interpolated
    counter increase by at most 0.0001 kWh in all (one half-unit rounding at each end), not per
    hour.

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
    written: no row is the documented way of saying "no data there". The meters built are
    those the range knows of: with a reading in it, described in meter_dim, or with a row in
    it already - so a range's rows do not depend on how wide the build that wrote them was.
    - consumption_kwh: the sum of the shares of the known pairs overlapping the hour; NULL
      when no known pair overlaps it (inside a long gap, across a reset, or an hour that only
      holds a meter's first/last reading).
    - is_estimated: the value is not a complete measurement: the known pairs cover only part
      of the hour (first/last hour of a meter, next to a reset or long gap) or one of them is a
      gap. It qualifies a value, so it is false on a NULL row (nothing was estimated).
    - reading_count, counter_kwh, kwh_credit_available: the number of readings whose time is
      in the hour; the counter and the credit of the last of them - one snapshot, so the two
      always describe the same instant (the credit is NULL when that reading carried none).

The table
    Rows go into the legacy hourly snapshot, `public.meter_snapshot_1_h`, in the legacy columns
    (created_at: the whole UTC hour as timestamp without time zone; meter_id integer;
    consumption_kwh double precision, counter_kwh and kwh_credit_available real), and in the
    columns this project added beside them (revision ts0003): the exact values
    (consumption_kwh_exact, counter_kwh_exact, kwh_credit_available_exact numeric(14, 4)),
    is_estimated, reading_count, built_at, inserted_by_build. The legacy float columns are
    written from the exact ones (`::double precision`, `::real`); sums are taken from the exact.

Dimensions
    Each row copies the meter's dimension from `pg_temp.meter_dim`, which the job fills from the
    transactional database before it builds (`create_meter_dim`): meter type, reference and
    system, phase, customer id and full name, DCU, grid, organization, power limits in kW,
    is_on / should_be_on, the FS/HPS flags, connection, is_cabin_meter, and
    is_hidden_from_reporting. A meter missing there is still written (its energy is not lost),
    with NULL dimensions and `is_hidden_from_reporting = true`: a meter nobody has described
    must not leak into lender and aggregator reports.
    The dimension is fixed when a row is first written, as the legacy upserts do (their
    conflict clauses update measures only): a rebuild never rewrites the dimension of a row
    that exists. So a row says how its meter was reported at the hour it was first built:
    hiding a customer afterwards does not change the rows already written, and the hours
    built after that are hidden. Hiding follows the legacy rule, the customer's
    is_hidden_from_reporting at build time (the legacy hourly writer copies the customer's
    flag and nothing else): the job's dimension query decides it (snapshot-meters).

Coexistence with the legacy writers
    On a database adopted from the legacy system, the legacy services keep writing this table
    (yeti: the power-limit and on/off row of every meter at the start of each hour, with NULL
    consumption; Calin's and LoRaWAN's consumption, NULL or NaN where unknown). A build never
    deletes or overwrites what they wrote:
    - it inserts the rows that do not exist (`inserted_by_build = true`), and a row a legacy
      writer inserts first is theirs (`on conflict do nothing`);
    - the measures of an existing row are the build's to write only when it wrote them and no
      legacy writer has since (`built_at` set and consumption_kwh still the float of
      consumption_kwh_exact), or when nobody has written any (a power-limit row: consumption,
      counter and credit NULL, built_at NULL); it then writes only the measure columns, never
      a legacy dimension, power limit or flag. Rows whose measures a legacy writer wrote, NaN
      and NULL-with-a-counter included, are left exactly as they are.
    - a row whose hour no longer has data is deleted only when the build inserted it and still
      owns its measures; in a legacy-inserted row it only clears the measures it wrote.
    The writes re-check ownership on the row as it is when they reach it, so a legacy upsert
    that lands while a build runs wins.

Late readings and rebuilds
    `build_hours(conn, lo, hi, meters=None)` recomputes every hour of [lo, hi) (of all meters,
    or of `meters`) and makes the build's rows there exactly that: new rows are inserted,
    changed measures updated, rows that should no longer exist deleted (all within the
    coexistence rules above); a row whose measures did not change is not rewritten, so its
    `built_at` is when it last changed. Re-running it changes nothing. The pairs across lo and
    hi need the readings just outside the range: they are looked up per meter (the last before
    lo, the first at or after hi: one index probe each, however long the gap) rather than by
    reading days of readings on either side.
    A reading that arrives late changes the pairs on both of its sides: `hours_to_rebuild`
    turns the hours queued in `ts.pending_hours` (or given touched times) into, per meter, the
    range from the hour of the previous reading before the touched hours to the hour of the
    next reading after them - merged per meter and grouped into (lo, hi, meters) for
    `build_hours(..., meters=...)`. A pending hour does not say whose reading arrived, so every
    meter with a reading in it is rebuilt; the unchanged ones write nothing.
    Two builds must not write the same rows at once: the scheduled job and the backfill share
    an advisory lock. Shards of the job (`hours_to_rebuild(..., shard=k, shards=n)`, then
    `build_hours(..., meters=...)` of those meters) build disjoint meters, so they run side by
    side; their locks keep every other build out (shared/jobs.py).

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
from psycopg.pq import TransactionStatus

MAX_GAP = timedelta(hours=2)
MAX_INTERPOLATE = timedelta(hours=48)
HOUR = timedelta(hours=1)

# The meter's dimension columns, as meter_snapshot_1_h names and types them; meter_dim has the
# same names and types.
DIM_COLUMNS: tuple[tuple[str, str], ...] = (
    ("meter_type", "character varying"),
    ("meter_external_reference", "character varying"),
    ("meter_external_system", "character varying"),
    ("meter_phase", "character varying"),
    ("customer_full_name", "character varying"),
    ("customer_id", "integer"),
    ("dcu_id", "integer"),
    ("dcu_external_reference", "character varying"),
    ("dcu_external_system", "character varying"),
    ("grid_id", "integer"),
    ("organization_id", "integer"),
    ("grid_name", "character varying"),
    ("organization_name", "character varying"),
    ("power_limit_kw", "double precision"),
    ("power_limit_kw_should_be", "double precision"),
    ("is_fs_consumption", "boolean"),
    ("is_hps_consumption", "boolean"),
    ("is_on", "boolean"),
    ("should_be_on", "boolean"),
    ("connection_id", "integer"),
    ("is_hidden_from_reporting", "boolean"),
    ("is_cabin_meter", "boolean"),
)
_DIM_NAMES = tuple(name for name, _ in DIM_COLUMNS)
# NOT NULL in the legacy table (default false): never NULL in a row.
_NOT_NULL_DIMS = ("is_hidden_from_reporting", "is_cabin_meter")

# What build_hours computes from the readings (exact), as the table names the columns.
MEASURE_COLUMNS = ("consumption_kwh_exact", "is_estimated", "reading_count", "counter_kwh_exact",
                   "kwh_credit_available_exact")
# The legacy float columns written from the exact ones.
_FLOAT_OF = {"consumption_kwh": ("consumption_kwh_exact", "double precision"),
             "counter_kwh": ("counter_kwh_exact", "real"),
             "kwh_credit_available": ("kwh_credit_available_exact", "real")}
HOURLY_COLUMNS = ("created_at", "meter_id", *MEASURE_COLUMNS, *_DIM_NAMES)
TABLE = "public.meter_snapshot_1_h"

# `preserve rows`: the job may build several ranges, one transaction each, from one copy.
# is_hidden_from_reporting is NOT NULL so the job decides it for every meter it copies; NULL
# there would otherwise have to be guessed here.
CREATE_METER_DIM_SQL = (
    "drop table if exists pg_temp.meter_dim;\n"
    "create temp table meter_dim (\n    meter_id integer primary key,\n"
    + ",\n".join(
        f"    {name} {typ}"
        + (" not null default false" if name in _NOT_NULL_DIMS else "")
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


def _share(d: str, x_us: str, span_us: str) -> str:
    """SQL: R(t), the units of a pair of energy d (units) up to time t, x_us microseconds after
    its start, span_us its length: rounded half up with exact integer division,
    floor((2 d x + span) / (2 span)). R(a) = 0 and R(b) = d, so the shares of a pair add up to
    d exactly. bigint while 2 d x cannot overflow (always, for real meters); numeric beyond.
    The arguments are columns: each is evaluated several times."""
    return (f"(case when {d} < 4000000000000000000 / {span_us}"
            f" then (2 * {d} * {x_us} + {span_us}) / (2 * {span_us})"
            f" else div(2 * {d}::numeric * {x_us} + {span_us}, 2 * {span_us}::numeric)::bigint"
            f" end)")


_W = "over w"

# For an hour with no reading inside a gap (z.hour_out != z.hour in `measured`): the pair it
# lies in - the one after L when the hour is after, the one into F when before.
_MID_D = "case when z.hour_out > z.hour then z.end_d else z.start_d end"
_MID_A = "case when z.hour_out > z.hour then z.l_ts else z.f_a_ts end"
_MID_B = "case when z.hour_out > z.hour then z.l_n_ts else z.f_ts end"

# The computation, as CTEs ending in `computed`: one row per meter and hour of [lo, hi).
# Parameters: lo, hi (timestamptz, whole hours), meters (bigint[] or NULL for all), max_gap,
# max_interpolate (interval), register_max, max_power_kw (numeric or NULL).
#
# Shape, for speed: one pass over the readings of [lo, hi) in (meter, hour, ts) order (the
# primary key's order plus a cheap per-meter sort). A window gives each reading its
# predecessor; the grouping by (meter, hour) reads that same order, and a window over the
# hours gives each hour its successor - nothing is sorted twice and nothing is expanded per
# pair. Within an hour the increases of the pairs telescope: their sum is the last counter
# minus the first, corrected only by the (rare) pairs that are not a plain increase. The two
# pairs that cross the hour's boundaries are split with _share. Hours without a reading
# (inside a gap) follow the hour before them, from one generate_series per hour (one row,
# unless a gap follows). Subqueries carry `offset 0` where a merged level would evaluate an
# expression once per use instead of once per row.
_COMPUTE_SQL = f"""
with readings as (
    -- Each reading with its predecessor p (lag: the pair (p, reading) ends here).
    select r.meter_id, {_HOUR_OF_TS} as hour, r.ts, r.counter_kwh as c,
           lag(r.ts) {_W} as p_ts,
           lag(r.counter_kwh) {_W} as p_c,
           lag(r.credit_kwh) {_W} as p_credit,
           -- a pair inside the hour that is not a plain increase: a drop (reset or rollover),
           -- too long (only possible with max_interpolate under an hour), or implausible
           lag(r.ts) {_W} >= {_HOUR_OF_TS}
             and not (r.counter_kwh >= lag(r.counter_kwh) {_W}
                      and (%(max_interpolate)s::interval >= interval '1 hour'
                           or r.ts - lag(r.ts) {_W} <= %(max_interpolate)s::interval)
                      and (%(max_power_kw)s::numeric is null
                           or (r.counter_kwh - lag(r.counter_kwh) {_W}) * 3600
                              <= %(max_power_kw)s::numeric
                                 * extract(epoch from r.ts - lag(r.ts) {_W}))) as odd,
           -- a gap inside the hour (only possible with max_gap under an hour)
           %(max_gap)s::interval < interval '1 hour'
             and lag(r.ts) {_W} >= {_HOUR_OF_TS}
             and r.ts - lag(r.ts) {_W} > %(max_gap)s::interval as gap
    from ts.meter_readings r
    where r.ts >= %(lo)s and r.ts < %(hi)s
      and (%(meters)s::bigint[] is null or r.meter_id = any(%(meters)s::bigint[]))
    window w as (partition by r.meter_id order by {_HOUR_OF_TS}, r.ts)
),
grouped as (
    -- One row per meter and hour with readings. F: the hour's first reading, L: its last.
    -- F's predecessor is the only one before the hour; the next hour with readings starts
    -- with L's successor, and its F's predecessor is L itself - so a window over the hours
    -- (already in order) gives L's counter and credit and the pair after L, without a lead
    -- per reading.
    select meter_id, hour,
           count(*) as reading_count,
           min(ts) as f_ts,
           max(ts) as l_ts,
           -- F's predecessor when it is before the hour; else F is the meter's first
           -- reading of the range, and the one before lo is looked up below
           min(p_ts) as p_first,
           max(p_c) filter (where p_ts < hour) as p_first_c,
           max(c) filter (where p_ts is null or p_ts < hour) as f_c,
           lead(min(ts)) over v as next_f_ts,
           lead(max(c) filter (where p_ts is null or p_ts < hour)) over v as next_f_c,
           lead(max(p_c) filter (where p_ts < hour)) over v as next_p_c,
           lead(max(p_credit) filter (where p_ts < hour)) over v as next_p_credit,
           -- inside the hour: how far the odd pairs' energy is from their raw difference
           sum(case when odd
                    then (c - p_c) * 10000 - coalesce({_energy("p_ts", "p_c", "ts", "c")}, 0)
               end) as odd_fix,
           count(*) filter (where odd and {_energy("p_ts", "p_c", "ts", "c")} is null)
             as inner_unknown,
           coalesce(bool_or(gap), false) as inner_gap
    from readings
    group by meter_id, hour
    window v as (partition by meter_id order by hour)
),
hours as (
    select e.*,
           {_micros("e.f_ts - e.f_a_ts")} as start_span,
           {_micros("e.hour - e.f_a_ts")} as start_x,
           {_micros("e.l_n_ts - e.l_ts")} as end_span,
           {_micros("e.hour + interval '1 hour' - e.l_ts")} as end_x,
           (e.start_d is not null and e.f_ts > e.hour)::int
             + (e.reading_count - 1 - e.inner_unknown)
             + (e.end_d is not null)::int as known
    from (
        -- the pair into F and the pair after L: their energies
        select b.*,
               case when b.f_a_ts < b.hour
                    then {_energy("b.f_a_ts", "b.f_a_c", "b.f_ts", "b.f_c")} end as start_d,
               case when b.l_n_ts > b.l_ts
                    then {_energy("b.l_ts", "b.l_c", "b.l_n_ts", "b.l_n_c")} end as end_d
        from (
            select x.meter_id, x.hour, x.reading_count, x.f_ts, x.l_ts, x.f_c, x.odd_fix,
                   x.inner_unknown, x.inner_gap,
                   case when x.p_first < x.hour then x.p_first else (x.prev_r).ts end
                     as f_a_ts,
                   case when x.p_first < x.hour then x.p_first_c
                        else (x.prev_r).counter_kwh end as f_a_c,
                   case when x.next_f_ts is not null then x.next_p_c
                        else (x.last_r).counter_kwh end as l_c,
                   case when x.next_f_ts is not null then x.next_p_credit
                        else (x.last_r).credit_kwh end as l_credit,
                   coalesce(x.next_f_ts, (x.next_r).ts) as l_n_ts,
                   case when x.next_f_ts is not null then x.next_f_c
                        else (x.next_r).counter_kwh end as l_n_c
            from (
                -- Across lo and hi: the reading before lo (for a meter's first hour of the
                -- range), L itself and the reading at or after hi (for its last hour): one
                -- index probe each, however far away they are.
                select grouped.*,
                       case when not grouped.p_first < grouped.hour or grouped.p_first is null
                       then (select q from ts.meter_readings q
                             where q.meter_id = grouped.meter_id and q.ts < %(lo)s
                             order by q.ts desc limit 1) end as prev_r,
                       case when grouped.next_f_ts is null
                       then (select q from ts.meter_readings q
                             where q.meter_id = grouped.meter_id and q.ts = grouped.l_ts)
                       end as last_r,
                       case when grouped.next_f_ts is null
                       then (select q from ts.meter_readings q
                             where q.meter_id = grouped.meter_id and q.ts >= %(hi)s
                             order by q.ts limit 1) end as next_r
                from grouped
                offset 0  -- one probe per lookup, not one per use of its fields
            ) x
        ) b
        offset 0  -- start_d and end_d once each
    ) e
    offset 0  -- each column once, not once per use in _share
),
quiet as (
    -- The other meters the range knows of - described ones, and those that already have a row
    -- in it - when they have no reading in [lo, hi): the pair around the range, if any. So a
    -- range's rows never depend on how wide the build that wrote them was.
    select k.meter_id, p.ts as a_ts, p.counter_kwh as a_c, n.ts as b_ts, n.counter_kwh as b_c
    from (select d.meter_id from pg_temp.meter_dim d
          where %(meters)s::bigint[] is null or d.meter_id = any(%(meters)s::bigint[])
          union
          select h.meter_id from public.meter_snapshot_1_h h
          where h.created_at >= %(lo_ts)s and h.created_at < %(hi_ts)s
            and (%(meters)s::bigint[] is null or h.meter_id = any(%(meters)s::bigint[]))) k
    cross join lateral (
        select q.ts, q.counter_kwh from ts.meter_readings q
        where q.meter_id = k.meter_id and q.ts < %(lo)s order by q.ts desc limit 1) p
    cross join lateral (
        select q.ts, q.counter_kwh from ts.meter_readings q
        where q.meter_id = k.meter_id and q.ts >= %(hi)s order by q.ts limit 1) n
    where not exists (select 1 from ts.meter_readings q
                      where q.meter_id = k.meter_id and q.ts >= %(lo)s and q.ts < %(hi)s)
),
spans as (
    -- Their hours inside [lo, hi): none holds a reading.
    select meter_id, a_ts, b_ts, {_energy("a_ts", "a_c", "b_ts", "b_c")} as d,
           greatest({_hour_of("a_ts")} + interval '1 hour', %(lo)s::timestamptz) as first_hour,
           least({_hour_of("b_ts")}, %(hi)s::timestamptz) - interval '1 hour' as last_hour
    from quiet
),
measured as (
    select z.meter_id, z.hour_out as hour,
           case when z.hour_out = z.hour then
             case when z.known > 0 then
               (case when z.start_d is not null and z.f_ts > z.hour
                     then z.start_d - {_share("z.start_d", "z.start_x", "z.start_span")}
                     else 0 end
                + (z.l_c - z.f_c) * 10000 - coalesce(z.odd_fix, 0)
                + case when z.end_d is not null
                       then {_share("z.end_d", "z.end_x", "z.end_span")} else 0 end) * 0.0001
             end
           -- an hour inside the pair after L (or, for the range's first hour, before F)
           else ({_share(_MID_D, _micros(f"z.hour_out + interval '1 hour' - ({_MID_A})"),
                         _micros(f"({_MID_B}) - ({_MID_A})"))}
                 - {_share(_MID_D, _micros(f"z.hour_out - ({_MID_A})"),
                           _micros(f"({_MID_B}) - ({_MID_A})"))}) * 0.0001
           end as consumption_kwh,
           case when z.hour_out = z.hour then
             z.known > 0 and (
               -- the hour's start: not covered, or by an unknown pair or a gap
               (z.f_ts > z.hour and (z.start_d is null
                                     or z.f_ts - z.f_a_ts > %(max_gap)s::interval))
               or z.inner_unknown > 0 or z.inner_gap
               -- the hour's end likewise (L is always before it)
               or z.end_d is null or z.l_n_ts - z.l_ts > %(max_gap)s::interval)
           else ({_MID_D}) is not null and ({_MID_B}) - ({_MID_A}) > %(max_gap)s::interval
           end as is_estimated,
           case when z.hour_out = z.hour then z.reading_count else 0 end as reading_count,
           case when z.hour_out = z.hour then z.l_c end as counter_kwh,
           case when z.hour_out = z.hour then z.l_credit end as kwh_credit_available
    from (
        -- Each hour with readings, and after it the hours up to its successor's when there
        -- are whole hours between (a gap): they hold no reading, only the pair after L. The
        -- range's first hour likewise gets the hours after the reading before lo.
        select h.*,
               generate_series(
                   case when h.f_a_ts < %(lo)s and h.f_a_ts < h.hour - interval '1 hour'
                        then greatest({_hour_of("h.f_a_ts")} + interval '1 hour',
                                      %(lo)s::timestamptz)
                        else h.hour end,
                   case when h.l_n_ts >= h.hour + interval '2 hours'
                        then least({_hour_of("h.l_n_ts")}, %(hi)s::timestamptz)
                             - interval '1 hour'
                        else h.hour end,
                   interval '1 hour') as hour_out
        from hours h
    ) z
    union all
    select m.meter_id, m.hour,
           case when m.d is not null then
             ({_share("m.d", "m.x_end", "m.span")} - {_share("m.d", "m.x_start", "m.span")})
             * 0.0001
           end,
           m.d is not null and m.b_ts - m.a_ts > %(max_gap)s::interval,
           0, null, null
    from (
        select s.meter_id, s.a_ts, s.b_ts, s.d, g.hour,
               {_micros("s.b_ts - s.a_ts")} as span,
               {_micros("g.hour - s.a_ts")} as x_start,
               {_micros("g.hour + interval '1 hour' - s.a_ts")} as x_end
        from spans s
        cross join lateral generate_series(s.first_hour, s.last_hour, interval '1 hour')
          as g(hour)
        offset 0  -- evaluate each column once, not once per use in _share
    ) m
),
computed as (
    -- As the table stores them: the whole UTC hour as timestamp, the legacy integer meter id.
    select (m.hour at time zone 'UTC') as created_at, m.meter_id::integer as meter_id,
           m.consumption_kwh::numeric(14, 4) as consumption_kwh_exact,
           m.is_estimated,
           m.reading_count::integer as reading_count,
           m.counter_kwh::numeric(14, 4) as counter_kwh_exact,
           m.kwh_credit_available::numeric(14, 4) as kwh_credit_available_exact,
           {", ".join(f"d.{n}" for n in _DIM_NAMES if n not in _NOT_NULL_DIMS)},
           -- Not described: hidden from reporting (see Dimensions above).
           coalesce(d.is_hidden_from_reporting, true) as is_hidden_from_reporting,
           coalesce(d.is_cabin_meter, false) as is_cabin_meter
    from measured m
    left join pg_temp.meter_dim d on d.meter_id = m.meter_id
)"""

PREVIEW_SQL = (_COMPUTE_SQL + "\nselect " + ", ".join(HOURLY_COLUMNS)
               + " from computed order by meter_id, created_at")


def _wrapped(names: Sequence[str], prefix: str = "", indent: int = 8) -> str:
    """A comma-separated column list, wrapped at ~90 columns, continuation lines indented."""
    lines, line = [], ""
    for name in (f"{prefix}{n}" for n in names):
        if line and len(line) + len(name) > 80:
            lines.append(line.rstrip())
            line = ""
        line += name + ", "
    lines.append(line.rstrip(", "))
    return ("\n" + " " * indent).join(lines)


def _owned(t: str) -> str:
    """SQL: the measures of row `t` are the build's to write (see Coexistence above): it wrote
    them and no legacy writer has since, or nobody has written any."""
    return (f"(({t}.built_at is not null\n"
            f"        and {t}.consumption_kwh is not distinct from"
            f" {t}.consumption_kwh_exact::double precision)\n"
            f"       or ({t}.built_at is null and {t}.consumption_kwh is null\n"
            f"        and {t}.counter_kwh is null and {t}.kwh_credit_available is null))")


# The measures, and the legacy float columns written from the exact ones.
_WRITE_MEASURES = [*MEASURE_COLUMNS, *_FLOAT_OF]
_MEASURE_VALUES = [*(f"d.{c}" for c in MEASURE_COLUMNS),
                   *(f"d.{exact}::{typ}" for exact, typ in _FLOAT_OF.values())]
_INSERT_COLUMNS = ["created_at", "meter_id", *_WRITE_MEASURES, *_DIM_NAMES,
                   "built_at", "inserted_by_build"]
_INSERT_VALUES = ["d.created_at", "d.meter_id", *_MEASURE_VALUES, *(f"d.{n}" for n in _DIM_NAMES),
                  "now()", "true"]
_RANGE = ("t.created_at >= %(lo_ts)s and t.created_at < %(hi_ts)s\n"
          "      and t.created_at = d.created_at and t.meter_id = d.meter_id")

# The write, in the same statement as the computation (one snapshot of the readings). One hash
# FULL join of the range's existing rows with the computed ones sorts every row into new,
# existing or gone - a full join because the planner cannot run it as a nested loop: right
# after a big insert its statistics may say the table is empty, and a nested-loop anti join
# over 240k rows would take hours. New rows are inserted (on conflict do nothing: a legacy
# writer that inserts the same hour meanwhile keeps its row); rows whose measures changed and
# are the build's to write are updated (an unchanged row is not rewritten, so its built_at
# keeps the time it last changed); rows whose hour has no data any more are deleted or, in a
# legacy-inserted row, have the build's measures cleared. The update, delete and clear
# re-check ownership on the row itself, so a legacy write that lands meanwhile is never
# overwritten. Two builds must not write the same rows at once: the scheduled job and the
# backfill share one advisory lock; the job's shards write disjoint meters.
BUILD_SQL = (
    _COMPUTE_SQL
    + f""",
existing as (
    select t.created_at, t.meter_id, {_wrapped(MEASURE_COLUMNS, "t.", 11)},
           {_owned("t")} as owned, t.built_at is not null as built,
           coalesce(t.inserted_by_build, false) as inserted_by_build
    from {TABLE} t
    where t.created_at >= %(lo_ts)s and t.created_at < %(hi_ts)s
      and (%(meters)s::bigint[] is null or t.meter_id = any(%(meters)s::bigint[]))
),
diff as materialized (
    select coalesce(c.created_at, e.created_at) as created_at,
           coalesce(c.meter_id, e.meter_id) as meter_id,
           c.meter_id is not null as computed, e.meter_id is not null as present,
           e.owned, e.built, e.inserted_by_build,
           e.meter_id is not null and c.meter_id is not null
             and ({_wrapped(MEASURE_COLUMNS, "e.", 17)})
                 is distinct from ({_wrapped(MEASURE_COLUMNS, "c.", 17)}) as changed,
           {_wrapped([c for c in HOURLY_COLUMNS if c not in ("created_at", "meter_id")], "c.", 11)}
    from existing e
    full join computed c on c.created_at = e.created_at and c.meter_id = e.meter_id
),
removed as (
    delete from {TABLE} t using diff d
    where not d.computed and d.owned and d.built and d.inserted_by_build
      and {_RANGE} and {_owned("t")}
    returning 1
),
cleared as (
    update {TABLE} t set
        {_wrapped([f"{c} = null" for c in (*_WRITE_MEASURES, "built_at")])}
    from diff d
    where not d.computed and d.owned and d.built and not d.inserted_by_build
      and {_RANGE} and {_owned("t")}
    returning 1
),
inserted as (
    insert into {TABLE} (
        {_wrapped(_INSERT_COLUMNS)})
    select {_wrapped(_INSERT_VALUES, "", 11)}
    from diff d where d.computed and not d.present
    on conflict (created_at, meter_id) do nothing
    returning 1
),
updated as (
    update {TABLE} t set
        {_wrapped([f"{c} = {v}" for c, v in zip(_WRITE_MEASURES, _MEASURE_VALUES, strict=True)])},
        built_at = now()
    from diff d
    where d.computed and d.present and d.owned and d.changed
      and {_RANGE} and {_owned("t")}
    returning 1
)
select (select count(*) from diff where computed),
       (select count(*) from inserted) + (select count(*) from updated),
       (select count(*) from removed) + (select count(*) from cleared)"""
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
    from (select hour, count(*) filter (where starts) over (order by hour) as grp
          from (select hour,
                       lag(hour) over (order by hour) is distinct from hour - interval '1 hour'
                         as starts
                from pending) x) g
    group by grp
),
touched as (
    -- Readings whose hour is pending, by a hash join on the hour: joining on "ts inside a
    -- span" made the planner probe the ts index for every reading (~0.5 s for a day of
    -- 10,000 meters) where a scan of the span's partitions takes a third of that. The
    -- constant bounds prune the partitions and tell the planner how much it will read.
    select r.meter_id, min(r.ts) as first_ts, max(r.ts) as last_ts
    from ts.meter_readings r
    join (select p.hour, sp.s from pending p
          join spans sp on p.hour >= sp.s and p.hour < sp.e) ph on ph.hour = {_HOUR_OF_TS}
    where (%(span_lo)s::timestamptz is null or r.ts >= %(span_lo)s::timestamptz)
      and (%(span_hi)s::timestamptz is null or r.ts < %(span_hi)s::timestamptz)
      -- One shard's meters (snapshot-meters' shard k of n), else all.
      and (%(shards)s::int is null or mod(r.meter_id, %(shards)s::int) = %(shard)s::int)
    group by r.meter_id, ph.s
),
ranges as (
    -- From the hour of the reading before the touched ones to the hour of the one after:
    -- the pairs on both sides of a late reading change.
    select meter_id, {_hour_of('coalesce(prev_ts, first_ts)')} as lo,
           {_hour_of('coalesce(next_ts, last_ts)')} + interval '1 hour' as hi
    from (select t.*,
                 (select max(r.ts) from ts.meter_readings r
                  where r.meter_id = t.meter_id and r.ts < t.first_ts) as prev_ts,
                 (select min(r.ts) from ts.meter_readings r
                  where r.meter_id = t.meter_id and r.ts > t.last_ts) as next_ts
          from touched t
          offset 0) t  -- one probe each, not one per use
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
    # Whole UTC hours only: the table's keys are hour starts.
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
    return {"lo": lo, "hi": hi, "lo_ts": _naive_utc(lo), "hi_ts": _naive_utc(hi),
            "meters": None if meters is None else [int(m) for m in meters],
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
                           hours: Sequence[datetime] | None = None,
                           shard: int | None = None, shards: int | None = None
                           ) -> tuple[str, dict[str, Any]]:
    """Rows (lo, hi, meters[]): the ranges to rebuild for the pending hours in [lo, hi) (all
    when None), or for the given touched `hours` (any time in an hour stands for the hour)
    instead of the table; with `shards`, only of the meters with meter_id % shards = shard."""
    if (shard is None) != (shards is None):
        raise ValueError("a shard needs both shard and shards")
    if shard is not None and shards is not None and not 0 <= shard < shards:
        raise ValueError(f"need 0 <= shard < shards, got shard {shard} of {shards}")
    # The readings those hours hold lie in [span_lo, span_hi) (None: unbounded).
    first, last = (min(hours), max(hours)) if hours else (lo, hi)
    span = (None if first is None else _floor_hour(first),
            None if last is None else _floor_hour(last) + HOUR)
    hours = None if hours is None else list(hours)
    return HOURS_TO_REBUILD_SQL, {"lo": lo, "hi": hi, "hours": hours,
                                  "span_lo": span[0], "span_hi": span[1],
                                  "shard": shard, "shards": shards}


def _naive_utc(value: datetime) -> datetime:
    # The table's created_at is timestamp without time zone holding UTC: compared with a
    # timestamp parameter, never with a timestamptz one (which would go through TimeZone).
    return value.astimezone(UTC).replace(tzinfo=None)


def _floor_hour(value: datetime) -> datetime:
    return value.astimezone(UTC).replace(minute=0, second=0, microsecond=0)


def _rebuild_ranges(rows: list[tuple[Any, ...]]) -> list[RebuildRange]:
    return [RebuildRange(lo, hi, tuple(meters)) for lo, hi, meters in rows]


# Planned costs run to tens of millions (the planner guesses 1000 rows for every
# generate_series), far above jit_above_cost, and compiling this statement takes longer than
# running it (+0.3-0.7 s on a day of 10,000 meters). So JIT is switched off for it alone:
# SET LOCAL, put back right after (on failure the caller's rollback undoes it anyway).
_JIT_OFF = "select current_setting('jit'), set_config('jit', 'off', true)"
_JIT_BACK = "select set_config('jit', %s, true)"


def _run(conn: psycopg.Connection[Any], sql: str, params: dict[str, Any]
         ) -> list[tuple[Any, ...]]:
    if conn.autocommit and conn.info.transaction_status == TransactionStatus.IDLE:
        with conn.transaction():  # SET LOCAL needs a transaction block
            return _run(conn, sql, params)
    with conn.cursor() as cur:
        jit = cur.execute(_JIT_OFF).fetchone()[0]  # type: ignore[index]
        rows = cur.execute(sql, params).fetchall()
        cur.execute(_JIT_BACK, (jit,))
    return rows


async def _arun(aconn: psycopg.AsyncConnection[Any], sql: str, params: dict[str, Any]
                ) -> list[tuple[Any, ...]]:
    if aconn.autocommit and aconn.info.transaction_status == TransactionStatus.IDLE:
        async with aconn.transaction():
            return await _arun(aconn, sql, params)
    async with aconn.cursor() as cur:
        await cur.execute(_JIT_OFF)
        jit = (await cur.fetchone())[0]  # type: ignore[index]
        await cur.execute(sql, params)
        rows = await cur.fetchall()
        await cur.execute(_JIT_BACK, (jit,))
    return rows


# -- sync ------------------------------------------------------------------------------------


def create_meter_dim(conn: psycopg.Connection[Any]) -> None:
    """(Re)create the session's empty pg_temp.meter_dim for the job to fill."""
    conn.execute(CREATE_METER_DIM_SQL)


def build_hours(conn: psycopg.Connection[Any], lo: datetime, hi: datetime,
                **options: Any) -> BuildResult:
    """Rebuild the hours [lo, hi) of all meters (or `meters=`); see the module's rules.
    Options: meters, max_gap, max_interpolate, register_max_kwh, max_power_kw."""
    return BuildResult(*_run(conn, *build_hours_query(lo, hi, **options))[0])


def preview_hours(conn: psycopg.Connection[Any], lo: datetime, hi: datetime,
                  **options: Any) -> list[tuple[Any, ...]]:
    """The rows build_hours would write (HOURLY_COLUMNS), by meter and hour; writes nothing."""
    return _run(conn, *preview_hours_query(lo, hi, **options))


def hours_to_rebuild(conn: psycopg.Connection[Any], lo: datetime | None = None,
                     hi: datetime | None = None, *,
                     hours: Sequence[datetime] | None = None) -> list[RebuildRange]:
    """The ranges to rebuild for the pending hours in [lo, hi) (all when None), or for the
    touched `hours` given instead (any time in an hour stands for the hour)."""
    return _rebuild_ranges(_run(conn, *hours_to_rebuild_query(lo, hi, hours=hours)))


# -- async (the scheduled job) ---------------------------------------------------------------


async def acreate_meter_dim(aconn: psycopg.AsyncConnection[Any]) -> None:
    await aconn.execute(CREATE_METER_DIM_SQL)


async def abuild_hours(aconn: psycopg.AsyncConnection[Any], lo: datetime, hi: datetime,
                       **options: Any) -> BuildResult:
    return BuildResult(*(await _arun(aconn, *build_hours_query(lo, hi, **options)))[0])


async def apreview_hours(aconn: psycopg.AsyncConnection[Any], lo: datetime, hi: datetime,
                         **options: Any) -> list[tuple[Any, ...]]:
    return await _arun(aconn, *preview_hours_query(lo, hi, **options))


async def ahours_to_rebuild(aconn: psycopg.AsyncConnection[Any], lo: datetime | None = None,
                            hi: datetime | None = None, *,
                            hours: Sequence[datetime] | None = None,
                            shard: int | None = None, shards: int | None = None
                            ) -> list[RebuildRange]:
    return _rebuild_ranges(await _arun(aconn, *hours_to_rebuild_query(
        lo, hi, hours=hours, shard=shard, shards=shards)))
