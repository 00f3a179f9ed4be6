"""meter-consumption against the legacy function, on rows written the way the legacy writers
write them (NaN and NULL consumption, power-limit rows, fractional seconds, hidden rows, grid
names in any case, rows on both ends of the range).

The reference is the legacy function itself, in two halves: its query semantics, run as SQL
on the same database (the predicates of both legacy variants, with FROM and TO bound as the
strings the clients send), and its JavaScript post-processing, run by Node on the rows that
query returns (the Date the driver makes of `created_at` and
`Math.round(parseFloat(kWh) * 1000) / 1000`), serialised by JSON.stringify. Both URLs,
meter-consumption and meter-consumption-2, must answer those bytes.
"""

from __future__ import annotations

import importlib
import json
import os
import shutil
import subprocess
from datetime import datetime, timedelta
from typing import Any

import psycopg
import pytest

from nxt_cli.functions import import_main, module_name
from nxt_cli.harness import ROOT
from tests.conftest import Api, Seeded
from tests.support.legacy_reference import legacy_answer, readings_text
from tests.support.snapshots import delete_meters, write_hourly

pytestmark = pytest.mark.db

URLS = ("/functions/v1/meter-consumption", "/functions/v1/meter-consumption-2")
T0 = datetime(2026, 11, 3)  # UTC, as the table holds it; a window no other test writes
FROM, TO = "2026-11-03T00:00:00.000Z", "2026-11-03T12:00:00.000Z"

# (hours after T0, meter, consumption_kwh, grid name, hidden, customer id)
NAN, INF = float("nan"), float("inf")
ROWS: list[tuple[float, int, Any, str, bool, int | None]] = [
    (0, 9201, 0.0005, "Gbamu", False, 501),  # on FROM: included; half-way up
    (0.5 / 3600, 9202, 0.0015, "GBAMU", False, 502),
    (1, 9203, 1.0005, "gbamu", False, None),  # no customer
    (1 + 0.123456 / 3600, 9204, 2.0005, "Gbamu", False, 504),  # fractional seconds
    (1 + 59.999999 / 3600, 9205, -0.0005, "Gbamu", False, 505),  # a negative half: -0 -> 0
    (2, 9206, -0.0015, "Other Site", False, 506),
    (2.25, 9207, 0.1 + 0.2, "Other Site", False, 507),  # 0.30000000000000004
    (3, 9208, NAN, "Gbamu", False, 508),  # a legacy NaN: not a reading
    (3.5, 9209, None, "Gbamu", False, 509),  # a power-limit row: no consumption
    (4, 9210, 12.3456, "Gbamu", True, 510),  # hidden
    (5, 9211, 123456789.0125, "Gbamu", False, 511),
    (6, 9212, 0.0125, "Other Site", False, 512),
    (7, 9213, INF, "Gbamu", False, 513),  # JSON.stringify(Infinity) is null
    (8, 9214, 0.9995, "gBaMu", False, 514),
    (9, 9215, 4.0045, "Gbamu", False, 515),
    (10, 9216, 7.0, "Gbamu", False, 516),  # integral: 7, not 7.0
    (12, 9217, 0.00049999999999999, "Gbamu", False, 517),  # on TO: included
    (12 + 1 / 3600, 9218, 5.0, "Gbamu", False, 518),  # just after TO
    (-1 / 3600, 9219, 5.0, "Gbamu", False, 519),  # just before FROM
]
METERS = [r[1] for r in ROWS]


@pytest.fixture(scope="module")
def legacy_rows(functions_ts: str) -> Any:
    with psycopg.connect(functions_ts) as conn:
        delete_meters(conn, METERS)
        write_hourly(conn, [(T0 + timedelta(hours=h), m, kwh, f"SM-{m}", grid, hidden, customer)
                            for h, m, kwh, grid, hidden, customer in ROWS])
    yield
    with psycopg.connect(functions_ts) as conn:
        delete_meters(conn, METERS)


# -- the legacy function, as a reference -----------------------------------------------------

@pytest.mark.parametrize("site", [None, "GBAMU"])
@pytest.mark.parametrize(("limit", "offset"), [(1000, 0), (3, 0), (3, 3), (4, 9)])
def test_the_same_bytes_as_the_legacy_function(api: Api, functions_db: Seeded,
                                               functions_ts: str, legacy_rows: None,
                                               site: str | None, limit: int,
                                               offset: int) -> None:
    total, readings = legacy_answer(functions_ts, FROM, TO, site, limit, offset)
    query = {"FROM": FROM, "TO": TO, "pageLimit": limit, "offset": offset,
             **({"site": site} if site else {})}
    key = {"X-API-Key": functions_db.api_keys[0][1]}
    for url in URLS:
        resp = api.get(url, params=query, headers=key)
        assert resp.status_code == 200, resp.text
        assert (resp.json()["total"], readings_text(resp.text)) == (total, readings), url
    assert total == (14 if site is None else 11)  # the data set is what it claims to be


