"""meter-consumption's `total` from kept counts (timeseries/counts.py): for windows of every
shape (partial first and last hours, one instant, whole days; site and meter filters) it equals
a count of the window's rows, before any hour is counted, after the job's catch-up has counted
them, and after a recount of an hour a legacy writer changed; until that recount it is stale by
exactly the rows written, as the module documents."""

from __future__ import annotations

import asyncio
import importlib
import random
from collections.abc import Iterator
from datetime import datetime, timedelta
from typing import Any

import psycopg
import pytest

from nxt_cli.functions import import_main, module_name
from nxt_cli.harness import ROOT, ScratchDatabases
from tests.support.snapshots import Row, recount_hours, write_hourly
from timeseries.counts import acatch_up

pytestmark = pytest.mark.db

T0 = datetime(2026, 9, 1)  # naive UTC, as created_at holds it
DAYS = 3
GRIDS = ["Gbamu", "GBAMU", "Okpokunou", None, "Akpabom"]  # one site under two spellings, and none
NOW = T0 + timedelta(days=DAYS + 8, minutes=20)  # the data is history: older than a week
RECENT = [NOW.replace(minute=0) - timedelta(hours=h) for h in (3, 2, 1)]  # counted, empty


def rows(seed: int) -> list[Row]:
    """Legacy-shaped rows: most on the hour, some seconds (and fractions) past it as a legacy
    writer leaves them; hidden rows, NaN and NULL readings that are never listed."""
    rnd = random.Random(seed)
    out: list[Row] = []
    for meter in range(1, 9):
        grid = GRIDS[meter % len(GRIDS)]
        for h in range(DAYS * 24):
            at = T0 + timedelta(hours=h)
            if meter == 7 and h % 6 == 0:  # the hour's last instant
                at += timedelta(hours=1, microseconds=-1)
            if meter == 8:
                at += timedelta(seconds=rnd.randrange(3600), microseconds=rnd.randrange(10**6))
            kwh = rnd.choice([None, float("nan")]) if rnd.random() < 0.1 else rnd.random()
            out.append((at, meter, kwh, f"MTR-{meter}", grid, rnd.random() < 0.1, meter))
    return out


@pytest.fixture(scope="module")
def ts_url(scratch: ScratchDatabases) -> Iterator[str]:
    from nxt_cli.migrate import migrate_timeseries

    url = scratch.create("nxt_counts_ts")
    migrate_timeseries(url, engine="native")
    with psycopg.connect(url) as conn:
        write_hourly(conn, rows(1), recount=False)
    yield url


def queries() -> Any:
    import_main(ROOT / "functions" / "meter-consumption" / "main.py", "meter-consumption")
    return importlib.import_module(f"{module_name('meter-consumption')}.queries")


