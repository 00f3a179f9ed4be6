"""meter-readings over real HTTP: atomic, idempotent bulk ingest with every bad row named."""

from __future__ import annotations

import json
from datetime import UTC, datetime, timedelta, timezone
from decimal import Decimal
from decimal import Decimal as D
from typing import Any

import psycopg
import pytest

from nxt_cli.seed import OPERATOR_ID
from tests.conftest import Api, Seeded

pytestmark = pytest.mark.db

URL = "/functions/v1/meter-readings"


def live_meters(functions_db: Seeded, n: int) -> list[int]:
    with psycopg.connect(functions_db.url) as conn:
        return [r[0] for r in conn.execute(
            "select id from meters where deleted_at is null order by id desc limit %s", (n,))]


def batch(meters: list[int], start: datetime, steps: int,
          base: Decimal = Decimal("100")) -> list[dict[str, Any]]:
    rows = []
    for m in meters:
        for i in range(steps):
            rows.append({"meter_id": m, "ts": (start + i * timedelta(minutes=15)).isoformat(),
                         "counter_kwh": str(base + Decimal(i) / 4), "power_w": "250.5",
                         "voltage_v": "231.2", "credit_kwh": "12.5"})
    return rows


def send(api: Api, rows: Any, token: str | None = None) -> Any:
    return api.post(URL, token=token or api.token(role="service_role"), json={"readings": rows})


def stored(functions_ts: str, meters: list[int], since: datetime) -> int:
    """Readings of `meters` in the day from `since` (each test uses its own day)."""
    with psycopg.connect(functions_ts) as conn:
        return conn.execute("select count(*) from ts.meter_readings where meter_id = any(%s)"
                            " and ts >= %s and ts < %s",
                            (meters, since, since + timedelta(days=1))).fetchone()[0]  # type: ignore[index]


def hour_start(days_ago: int) -> datetime:
    now = datetime.now(UTC).replace(minute=0, second=0, microsecond=0)
    return now - timedelta(days=days_ago)


def test_a_batch_is_stored_and_its_hours_queued(api: Api, functions_db: Seeded,
                                                functions_ts: str) -> None:
    meters = live_meters(functions_db, 3)
    start = hour_start(2)
    resp = send(api, batch(meters, start, 8))
    assert resp.status_code == 200, resp.text
    assert resp.json() == {"received": 24, "inserted": 24, "duplicates": 0,
                           "duplicate_rows": []}
    assert stored(functions_ts, meters, start) == 24
    with psycopg.connect(functions_ts) as conn:
        row = conn.execute("select counter_kwh, power_w, voltage_v, credit_kwh"
                           " from ts.meter_readings where meter_id = %s and ts = %s",
                           (meters[0], start + timedelta(minutes=30))).fetchone()
        assert row == (Decimal("100.5000"), Decimal("250.500"), Decimal("231.200"),
                       Decimal("12.5000"))
        hours = {r[0] for r in conn.execute("select hour from ts.pending_hours")}
    assert {start, start + timedelta(hours=1)} <= hours


def test_resending_a_batch_changes_nothing_and_reports_duplicates(
        api: Api, functions_db: Seeded, functions_ts: str) -> None:
    meters = live_meters(functions_db, 2)
    rows = batch(meters, hour_start(3), 4)
    assert send(api, rows).json()["inserted"] == 8
    # The same batch again, plus two new rows at the end.
    more = rows + batch(meters[:1], hour_start(3) + timedelta(hours=1), 2, Decimal("101"))
    body = send(api, more).json()
    assert body == {"received": 10, "inserted": 2, "duplicates": 8,
                    "duplicate_rows": list(range(8))}
    assert stored(functions_ts, meters, hour_start(3)) == 10


def test_one_bad_row_rejects_the_whole_batch(api: Api, functions_db: Seeded,
                                             functions_ts: str) -> None:
    meters = live_meters(functions_db, 1)
    rows = batch(meters, hour_start(4), 6)
    rows[2]["counter_kwh"] = "-1"
    rows[4]["meter_id"] = 987654321
    resp = send(api, rows)
    assert resp.status_code == 422, resp.text
    body = resp.json()
    assert "nothing was written" in body["error"]
    by_index = {r["index"]: r["errors"] for r in body["rows"]}
    assert set(by_index) == {2, 4}
    assert "counter_kwh" in by_index[2][0]
    assert "987654321" in by_index[4][0]
    with psycopg.connect(functions_ts) as conn:
        n = conn.execute("select count(*) from ts.meter_readings where meter_id = %s"
                         " and ts >= %s and ts < %s",
                         (meters[0], hour_start(4), hour_start(4) + timedelta(hours=2))
                         ).fetchone()[0]  # type: ignore[index]
    assert n == 0


