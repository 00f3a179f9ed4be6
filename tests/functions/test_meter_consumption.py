"""meter-consumption over real HTTP: the legacy envelope and paging, keyset cursors, filters,
bounds, and who may call it (API keys and JWTs of aggregators and the operator), on rows of
the legacy hourly snapshot written as the legacy writers write them; its legacy URL,
meter-consumption-2, answering the same; and both compared with the legacy function's own SQL
and JavaScript on the same rows."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta
from typing import Any

import psycopg
import pytest

from nxt_cli.seed import AGGREGATOR_ID, DEV_A_ID, LENDER_ID, OPERATOR_ID
from shared.auth.api_keys import hash_api_key
from tests.conftest import Api, Seeded
from tests.support.snapshots import delete_meters, write_hourly

pytestmark = pytest.mark.db

URL = "/functions/v1/meter-consumption"
LEGACY_URL = "/functions/v1/meter-consumption-2"
T0 = datetime(2026, 10, 5, tzinfo=UTC)
HOURS = 48
# meter id -> (external reference, grid name, hidden)
METERS = {9001: ("MTR-9001", "Gbamu", False), 9002: ("MTR-9002", "Gbamu", False),
          9003: ("MTR-9003", "Okpokunou", False), 9004: ("MTR-9004", "Okpokunou", True),
          9005: ("MTR-9005", "Akpabom", False)}


def kwh(meter: int, hour: int) -> float | None:
    if meter == 9005 and hour % 7 == 0:
        return None  # unknown (a long gap): never reported
    if meter == 9005 and hour % 7 == 3:
        return float("nan")  # what a legacy writer leaves for an unknown hour: not a reading
    return meter % 10 + hour / 1000 + 0.0005


@pytest.fixture(scope="module")
def hourly(functions_ts: str) -> list[tuple[datetime, str, float]]:
    """Rows written straight into public.meter_snapshot_1_h, as the legacy writers leave them
    (only their columns); the expected visible rows, in order."""
    rows = [(T0 + timedelta(hours=h), meter, kwh(meter, h), ref, grid, hidden, meter * 10)
            for meter, (ref, grid, hidden) in METERS.items() for h in range(HOURS)]
    with psycopg.connect(functions_ts) as conn:
        delete_meters(conn, METERS)
        write_hourly(conn, rows)
    visible = [(t, ref, c) for t, m, c, ref, _, hidden, _ in rows
               if c is not None and c == c and not hidden]
    return sorted(visible, key=lambda r: (r[0], int(r[1][4:])))


def params(**extra: Any) -> dict[str, Any]:
    # TO is inclusive: the last hour starts one hour before the end of the data.
    return {"FROM": T0.isoformat(), "TO": (T0 + timedelta(hours=HOURS - 1)).isoformat(),
            **extra}


def aggregator_key(functions_db: Seeded) -> str:
    return functions_db.api_keys[0][1]


def test_legacy_envelope_and_fields(api: Api, functions_db: Seeded, hourly: list[Any]) -> None:
    resp = api.get(URL, params=params(), headers={"X-API-Key": aggregator_key(functions_db)})
    assert resp.status_code == 200, resp.text
    body = resp.json()
    assert set(body) == {"total", "offset", "pageLimit", "readings", "next_cursor"}
    assert (body["total"], body["offset"], body["pageLimit"]) == (len(hourly), 0, 20)
    assert len(body["readings"]) == 20
    first = body["readings"][0]
    assert set(first) == {"timestamp", "meterId", "energyConsumptionKwh",
                          "timeIntervalMinutes", "customerAccountId"}
    t, ref, c = hourly[0]
    assert first["timestamp"] == t.strftime("%Y-%m-%dT%H:%M:%S.000Z")  # a JavaScript Date
    assert first["meterId"] == ref
    # Math.round(parseFloat("1.0005") * 1000) / 1000, as the legacy JavaScript computed it
    assert (c, first["energyConsumptionKwh"]) == (1.0005, 1.001)
    assert first["timeIntervalMinutes"] == 60
    assert first["customerAccountId"] == 90010  # the customer's id, as the legacy returned it


def test_missing_from_or_to_is_the_legacy_400(api: Api, functions_db: Seeded) -> None:
    for missing in ("FROM", "TO"):
        p = params()
        del p[missing]
        resp = api.get(URL, params=p, headers={"X-API-Key": aggregator_key(functions_db)})
        assert resp.status_code == 400
        assert resp.json() == {"error": "Missing required parameters: FROM, TO"}


def test_bearer_api_key_works_as_the_legacy_code_read_it(api: Api, functions_db: Seeded,
                                                        hourly: list[Any]) -> None:
    resp = api.get(URL, params=params(pageLimit=5),
                   headers={"Authorization": f"Bearer {aggregator_key(functions_db)}"})
    assert resp.status_code == 200
    assert len(resp.json()["readings"]) == 5


def test_offset_pages_and_cursor_pages_agree(api: Api, functions_db: Seeded,
                                             hourly: list[Any]) -> None:
    headers = {"X-API-Key": aggregator_key(functions_db)}
    by_offset: list[Any] = []
    offset = 0
    while True:
        page = api.get(URL, params=params(offset=offset, pageLimit=37), headers=headers).json()
        by_offset += page["readings"]
        if len(page["readings"]) < 37:
            break
        offset += 37
    by_cursor: list[Any] = []
    cursor = None
    while True:
        extra = {"pageLimit": 37, **({"cursor": cursor} if cursor else {})}
        page = api.get(URL, params=params(**extra), headers=headers).json()
        by_cursor += page["readings"]
        assert (page["total"] is None) == (cursor is not None)
        cursor = page["next_cursor"]
        if cursor is None:
            break
    assert by_offset == by_cursor
    assert [(r["meterId"]) for r in by_cursor] == [ref for _, ref, _ in hourly]


def test_site_and_meter_filters(api: Api, functions_db: Seeded, hourly: list[Any]) -> None:
    headers = {"X-API-Key": aggregator_key(functions_db)}
    gbamu = api.get(URL, params=params(site="gBaMu", pageLimit=1000), headers=headers).json()
    assert {r["meterId"] for r in gbamu["readings"]} == {"MTR-9001", "MTR-9002"}
    one = api.get(URL, params=params(meter="MTR-9005", pageLimit=1000), headers=headers).json()
    assert one["total"] == len([h for h in hourly if h[1] == "MTR-9005"]) < HOURS
    hidden = api.get(URL, params=params(meter="MTR-9004"), headers=headers).json()
    assert hidden["total"] == 0 and hidden["readings"] == []


def test_naive_timestamps_mean_utc_and_both_ends_are_included(
        api: Api, functions_db: Seeded, hourly: list[Any]) -> None:
    headers = {"X-API-Key": aggregator_key(functions_db)}
    naive = {"FROM": "2026-10-05T00:00:00", "TO": "2026-10-05T02:00:00", "pageLimit": 1000}
    body = api.get(URL, params=naive, headers=headers).json()
    assert body["total"] == len([h for h in hourly if h[0] <= T0 + timedelta(hours=2)])
    assert body["readings"][-1]["timestamp"] == "2026-10-05T02:00:00.000Z"
    # The same instant with a zone: +01:00 is 01:00 UTC.
    zoned = {"FROM": "2026-10-05T01:00:00+01:00", "TO": "2026-10-05T03:00:00+01:00",
             "pageLimit": 1000}
    assert api.get(URL, params=zoned, headers=headers).json()["total"] == body["total"]
    # FROM = TO: the one hour that starts there.
    one = {"FROM": "2026-10-05T02:00:00Z", "TO": "2026-10-05T02:00:00Z", "pageLimit": 1000}
    assert api.get(URL, params=one, headers=headers).json()["total"] == len(
        [h for h in hourly if h[0] == T0 + timedelta(hours=2)])


@pytest.mark.parametrize(("extra", "word"), [
    ({"pageLimit": "0"}, "pageLimit"), ({"pageLimit": "1001"}, "pageLimit"),
    ({"pageLimit": "many"}, "pageLimit"), ({"offset": "-1"}, "offset"),
    ({"offset": "100001"}, "offset"), ({"offset": "1e3"}, "offset"),
    ({"FROM": "last week"}, "FROM"), ({"TO": "2026-02-30T00:00:00Z"}, "TO"),
    ({"TO": "2026-10-01T00:00:00Z"}, "at or after FROM"),
    ({"TO": "2027-06-01T00:00:00Z"}, "at most 93 days"),
    ({"cursor": "not-a-cursor"}, "cursor"),
    ({"cursor": "MTox", "offset": "5"}, "cursor"),
    # Attack finding 5: forged cursors whose parts overflow what the database takes (the
    # first, a meter past bigint in the old format, answered 500).
    ({"cursor": "MTc2NDAwMDAwMDo5OTk5OTk5OTk5OTk5OTk5OTk5OQ"}, "cursor"),
    ({"cursor": "dXM6MTc2NDAwMDAwMDAwMDAwMDo5OTk5OTk5OTk5OTk5OTk5OTk5OQ"}, "cursor"),
    ({"cursor": "dXM6MTc2NDAwMDAwMDAwMDAwMDoyMTQ3NDgzNjQ4"}, "cursor"),
    ({"cursor": "dXM6OTk5OTk5OTk5OTk5OTk5OTk5OTk5OTk6MQ"}, "cursor"),
    ({"cursor": "dXM6LTk5OTk5OTk5OTk5OTk5OTk5OjE"}, "cursor"),
])
def test_bad_parameters_are_400(api: Api, functions_db: Seeded, extra: dict[str, str],
                                word: str) -> None:
    resp = api.get(URL, params=params(**extra),
                   headers={"X-API-Key": aggregator_key(functions_db)})
    assert resp.status_code == 400, resp.text
    assert word in resp.json()["error"]


def test_operator_and_service_role_jwts_may_read(api: Api, hourly: list[Any]) -> None:
    for token in (api.token(OPERATOR_ID), api.token(role="service_role"),
                  api.token(AGGREGATOR_ID)):
        assert api.get(URL, params=params(), token=token).status_code == 200


@pytest.mark.parametrize("org", [LENDER_ID, DEV_A_ID, None])
def test_other_organizations_get_403(api: Api, org: int | None) -> None:
    assert api.get(URL, params=params(), token=api.token(org)).status_code == 403


def test_missing_unknown_and_locked_keys_are_401(api: Api, functions_db: Seeded) -> None:
    assert api.get(URL, params=params()).status_code == 401
    unknown = "nxt_abcdefgh_" + "A" * 43
    assert api.get(URL, params=params(), headers={"X-API-Key": unknown}).status_code == 401
    key = aggregator_key(functions_db)
    digest = hash_api_key(key)
    with psycopg.connect(functions_db.url) as conn:
        conn.execute("update api_keys set is_locked = true where key_hash = %s", (digest,))
    try:
        assert api.get(URL, params=params(), headers={"X-API-Key": key}).status_code == 401
    finally:
        with psycopg.connect(functions_db.url) as conn:
            conn.execute("update api_keys set is_locked = false where key_hash = %s",
                         (digest,))


def test_anon_jwt_is_401(api: Api) -> None:
    assert api.get(URL, params=params(), token=api.token(role="anon")).status_code == 401


def test_offset_pages_reuse_the_windows_total_briefly(api: Api, functions_db: Seeded,
                                                      functions_ts: str,
                                                      hourly: list[Any]) -> None:
    """A legacy client reads `total` on every offset page; the count is kept per caller and
    window for LIST_TOTAL_TTL_SECONDS (shared.totals), so its pages stop recounting the window.
    Another window, or another caller, is counted afresh."""
    key = {"X-API-Key": aggregator_key(functions_db)}
    window = params(site="Akpabom")  # only meter 9005's rows
    first = api.get(URL, params={**window, "pageLimit": 5}, headers=key).json()
    with psycopg.connect(functions_ts) as conn:  # a meter of its own, removed after
        write_hourly(conn, [(T0, 9099, 1.0, "MTR-9099", "Akpabom", False, None)])
    try:
        second = api.get(URL, params={**window, "pageLimit": 5, "offset": 5},
                         headers=key).json()
        operator = api.get(URL, params={**window, "pageLimit": 5},
                           token=api.token(OPERATOR_ID)).json()
    finally:
        with psycopg.connect(functions_ts) as conn:
            delete_meters(conn, [9099])
    assert second["total"] == first["total"]  # the first page's count, reused
    assert operator["total"] == first["total"] + 1  # another caller: counted now


# -- the legacy URL ---------------------------------------------------------------------------


def test_the_legacy_url_answers_the_same(api: Api, functions_db: Seeded,
                                         hourly: list[Any]) -> None:
    key = {"X-API-Key": aggregator_key(functions_db)}
    for query in (params(pageLimit=7), params(pageLimit=7, offset=14), params(site="gbamu"),
                  params(meter="MTR-9003", pageLimit=3)):
        ours = api.get(URL, params=query, headers=key)
        legacy = api.get(LEGACY_URL, params=query, headers=key)
        assert (legacy.status_code, legacy.json()) == (ours.status_code, ours.json()) == (
            200, ours.json())
    # Cursor pages interchange: a cursor of one name continues on the other.
    first = api.get(URL, params=params(pageLimit=5), headers=key).json()
    more = params(pageLimit=5, cursor=first["next_cursor"])
    assert api.get(LEGACY_URL, params=more, headers=key).json() == api.get(
        URL, params=more, headers=key).json()
    # The same gate and errors under either name.
    assert api.get(LEGACY_URL, params=params()).status_code == 401
    assert api.get(LEGACY_URL, params=params(), token=api.token(LENDER_ID)).status_code == 403
    missing = api.get(LEGACY_URL, params={"FROM": T0.isoformat()}, headers=key)
    assert (missing.status_code, missing.json()) == (
        400, {"error": "Missing required parameters: FROM, TO"})
    assert api.get(LEGACY_URL, params=params(pageLimit=0), headers=key).status_code == 400
    # Each name serves its own OpenAPI document.
    doc = api.get(f"{LEGACY_URL}/openapi.json", headers=key).json()
    assert doc["info"]["title"] == "meter-consumption-2"