def windows(seed: int, n: int = 60) -> list[dict[str, Any]]:
    rnd = random.Random(seed)
    span = int(timedelta(days=DAYS + 1).total_seconds() * 10**6)
    out = []
    for i in range(n):
        a = T0 - timedelta(hours=6) + timedelta(microseconds=rnd.randrange(span))
        b = a + timedelta(microseconds=rnd.randrange(span // 2))
        if i % 5 == 0:  # whole hours at both ends
            a, b = a.replace(minute=0, second=0, microsecond=0), b.replace(minute=0, second=0,
                                                                              microsecond=0)
        if i % 11 == 0:
            b = a  # one instant
        out.append({"from": a, "to": b,
                    "site": rnd.choice([None, None, "gbamu", "GBAMU", "okpokunou", "nowhere"]),
                    "meter": rnd.choice([None] * 4 + ["MTR-3", "MTR-8"])})
    out.append({"from": T0, "to": T0 + timedelta(days=DAYS), "site": None, "meter": None})
    # An hour's edges: its last instant in or out, its first instant in or out.
    us = timedelta(microseconds=1)
    for h in (6, 12, 30):
        at = T0 + timedelta(hours=h)
        for a, b in [(at, at + timedelta(hours=1) - us), (at, at + timedelta(hours=1) - 2 * us),
                     (at + us, at + timedelta(hours=2) - us), (at - us, at + timedelta(hours=1))]:
            out += [{"from": a, "to": b, "site": site, "meter": None}
                    for site in (None, "okpokunou")]
    return out


def totals(url: str, cases: list[dict[str, Any]]) -> list[tuple[int, int]]:
    """(kept-count total, live count of the window) for each case."""
    q = queries()
    with psycopg.connect(url) as conn:
        return [(conn.execute(q.COUNT_SQL, case).fetchone()[0],
                 conn.execute("select count(*) from public.meter_snapshot_1_h h" + q.WINDOW_WHERE,
                              case).fetchone()[0]) for case in cases]


def catch_up(url: str, **options: Any) -> dict[str, int]:
    async def run() -> dict[str, int]:
        async with await psycopg.AsyncConnection.connect(url, autocommit=True) as conn:
            return await acatch_up(conn, NOW, **options)
    return asyncio.run(run())


def counted(url: str) -> list[datetime]:
    with psycopg.connect(url) as conn:
        return [r[0] for r in conn.execute("select hour from ts.meter_snapshot_counts"
                                           " order by hour").fetchall()]


def test_totals_are_exact_before_during_and_after_counting(ts_url: str) -> None:
    cases = windows(7)
    before = totals(ts_url, cases)
    assert counted(ts_url) == []
    assert all(kept == live for kept, live in before), before
    assert sum(live for _, live in before) > 1000  # the windows hold rows

    # A short reach counts the newest hours of history first; the rest are counted live.
    first = catch_up(ts_url, recent=3, history=10)
    assert first == {"recounted": 3, "counted": 10}
    newest = [T0 + timedelta(hours=h) for h in range(DAYS * 24 - 10, DAYS * 24)]
    assert counted(ts_url) == newest + RECENT
    assert totals(ts_url, cases) == before

    catch_up(ts_url, history=10_000)
    assert counted(ts_url) == [T0 + timedelta(hours=h) for h in range(DAYS * 24)] + RECENT
    assert totals(ts_url, cases) == before


def test_a_late_write_is_stale_until_its_hour_is_recounted(ts_url: str) -> None:
    catch_up(ts_url, history=10_000)
    hour = T0 + timedelta(hours=30)
    late: list[Row] = [(hour + timedelta(minutes=m), 100 + m, 1.5, f"MTR-{100 + m}", "Gbamu",
                        False, None) for m in range(5)]
    whole = {"from": hour, "to": hour + timedelta(hours=1) - timedelta(microseconds=1),
             "site": None, "meter": None}
    site = {**whole, "site": "gbamu"}
    wider = {**whole, "from": hour - timedelta(hours=2, minutes=7)}
    before = totals(ts_url, [whole, site, wider])
    with psycopg.connect(ts_url) as conn:
        write_hourly(conn, late, recount=False)
    stale = totals(ts_url, [whole, site, wider])
    # The hour is counted: its kept count is what it was; the live count has the five rows.
    assert [kept for kept, _ in stale] == [kept for kept, _ in before]
    assert [live - kept for kept, live in stale] == [5, 5, 5]
    with psycopg.connect(ts_url) as conn:
        recount_hours(conn, [hour])
    assert all(kept == live for kept, live in totals(ts_url, [whole, site, wider]))
    assert all(kept == live for kept, live in totals(ts_url, windows(11)))


def test_the_catch_up_recounts_the_hours_near_now(ts_url: str) -> None:
    catch_up(ts_url, history=10_000)
    closed = NOW.replace(minute=0)
    near: list[Row] = [(closed - timedelta(hours=2, minutes=1), 200, 2.5, "MTR-200", "Okpokunou",
                        False, None)]
    with psycopg.connect(ts_url) as conn:
        write_hourly(conn, near, recount=False)
        conn.execute("delete from ts.meter_snapshot_counts where hour = %s",
                     (T0 + timedelta(hours=5),))
    done = catch_up(ts_url, recent=3, history=10_000)
    # The last three closed hours (one has the new row), and the one hour left uncounted.
    assert done == {"recounted": 3, "counted": 1}
    assert all(kept == live for kept, live in totals(ts_url, windows(13)))
    with psycopg.connect(ts_url) as conn:
        got = conn.execute("select readings from ts.meter_snapshot_site_counts"
                           " where site = 'okpokunou' and hour = %s",
                           (closed - timedelta(hours=3),)).fetchall()
    assert got == [(1,)]