@pytest.mark.parametrize(("change", "reason"), [
    ({"counter_kwh": "NaN"}, "counter_kwh"),
    ({"counter_kwh": "Infinity"}, "counter_kwh"),
    ({"counter_kwh": "1e400"}, "counter_kwh"),
    ({"counter_kwh": "abc"}, "counter_kwh"),
    ({"counter_kwh": None}, "counter_kwh"),
    ({"meter_id": "seven"}, "meter_id"),
    ({"meter_id": 0}, "meter_id"),
    ({"ts": "2026-11-01T10:00:00"}, "ts"),  # no time zone
    ({"ts": "yesterday"}, "ts"),
    ({"ts": "2999-01-01T00:00:00Z"}, "ts: in the future"),
    ({"ts": "1999-01-01T00:00:00Z"}, "ts: older than"),
    ({"voltage_v": -3}, "voltage_v"),
    ({"surprise": 1}, "surprise"),
])
def test_each_kind_of_bad_row_is_named(api: Api, functions_db: Seeded, change: dict[str, Any],
                                       reason: str) -> None:
    rows = batch(live_meters(functions_db, 1), hour_start(5), 3)
    rows[1] = {**rows[1], **change}
    resp = send(api, rows)
    assert resp.status_code == 422, resp.text
    rows_out = resp.json()["rows"]
    assert [r["index"] for r in rows_out] == [1]
    assert any(reason in e for e in rows_out[0]["errors"]), rows_out


def test_duplicate_keys_inside_a_batch_are_named(api: Api, functions_db: Seeded) -> None:
    rows = batch(live_meters(functions_db, 1), hour_start(5), 3)
    rows.append(dict(rows[0]))
    resp = send(api, rows)
    assert resp.status_code == 422
    assert resp.json()["rows"] == [{"index": 3, "errors": [
        "meter_id, ts: same meter and time as row 0"]}]


def test_a_backlog_lands_in_new_partitions(api: Api, functions_db: Seeded,
                                           functions_ts: str) -> None:
    """Readings far behind (an outage's backlog) create their partitions, never a default."""
    meters = live_meters(functions_db, 1)
    start = hour_start(60)
    resp = send(api, batch(meters, start, 4))
    assert resp.status_code == 200, resp.text
    with psycopg.connect(functions_ts) as conn:
        partitions = {r[0] for r in conn.execute(
            "select tableoid::regclass::text from ts.meter_readings where meter_id = %s"
            " and ts >= %s and ts < %s", (meters[0], start, start + timedelta(hours=1)))}
    assert partitions == {f"ts.meter_readings_p{start:%Y%m%d}"}


@pytest.mark.parametrize(("body", "status", "text"), [
    ({"readings": []}, 400, "readings"),
    ({"rows": []}, 400, "readings"),
    ([], 400, "input"),
    ({"readings": "x"}, 400, "readings"),
])
def test_bad_envelopes_are_400(api: Api, body: Any, status: int, text: str) -> None:
    resp = api.post(URL, token=api.token(role="service_role"), json=body)
    assert resp.status_code == status, resp.text
    assert text in resp.json()["error"]


def test_more_than_ten_thousand_rows_is_400(api: Api, functions_db: Seeded) -> None:
    rows = batch(live_meters(functions_db, 1), hour_start(6), 1) * 10_001
    resp = send(api, rows)
    assert resp.status_code == 400
    assert "readings" in resp.json()["error"] and "10000" in resp.json()["error"]


def test_invalid_json_and_huge_bodies(api: Api) -> None:
    token = api.token(role="service_role")
    headers = {"Content-Type": "application/json", "Authorization": f"Bearer {token}"}
    assert api.post(URL, content=b'{"readings": [', headers=headers).status_code == 400
    assert api.post(URL, content=b"\xff\xfe{}", headers=headers).status_code == 400
    huge = b'{"readings": [' + b'{"x": 1},' * 1_000_000 + b'{"x": 1}]}'
    assert api.post(URL, content=huge, headers=headers).status_code == 413
    deep = b'{"readings": ' + b"[" * 5000 + b"]" * 5000 + b"}"
    assert api.post(URL, content=deep, headers=headers).status_code == 400


