"""SQL of meter-consumption: one page of the legacy hourly snapshot, `public.meter_snapshot_1_h`,
with the legacy function's semantics, by keyset (created_at, meter_id), so a deep page costs
what the first one does.

The rows are the legacy function's, so the history the legacy wrote is served as it is:
`created_at >= FROM and created_at <= TO` (both ends included), visible rows only, and only real
readings (consumption not NULL and not NaN: NaN is not a reading), `site` the grid's name in
any case. Each reading is shaped as the legacy printed it (legacy.py).
"""

from __future__ import annotations

import base64
import binascii
from datetime import UTC, datetime, timedelta
from typing import Any

from psycopg import AsyncConnection

from shared.meter_snapshots import LISTED
from shared.web.errors import BadRequest

from .legacy import js_round_kwh, js_timestamp
from .models import ConsumptionQuery

# The SQL below is public: bench/run.py and tests/timeseries/test_snapshot_counts.py run the
# function's own statements directly, against their floors and against a live count.
#
# created_at is timestamp without time zone holding UTC: the bounds are passed as naive UTC
# timestamps, never compared through the session's TimeZone. LISTED: visible real readings.
_FILTERS = """
   and (%(site)s::text is null or lower(h.grid_name) = lower(%(site)s::text))
   and (%(meter)s::text is null or h.meter_external_reference = %(meter)s::text)
"""
WINDOW_WHERE = f"""
 where h.created_at >= %(from)s and h.created_at <= %(to)s
   and {LISTED}""" + _FILTERS

# The consumption as the legacy read it: the numeric text of the double (15 significant
# digits), which legacy.js_round_kwh rounds as the legacy JavaScript did.
PAGE_SQL = """
select h.created_at, h.meter_id, h.meter_external_reference, h.consumption_kwh::numeric::text,
       h.customer_id
  from public.meter_snapshot_1_h h
""" + WINDOW_WHERE + """
   and (%(after_ts)s::timestamp is null
        or (h.created_at, h.meter_id) > (%(after_ts)s::timestamp, %(after_meter)s::integer))
 order by h.created_at, h.meter_id
 limit %(limit)s offset %(offset)s
"""

# The window's total: the kept counts of the hours it holds (timeseries/counts.py): whole, or
# cut but with all their counted rows inside it (first_at..last_at; legacy rows sit on the
# hour), plus a live count of what they do not cover (hours cut through their rows, hours not
# counted yet, the open hour), each uncovered range by its own index range scan. A `meter`
# filter has no kept count: its window is counted live (at most one row an hour).
COUNT_SQL = f"""
with counted as (
    select c.hour, case when %(site)s::text is null then c.readings
                        else coalesce(s.readings, 0) end as readings
      from ts.meter_snapshot_counts c
      left join ts.meter_snapshot_site_counts s
        on %(site)s::text is not null and s.site = lower(%(site)s::text) and s.hour = c.hour
     where %(meter)s::text is null
       and c.hour > %(from)s - interval '1 hour' and c.hour <= %(to)s
       and ((c.hour >= %(from)s and c.hour + interval '1 hour' <= %(to)s + interval '1 microsecond')
            or c.readings = 0 or (c.first_at >= %(from)s and c.last_at <= %(to)s))
), uncovered as (
    select unnest(tsmultirange(tsrange(%(from)s, %(to)s, '[]'))
                  - coalesce((select range_agg(tsrange(hour, hour + interval '1 hour'))
                                from counted), '{{}}'::tsmultirange)) as r
)
select coalesce((select sum(readings) from counted), 0)::bigint
     + coalesce((select sum(n) from uncovered, lateral (
           select count(*) as n from public.meter_snapshot_1_h h
            where h.created_at >= lower(uncovered.r) and h.created_at <= upper(uncovered.r)
              and uncovered.r @> h.created_at and {LISTED}""" + _FILTERS + """) live), 0)::bigint
"""

_EPOCH = datetime(1970, 1, 1)
_CURSOR_TAG = "us"  # microseconds: legacy rows need not be on a whole second


def encode_cursor(created_at: datetime, meter_id: int) -> str:
    """The position after (created_at, meter_id); created_at is the row's naive UTC time."""
    micros = (created_at - _EPOCH) // timedelta(microseconds=1)
    raw = f"{_CURSOR_TAG}:{micros}:{meter_id}".encode()
    return base64.urlsafe_b64encode(raw).decode().rstrip("=")


def decode_cursor(cursor: str) -> tuple[datetime, int]:
    try:
        raw = base64.urlsafe_b64decode(cursor + "=" * (-len(cursor) % 4)).decode()
        tag, micros, meter = raw.split(":")
        if tag != _CURSOR_TAG or not -2**31 <= int(meter) < 2**31:
            raise ValueError(raw)
        return _EPOCH + timedelta(microseconds=int(micros)), int(meter)
    except (ValueError, binascii.Error, OverflowError, OSError, UnicodeDecodeError):
        raise BadRequest("invalid query parameter 'cursor': not a cursor this function"
                         " issued") from None


def naive_utc(value: datetime) -> datetime:
    return value.astimezone(UTC).replace(tzinfo=None)


def window_params(from_: datetime, to: datetime, *, site: str | None = None,
                  meter: str | None = None, after: tuple[Any, Any] = (None, None),
                  limit: int, offset: int = 0) -> dict[str, Any]:
    """The parameters of PAGE_SQL and COUNT_SQL for one window (``limit`` rows, one more than
    a page, tells whether another page follows)."""
    return {"from": naive_utc(from_), "to": naive_utc(to), "site": site, "meter": meter,
            "after_ts": after[0], "after_meter": after[1], "limit": limit, "offset": offset}


async def page(conn: AsyncConnection[Any], q: ConsumptionQuery,
               known_total: int | None = None) -> dict[str, Any]:
    """One page; without a cursor also the window's total, counted unless `known_total`."""
    after = decode_cursor(q.cursor) if q.cursor else (None, None)
    params = window_params(q.from_, q.to, site=q.site, meter=q.meter, after=after,
                           limit=q.page_limit + 1, offset=q.offset)
    cur = await conn.execute(PAGE_SQL, params)
    rows = await cur.fetchall()
    more = len(rows) > q.page_limit
    rows = rows[:q.page_limit]
    total = None
    if q.cursor is None:
        # Legacy clients page by offset and read the total on every page; cursor pages skip
        # it. It costs what the window's partial hours cost (COUNT_SQL), and a client paging by
        # offset is answered from shared.totals between counts.
        total = known_total
        if total is None:
            cur = await conn.execute(COUNT_SQL, params)
            total = (await cur.fetchone() or (0,))[0]
    # customerAccountId is the customer's id, as both legacy functions selected it.
    readings = [{"timestamp": js_timestamp(r[0]), "meterId": r[2],
                 "energyConsumptionKwh": js_round_kwh(r[3]), "timeIntervalMinutes": 60,
                 "customerAccountId": r[4]} for r in rows]
    next_cursor = encode_cursor(rows[-1][0], rows[-1][1]) if more else None
    return {"total": total, "offset": q.offset, "pageLimit": q.page_limit,
            "readings": readings, "next_cursor": next_cursor}
