"""Rows of the legacy hourly snapshot, written straight into `public.meter_snapshot_1_h` as a
legacy writer (or an earlier build) left them, for the tests of what reads the table."""

from __future__ import annotations

from collections.abc import Iterable, Sequence
from datetime import UTC, datetime
from typing import Any

import psycopg

# (created_at, meter_id, consumption_kwh, meter_external_reference, grid_name,
#  is_hidden_from_reporting, customer_id)
Row = tuple[datetime, int, Any, str | None, str | None, bool, int | None]

INSERT = ("insert into public.meter_snapshot_1_h (created_at, meter_id, consumption_kwh,"
          " meter_external_reference, grid_name, is_hidden_from_reporting, customer_id)"
          " values (%s, %s, %s, %s, %s, %s, %s)")


def naive_utc(t: datetime) -> datetime:
    """created_at as the table holds it: UTC, without a zone."""
    return t.astimezone(UTC).replace(tzinfo=None) if t.tzinfo else t


def write_hourly(conn: psycopg.Connection[Any], rows: Sequence[Row],
                 recount: bool = True) -> None:
    """Insert the rows (aware or naive UTC times), with the partitions they need first; then,
    unless `recount` is false, count their hours again for meter-consumption's totals, as the
    snapshot job does for the hours near now (timeseries/counts.py): a legacy writer's rows in
    an old hour are not in the kept counts until that hour is counted again."""
    from timeseries.partitions import ensure_partitions

    if not rows:
        return
    times = [naive_utc(r[0]).replace(tzinfo=UTC) for r in rows]
    ensure_partitions(conn, "meter_snapshot_1_h", min(times), max(times))
    with conn.cursor() as cur:
        cur.executemany(INSERT, [(naive_utc(r[0]), *r[1:]) for r in rows])
    if recount:
        recount_hours(conn, [naive_utc(r[0]) for r in rows])


def delete_meters(conn: psycopg.Connection[Any], meters: Iterable[int],
                  recount: bool = True) -> None:
    gone = conn.execute("delete from public.meter_snapshot_1_h where meter_id = any(%s)"
                        " returning created_at", (list(meters),)).fetchall()
    if recount:
        recount_hours(conn, [row[0] for row in gone])


def recount_hours(conn: psycopg.Connection[Any], times: Iterable[datetime]) -> None:
    """Count the hours of `times` (naive UTC) again, in the connection's transaction."""
    from timeseries.counts import recount_statements, whole_hour

    for statement, params in recount_statements(sorted({whole_hour(t) for t in times})):
        conn.execute(statement, params)