def test_a_full_batch_of_ten_thousand(api: Api, functions_db: Seeded,
                                      functions_ts: str) -> None:
    meters = live_meters(functions_db, 100)
    rows = batch(meters, hour_start(7), 100)
    assert len(rows) == 10_000
    resp = send(api, rows)
    assert resp.status_code == 200, resp.text
    assert resp.json()["inserted"] == 10_000
    assert len(json.dumps(rows)) < 8 * 1024 * 1024


@pytest.mark.parametrize("who", ["operator", "anon", "none"])
def test_only_the_service_role_may_ingest(api: Api, functions_db: Seeded, who: str) -> None:
    rows = batch(live_meters(functions_db, 1), hour_start(8), 1)
    if who == "none":
        resp = api.post(URL, json={"readings": rows})
        assert resp.status_code == 401
        return
    token = api.token(OPERATOR_ID) if who == "operator" else api.token(role="anon")
    assert send(api, rows, token=token).status_code == 403


# -- the fast path and what it hands to the full validation ----------------------------------
# Plain decimal text and plain ISO 8601 go straight to the database; anything else the schema
# allows (JSON numbers, exponents, leading zeros, other offsets) takes the full validation and
# must be stored with the same value.

def values_of(functions_ts: str, meter: int, since: datetime) -> list[tuple[Any, ...]]:
    with psycopg.connect(functions_ts) as conn:
        return conn.execute(
            "select ts, counter_kwh, power_w, voltage_v, credit_kwh from ts.meter_readings"
            " where meter_id = %s and ts >= %s and ts < %s order by ts",
            (meter, since, since + timedelta(days=1))).fetchall()


def test_every_spelling_the_schema_allows_is_stored_exactly(api: Api, functions_db: Seeded,
                                                            functions_ts: str) -> None:
    meter = live_meters(functions_db, 1)[0]
    start = hour_start(41)
    spellings: list[dict[str, Any]] = [
        {"counter_kwh": "12.5", "power_w": "-3.25"},  # plain text: the fast path
        {"counter_kwh": 13.25, "power_w": 250, "voltage_v": 231.5},  # JSON numbers
        {"counter_kwh": "1.4E+1", "credit_kwh": "-2e-1"},  # exponents
        {"counter_kwh": "0015.0000", "voltage_v": "0230.100"},  # leading and trailing zeros
    ]
    rows = [{"meter_id": meter, "ts": (start + i * timedelta(minutes=15)).isoformat(), **s}
            for i, s in enumerate(spellings)]
    # An offset of +05:30 and one past +14:00 (ISO 8601 allows it; PostgreSQL reads up to 15:59)
    rows[0]["ts"] = (start).astimezone(timezone(timedelta(hours=5, minutes=30))).isoformat()
    rows[3]["ts"] = (start + 3 * timedelta(minutes=15)).astimezone(
        timezone(timedelta(hours=17))).isoformat()
    for one in ([rows[0]], rows):  # alone (fast path), then with the others (full path)
        resp = send(api, one)
        assert resp.status_code == 200, resp.text
    assert values_of(functions_ts, meter, start) == [
        (start, D("12.5"), D("-3.25"), None, None),
        (start + timedelta(minutes=15), D("13.25"), D("250"), D("231.5"), None),
        (start + timedelta(minutes=30), D("14"), None, None, D("-0.2")),
        (start + timedelta(minutes=45), D("15"), None, D("230.1"), None),
    ]


@pytest.mark.parametrize("ts", ["2026-11-31T10:00:00Z", "2026-02-30T10:00:00+01:00",
                                "2025-02-29T10:00:00Z"])
def test_a_date_that_does_not_exist_is_named(api: Api, functions_db: Seeded,
                                             functions_ts: str, ts: str) -> None:
    """The patterns let 31 November through; the database refuses it, and the answer still
    names the row (a 422, not a 500), with nothing written."""
    meters = live_meters(functions_db, 1)
    start = hour_start(42)
    rows = batch(meters, start, 3)
    rows[1]["ts"] = ts
    resp = send(api, rows)
    assert resp.status_code == 422, resp.text
    assert [(r["index"], r["errors"][0][:4]) for r in resp.json()["rows"]] == [(1, "ts: ")]
    assert stored(functions_ts, meters, start) == 0


