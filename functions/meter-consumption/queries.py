"""SQL of meter-consumption: one page of the hourly snapshot, by keyset (created_at, meter_id),
so a deep page costs what the first one does."""

from __future__ import annotations

import base64
import binascii
from datetime import UTC, datetime
from typing import Any

from psycopg import AsyncConnection

from shared.http import BadRequest

from .models import ConsumptionQuery

_WHERE = """
 where h.created_at >= %(from)s and h.created_at < %(to)s
   and not h.is_hidden_from_reporting
   and h.consumption_kwh is not null
   and (%(site)s::text is null or lower(h.grid_name) = lower(%(site)s::text))
   and (%(meter)s::text is null or h.external_reference = %(meter)s::text)
"""

_PAGE = """
select h.created_at, h.meter_id, h.external_reference, round(h.consumption_kwh, 3),
       h.customer_account_id
  from ts.meter_hourly h
""" + _WHERE + """
   and (%(after_ts)s::timestamptz is null
        or (h.created_at, h.meter_id) > (%(after_ts)s::timestamptz, %(after_meter)s::bigint))
 order by h.created_at, h.meter_id
 limit %(limit)s offset %(offset)s
"""

_COUNT = "select count(*) from ts.meter_hourly h" + _WHERE


def encode_cursor(created_at: datetime, meter_id: int) -> str:
    raw = f"{int(created_at.timestamp())}:{meter_id}".encode()
    return base64.urlsafe_b64encode(raw).decode().rstrip("=")


def decode_cursor(cursor: str) -> tuple[datetime, int]:
    try:
        raw = base64.urlsafe_b64decode(cursor + "=" * (-len(cursor) % 4)).decode()
        seconds, meter = raw.split(":")
        return datetime.fromtimestamp(int(seconds), UTC), int(meter)
    except (ValueError, binascii.Error, OverflowError, OSError):
        raise BadRequest("invalid query parameter 'cursor': not a cursor this function"
                         " issued") from None


async def page(conn: AsyncConnection[Any], q: ConsumptionQuery,
               known_total: int | None = None) -> dict[str, Any]:
    """One page; without a cursor also the window's total, counted unless `known_total`."""
    after_ts, after_meter = decode_cursor(q.cursor) if q.cursor else (None, None)
    params = {"from": q.from_, "to": q.to, "site": q.site, "meter": q.meter,
              "after_ts": after_ts, "after_meter": after_meter, "limit": q.page_limit + 1,
              "offset": q.offset}
    cur = await conn.execute(_PAGE, params)
    rows = await cur.fetchall()
    more = len(rows) > q.page_limit
    rows = rows[:q.page_limit]
    total = None
    if q.cursor is None:
        # Legacy clients page by offset and read the total on every page; cursor pages skip
        # the count. It grows with the window's rows (~0.1 s per million), so a client paging
        # by offset is answered from shared.totals between counts.
        total = known_total
        if total is None:
            cur = await conn.execute(_COUNT, params)
            total = (await cur.fetchone() or (0,))[0]
    readings = [{"timestamp": r[0], "meterId": r[2], "energyConsumptionKwh": r[3],
                 "timeIntervalMinutes": 60, "customerAccountId": r[4]} for r in rows]
    next_cursor = encode_cursor(rows[-1][0], rows[-1][1]) if more else None
    return {"total": total, "offset": q.offset, "pageLimit": q.page_limit,
            "readings": readings, "next_cursor": next_cursor}