def test_what_the_legacy_rows_give(api: Api, functions_db: Seeded, legacy_rows: None) -> None:
    """The same answer spelled out, so the reference above cannot drift with the code."""
    body = api.get(URLS[1], params={"FROM": FROM, "TO": TO, "pageLimit": 1000},
                   headers={"X-API-Key": functions_db.api_keys[0][1]}).json()
    got = [(r["timestamp"], r["meterId"], r["energyConsumptionKwh"], r["customerAccountId"])
           for r in body["readings"]]
    assert got == [
        ("2026-11-03T00:00:00.000Z", "SM-9201", 0.001, 501),
        ("2026-11-03T00:00:00.500Z", "SM-9202", 0.002, 502),
        ("2026-11-03T01:00:00.000Z", "SM-9203", 1.001, None),
        ("2026-11-03T01:00:00.123Z", "SM-9204", 2.001, 504),
        ("2026-11-03T01:00:59.999Z", "SM-9205", 0, 505),
        ("2026-11-03T02:00:00.000Z", "SM-9206", -0.001, 506),
        ("2026-11-03T02:15:00.000Z", "SM-9207", 0.3, 507),
        ("2026-11-03T05:00:00.000Z", "SM-9211", 123456789.013, 511),
        ("2026-11-03T06:00:00.000Z", "SM-9212", 0.013, 512),
        ("2026-11-03T07:00:00.000Z", "SM-9213", None, 513),
        ("2026-11-03T08:00:00.000Z", "SM-9214", 1, 514),
        ("2026-11-03T09:00:00.000Z", "SM-9215", 4.005, 515),
        ("2026-11-03T10:00:00.000Z", "SM-9216", 7, 516),
        ("2026-11-03T12:00:00.000Z", "SM-9217", 0, 517),
    ]
    assert body["total"] == 14


def _legacy_module() -> Any:
    import_main(ROOT / "functions" / "meter-consumption" / "main.py", "meter-consumption")
    return importlib.import_module(f"{module_name('meter-consumption')}.legacy")


# (the numeric text PostgreSQL gives the double, what the legacy JavaScript printed), each
# checked with Node: Math.round(parseFloat(text) * 1000) / 1000 through JSON.stringify.
HALF_WAY = [
    ("0.0005", "0.001"), ("0.0015", "0.002"), ("0.0025", "0.003"), ("0.0125", "0.013"),
    ("1.0005", "1.001"), ("2.0005", "2.001"), ("4.0045", "4.005"), ("0.9995", "1"),
    ("-0.0005", "0"), ("-0.0015", "-0.001"), ("-2.5005", "-2.5"), ("1.5", "1.5"),
    ("0.00049999999999999", "0"), ("12.3456", "12.346"), ("123456789.0125", "123456789.013"),
    ("7", "7"), ("0.3", "0.3"), ("1000000000000000000000", "1e+21"), ("Infinity", "null"),
    ("-Infinity", "null"),
]


@pytest.mark.parametrize(("text", "printed"), HALF_WAY)
def test_legacy_rounding_half_way_cases(text: str, printed: str) -> None:
    legacy = _legacy_module()
    assert json.dumps(legacy.js_round_kwh(text)) == printed


def test_legacy_rounding_agrees_with_node_everywhere_near_a_half() -> None:
    """Thousands of values at and around the half-way points, against JavaScript itself."""
    if shutil.which("node") is None:
        if os.environ.get("CI"):
            pytest.fail("node is not installed; CI must compare with the legacy JavaScript")
        pytest.skip("node is not installed: the half-way table above still runs")
    legacy = _legacy_module()
    texts = [f"{sign}{whole}.{frac:03d}{tail}" for sign in ("", "-") for whole in (0, 1, 2, 17,
             999, 65536) for frac in range(0, 1000, 37) for tail in ("5", "49999999999999",
                                                                     "50000000000001", "4", "6")]
    script = ("const xs = JSON.parse(require('fs').readFileSync(0, 'utf8'));"
              "process.stdout.write(JSON.stringify(xs.map(x => Math.round(parseFloat(x)"
              " * 1000) / 1000)));")
    done = subprocess.run(["node", "-e", script], input=json.dumps(texts), text=True,
                          capture_output=True, timeout=60, check=True)
    ours = json.dumps([legacy.js_round_kwh(t) for t in texts], separators=(",", ":"))
    assert ours == done.stdout


def test_timestamps_are_printed_as_a_javascript_date() -> None:
    legacy = _legacy_module()
    assert legacy.js_timestamp(datetime(2025, 7, 11, 9, 5, 3)) == "2025-07-11T09:05:03.000Z"
    # milliseconds truncated, as a Date truncates them
    assert legacy.js_timestamp(datetime(2025, 7, 11, 9, 5, 3, 999999)) == (
        "2025-07-11T09:05:03.999Z")
    assert legacy.js_timestamp(datetime(987, 1, 2, 3, 4, 5, 6000)) == "0987-01-02T03:04:05.006Z"