def test_a_reading_before_the_partitions_makes_its_own(api: Api, functions_db: Seeded,
                                                       functions_ts: str) -> None:
    """The fast path writes optimistically; a batch past the partitions creates them and is
    written again, once."""
    meters = live_meters(functions_db, 2)
    start = hour_start(95)
    resp = send(api, batch(meters, start, 4))
    assert resp.status_code == 200, resp.text
    assert resp.json()["inserted"] == 8
    assert stored(functions_ts, meters, start) == 8


@pytest.mark.parametrize("envelope", [
    '{{"readings": {first}, "readings": {second}}}',  # a repeated key: the last one counts
    '{{"read\\u0069ngs": {second}}}',  # an escaped key
    ' \n{{ "readings" :\t{second} }}\r\n',  # whitespace anywhere JSON allows it
])
def test_the_readings_stored_are_the_ones_validated(api: Api, functions_db: Seeded,
                                                    functions_ts: str, envelope: str) -> None:
    """The database reads the readings array out of the body the schema validated; however
    the envelope is spelled, it stores what the schema saw."""
    meters = live_meters(functions_db, 2)
    start = hour_start(43)
    first, second = batch(meters[:1], start, 2), batch(meters[1:], start, 3)
    body = envelope.format(first=json.dumps(first), second=json.dumps(second))
    resp = api.post(URL, token=api.token(role="service_role"), content=body.encode(),
                    headers={"Content-Type": "application/json"})
    assert resp.status_code == 200, resp.text
    assert resp.json()["inserted"] == 3
    assert stored(functions_ts, meters[1:], start) == 3
    assert stored(functions_ts, meters[:1], start) == 0
    with psycopg.connect(functions_ts) as conn:  # next run of this test starts clean
        conn.execute("delete from ts.meter_readings where meter_id = any(%s) and ts >= %s"
                     " and ts < %s", (meters, start, start + timedelta(days=1)))


def test_overlapping_batches_in_opposite_orders_never_deadlock(
        api: Api, functions_db: Seeded, functions_ts: str) -> None:
    """Attack finding 3: two batches with the same 1,000 readings in opposite orders deadlocked
    (one got 503 `database unavailable` in 8 of 8 pairs, logged as an outage)."""
    import asyncio

    import httpx

    meters = live_meters(functions_db, 10)
    token = api.token(role="service_role")

    async def pair(start: datetime) -> list[int]:
        rows = batch(meters, start, 96)  # a day of 15-minute readings: 960
        async with httpx.AsyncClient(base_url=api.base_url, timeout=60) as client:
            sent = await asyncio.gather(*(client.post(
                URL, json={"readings": r}, headers={"Authorization": f"Bearer {token}"})
                for r in (rows, rows[::-1])))
        return [resp.status_code for resp in sent]

    log_before = api.log_path.read_text().count("database unavailable")
    for k in range(8):
        start = hour_start(30 + k)
        statuses = asyncio.run(pair(start))
        assert all(200 <= s < 300 for s in statuses), statuses
        assert stored(functions_ts, meters, start) == 960
    assert api.log_path.read_text().count("database unavailable") == log_before


def test_one_batch_spans_at_most_a_month_of_readings(api: Api, functions_db: Seeded,
                                                     functions_ts: str) -> None:
    """Attack finding 9: one ingest of two readings 399 days apart made 385 partitions in one
    call. A batch's readings now span at most 31 days (a partition per day, 32 at most); the
    later row is named, and nothing is written or created."""
    meter = live_meters(functions_db, 1)[0]
    old, new = hour_start(399), hour_start(1)

    def partitions() -> int:
        with psycopg.connect(functions_ts) as conn:
            return conn.execute("select count(*) from pg_inherits"
                                " where inhparent = 'ts.meter_readings'::regclass").fetchone()[0]  # type: ignore[index]

    before = partitions()
    rows = [{"meter_id": meter, "ts": t.isoformat(), "counter_kwh": str(c)}
            for t, c in ((old, 1), (new, 2))]
    resp = send(api, rows)
    assert resp.status_code == 422, resp.text
    [row] = resp.json()["rows"]
    assert row["index"] == 1 and "at most 31 days" in row["errors"][0]
    assert partitions() == before
    assert stored(functions_ts, [meter], old) == 0
    edge = [{"meter_id": meter, "ts": t.isoformat(), "counter_kwh": str(c)}
            for t, c in ((new - timedelta(days=31), 1), (new, 2))]
    assert send(api, edge).status_code == 200
